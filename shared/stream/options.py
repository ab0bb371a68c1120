"""How a consumer reads, retries and gives up (`ConsumerOptions`), and its default name."""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass, replace


def default_consumer_name() -> str:
    """A consumer name unique to this process: `<host>-<pid>`."""
    return f"{socket.gethostname()}-{os.getpid()}"


@dataclass(frozen=True)
class ConsumerOptions:
    """How a consumer reads, retries and gives up."""

    group: str
    consumer: str
    batch_size: int = 5000  # the projector's measured best (docs/benchmarks.md)
    block_ms: int = 1000
    claim_idle_ms: int = 30_000
    claim_interval_seconds: float = 5.0
    max_deliveries: int = 5
    lock_poll_seconds: float = 1.0
    retry_delay_seconds: float = 0.5
    prefetch: bool = True
    # A pass that handled less than a batch is followed by the next no sooner than this:
    # under a steady trickle each batch (one transaction) carries several events, not one.
    linger_ms: int = 10

    @property
    def longest_wait_seconds(self) -> float:
        """The longest a consumer's loop waits in one call: a blocking read or a lock poll."""
        return max(self.block_ms / 1000, self.lock_poll_seconds)

    def named(self) -> ConsumerOptions:
        """These options, naming this process as the consumer unless one was configured."""
        return self if self.consumer else replace(self, consumer=default_consumer_name())
