"""gunicorn settings shared by every HTTP service (Procfile and containers alike)."""

import os
import tempfile

import gunicorn.http.wsgi

# Every worker writes its metrics here; /metrics aggregates them (see shared/metrics.py).
os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", tempfile.mkdtemp(prefix="taskstream-metrics-"))

# No server banner: gunicorn writes `Server: <version>` from this module-level name.
gunicorn.http.wsgi.SERVER = "taskstream"

workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
threads = int(os.environ.get("WEB_THREADS", "4"))
worker_class = "gthread"
timeout = int(os.environ.get("WEB_TIMEOUT", "30"))
graceful_timeout = int(os.environ.get("WEB_GRACEFUL_TIMEOUT", "20"))
keepalive = 5
accesslog = None
errorlog = "-"
loglevel = os.environ.get("LOG_LEVEL", "info").lower()
# gunicorn >= 25's control socket (for `gunicornc`) defaults to one path per user, so the
# four masters of `make run` would take it from each other; we stop and reload by signals.
control_socket_disable = True


def post_worker_init(worker):  # type: ignore[no-untyped-def]
    """Start what the app runs beside its requests (shared/background.py), in each worker once
    it has loaded the app: the auth service's revocation-mark republisher."""
    from shared.background import start_background

    start_background(worker.wsgi)


def child_exit(_server, worker):  # type: ignore[no-untyped-def]
    """Forget the metrics of a worker that has exited."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)
