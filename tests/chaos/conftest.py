"""One private stack (own PostgreSQL and Redis, managed relay and projector) for this folder."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from testbed.processes import ChaosStack, chaos_stack


@pytest.fixture(scope="package")
def chaos() -> Iterator[ChaosStack]:
    """A stack that may be hurt: nothing it does reaches a shared server."""
    with chaos_stack() as running:
        yield running
