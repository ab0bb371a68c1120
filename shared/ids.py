"""Row ids at the edge: positive PostgreSQL bigints, refused before any query past that range."""

from __future__ import annotations

from typing import Any

from marshmallow import fields
from werkzeug.routing import IntegerConverter

from shared.pagination import bounded_integer

ID_MAX = 2**63 - 1  # PostgreSQL bigint


def _digits_up_to(bound: int) -> str:
    """A regex for the canonical decimals (no sign, no leading zero) from 1 to `bound` (>= 10)."""
    text = str(bound)
    options = [f"[1-9][0-9]{{0,{len(text) - 2}}}"]  # fewer digits than the bound
    for i, digit in enumerate(text):  # as many: the bound's first i digits, then a smaller one
        low = 1 if i == 0 else 0
        if int(digit) > low:
            options.append(f"{text[:i]}[{low}-{int(digit) - 1}][0-9]{{{len(text) - i - 1}}}")
    return "|".join([*options, text])


class IdConverter(IntegerConverter):
    """`<id:task_id>`: a positive bigint; any other path matches no route (404, not 405)."""

    # Checked by the route's regex, not only in to_python: werkzeug answers a value that
    # to_python refuses with 405 when the path has rules for other methods.
    regex = f"(?:{_digits_up_to(ID_MAX)})"

    def __init__(self, url_map: Any) -> None:
        super().__init__(url_map, min=1, max=ID_MAX)


def id_parameter_schema(_converter: IdConverter) -> dict[str, Any]:
    """The OpenAPI schema of an `<id:...>` path parameter."""
    return {"type": "integer", "format": "int64", "minimum": 1, "maximum": ID_MAX, "example": 42}


def id_field(message: str, **kwargs: Any) -> fields.Integer:
    """A query or body id: any problem (not a number, 0, past bigint) is a 400 reading `message`."""
    metadata = {"format": "int64", **kwargs.pop("metadata", {})}
    return bounded_integer(message, 1, ID_MAX, metadata=metadata, **kwargs)
