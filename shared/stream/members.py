"""Consumer processes sharing the partitions of a log: who is a member, who owns what.

Every member announces itself in a sorted set in Redis, scored by when its announcement runs
out (Redis's own clock, so members on other machines agree): every `beat_seconds` it pushes
its expiry `ttl_seconds` ahead, from a thread of its own (`start`), so a member whose
appliers are all busy in long batches or blocking reads stays one; a member whose expiry
passed is gone (a SIGKILLed one after at most `ttl_seconds`). The TTL is at least the
longest wait of the member's loops (`longest_wait`) plus two beats, checked when it is made.
The live members, sorted by name, own the partitions in turn:
partition p belongs to member `p mod M`. Every member computes the same table, so when one
dies its partitions go to the others, and when one joins some come to it.

`PartitionLease` puts that table in front of the applier lock of one partition: a member tries
the lock only for the partitions it owns, and gives up the lock (between two batches) of a
partition that now belongs to another member. The lock itself (a PostgreSQL advisory lock)
still makes sure that one process applies a partition at a time, and the checkpoint row lock
that nothing is applied twice whatever the table says for a moment.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable

import redis

from shared.logs import first_line
from shared.stream.applier_lock import ApplierLock

log = logging.getLogger("taskstream.consumer")

TTL_SECONDS = 2.0
BEAT_SECONDS = 0.5


def ttl_for(longest_wait: float, beat_seconds: float = BEAT_SECONDS) -> float:
    """The announcement's lifetime of a member whose loops wait up to `longest_wait` s."""
    return max(TTL_SECONDS, longest_wait + 2 * beat_seconds)


class Members:
    """This process's membership and its view of the live members (thread-safe)."""

    def __init__(self, client: redis.Redis, key: str, name: str,
                 ttl_seconds: float | None = None, beat_seconds: float = BEAT_SECONDS,
                 clock: Callable[[], float] = time.monotonic, longest_wait: float = 0.0
                 ) -> None:
        ttl_seconds = ttl_for(longest_wait, beat_seconds) if ttl_seconds is None \
            else ttl_seconds
        if ttl_seconds < longest_wait + 2 * beat_seconds:
            raise ValueError(f"a member's announcement ({ttl_seconds} s) must outlast its "
                             f"longest wait ({longest_wait} s) by two beats of {beat_seconds} s")
        self.client = client
        self.key = key
        self.name = name
        self.ttl_seconds = ttl_seconds
        self.beat_seconds = beat_seconds
        self.clock = clock
        self.guard = threading.Lock()
        self.next_beat = 0.0
        self.members: list[str] = [name]
        self.stopping = threading.Event()
        self.beater: threading.Thread | None = None

    def start(self) -> None:
        """Announce this member now, then every `beat_seconds` from a daemon thread."""
        self._refresh()
        self.beater = threading.Thread(target=self._beat_on, name="member-heartbeat",
                                       daemon=True)
        self.beater.start()

    def stop(self) -> None:
        """Stop announcing and leave (a clean stop hands the partitions over at once)."""
        self.stopping.set()
        if self.beater is not None:
            self.beater.join()
        with contextlib.suppress(redis.RedisError):
            self.leave()

    def _beat_on(self) -> None:
        while not self.stopping.wait(self.beat_seconds):
            self._refresh()

    def _refresh(self) -> None:
        try:
            found = self._beat()
        except redis.RedisError as exc:
            log.warning("member %s could not announce itself: %s", self.name, first_line(exc))
            return
        with self.guard:
            self.members = found
            self.next_beat = self.clock() + self.beat_seconds

    def live(self) -> list[str]:
        """The live members by name, this one among them (announced again when due, unless
        the heartbeat thread announces it)."""
        with self.guard:
            if self.beater is None and self.clock() >= self.next_beat:
                self.members = self._beat()
                self.next_beat = self.clock() + self.beat_seconds
            return self.members

    def _beat(self) -> list[str]:
        seconds, micros = self.client.time()
        now = seconds + micros / 1e6
        pipe = self.client.pipeline(transaction=False)
        pipe.zadd(self.key, {self.name: now + self.ttl_seconds})
        pipe.zremrangebyscore(self.key, "-inf", now)
        pipe.zrange(self.key, 0, -1)
        found = pipe.execute()[-1]
        return sorted(m.decode() if isinstance(m, bytes) else m for m in found)

    def owner(self, partition: int) -> str:
        """The member that partition belongs to now."""
        live = self.live()
        return live[partition % len(live)]

    def leave(self) -> None:
        """Stop being a member (a clean stop hands the partitions over at once)."""
        self.client.zrem(self.key, self.name)


class PartitionLease:
    """The applier lock of one partition, tried only while the partition is this member's."""

    def __init__(self, lock: ApplierLock, members: Members, partition: int) -> None:
        self.lock = lock
        self.members = members
        self.partition = partition

    def _mine(self) -> bool:
        return self.members.owner(self.partition) == self.members.name

    def acquire(self) -> bool:
        """Take the partition's lock if the partition is this member's and the lock is free."""
        if not (self._mine() and self.lock.acquire()):
            return False
        log.info("%s now applies partition %d", self.members.name, self.partition)
        return True

    def held(self) -> bool:
        """True while the lock holds and the partition is still this member's; a partition
        that now belongs to another member is let go here."""
        if not self.lock.held():
            return False
        if not self._mine():
            log.info("partition %d now belongs to %s; handing it over", self.partition,
                     self.members.owner(self.partition))
            self.lock.release()
            return False
        return True

    def release(self) -> None:
        """Give the lock up."""
        self.lock.release()
