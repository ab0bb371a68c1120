"""The webhooks service's HTTP process, the subscriptions API: `create_app`, gunicorn's factory
and the composition root."""

from __future__ import annotations

from typing import Any

from flask import Flask

from services.webhooks_service.adapters.subscriptions import sql_transaction
from services.webhooks_service.api import webhooks
from services.webhooks_service.api.deps import WebhookDeps
from services.webhooks_service.api.errors import register_domain_errors
from services.webhooks_service.config import Settings, load_settings
from services.webhooks_service.service_layer.subscriptions import TargetRules
from shared.auth import jwks_verifier, use_verifier
from shared.config import GUNICORN_APP_LOAD_ERROR, exit_on_config_error
from shared.db import engine_for
from shared.health import register_health, storage_checks
from shared.http import create_api, init_http, provide
from shared.redis_client import redis_client
from shared.settings import process_settings

DESCRIPTION = ("Webhook subscriptions of Taskstream: the `webhooks` process delivers the "
               "event log to them, signed (Standard Webhooks), in order per task, retried.")


@exit_on_config_error(GUNICORN_APP_LOAD_ERROR)  # gunicorn's entry point
def create_app(settings: Settings | None = None, **test_overrides: Any) -> Flask:
    """Build the app; tests may pass `engine`, `redis` or `token_verifier`."""
    settings = settings or process_settings(load_settings, "webhooks-api")
    app = Flask(__name__)
    api = create_api(app, "Taskstream webhooks", DESCRIPTION)
    init_http(app)
    engine = test_overrides.get("engine") or engine_for(settings.database_url, settings.common)
    client = test_overrides.get("redis") or redis_client(settings.common.redis_url)
    use_verifier(app, test_overrides.get("token_verifier") or jwks_verifier(settings.common))
    sender = settings.delivery.sender
    provide(app, WebhookDeps(sql_transaction(engine),
                             TargetRules(sender.https_only, sender.allow_private),
                             settings.secret_grace_seconds))
    api.register_blueprint(webhooks.blp)
    register_domain_errors(app)
    register_health(app, storage_checks(engine, client))
    return app
