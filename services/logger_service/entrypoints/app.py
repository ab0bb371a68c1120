"""The logger's HTTP process, the read API over the projections: `create_app`, gunicorn's
factory and the composition root."""

from __future__ import annotations

from typing import Any

from flask import Flask

from services.logger_service.adapters.cache import DatePageCache
from services.logger_service.adapters.partition_positions import PartitionedPosition
from services.logger_service.adapters.read_models import ProjectionReader
from services.logger_service.api import audit, current_tasks, tasks
from services.logger_service.api.deps import LoggerDeps
from services.logger_service.config import Settings, load_settings
from services.logger_service.service_layer.projection import PROJECTION_NAME
from shared.auth import jwks_verifier, use_verifier
from shared.config import GUNICORN_APP_LOAD_ERROR, exit_on_config_error
from shared.db import engine_for
from shared.health import register_health, storage_checks
from shared.http import create_api, init_http, provide
from shared.positions import AppliedPosition
from shared.redis_client import redis_client
from shared.settings import process_settings


@exit_on_config_error(GUNICORN_APP_LOAD_ERROR)  # gunicorn's entry point
def create_app(settings: Settings | None = None, **test_overrides: Any) -> Flask:
    """Build the app; `engine`, `redis` and `token_verifier` may be handed in by tests."""
    settings = settings or process_settings(load_settings, "logger")
    engine = test_overrides.get("engine") or engine_for(settings.database_url, settings.common)
    client = test_overrides.get("redis") or redis_client(settings.common.redis_url)
    app = Flask(__name__)
    init_http(app)
    use_verifier(app, test_overrides.get("token_verifier") or jwks_verifier(settings.common))
    reader = ProjectionReader(engine)
    cache = DatePageCache(client, settings.common.namespace, settings.cache_ttl_seconds,
                          reader.date_version)
    common = settings.common
    position = PartitionedPosition(engine, client, common.partitioning,
                                   common.partition_streams(), PROJECTION_NAME) \
        if common.partitioning.partitioned else reader.checkpoint
    applied = AppliedPosition(position, common.read_wait_seconds)
    provide(app, LoggerDeps(reader, cache, applied))
    api = create_api(app, "Taskstream logger", "TaskLogger and audit projections (read side).")
    for blueprint in (tasks.blp, current_tasks.blp, audit.blp):
        api.register_blueprint(blueprint)
    register_health(app, storage_checks(engine, client))
    return app
