"""Standard Webhooks signatures: `whsec_` secrets and the `webhook-*` headers of a delivery.

The signed content is `<webhook-id>.<webhook-timestamp>.<body>`, signed with HMAC-SHA256 under
the secret's base64-decoded key; `webhook-signature` holds one `v1,<base64>` per secret in
use, space-separated, so that during a rotation the old and the new secret both verify.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections.abc import Iterable

SECRET_PREFIX = "whsec_"
SECRET_BYTES = 32
CONTENT_TYPE = "application/json"
USER_AGENT = "Taskstream-Webhooks/1.0"


def new_secret() -> str:
    """A new signing secret: `whsec_` and 32 random bytes in base64."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def sign(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    """One `v1,<base64 HMAC-SHA256>` signature of a message under a `whsec_` secret."""
    key = base64.b64decode(secret.removeprefix(SECRET_PREFIX))
    signed = f"{message_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


def signed_headers(secrets_in_use: Iterable[str], message_id: str, timestamp: int,
                   body: bytes) -> dict[str, str]:
    """The headers of one delivery: its id, the time it is sent and a signature per secret."""
    signatures = " ".join(sign(secret, message_id, timestamp, body) for secret in secrets_in_use)
    return {
        "Content-Type": CONTENT_TYPE,
        "User-Agent": USER_AGENT,
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signatures,
    }
