"""Pagination headers: `X-Total-Count` and an RFC 8288 `Link` with first/prev/next/last."""

from __future__ import annotations

import math
from collections.abc import Mapping
from urllib.parse import urlencode

from flask import request

from services.logger_service.service_layer.queries import Page


def last_page(total: int, per_page: int) -> int:
    """The number of the last page (1 when there is nothing)."""
    return max(1, math.ceil(total / per_page))


def page_links(page: Page) -> dict[str, int]:
    """The page numbers each relation points to."""
    last = last_page(page.total, page.per_page)
    links = {"first": 1}
    if page.page > 1:
        links["prev"] = min(page.page - 1, last)
    if page.page < last:
        links["next"] = page.page + 1
    links["last"] = last
    return links


def link_header(path: str, args: Mapping[str, str], page: Page) -> str:
    """The `Link` header value, keeping the request's other query parameters."""
    kept = {k: v for k, v in args.items() if k not in {"page", "per_page"}}
    parts = []
    for rel, number in page_links(page).items():
        query = urlencode({**kept, "page": number, "per_page": page.per_page})
        parts.append(f'<{path}?{query}>; rel="{rel}"')
    return ", ".join(parts)


def pagination_headers(page: Page) -> dict[str, str]:
    """Headers of a paginated response to the current request."""
    headers = {
        "X-Total-Count": str(page.total),
        "Link": link_header(request.path, request.args.to_dict(), page),
    }
    if page.cache:
        headers["X-Cache"] = page.cache
    return headers
