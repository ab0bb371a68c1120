"""The headers of the HTTP API besides the body, as its OpenAPI documents describe them.

Each is an OpenAPI component: services refer to one by name (`blp.request_headers("If-Match")`,
`@blp.response(..., headers=response_headers("ETag"))`), and the gateway adds the ones every
response carries.
"""

from __future__ import annotations

from typing import Any

REQUEST_HEADERS: dict[str, dict[str, Any]] = {
    "If-Match": {
        "in": "header", "name": "If-Match", "schema": {"type": "string"}, "example": '"3"',
        "description": "The task's `ETag`: the change is refused (412) if the task has "
                       "changed since (`*` or absent: no check)",
    },
    "If-None-Match": {
        "in": "header", "name": "If-None-Match", "schema": {"type": "string"}, "example": '"3"',
        "description": "The `ETag` you already hold: if the task is still at that version the "
                       "answer is `304 Not Modified`, without a body",
    },
    "Idempotency-Key": {
        "in": "header", "name": "Idempotency-Key", "example": "0b7c7e1c-import-2025-04-05",
        "schema": {"type": "string", "minLength": 1, "maxLength": 255},
        "description": "Makes a retry safe: the same key with the same body replays the first "
                       "answer (kept for `IDEMPOTENCY_TTL_HOURS`); with another body it is a 422",
    },
    "X-Request-ID": {
        "in": "header", "name": "X-Request-ID", "example": "checkout-7f3a",
        "schema": {"type": "string", "pattern": "^[A-Za-z0-9._:-]{1,128}$"},
        "description": "Your id for the request, echoed back and logged (one is generated "
                       "when absent or not of this form)",
    },
}

RESPONSE_HEADERS: dict[str, dict[str, Any]] = {
    "X-Request-ID": {
        "description": "The request's id: yours, or a generated one", "required": True,
        "schema": {"type": "string"}, "example": "checkout-7f3a",
    },
    "ETag": {
        "description": "The task's version, quoted: send it back as `If-Match`",
        "required": True, "schema": {"type": "string"}, "example": '"3"',
    },
    "Location": {
        "description": "Where the created resource can be found", "required": True,
        "schema": {"type": "string"}, "example": "/task/42",
    },
    "X-Event-Seq": {
        "description": "The position in the event log of the command's last event: pass it "
                       "as `min_seq` to a read to see this change. Absent when a CSV import "
                       "was numbering its events at that moment (the change is committed, "
                       "and numbered when the import ends; a command never waits for one)",
        "required": False,
        "schema": {"type": "integer", "minimum": 0}, "example": 1042,
    },
    "X-Total-Count": {
        "description": "Entries in all pages", "required": True,
        "schema": {"type": "integer", "minimum": 0}, "example": 57,
    },
    "Link": {
        "description": "RFC 8288 links to the `first`, `prev`, `next` and `last` pages",
        "required": True, "schema": {"type": "string"},
        "example": '</tasks?page=1&per_page=20>; rel="first", '
                   '</tasks?page=2&per_page=20>; rel="next", </tasks?page=3&per_page=20>; '
                   'rel="last"',
    },
    "X-Cache": {
        "description": "Whether the day's page came from the cache (only with `date`)",
        "schema": {"type": "string", "enum": ["HIT", "MISS"]}, "example": "HIT",
    },
    "Retry-After": {
        "description": "Seconds to wait before trying again",
        "schema": {"type": "integer", "minimum": 0}, "example": 1,
    },
}


def response_headers(*names: str) -> dict[str, str]:
    """The named response headers, as references for `@blp.response(headers=...)`."""
    unknown = [name for name in names if name not in RESPONSE_HEADERS]
    if unknown:
        raise KeyError(f"undocumented response headers: {unknown}")
    return {name: name for name in names}
