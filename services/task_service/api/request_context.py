"""What a task view reads from its request besides the body: the caller and the context its
events carry, `If-Match` and `Idempotency-Key`; and the headers a command's answer carries."""

from __future__ import annotations

from typing import Any

from flask import g, request

from services.task_service.domain.model import Context
from services.task_service.service_layer.idempotency import IdempotentRequest, fingerprint_of
from services.task_service.service_layer.unit_of_work import Committed
from shared.auth import TASK_WRITE_FORBIDDEN, Principal, authenticate
from shared.errors import ApiError
from shared.etags import etag
from shared.events import Actor
from shared.http import IDEMPOTENCY_KEY_HEADER, current_request_id
from shared.positions import position_headers

NO_VERSION = -1  # an If-Match that names no version we could ever have


def caller() -> Principal:
    """The authenticated caller (the view is already guarded by `requires`)."""
    return authenticate()


def command_context() -> Context:
    """The actor and correlation id that go into the events' metadata."""
    principal = caller()
    actor = Actor(principal.user_id, principal.username, principal.role)
    return Context(actor, current_request_id() or getattr(g, "request_id", None))


def require_permission(permission: str) -> None:
    """Refuse a task write the caller's role does not allow (for permissions chosen at runtime)."""
    if not caller().can(permission):
        raise ApiError(403, TASK_WRITE_FORBIDDEN)


def expected_version() -> int | None:
    """The version named by `If-Match` (`"3"`, `W/"3"`, `3`); None when absent or `*`."""
    raw = request.headers.get("If-Match", "").strip()
    if not raw or raw == "*":
        return None
    tag = raw.split(",")[0].strip().removeprefix("W/").strip('"')
    # ASCII digits only, and few enough to be a version: int() refuses "²" and 5,000 digits
    return int(tag) if tag.isascii() and tag.isdigit() and len(tag) <= 18 else NO_VERSION


def idempotent_request(payload: Any) -> IdempotentRequest | None:
    """The request's `Idempotency-Key`, bound to the caller and the digest of `payload`, the
    body (digested only when a key is given)."""
    key = request.headers.get(IDEMPOTENCY_KEY_HEADER, "").strip()
    if not key:
        return None
    if len(key) > 255:
        raise ApiError(400, "Idempotency-Key must be at most 255 characters")
    return IdempotentRequest(caller().user_id, key, fingerprint_of(payload))


def task_headers(done: Committed[dict[str, Any]], created: bool = False) -> dict[str, str]:
    """`ETag` and `X-Event-Seq` (and `Location` for a new task)."""
    headers = {"ETag": etag(done.body["version"]), **position_headers(done.position)}
    if created:
        headers["Location"] = f"/task/{done.body['id']}"
    return headers
