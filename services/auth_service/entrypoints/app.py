"""The auth service's HTTP process: `create_app`, gunicorn's factory and the composition root."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from functools import partial
from typing import Any

from flask import Flask
from sqlalchemy.engine import Engine
from sqlalchemy.orm import sessionmaker

from services.auth_service.adapters.keys import (
    DirectoryKeySource,
    KeySource,
    StaticKeySource,
    keys_from_json,
)
from services.auth_service.adapters.passwords import Argon2Passwords
from services.auth_service.adapters.tokens import AccessTokenIssuer
from services.auth_service.api import keys as keys_api
from services.auth_service.api import sessions as sessions_api
from services.auth_service.api import users as users_api
from services.auth_service.api.deps import AuthDeps
from services.auth_service.api.errors import register_error_mapping
from services.auth_service.config import Settings, load_settings
from services.auth_service.service_layer.republisher import MarkRepublisher
from services.auth_service.service_layer.sessions import TokenPolicy
from services.auth_service.service_layer.unit_of_work import SqlAlchemyUnitOfWork, UnitOfWork
from shared.auth import TokenVerifier, use_verifier
from shared.background import run_in_background
from shared.config import GUNICORN_APP_LOAD_ERROR, exit_on_config_error
from shared.db import engine_for, ping_database
from shared.health import ReadinessCheck, register_health
from shared.http import create_api, init_http, provide
from shared.jwks import JwksCache
from shared.revocation import MarkSource, RedisRevocations, RevocationList, redis_revocations
from shared.settings import process_settings

DESCRIPTION = (
    "Users, roles and sessions. Issues short-lived EdDSA access tokens (verified by every "
    "service against `/.well-known/jwks.json`) and rotating refresh tokens."
)


@exit_on_config_error(GUNICORN_APP_LOAD_ERROR)  # gunicorn's entry point
def create_app(settings: Settings | None = None, **test_overrides: Any) -> Flask:
    """Build the auth service.

    Tests may override `engine`, `keys`, `passwords`, `uow` and `revocations`. The revocation
    mark republisher is started by the server (`shared.background`), not here.
    """
    settings = settings or process_settings(load_settings, "auth")
    app = Flask(__name__)
    api = create_api(app, "Taskstream auth service", DESCRIPTION)
    init_http(app)  # after flask-smorest, so that our JSON error handlers win over its own
    keys: KeySource = test_overrides.get("keys") or load_keys(settings)
    checks: dict[str, ReadinessCheck] = {}
    uow = test_overrides.get("uow") or _units_of_work(settings, test_overrides, checks)
    revocations = test_overrides.get("revocations") or _revocations(settings, checks)
    provide(app, AuthDeps(
        uow=uow,
        passwords=test_overrides.get("passwords") or Argon2Passwords(),
        tokens=token_policy(settings, keys),
        keys=keys,
        revoker=revocations,
        allow_registration=settings.allow_registration,
    ))
    use_verifier(app, own_verifier(settings, keys, revocations))
    run_in_background(app, MarkRepublisher(uow, revocations,
                                           settings.common.tokens.max_lifetime))
    register_error_mapping(app)
    for module in (sessions_api, users_api, keys_api):
        api.register_blueprint(module.blp)
    register_health(app, checks)
    return app


def load_keys(settings: Settings) -> KeySource:
    """Signing keys from `JWT_PRIVATE_KEYS`, else from the key directory."""
    if settings.private_keys_json:
        return StaticKeySource(keys_from_json(settings.private_keys_json, settings.signing_kid))
    return DirectoryKeySource(settings.key_dir, generate_if_empty=settings.generate_keys)


def token_policy(settings: Settings, keys: KeySource) -> TokenPolicy:
    """How access and refresh tokens are made."""
    common = settings.common
    issuer = AccessTokenIssuer(keys, common.jwt_issuer, common.jwt_audience,
                               settings.access_token_ttl)
    return TokenPolicy(issuer, timedelta(seconds=settings.refresh_token_ttl))


def own_verifier(settings: Settings, keys: KeySource, revocations: MarkSource) -> TokenVerifier:
    """The shared verifier, fed from our own key set instead of over HTTP."""
    tokens = settings.common.tokens
    cache = JwksCache(lambda: keys.current().jwks(), min_refresh_seconds=0,
                      max_age_seconds=tokens.jwks_max_age_seconds)
    common = settings.common
    marks = RevocationList(revocations) if tokens.revocation_check else None
    return TokenVerifier(cache, common.jwt_issuer, common.jwt_audience, "EdDSA", rules=tokens,
                         revocations=marks)


def _revocations(settings: Settings, checks: dict[str, ReadinessCheck]) -> RedisRevocations:
    """The revocation marks in Redis; Redis joins the readiness checks."""
    revocations = redis_revocations(settings.common)
    checks["redis"] = revocations.client.ping
    return revocations


def _units_of_work(settings: Settings, overrides: dict[str, Any],
                   checks: dict[str, ReadinessCheck]) -> Callable[[], UnitOfWork]:
    """Units of work over the database (a test's `engine`, else the pool); the database joins
    the readiness checks."""
    engine: Engine = overrides.get("engine") or engine_for(settings.database_url, settings.common)
    checks["database"] = partial(ping_database, engine)
    session_factory = sessionmaker(engine, expire_on_commit=False)
    return lambda: SqlAlchemyUnitOfWork(session_factory)
