"""Safe retries: the first response to an `Idempotency-Key` is stored with its effect."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol, TypeVar, cast

from services.task_service.adapters.event_store import Written
from services.task_service.adapters.repository import StoredResponse
from services.task_service.domain.model import IdempotencyKeyReused
from services.task_service.service_layer.unit_of_work import Committed, UnitOfWork

Body = TypeVar("Body", bound=dict[str, Any])


class KeyStore(Protocol):
    """What the service layer needs from the idempotency repository."""

    def claim(self, user_id: int, key: str, fingerprint: str, now: datetime
              ) -> StoredResponse | None:
        """Claim the key or return its stored response."""

    def record(self, user_id: int, key: str, status_code: int, body: dict[str, Any],
               written: Written) -> None:
        """Store the response of a claimed key and where its last event is."""


@dataclass(frozen=True)
class IdempotentRequest:
    """A request that carried an `Idempotency-Key`."""

    user_id: int
    key: str
    fingerprint: str


def fingerprint_of(payload: Any) -> str:
    """A stable digest of a request body (JSON-able values, bytes, or a received upload: a
    seekable stream, read whole and left at its start)."""
    if hasattr(payload, "read"):
        digest = hashlib.file_digest(payload, "sha256").hexdigest()
        payload.seek(0)
        return digest
    raw = payload if isinstance(payload, bytes) else json.dumps(
        payload, sort_keys=True, default=str, separators=(",", ":")).encode()
    return hashlib.sha256(raw).hexdigest()


def replay_or_claim(store: KeyStore, request: IdempotentRequest | None, now: datetime
                    ) -> StoredResponse | None:
    """The stored response of a repeated request, or None after claiming a new key."""
    if request is None:
        return None
    stored = store.claim(request.user_id, request.key, request.fingerprint, now)
    if stored is None:
        return None
    if stored.fingerprint != request.fingerprint:
        raise IdempotencyKeyReused(request.key)
    return stored


def remember(store: KeyStore, request: IdempotentRequest | None, status: int,
             body: dict[str, Any], written: Written) -> None:
    """Store the response of a claimed key (no-op without a key)."""
    if request is not None:
        store.record(request.user_id, request.key, status, body, written)


def once_per_key(uow: UnitOfWork, request: IdempotentRequest | None, status: int, now: datetime,
                 work: Callable[[], Body]) -> Committed[Body]:
    """In one transaction: the stored response of a repeated request, else what `work` does
    and returns, its response remembered with its effect; with the position of its events."""
    with uow:
        replay = replay_or_claim(uow.idempotency, request, now)
        if replay is not None:  # a response stored before positions: the head is past it
            return Committed(cast(Body, replay.body), uow.position(replay.written))
        body = work()
        remember(uow.idempotency, request, status, body, uow.events.written)
        uow.commit()
        return Committed(body, uow.position(uow.events.written))
