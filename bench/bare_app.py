"""The ceilings: a bare Flask JSON endpoint, and a bare Flask hop in front of it (or of the
logger service).

Both run under the services' gunicorn settings. The hop forwards with the gateway's own
`Upstream` and does nothing else (no token, no rate limit, no hooks): it is what two
Flask hops cost on this machine before the gateway does any work of its own.
"""

import os

from flask import Flask, Response, jsonify, request

from services.api_gateway.adapters.upstreams import Upstream


def create_app() -> Flask:
    """One route answering a small JSON array."""
    app = Flask(__name__)

    @app.get("/tasks")
    def tasks():  # type: ignore[no-untyped-def]
        return jsonify([{"id": 1, "task_id": 1, "title": "bare", "status": "active"}])

    return app


def create_hop() -> Flask:
    """One route forwarding `GET /tasks` (its path, query and Authorization header) to
    BARE_UPSTREAM_URL and passing the reply back: in front of the bare endpoint, or of the
    logger service (the gateway's own upstream); and `POST /task` (with its body), in front
    of the bare writer (bench.bare_writer)."""
    app = Flask(__name__)
    upstream = Upstream("bare", os.environ["BARE_UPSTREAM_URL"], connect_timeout=2,
                        read_timeout=30, retries=0)

    @app.get("/tasks")
    def tasks():  # type: ignore[no-untyped-def]
        token = request.headers.get("Authorization")
        reply = upstream.forward("GET", "/tasks", query=request.query_string,
                                 headers={"Authorization": token} if token else {}, body=None)
        return Response(reply.body, status=reply.status, headers=reply.headers)

    @app.post("/task")
    def task():  # type: ignore[no-untyped-def]
        reply = upstream.forward("POST", "/task", query=b"", body=request.get_data(),
                                 headers={"Content-Type": request.content_type or ""})
        return Response(reply.body, status=reply.status, headers=reply.headers)

    return app
