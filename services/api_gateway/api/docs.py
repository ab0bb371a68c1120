"""`/openapi.json` (the whole public API) and `/docs` (Swagger UI, served here: no internet)."""

from __future__ import annotations

from pathlib import Path

import flask_swagger_ui
from flask import Flask, Response, abort, jsonify, send_from_directory

from services.api_gateway.api.deps import deps

# Swagger UI's built files, as the flask-swagger-ui package ships them.
SWAGGER_UI_DIR = Path(flask_swagger_ui.__file__).parent / "dist"
SWAGGER_UI_FILES = frozenset({"swagger-ui.css", "swagger-ui-bundle.js", "favicon-32x32.png"})
ASSET_MAX_AGE = 3600

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>Taskstream API</title><meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="stylesheet" href="/docs/swagger-ui.css">
<link rel="icon" type="image/png" href="/docs/favicon-32x32.png">
</head><body>
<noscript>This page needs JavaScript. The same reference is at
<a href="/openapi.json">/openapi.json</a> and in docs/api.md.</noscript>
<div id="swagger-ui"></div>
<script src="/docs/swagger-ui-bundle.js"></script>
<script src="/docs/start.js"></script>
</body></html>
"""

# Try-it-out calls go to this gateway; "Authorize" keeps the bearer token across reloads.
START_SCRIPT = """window.addEventListener("load", function () {
  window.ui = SwaggerUIBundle({
    url: "/openapi.json", dom_id: "#swagger-ui", layout: "BaseLayout",
    deepLinking: true, persistAuthorization: true, displayRequestDuration: true,
    showExtensions: true, validatorUrl: null, presets: [SwaggerUIBundle.presets.apis]
  });
});
"""

# The page loads nothing from elsewhere; Swagger UI styles its elements inline.
CONTENT_SECURITY_POLICY = ("default-src 'self'; img-src 'self' data:; "
                           "style-src 'self' 'unsafe-inline'; frame-ancestors 'none'")


def openapi_json() -> Response:
    """The merged OpenAPI document."""
    return jsonify(deps().api_document.get())


def docs_page() -> Response:
    """The API reference: Swagger UI over `/openapi.json`, where calls can be tried."""
    return _protected(Response(PAGE, mimetype="text/html"))


def docs_asset(name: str) -> Response:
    """A file of the reference page (Swagger UI's own, or the script that starts it)."""
    if name == "start.js":
        response = Response(START_SCRIPT, mimetype="text/javascript")
        response.cache_control.max_age = ASSET_MAX_AGE
        return _protected(response)
    if name not in SWAGGER_UI_FILES:
        abort(404)
    return _protected(send_from_directory(SWAGGER_UI_DIR, name, max_age=ASSET_MAX_AGE))


def _protected(response: Response) -> Response:
    response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    return response


def register(app: Flask) -> None:
    """Add `/openapi.json`, `/docs` and the page's files under `/docs/`."""
    app.add_url_rule("/openapi.json", "openapi_json", openapi_json)
    app.add_url_rule("/docs", "docs", docs_page)
    app.add_url_rule("/docs/<name>", "docs_asset", docs_asset)
