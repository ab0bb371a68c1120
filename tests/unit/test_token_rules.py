"""Clock-skew leeway, the longest a token may live, and how fresh the trusted keys are."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import pytest

from shared.auth import InvalidToken, TokenVerifier
from shared.jwks import JwksCache
from shared.settings import TokenSettings
from testbed.tokens import AUDIENCE, ISSUER, TokenFactory


def verifier_for(tokens: TokenFactory, **rules: Any) -> TokenVerifier:
    """A verifier of `tokens` with non-default rules."""
    verifier = tokens.verifier()
    verifier.rules = TokenSettings(**rules)
    return verifier


def accepted(verifier: TokenVerifier, token: str) -> bool:
    """True if the verifier takes the token."""
    try:
        verifier.verify(token)
    except InvalidToken:
        return False
    return True


@pytest.mark.parametrize(("offset", "ok"), [(-10, True), (-40, False)])
def test_an_expired_token_is_accepted_within_the_leeway(offset: int, ok: bool) -> None:
    tokens = TokenFactory()
    now = int(time.time())
    token = tokens.token(iat=now - 600, nbf=now - 600, exp=now + offset)
    assert accepted(tokens.verifier(), token) is ok


@pytest.mark.parametrize("claim", ["nbf", "iat"])
@pytest.mark.parametrize(("offset", "ok"), [(20, True), (40, False)])
def test_a_token_from_a_clock_ahead_is_accepted_within_the_leeway(claim: str, offset: int,
                                                                 ok: bool) -> None:
    tokens = TokenFactory()
    now = int(time.time())
    token = tokens.token(**{claim: now + offset})
    assert accepted(tokens.verifier(), token) is ok


def test_the_leeway_is_configurable() -> None:
    tokens = TokenFactory()
    now = int(time.time())
    token = tokens.token(iat=now - 600, nbf=now - 600, exp=now - 10)
    assert not accepted(verifier_for(tokens, leeway_seconds=0), token)
    assert accepted(verifier_for(tokens, leeway_seconds=15), token)


@pytest.mark.parametrize(("lifetime", "ok"), [(900 + 30, True), (900 + 31, False),
                                              (86_400, False)])
def test_a_token_may_live_no_longer_than_the_ttl_plus_the_leeway(lifetime: int,
                                                                 ok: bool) -> None:
    tokens = TokenFactory()
    now = int(time.time())
    token = tokens.token(iat=now, exp=now + lifetime)
    assert accepted(tokens.verifier(), token) is ok


def test_the_maximum_lifetime_follows_the_configured_ttl() -> None:
    tokens = TokenFactory()
    now = int(time.time())
    token = tokens.token(iat=now, exp=now + 900)
    assert not accepted(verifier_for(tokens, access_token_ttl=60), token)
    assert accepted(verifier_for(tokens, access_token_ttl=900), token)


@dataclass
class PublishedKeys:
    """A JWKS endpoint whose keys can change, and a clock that moves when told."""

    document: dict[str, Any]
    now: float = 0.0
    fetches: int = 0
    failing: bool = False

    def fetch(self) -> dict[str, Any]:
        self.fetches += 1
        if self.failing:
            raise OSError("JWKS endpoint unreachable")
        return self.document

    def clock(self) -> float:
        return self.now


def rotating_verifier(tokens: TokenFactory, published: PublishedKeys) -> TokenVerifier:
    """A verifier fetching `published`, with a 300 s maximum key age and a 30 s minimum."""
    keys = JwksCache(published.fetch, min_refresh_seconds=30, max_age_seconds=300,
                     clock=published.clock)
    return TokenVerifier(keys, ISSUER, AUDIENCE, "EdDSA")


def test_a_key_removed_from_the_jwks_stops_being_trusted_within_the_maximum_age() -> None:
    old, new = TokenFactory(kid="old"), TokenFactory(kid="new")
    published = PublishedKeys(old.jwks())
    verifier = rotating_verifier(old, published)
    cached, fresh = old.token(), old.token()
    assert accepted(verifier, cached)
    published.document = new.jwks()  # the old key is withdrawn
    published.now = 299
    assert accepted(verifier, cached)  # the keys are not old enough to be refetched yet
    published.now = 300
    assert not accepted(verifier, cached)  # not even from the verified-token cache
    assert not accepted(verifier, fresh)
    assert accepted(verifier, new.token())


def test_keys_are_refetched_once_per_maximum_age_not_per_request() -> None:
    tokens = TokenFactory()
    published = PublishedKeys(tokens.jwks())
    verifier = rotating_verifier(tokens, published)
    for second in range(0, 600, 10):
        published.now = second
        assert accepted(verifier, tokens.token())
    assert published.fetches == 2


def test_keys_held_stay_trusted_while_the_jwks_cannot_be_fetched() -> None:
    tokens = TokenFactory()
    published = PublishedKeys(tokens.jwks())
    verifier = rotating_verifier(tokens, published)
    assert accepted(verifier, tokens.token())
    published.failing, published.now = True, 400
    assert accepted(verifier, tokens.token())
    published.now = 410
    assert accepted(verifier, tokens.token())
    assert published.fetches == 2  # a failed fetch is retried after the minimum interval
    published.now = 431
    assert accepted(verifier, tokens.token())
    assert published.fetches == 3
