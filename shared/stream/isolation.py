"""Apply a batch whole, else one by one, telling the caller which items failed alone.

Used by the consumer (each attempt a transaction, acknowledged after) and by the logger's
rebuild (each attempt a savepoint). Outages and conflicts (`is_transient`) are never blamed
on an item: they propagate, and the caller retries later.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import TypeVar

from shared.stream.transient import is_transient

log = logging.getLogger("taskstream.stream")

Item = TypeVar("Item")
Result = TypeVar("Result")


def _done(items: object, result: object) -> bool:
    """Nothing to do after an attempt: go on."""
    return True


def apply_whole_else_each(
    items: Sequence[Item], apply: Callable[[Sequence[Item]], Result],
    failed: Callable[[Item, Exception], bool], what: str,
    then: Callable[[Sequence[Item], Result], bool] = _done,
) -> bool:
    """`apply(items)`, else `apply([item])` for each, telling `failed` of each lone failure.

    After each attempt that succeeds, `then(attempted, result)` runs (its errors are not
    the items'). `then` or `failed` returning False stops there (the rest must wait) and
    the result is False; True means every item was applied or failed and was dealt with.
    """
    try:
        result = apply(items)
    except Exception as exc:
        if is_transient(exc):
            raise
        log.warning("%s failed (%s); applying one by one", what, exc)
    else:
        return then(items, result)
    return all(_apply_alone(item, apply, failed, then) for item in items)


def _apply_alone(item: Item, apply: Callable[[Sequence[Item]], Result],
                 failed: Callable[[Item, Exception], bool],
                 then: Callable[[Sequence[Item], Result], bool]) -> bool:
    """Apply one item; hand an error that is its own to `failed`."""
    try:
        result = apply([item])
    except Exception as exc:
        if is_transient(exc):
            raise
        return failed(item, exc)
    return then([item], result)
