"""The republisher copies the recent revocation marks from the database to the verifiers'
store, keeps going through failures, and runs only when the server starts it."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import pytest
from flask import Flask

from services.auth_service.adapters.orm import User
from services.auth_service.service_layer.republisher import MarkRepublisher
from shared.background import background_of, start_background
from testbed.polling import wait_for
from tests.unit.auth_service.fakes import FakeRevocations, FakeUnitOfWork

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
LIFETIME = 930.0


def add_user(uow: FakeUnitOfWork, name: str, revoked_at: datetime | None) -> int:
    """A user whose tokens were revoked at `revoked_at` (or never)."""
    user = User(username=name, password_hash="x", role="member", disabled=False,
                created_at=NOW, tokens_revoked_at=revoked_at)
    uow.users.add(user)
    return user.id


def republisher(uow: FakeUnitOfWork, revocations: FakeRevocations,
                interval: float = 2.0) -> MarkRepublisher:
    """A republisher whose clock reads NOW."""
    return MarkRepublisher(uow, revocations, LIFETIME, interval=interval, clock=lambda: NOW)


def test_publish_once_copies_the_marks_younger_than_a_token_can_live(uow, revocations):
    recent = add_user(uow, "recent", NOW - timedelta(seconds=LIFETIME - 1))
    add_user(uow, "expired", NOW - timedelta(seconds=LIFETIME + 1))
    add_user(uow, "never", None)
    assert republisher(uow, revocations).publish_once() == 1
    assert revocations.marks == {
        recent: (NOW - timedelta(seconds=LIFETIME - 1)).timestamp()}


def test_the_thread_goes_on_through_failures_and_says_so_once(uow, revocations,
                                                              caplog: pytest.LogCaptureFixture):
    user_id = add_user(uow, "una", NOW)
    revocations.down = True
    running = republisher(uow, revocations, interval=0.01)
    with caplog.at_level(logging.INFO, logger="taskstream.auth.republisher"):
        running.start()
        try:
            wait_for(lambda: "could not republish" in caplog.text, timeout=5,
                     what="the failure to be logged")
            revocations.down = False
            wait_for(lambda: user_id in revocations.marks, timeout=5,
                     what="the mark to be republished once the store is back")
        finally:
            running.stop()
    messages = [record.getMessage() for record in caplog.records]
    assert sum("could not republish" in message for message in messages) == 1
    assert "revocation marks republished again" in messages


def test_building_the_app_starts_nothing_and_the_server_starts_the_republisher(
        app: Flask, uow, revocations):
    user_id = add_user(uow, "vic", datetime.now(UTC))
    (work,) = background_of(app)
    assert isinstance(work, MarkRepublisher) and work.thread is None
    assert revocations.marks == {}
    start_background(app)  # what deploy/gunicorn.conf.py does in each worker
    try:
        wait_for(lambda: user_id in revocations.marks, timeout=5, what="the first publish")
    finally:
        work.stop()
