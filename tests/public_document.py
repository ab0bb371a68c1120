"""The gateway's public OpenAPI document, merged from the services' own without any server."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import redis
from flask import Flask
from sqlalchemy import create_engine

from services.api_gateway.service_layer.openapi import merge_specs
from services.auth_service.entrypoints.app import create_app as auth_app
from services.logger_service.config import Settings as LoggerSettings
from services.logger_service.entrypoints.app import create_app as logger_app
from services.task_service.config import Settings as TaskSettings
from services.task_service.entrypoints.app import create_app as tasks_app
from services.webhooks_service.config import Settings as WebhookSettings
from services.webhooks_service.entrypoints.app import create_app as webhooks_app
from testbed.tokens import TokenFactory
from tests.unit.auth_service.fakes import (
    FakeUnitOfWork,
    common_settings,
    make_settings,
    static_keys,
)

UNREACHABLE_DATABASE = "postgresql+psycopg2://nobody@127.0.0.1:1/none"  # never connected to


def service_apps(data_dir: Path) -> dict[str, Flask]:
    """The four services' apps, on engines and clients that never connect."""
    common = common_settings()
    engine = create_engine(UNREACHABLE_DATABASE)
    client = redis.Redis.from_url(common.redis_url)
    verifier = TokenFactory().verifier()
    return {
        "auth": auth_app(make_settings(data_dir), uow=FakeUnitOfWork(), keys=static_keys()),
        "tasks": tasks_app(TaskSettings(common, UNREACHABLE_DATABASE), engine=engine,
                           token_verifier=verifier, redis_client=client),
        "logger": logger_app(LoggerSettings(common=common, database_url=UNREACHABLE_DATABASE),
                             engine=engine, redis=client, token_verifier=verifier),
        "webhooks": webhooks_app(WebhookSettings(common=common,
                                                 database_url=UNREACHABLE_DATABASE),
                                 engine=engine, redis=client, token_verifier=verifier),
    }


def public_document() -> dict[str, Any]:
    """What the gateway serves at `/openapi.json` when every service answers."""
    with tempfile.TemporaryDirectory() as data_dir:
        apps = service_apps(Path(data_dir))
        return merge_specs({name: app.test_client().get("/openapi.json").get_json()
                            for name, app in apps.items()})
