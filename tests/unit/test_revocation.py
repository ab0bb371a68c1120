"""Revoked tokens are refused from the mark on, cached or not; a lost Redis fails closed."""

from __future__ import annotations

import time

import pytest
import redis

from shared.auth import InvalidToken, TokenVerifier
from shared.revocation import REFRESH_SECONDS, STALE_AFTER_SECONDS, RevocationList
from testbed.tokens import TokenFactory
from tests.unit.auth_service.fakes import FakeRevocations


class Clock:
    """A monotonic clock that moves when told."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def marks() -> FakeRevocations:
    return FakeRevocations()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def tokens() -> TokenFactory:
    return TokenFactory()


@pytest.fixture
def verifier(tokens: TokenFactory, marks: FakeRevocations, clock: Clock) -> TokenVerifier:
    return tokens.verifier(RevocationList(marks, clock=clock))


def test_a_token_issued_before_the_mark_is_refused_even_from_the_cache(
        tokens: TokenFactory, marks: FakeRevocations, clock: Clock,
        verifier: TokenVerifier) -> None:
    token = tokens.token(user_id=7)
    assert verifier.verify(token).user_id == 7
    marks.revoke_now(7)
    clock.now += REFRESH_SECONDS
    with pytest.raises(InvalidToken):
        verifier.verify(token)


def test_other_users_are_not_affected(tokens: TokenFactory, marks: FakeRevocations,
                                      verifier: TokenVerifier) -> None:
    marks.revoke_now(7)
    assert verifier.verify(tokens.token(user_id=8)).user_id == 8


def test_within_one_second_the_mark_tells_earlier_tokens_from_later_ones(
        tokens: TokenFactory, marks: FakeRevocations, verifier: TokenVerifier) -> None:
    second = float(int(time.time()))
    marks.clock = lambda: second + 0.5
    marks.revoke_now(7)
    before = tokens.token(user_id=7, iat=second + 0.25, nbf=int(second))
    after = tokens.token(user_id=7, iat=second + 0.75, nbf=int(second))
    with pytest.raises(InvalidToken):
        verifier.verify(before)
    assert verifier.verify(after).user_id == 7


def test_the_marks_are_read_at_most_once_per_interval(tokens: TokenFactory,
                                                     marks: FakeRevocations, clock: Clock,
                                                     verifier: TokenVerifier) -> None:
    token = tokens.token(user_id=7)
    verifier.verify(token)
    marks.revoke_now(7)
    assert verifier.verify(token).user_id == 7  # the copy read a moment ago is still used
    clock.now += REFRESH_SECONDS
    with pytest.raises(InvalidToken):
        verifier.verify(token)


def test_while_redis_is_unreachable_the_last_copy_serves_briefly_then_requests_fail(
        tokens: TokenFactory, marks: FakeRevocations, clock: Clock,
        verifier: TokenVerifier) -> None:
    token = tokens.token(user_id=7)
    verifier.verify(token)
    marks.down = True
    clock.now += STALE_AFTER_SECONDS
    assert verifier.verify(token).user_id == 7
    clock.now += 0.5
    with pytest.raises(redis.ConnectionError):
        verifier.verify(token)
    marks.down = False
    assert verifier.verify(token).user_id == 7


def test_without_any_copy_of_the_marks_nothing_is_accepted(tokens: TokenFactory,
                                                          marks: FakeRevocations,
                                                          verifier: TokenVerifier) -> None:
    marks.down = True
    with pytest.raises(redis.ConnectionError):
        verifier.verify(tokens.token())
