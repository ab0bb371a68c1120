"""The next read done in a background thread while the caller works on the last one."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from types import TracebackType
from typing import Any, Generic, TypeVar

Read = TypeVar("Read")
Row = TypeVar("Row", bound=tuple[Any, ...])  # a row read by seq, its seq first


class ReadAhead(Generic[Read]):
    """At most one read running in a thread of its own, started now and taken later."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.executor: ThreadPoolExecutor | None = None
        self.upcoming: Future[Read] | None = None

    @property
    def started(self) -> bool:
        """True while a read was started and not taken yet."""
        return self.upcoming is not None

    def start(self, read: Callable[..., Read], *args: object) -> None:
        """Begin `read(*args)` in the background."""
        if self.executor is None:
            self.executor = ThreadPoolExecutor(1, thread_name_prefix=self.name)
        self.upcoming = self.executor.submit(read, *args)

    def take(self) -> Read:
        """Wait for the read started last and return what it read (or raise its error)."""
        upcoming, self.upcoming = self.upcoming, None
        if upcoming is None:
            raise RuntimeError("no read was started")
        return upcoming.result()

    def close(self) -> None:
        """Wait for a read still running, then end the thread."""
        if self.executor is not None:
            self.executor.shutdown(wait=True)
            self.executor = None

    def __enter__(self) -> ReadAhead[Read]:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.close()


def chunks_after(read: Callable[[int], list[Row]], after: int, name: str,
                 until: int | None = None, full: int | None = None) -> Iterator[list[Row]]:
    """Chunks read by seq from `after` to an empty one or `until`, each next read meanwhile;
    with `full`, a chunk shorter than that is the last (the read reached the end). The first
    read is done here, so a pass that finds a few events starts no thread."""
    chunk = read(after)
    with ReadAhead[list[Row]](name) as reader:
        while chunk:
            more = (until is None or chunk[-1][0] < until) and (full is None or len(chunk) >= full)
            if more:
                reader.start(read, chunk[-1][0])
            yield chunk
            if not more:
                return
            chunk = reader.take()
