"""Headers of a page of results: the shared pagination headers, and `X-Cache` for date pages."""

from __future__ import annotations

from services.logger_service.service_layer.queries import Page
from shared import pagination


def pagination_headers(page: Page) -> dict[str, str]:
    """`X-Total-Count`, `Link` and, when the cache was asked, `X-Cache`."""
    headers = pagination.pagination_headers(page.page, page.per_page, page.total)
    if page.cache:
        headers["X-Cache"] = page.cache
    return headers
