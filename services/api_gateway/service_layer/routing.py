"""Which upstream serves which public route, and who may call it without a token."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

FEED_MAX_WAIT = 30.0  # the task service's longest `GET /events?wait=`


@dataclass(frozen=True)
class Route:
    """A public route and the service that owns it."""

    rule: str
    methods: tuple[str, ...]
    upstream: str
    public: bool = False  # callable without an access token
    login: bool = False  # subject to the stricter login limit
    password: bool = False  # checks a password: failed attempts count against the username
    upload: bool = False  # large bodies, long timeout
    waits: float = 0.0  # seconds the service may hold the answer back (a long poll)
    # The service honours `Idempotency-Key` here: a request carrying one may be sent again.
    keyed: bool = False
    # (query parameter, upstream): a request naming that parameter goes to that upstream
    by_query: tuple[tuple[str, str], ...] = ()

    def upstream_for(self, query_names: Iterable[str]) -> str:
        """The upstream serving a request with these query parameters."""
        names = set(query_names)
        return next((upstream for name, upstream in self.by_query if name in names),
                    self.upstream)


ROUTES: tuple[Route, ...] = (
    Route("/auth/login", ("POST",), "auth", public=True, login=True, password=True),
    Route("/auth/register", ("POST",), "auth", public=True, login=True),
    Route("/auth/refresh", ("POST",), "auth", public=True),
    Route("/auth/logout", ("POST",), "auth", public=True),
    Route("/auth/me", ("GET",), "auth"),
    Route("/auth/users", ("GET", "POST"), "auth"),
    Route("/auth/users/<id:user_id>", ("PATCH",), "auth"),
    Route("/.well-known/jwks.json", ("GET",), "auth", public=True),
    Route("/task", ("POST",), "tasks", keyed=True),
    Route("/task/<id:task_id>", ("PUT", "DELETE"), "tasks"),
    Route("/upload-csv", ("POST",), "tasks", upload=True, keyed=True),
    Route("/admin/transfer", ("POST",), "tasks"),
    Route("/tasks", ("GET",), "logger"),
    Route("/tasks/current", ("GET",), "logger"),
    # As it is now from the read side; as it was (`as_of`) folded from the event store.
    Route("/tasks/current/<id:task_id>", ("GET",), "logger", by_query=(("as_of", "tasks"),)),
    Route("/tasks/current/<id:task_id>/history", ("GET",), "tasks"),
    Route("/events", ("GET",), "tasks", waits=FEED_MAX_WAIT),
    Route("/task/<id:task_id>", ("GET",), "logger"),
    Route("/audit", ("GET",), "logger"),
    Route("/webhooks", ("GET", "POST"), "webhooks"),
    Route("/webhooks/<id:webhook_id>", ("GET", "PATCH", "DELETE"), "webhooks"),
    Route("/webhooks/<id:webhook_id>/rotate-secret", ("POST",), "webhooks"),
    Route("/webhooks/<id:webhook_id>/deliveries", ("GET",), "webhooks"),
    Route("/webhooks/<id:webhook_id>/deliveries/<id:delivery_id>/resend", ("POST",),
          "webhooks"),
    Route("/webhooks/<id:webhook_id>/replay", ("POST",), "webhooks"),
)


def openapi_path(rule: str) -> str:
    """Turn a Flask rule (`/task/<id:task_id>`) into an OpenAPI path (`/task/{task_id}`)."""
    parts = []
    for part in rule.split("/"):
        if part.startswith("<") and part.endswith(">"):
            part = "{" + part[1:-1].split(":")[-1] + "}"
        parts.append(part)
    return "/".join(parts)


def public_operations() -> set[tuple[str, str]]:
    """(OpenAPI path, lower-case method) of every forwarded operation."""
    return {(openapi_path(r.rule), m.lower()) for r in ROUTES for m in r.methods}

