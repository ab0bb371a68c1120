"""Work a served process runs beside its requests: started by the server, never by create_app.

An app lists such work with `run_in_background(app, work)`; deploy/gunicorn.conf.py starts it
in each worker once the app is loaded (gunicorn's `post_worker_init`). Building an app (in a
test, a CLI command, a benchmark) starts nothing; a test starts the work itself if it needs it.
"""

from __future__ import annotations

from typing import Any, Protocol

from flask import Flask

EXTENSION = "background"


class Background(Protocol):
    """Something that runs in the background of a served process."""

    def start(self) -> None:
        """Start it (at most once); it must end with the process."""


def run_in_background(app: Flask, work: Background) -> None:
    """Have the server start `work` in each process that serves `app`."""
    app.extensions.setdefault(EXTENSION, []).append(work)


def background_of(app: Any) -> list[Background]:
    """The work `app` asked to run (none for anything that is not such an app)."""
    extensions = getattr(app, "extensions", None)
    return list(extensions.get(EXTENSION, [])) if isinstance(extensions, dict) else []


def start_background(app: Any) -> None:
    """Start the work of `app`; the server calls this in each worker."""
    for work in background_of(app):
        work.start()
