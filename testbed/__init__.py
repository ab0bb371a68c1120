"""Real servers and the whole running system, for the tests and the benchmarks alike.

Neither production code (it never ships in the images) nor a test: `tests/` and `bench/`
both import it.
"""
