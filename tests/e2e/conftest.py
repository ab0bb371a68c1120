"""One running system shared by the e2e tests of a module."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from testbed.stack import Stack, running_stack

# Small enough that a test can upload one row too many through the gateway.
CSV_MAX_ROWS = 100


@pytest.fixture(scope="session")
def stack(pg_url: str, redis_url: str) -> Iterator[Stack]:
    """Every process of the Procfile, started by `taskstream run` on free ports."""
    with running_stack(pg_url, redis_url,
                       extra_env={"CSV_MAX_ROWS": str(CSV_MAX_ROWS)}) as running:
        yield running
