"""How the Celery worker and beat start: our log lines, and no superuser noise in development.

Connected by importing this module (`celery_app` does), so that `celery worker|beat` log
like every other process: `LOG_FORMAT` and `LOG_LEVEL`, one line per event.
"""

from __future__ import annotations

import logging
import sys
import warnings
from typing import Any

from celery import signals
from celery.exceptions import SecurityWarning

from services.task_service.config import load_settings
from shared.config import Env, current_environment, exit_on_config_error
from shared.logs import configure_logging


@signals.setup_logging.connect
def use_our_logging(loglevel: int | str | None = None, **_kwargs: Any) -> None:
    """Log as `worker` or `beat` in our format instead of Celery's own.

    `LOG_LEVEL` sets the level; Celery's `--loglevel` (default WARNING) can only make the
    process more talkative than that, e.g. `--loglevel DEBUG` while looking into a problem.
    """
    with exit_on_config_error():
        common = load_settings().common
    service = "beat" if "beat" in sys.argv[1:] else "worker"
    configure_logging(service, more_talkative(common.log_level, loglevel), common.log_format)


def more_talkative(configured: str, requested: int | str | None) -> str:
    """The lower (more verbose) of two log levels, by name."""
    levels = [logging.getLevelName(configured.upper())]
    if requested is not None:
        levels.append(requested if isinstance(requested, int) else
                      logging.getLevelName(str(requested).upper()))
    known = [level for level in levels if isinstance(level, int)]
    return logging.getLevelName(min(known)) if known else configured


@signals.celeryd_init.connect
def allow_root_in_development(conf: Any, **_kwargs: Any) -> None:
    """Silence Celery's superuser warning in development, and only there.

    A development worker running as root (a container, a VM) has no more power than the
    shell that started it, and with JSON the only accepted content the warning's real risk
    (unpickling) is off. The images run as a non-root user; should a deployed worker run as
    root anyway, the warning stays.
    """
    with exit_on_config_error():
        deployed = Env(current_environment()).deployed
    if not deployed and "pickle" not in conf.accept_content:
        warnings.filterwarnings("ignore", category=SecurityWarning)
