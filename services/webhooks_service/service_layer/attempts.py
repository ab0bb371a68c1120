"""One attempt at a delivery: what is sent, what came back, and what happens next.

The decision is made here, from the answer and the retry policy: delivered (a 2xx), tried
again later (exponential backoff with jitter), or given up once the first attempt is older
than the retry window, which pauses the subscription with the reason.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Callable
from dataclasses import dataclass

from services.webhooks_service.config import RetryPolicy
from services.webhooks_service.service_layer.signing import signed_headers

DELIVERED, PENDING, FAILED = "delivered", "pending", "failed"


@dataclass(frozen=True)
class Attempt:
    """A claimed delivery: the head of its queue, leased to this process."""

    delivery_id: int
    subscription_id: int
    task_key: int
    lease: str
    attempts: int  # attempts before this one
    first_attempt_at: dt.datetime | None
    claimed_at: dt.datetime  # the database's clock
    seq: int
    event_id: str
    occurred_at: dt.datetime
    payload: str
    url: str
    secrets: tuple[str, ...]  # every secret that signs now

    def headers(self, timestamp: int) -> dict[str, str]:
        """The Standard Webhooks headers of this attempt, sent at `timestamp`."""
        return signed_headers(self.secrets, self.event_id, timestamp, self.payload.encode())


@dataclass(frozen=True)
class Answer:
    """What a receiver answered: its status (None when there was no answer) or the error."""

    status: int | None
    error: str | None = None

    @property
    def delivered(self) -> bool:
        """A 2xx answer."""
        return self.status is not None and 200 <= self.status < 300

    def problem(self) -> str | None:
        """Why the attempt failed, in one line (None when it was delivered)."""
        if self.delivered:
            return None
        return self.error or f"HTTP {self.status}"


@dataclass(frozen=True)
class Outcome:
    """What to record of an attempt: the delivery's new status and the queue's next step."""

    attempt: Attempt
    answer: Answer
    status: str
    retry_in: float = 0.0  # seconds until the queue's next attempt
    pause_reason: str | None = None

    @property
    def finished(self) -> bool:
        """The delivery leaves its queue (delivered or given up)."""
        return self.status != PENDING


def backoff_seconds(attempts: int, policy: RetryPolicy, draw: Callable[[], float]) -> float:
    """The delay after the `attempts`-th failure: doubling from the base, capped, jittered
    to 50-100 % of its step so that many failing deliveries do not retry in step."""
    step = min(policy.max_delay_seconds, policy.base_seconds * 2 ** min(attempts - 1, 30))
    return step * (0.5 + 0.5 * draw())


def decide(attempt: Attempt, answer: Answer, policy: RetryPolicy,
           draw: Callable[[], float] = random.random) -> Outcome:
    """Delivered, tried again after a backoff, or given up after the retry window."""
    if answer.delivered:
        return Outcome(attempt, answer, DELIVERED)
    tries = attempt.attempts + 1
    started = attempt.first_attempt_at or attempt.claimed_at
    elapsed = (attempt.claimed_at - started).total_seconds()
    if elapsed < policy.window_seconds:
        return Outcome(attempt, answer, PENDING, backoff_seconds(tries, policy, draw))
    reason = (f"delivery {attempt.delivery_id} (event {attempt.seq}) failed {tries} times "
              f"over {elapsed:.0f} s; last: {answer.problem()}")
    return Outcome(attempt, answer, FAILED, pause_reason=reason)
