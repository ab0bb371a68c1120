"""`/openapi.json` (the whole public API) and `/docs` (a readable page, no internet needed)."""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import markdown
from flask import Flask, Response, current_app, jsonify

from services.api_gateway.service_layer.openapi import merge_specs, render_markdown

log = logging.getLogger("taskstream.gateway.docs")
CACHE_SECONDS = 60.0

PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8">
<title>Taskstream API</title><meta name="viewport" content="width=device-width">
<style>body{{font:15px/1.5 system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem}}
table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:.2rem .5rem}}
code,pre{{background:#f4f4f4}}pre{{padding:.5rem;overflow:auto}}</style></head>
<body>{body}</body></html>"""


class SpecCache:
    """The merged document, rebuilt from the upstreams at most once a minute."""

    def __init__(self) -> None:
        self.spec: dict[str, Any] | None = None
        self.built_at = float("-inf")
        self.lock = threading.Lock()

    def get(self) -> dict[str, Any]:
        """Return the merged document, refetching stale or missing parts."""
        with self.lock:
            if self.spec is None or time.monotonic() - self.built_at > CACHE_SECONDS:
                self.spec = merge_specs(_fetch_specs())
                self.built_at = time.monotonic()
            return self.spec


def _fetch_specs() -> dict[str, Any]:
    specs = {}
    for name, upstream in current_app.extensions["upstreams"].items():
        try:
            status, spec = upstream.get_json("/openapi.json")
        except Exception as exc:  # a missing upstream leaves a partial reference
            log.warning("could not fetch the OpenAPI document of %s: %s", name, exc)
            continue
        if status == 200:
            specs[name] = spec
    return specs


def openapi_json() -> Response:
    """The merged OpenAPI document."""
    return jsonify(current_app.extensions["spec_cache"].get())


def docs_page() -> Response:
    """The API reference as HTML, rendered from the merged document."""
    text = render_markdown(current_app.extensions["spec_cache"].get())
    body = markdown.markdown(text, extensions=["tables", "fenced_code"])
    return Response(PAGE.format(body=body), mimetype="text/html")


def register(app: Flask) -> None:
    """Add `/openapi.json` and `/docs`."""
    app.extensions["spec_cache"] = SpecCache()
    app.add_url_rule("/openapi.json", "openapi_json", openapi_json)
    app.add_url_rule("/docs", "docs", docs_page)
