"""The objects the read API's views use, built by create_app and kept on the app."""

from __future__ import annotations

from dataclasses import dataclass

from services.logger_service.adapters.cache import DatePageCache
from services.logger_service.adapters.read_models import ProjectionReader
from shared.http import provided
from shared.positions import AppliedPosition


@dataclass(frozen=True)
class LoggerDeps:
    """What a request may need: the projections' reader, the date-page cache, and how far the
    projections have applied the event log (what `min_seq` waits for)."""

    reader: ProjectionReader
    cache: DatePageCache
    applied: AppliedPosition


def deps() -> LoggerDeps:
    """The dependencies of the current app."""
    return provided(LoggerDeps)
