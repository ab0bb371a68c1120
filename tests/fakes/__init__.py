"""Fakes and test-only variants of the project's own abstractions."""
