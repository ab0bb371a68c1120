"""The senders' loop over a fake outbox: answers and claims share one transaction, no more
deliveries are in hand than twice the senders, and answers a failed commit lost are recorded
by the next one."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

from sqlalchemy.exc import OperationalError

from services.webhooks_service.config import DeliverySettings
from services.webhooks_service.service_layer.attempts import Answer, Attempt, Outcome
from services.webhooks_service.service_layer.delivery import Dispatcher

AT = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)
SETTINGS = DeliverySettings(workers=2, poll_seconds=0.01)


def attempt(seq: int) -> Attempt:
    """The head of task `seq`'s queue."""
    return Attempt(delivery_id=seq, subscription_id=1, task_key=seq, lease=f"lease-{seq}",
                   attempts=0, first_attempt_at=None, claimed_at=AT, seq=seq,
                   event_id=f"event-{seq}", occurred_at=AT, payload=f'{{"seq": {seq}}}',
                   url="https://hooks.example.com/", secrets=("whsec_AAAA",))


@dataclass
class FakeOutbox:
    """Due deliveries in a list; what each transaction did, in order."""

    due: list[Attempt]
    total: int
    stop: threading.Event
    failing_commits: int = 0
    transactions: list[tuple[list[int], list[int]]] = field(default_factory=list)
    recorded: list[int] = field(default_factory=list)
    _doing: tuple[list[int], list[int]] = field(default_factory=lambda: ([], []))

    @contextmanager
    def transaction(self) -> Iterator[FakeOutbox]:
        """One transaction: its work counts only if it commits."""
        self._doing = ([], [])
        claimed_before = list(self.due)
        yield self
        if self.failing_commits and self._doing[0]:  # fails a commit that records answers
            self.failing_commits -= 1
            self.due = claimed_before  # rolled back: the claims are undone
            raise OperationalError("COMMIT", {}, Exception("server closed the connection"))
        self.transactions.append(self._doing)
        self.recorded += self._doing[0]
        if len(self.recorded) >= self.total:
            self.stop.set()

    def claim(self, limit: int, lease_seconds: float) -> list[Attempt]:
        taken, self.due = self.due[:limit], self.due[limit:]
        self._doing[1].extend(a.seq for a in taken)
        return taken

    def record(self, outcomes: Sequence[Outcome]) -> None:
        self._doing[0].extend(o.attempt.seq for o in outcomes)


class CountingSender:
    """Answers 200, counting the requests it has in hand at once."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.sent: list[str] = []

    def send(self, url: str, headers: dict[str, str], body: bytes) -> Answer:
        with self.lock:
            self.sent.append(headers["webhook-id"])
        return Answer(200)


def run(outbox: FakeOutbox, sender: CountingSender) -> None:
    """The loop until every delivery is recorded (or a deadline)."""
    dispatcher = Dispatcher(outbox.transaction, sender, SETTINGS)
    thread = threading.Thread(target=dispatcher.run, args=(outbox.stop,))
    thread.start()
    outbox.stop.wait(20)
    outbox.stop.set()
    thread.join(20)
    assert not thread.is_alive()


def test_every_delivery_is_sent_once_and_recorded_with_the_next_claims() -> None:
    outbox = FakeOutbox([attempt(seq) for seq in range(1, 21)], 20, threading.Event())
    sender = CountingSender()
    run(outbox, sender)
    assert sorted(outbox.recorded) == list(range(1, 21))
    assert sorted(sender.sent) == sorted(f"event-{seq}" for seq in range(1, 21))
    assert all(len(claimed) <= 2 * SETTINGS.workers for _, claimed in outbox.transactions)
    # Once answers come back, they go in the same transaction as the next claims.
    assert any(recorded and claimed for recorded, claimed in outbox.transactions)


def test_answers_a_failed_commit_lost_are_recorded_by_the_next_one() -> None:
    outbox = FakeOutbox([attempt(seq) for seq in range(1, 4)], 3, threading.Event(),
                        failing_commits=1)
    sender = CountingSender()
    run(outbox, sender)
    assert outbox.failing_commits == 0  # a commit with answers in it did fail
    assert sorted(outbox.recorded) == [1, 2, 3]
    assert len(sender.sent) == 3  # nothing was sent twice
