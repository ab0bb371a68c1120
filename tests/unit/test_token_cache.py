"""Verified tokens are remembered until they expire, and only then."""

from __future__ import annotations

import time

import pytest

from shared.auth import InvalidToken, Principal, VerifiedToken, VerifiedTokens
from testbed.tokens import TokenFactory


def remembered(name: str, expires_at: float) -> VerifiedToken:
    """A cache entry for a member called `name`."""
    return VerifiedToken(Principal(1, name, "member"), "kid", expires_at)


def test_a_verified_token_is_served_from_the_cache_until_it_expires() -> None:
    now = [1000.0]
    cache = VerifiedTokens(clock=lambda: now[0])
    entry = remembered("ann", 1010.0)
    cache.put("t", entry)
    assert cache.get("t") == entry
    now[0] = 1010.0
    assert cache.get("t") is None


def test_the_cache_keeps_only_the_most_recent_tokens() -> None:
    cache = VerifiedTokens(capacity=2)
    for name in ("a", "b", "c"):
        cache.put(name, remembered(name, time.time() + 60))
    assert cache.get("a") is None
    assert cache.get("c") is not None


def test_after_its_expiry_a_cached_token_is_checked_in_full_again() -> None:
    tokens = TokenFactory()
    verifier = tokens.verifier()
    token = tokens.token(exp=int(time.time()) + 60)
    assert verifier.verify(token).user_id == 1
    verifier.algorithm = "RS256"  # a full check now fails
    assert verifier.verify(token).user_id == 1  # still cached
    leeway = verifier.rules.leeway_seconds
    verifier.verified.clock = lambda: time.time() + 61 + leeway
    with pytest.raises(InvalidToken):
        verifier.verify(token)


def test_a_cached_token_stays_until_its_expiry_plus_the_leeway() -> None:
    tokens = TokenFactory()
    verifier = tokens.verifier()
    expiry = int(time.time()) + 60
    verifier.verify(tokens.token(exp=expiry))
    [entry] = verifier.verified.entries.values()
    assert entry.expires_at == expiry + verifier.rules.leeway_seconds


def test_a_bad_token_is_never_cached() -> None:
    tokens = TokenFactory()
    verifier = tokens.verifier()
    forged = TokenFactory().token()
    for _ in range(2):
        with pytest.raises(InvalidToken):
            verifier.verify(forged)
    assert verifier.verified.entries == {}
