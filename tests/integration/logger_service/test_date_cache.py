"""The date cache on a real Redis: one round trip, and no page outlives its generation."""

from __future__ import annotations

import datetime as dt

from services.logger_service.adapters.cache import DatePageCache
from services.logger_service.service_layer.queries import CachedPage

DAY = dt.date(2025, 4, 5)


def test_a_page_is_served_only_under_the_generation_it_was_read_in(cache: DatePageCache
                                                                    ) -> None:
    generation, missing = cache.lookup(DAY, 1, 20)
    assert (generation, missing) == (0, None)
    cache.store(DAY, 1, 20, generation, CachedPage(1, b'[{"id": 1}]'))
    assert cache.lookup(DAY, 1, 20) == (0, CachedPage(1, b'[{"id": 1}]'))
    cache.bump([DAY])
    assert cache.lookup(DAY, 1, 20) == (1, None)


def test_a_page_read_before_a_change_but_stored_after_it_is_never_served(
        cache: DatePageCache) -> None:
    stale_generation, _ = cache.lookup(DAY, 1, 20)  # a reader starts, reads old rows...
    cache.bump([DAY])  # ...the projector commits a change of the date...
    cache.store(DAY, 1, 20, stale_generation, CachedPage(0, b"[]"))  # ...the reader stores
    assert cache.lookup(DAY, 1, 20) == (1, None)


def test_pages_of_other_sizes_and_dates_are_apart(cache: DatePageCache) -> None:
    cache.store(DAY, 1, 20, 0, CachedPage(3, b"[1, 2, 3]"))
    assert cache.lookup(DAY, 1, 10)[1] is None
    assert cache.lookup(DAY, 2, 20)[1] is None
    assert cache.lookup(DAY + dt.timedelta(days=1), 1, 20)[1] is None
