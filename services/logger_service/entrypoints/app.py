"""The logger's HTTP app: the read API over the projections (composition root)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import redis
from flask import Flask
from sqlalchemy import text
from sqlalchemy.engine import Engine

from services.logger_service.adapters.cache import DatePageCache
from services.logger_service.adapters.read_models import ProjectionReader
from services.logger_service.api import audit, tasks
from services.logger_service.config import Settings
from shared.auth import jwks_verifier
from shared.config import GUNICORN_APP_LOAD_ERROR, exit_on_config_error
from shared.db import engine_for
from shared.http import create_api, init_http, register_health
from shared.logs import configure_logging


@dataclass
class LoggerDependencies:
    """What the views reach through `current_app.extensions["logger"]`."""

    engine: Engine
    redis: redis.Redis
    reader: ProjectionReader
    cache: DatePageCache




@exit_on_config_error(GUNICORN_APP_LOAD_ERROR)  # gunicorn's entry point
def create_app(settings: Settings | None = None, **test_overrides: Any) -> Flask:
    """Build the app; `engine`, `redis` and `token_verifier` may be handed in by tests."""
    settings = settings or Settings.from_env()
    if not test_overrides:
        configure_logging("logger", settings.common.log_level, settings.common.log_format)
    engine = test_overrides.get("engine") or engine_for(settings.database_url, settings.common)
    client = test_overrides.get("redis") or redis.Redis.from_url(settings.common.redis_url)
    app = Flask(__name__)
    init_http(app)
    app.extensions["token_verifier"] = (
        test_overrides.get("token_verifier") or jwks_verifier(settings.common)
    )
    reader = ProjectionReader(engine)
    app.extensions["logger"] = LoggerDependencies(
        engine, client, reader,
        DatePageCache(client, settings.common.namespace, settings.cache_ttl_seconds,
                      reader.date_version),
    )
    api = create_api(app, "Taskstream logger", "TaskLogger and audit projections (read side).")
    api.register_blueprint(tasks.blp)
    api.register_blueprint(audit.blp)
    register_health(app, {
        "database": lambda: _ping_database(engine), "redis": lambda: _ping_redis(client),
    })
    return app


def _ping_database(engine: Engine) -> None:
    with engine.connect() as connection:
        connection.execute(text("SELECT 1"))


def _ping_redis(client: redis.Redis) -> None:
    client.ping()
