"""gunicorn settings shared by every HTTP service (Procfile and containers alike)."""

import os

import gunicorn.http.wsgi

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
