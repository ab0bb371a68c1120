"""Which level the Celery worker and beat log at."""

from __future__ import annotations

import logging

from services.task_service.entrypoints.celery_signals import more_talkative


def test_the_command_line_can_make_celery_more_talkative() -> None:
    """`--loglevel DEBUG` beats `LOG_LEVEL=INFO`."""
    assert more_talkative("INFO", logging.DEBUG) == "DEBUG"
    assert more_talkative("info", "debug") == "DEBUG"


def test_celerys_default_level_never_quiets_log_level() -> None:
    """Celery's default WARNING leaves `LOG_LEVEL=INFO` in charge."""
    assert more_talkative("INFO", logging.WARNING) == "INFO"
    assert more_talkative("DEBUG", None) == "DEBUG"
