"""Log lines (JSON, or text for people) that carry the request id of what is being handled."""

from __future__ import annotations

import json
import logging
import sys
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import TextIO

# JSON lines unless LOG_FORMAT says `text` (`.env.dev` does, for a readable `make run`).
DEFAULT_LOG_FORMAT = "json"

request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)

_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "request_tag"}


class RequestIdFilter(logging.Filter):
    """Put the current request id on every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Attach `request_id` (or None)."""
        if not getattr(record, "request_id", None):
            record.request_id = request_id_var.get()
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line."""

    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        """Render the record with its extras."""
        line = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat().replace("+00:00", "Z"),
            "level": record.levelname,
            "service": self.service,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", None),
        }
        line.update({k: v for k, v in vars(record).items() if k not in _STANDARD and
                     k not in line and not k.startswith("_")})
        if record.exc_info:
            line["exc_info"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    """One readable line: time, level, service, logger, message and the request id, if any."""

    def __init__(self, service: str) -> None:
        super().__init__(
            f"%(asctime)s %(levelname)s {service} %(name)s: %(message)s%(request_tag)s")

    def format(self, record: logging.LogRecord) -> str:
        """Render the record, adding `[request_id]` when there is one."""
        request_id = getattr(record, "request_id", None)
        record.request_tag = f" [{request_id}]" if request_id else ""
        return super().format(record)


def configure_logging(service: str, level: str, fmt: str,
                      stream: TextIO | None = None) -> None:
    """Send the root logger to stdout (or `stream`), as JSON lines or, for `text`, plain."""
    handler = logging.StreamHandler(stream or sys.stdout)
    handler.addFilter(RequestIdFilter())
    handler.setFormatter(TextFormatter(service) if fmt == "text" else JsonFormatter(service))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)


def first_line(exc: BaseException) -> str:
    """The first line of an error's message (drivers add SQL and links below it), else its
    type's name: what a log line or a one-line error shows."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
