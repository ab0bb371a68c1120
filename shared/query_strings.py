"""Query strings of reads: a bad value is a 400 naming the parameter, never a 422."""

from __future__ import annotations

from typing import Any, NoReturn

from shared.errors import ApiError
from shared.http import Blueprint, JsonObjectParser


class QueryParser(JsonObjectParser):
    """Parses query strings; a bad value is a 400 with the first problem as the message."""

    DEFAULT_VALIDATION_STATUS = 400

    def handle_error(self, error: Any, req: Any, schema: Any, *, error_status_code: Any,
                     error_headers: Any) -> NoReturn:
        """Raise the contract's 400."""
        messages = error.normalized_messages()
        raise ApiError(400, first_message(messages), messages.get("query", messages))


def first_message(messages: Any) -> str:
    """The first message in marshmallow's nested messages."""
    while isinstance(messages, dict) and messages:
        messages = next(iter(messages.values()))
    if isinstance(messages, list) and messages:
        return first_message(messages[0])
    return str(messages)


class QueryBlueprint(Blueprint):
    """A Blueprint whose bad query strings are 400s."""

    ARGUMENTS_PARSER = QueryParser()
