"""One running system shared by the e2e tests of a module."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.stack import Stack, running_stack


@pytest.fixture(scope="session")
def stack(pg_url: str, redis_url: str) -> Iterator[Stack]:
    """Every process of the Procfile, started by `taskstream run` on free ports."""
    with running_stack(pg_url, redis_url) as running:
        yield running
