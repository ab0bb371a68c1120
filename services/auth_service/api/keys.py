"""`/.well-known/jwks.json`: the public keys that verify access tokens."""

from __future__ import annotations

from typing import Any

from services.auth_service.api.deps import deps
from services.auth_service.api.schemas import JwksSchema
from shared.http import Blueprint

blp = Blueprint("jwks", __name__, description="Public signing keys.")


@blp.route("/.well-known/jwks.json", methods=["GET"])
@blp.response(200, JwksSchema)
def jwks() -> dict[str, Any]:
    """The public keys (JWKS) that verify access tokens, by `kid`."""
    return deps().keys.current().jwks()
