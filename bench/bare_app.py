"""The ceiling: a bare Flask JSON endpoint under the services' gunicorn settings."""

from flask import Flask, jsonify


def create_app() -> Flask:
    """One route answering a small JSON array."""
    app = Flask(__name__)

    @app.get("/tasks")
    def tasks():  # type: ignore[no-untyped-def]
        return jsonify([{"id": 1, "task_id": 1, "title": "bare", "status": "active"}])

    return app
