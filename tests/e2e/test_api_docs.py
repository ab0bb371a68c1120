"""The public API reference: merged from every service, rendered offline, kept in the repo."""

from __future__ import annotations

from pathlib import Path

from services.api_gateway.service_layer.openapi import render_markdown
from tests.stack import Stack

API_DOC = Path(__file__).resolve().parents[2] / "docs" / "api.md"
PUBLIC_OPERATIONS = {
    ("/auth/login", "post"), ("/auth/register", "post"), ("/auth/refresh", "post"),
    ("/auth/logout", "post"), ("/auth/me", "get"), ("/auth/users", "get"),
    ("/auth/users", "post"), ("/auth/users/{user_id}", "patch"),
    ("/.well-known/jwks.json", "get"), ("/task", "post"), ("/task/{task_id}", "put"),
    ("/task/{task_id}", "delete"), ("/task/{task_id}", "get"), ("/upload-csv", "post"),
    ("/admin/transfer", "post"), ("/tasks", "get"), ("/audit", "get"),
}


def test_openapi_covers_the_whole_public_api(stack: Stack) -> None:
    spec = stack.session.get(f"{stack.base_url}/openapi.json").json()
    operations = {(p, m) for p, ops in spec["paths"].items() for m in ops}
    assert operations >= PUBLIC_OPERATIONS, PUBLIC_OPERATIONS - operations
    for path, method in PUBLIC_OPERATIONS:
        operation = spec["paths"][path][method]
        assert operation.get("summary"), (path, method)
        assert operation.get("responses"), (path, method)


def test_docs_page_is_served_without_external_assets(stack: Stack) -> None:
    page = stack.session.get(f"{stack.base_url}/docs")
    assert page.status_code == 200
    assert page.headers["Content-Type"].startswith("text/html")
    assert "POST /task" in page.text
    assert 'src="http' not in page.text and 'href="http' not in page.text


def test_committed_api_reference_is_current(stack: Stack) -> None:
    spec = stack.session.get(f"{stack.base_url}/openapi.json").json()
    assert API_DOC.read_text() == render_markdown(spec), (
        "docs/api.md is stale: run `make run` and then `taskstream docs generate`")
