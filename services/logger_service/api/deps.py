"""The objects the read API's views use, built by create_app and kept on the app."""

from __future__ import annotations

from dataclasses import dataclass

from services.logger_service.adapters.cache import DatePageCache
from services.logger_service.adapters.read_models import ProjectionReader
from shared.http import provided


@dataclass(frozen=True)
class LoggerDeps:
    """What a request may need: the projections' reader and the date-page cache."""

    reader: ProjectionReader
    cache: DatePageCache


def deps() -> LoggerDeps:
    """The dependencies of the current app."""
    return provided(LoggerDeps)
