"""Verified tokens are remembered until they expire, and only then."""

from __future__ import annotations

import time

import pytest

from shared.auth import InvalidToken, JwksCache, Principal, VerifiedTokens, static_jwks
from tests.tokens import TokenFactory


def test_a_verified_token_is_served_from_the_cache_until_it_expires() -> None:
    now = [1000.0]
    cache = VerifiedTokens(clock=lambda: now[0])
    principal = Principal(1, "ann", "member")
    cache.put("t", 1010.0, principal)
    assert cache.get("t") == principal
    now[0] = 1010.0
    assert cache.get("t") is None


def test_the_cache_keeps_only_the_most_recent_tokens() -> None:
    cache = VerifiedTokens(capacity=2)
    for name in ("a", "b", "c"):
        cache.put(name, time.time() + 60, Principal(1, name, "member"))
    assert cache.get("a") is None
    assert cache.get("c") is not None


def test_after_its_expiry_a_cached_token_is_checked_in_full_again() -> None:
    tokens = TokenFactory()
    verifier = tokens.verifier()
    token = tokens.token(exp=int(time.time()) + 60)
    assert verifier.verify(token).user_id == 1
    verifier.keys = JwksCache(static_jwks({"keys": []}))  # a full check now fails
    assert verifier.verify(token).user_id == 1  # still cached
    verifier.verified.clock = lambda: time.time() + 61
    with pytest.raises(InvalidToken):
        verifier.verify(token)


def test_a_bad_token_is_never_cached() -> None:
    tokens = TokenFactory()
    verifier = tokens.verifier()
    forged = TokenFactory().token()
    for _ in range(2):
        with pytest.raises(InvalidToken):
            verifier.verify(forged)
    assert verifier.verified.entries == {}
