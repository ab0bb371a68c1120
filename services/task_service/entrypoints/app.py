"""The task service's HTTP process: `create_app`, gunicorn's factory and the composition root."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from flask import Flask

from services.task_service.adapters.stored_events import StoredEvents
from services.task_service.adapters.task_history import TaskHistory
from services.task_service.api import admin, imports, reads, tasks
from services.task_service.api.deps import TaskDeps
from services.task_service.api.errors import register_domain_errors
from services.task_service.config import Settings, load_settings
from services.task_service.service_layer.feed import WaitSlots
from services.task_service.service_layer.unit_of_work import UnitOfWork
from shared.auth import jwks_verifier, use_verifier
from shared.config import GUNICORN_APP_LOAD_ERROR, exit_on_config_error
from shared.db import engine_for
from shared.health import register_health, storage_checks
from shared.http import create_api, init_http, provide
from shared.positions import AppliedPosition
from shared.redis_client import redis_client
from shared.settings import process_settings

DESCRIPTION = (
    "Task commands of Taskstream. Every change is stored with its event in one transaction; "
    "the relay publishes the events to the Redis stream."
)


@exit_on_config_error(GUNICORN_APP_LOAD_ERROR)  # gunicorn's entry point
def create_app(settings: Settings | None = None, **test_overrides: Any) -> Flask:
    """Build the app; tests may pass `engine`, `token_verifier` or `redis_client`."""
    settings = settings or process_settings(load_settings, "tasks")
    app = Flask(__name__)
    api = create_api(app, "Taskstream tasks", DESCRIPTION)
    init_http(app)  # after flask-smorest, so that the JSON error handlers win over its own
    engine = test_overrides.get("engine") or engine_for(settings.database_url, settings.common)
    client = test_overrides.get("redis_client") or redis_client(settings.common.redis_url)
    ttl = timedelta(hours=settings.idempotency_ttl_hours)
    log = StoredEvents(engine)
    provide(app, TaskDeps(lambda: UnitOfWork(engine, ttl), settings, log, TaskHistory(engine),
                          AppliedPosition(log.head, settings.common.read_wait_seconds,
                                          holds=log.holds),
                          WaitSlots(settings.feed_max_waiting)))
    use_verifier(app, test_overrides.get("token_verifier") or jwks_verifier(settings.common))
    for blueprint in (tasks.blp, imports.blp, admin.blp, reads.blp):
        api.register_blueprint(blueprint)
    register_domain_errors(app)
    register_health(app, storage_checks(engine, client))
    return app
