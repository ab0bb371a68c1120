"""A real HTTP server on a thread, standing in for a service behind the gateway."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from flask import Flask, Response, jsonify, request
from werkzeug.serving import make_server


def echo_app(jwks: dict | None = None) -> Flask:
    """Answer with what was received, plus the headers the gateway must pass back."""
    app = Flask("stub-upstream")
    app.config["DELAY"] = 0.0

    @app.route("/.well-known/jwks.json")
    def keys() -> Response:
        return jsonify(jwks or {"keys": []})

    @app.route("/<path:path>", methods=["GET", "POST", "PUT", "DELETE", "PATCH"])
    def echo(path: str) -> Response:
        time.sleep(app.config["DELAY"])  # simulates a slow service on purpose
        response = jsonify({
            "path": f"/{path}", "method": request.method, "query": request.query_string.decode(),
            "body": request.get_data(as_text=True),
            "headers": {k: v for k, v in request.headers.items()},
            "served_by": app.config.get("NAME"),
        })
        response.status_code = 201 if request.method == "POST" else 200
        response.headers["Location"] = "/task/7"
        response.headers["ETag"] = '"3"'
        response.headers["X-Total-Count"] = "42"
        response.headers["Link"] = '</tasks?page=2>; rel="next"'
        return response

    @app.route("/readyz")
    def readyz() -> Response:
        return jsonify({"status": "ready", "checks": {}})

    @app.route("/openapi.json")
    def openapi() -> Response:
        return jsonify({"paths": {}, "components": {"schemas": {}}})

    return app


@contextmanager
def serve(app: Flask) -> Iterator[str]:
    """Serve `app` on a free local port; yield its base URL."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(5)
