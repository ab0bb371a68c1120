"""Page-numbered lists: limits, and the `X-Total-Count` and RFC 8288 `Link` headers."""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import urlencode

from flask import request
from marshmallow import Schema, fields, validate

DEFAULT_PER_PAGE = 20
MAX_PER_PAGE = 100
# Far beyond any real list, and small enough that (page - 1) * per_page fits a bigint OFFSET.
MAX_PAGE = 10_000_000

INVALID_PAGE = f"Invalid page, expected an integer from 1 to {MAX_PAGE}"
INVALID_PER_PAGE = f"Invalid per_page, expected an integer from 1 to {MAX_PER_PAGE}"


def bounded_integer(message: str, minimum: int, maximum: int | None = None, **kwargs: object
                    ) -> fields.Integer:
    """An integer field whose every problem (not a number, out of range) reads `message`."""
    return fields.Integer(
        validate=validate.Range(min=minimum, max=maximum, error=message),
        error_messages={"invalid": message, "too_large": message}, **kwargs,  # type: ignore[arg-type]
    )


class PageQuery(Schema):
    """`page` (from 1) and `per_page` (1 to 100, default 20), with the contract's messages."""

    page = bounded_integer(INVALID_PAGE, 1, MAX_PAGE, load_default=1, metadata={
        "description": f"Page, from 1 to {MAX_PAGE}", "example": 1})
    per_page = bounded_integer(
        INVALID_PER_PAGE, 1, MAX_PER_PAGE, load_default=DEFAULT_PER_PAGE,
        metadata={"description": f"Entries per page, at most {MAX_PER_PAGE}", "example": 20})


def last_page(total: int, per_page: int) -> int:
    """The number of the last page (1 when there is nothing)."""
    return max(1, -(-total // per_page))


def page_links(page: int, per_page: int, total: int) -> dict[str, int]:
    """The page number each relation (first, prev, next, last) points to."""
    last = last_page(total, per_page)
    links = {"first": 1}
    if page > 1:
        links["prev"] = min(page - 1, last)
    if page < last:
        links["next"] = page + 1
    links["last"] = last
    return links


def link_header(path: str, args: Mapping[str, str], page: int, per_page: int,
                total: int) -> str:
    """The `Link` header value, keeping the request's other query parameters."""
    kept = {k: v for k, v in args.items() if k not in {"page", "per_page"}}
    return ", ".join(
        f'<{path}?{urlencode({**kept, "page": number, "per_page": per_page})}>; rel="{rel}"'
        for rel, number in page_links(page, per_page, total).items()
    )


def pagination_headers(page: int, per_page: int, total: int) -> dict[str, str]:
    """Headers of a paginated response to the current request."""
    return {
        "X-Total-Count": str(total),
        "Link": link_header(request.path, request.args.to_dict(), page, per_page, total),
    }
