"""The public API reference: merged from every service, accepted by outside tools, in the repo."""

from __future__ import annotations

import importlib
import io
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from openapi_spec_validator import validate

from services.api_gateway.service_layer.openapi import render_markdown
from testbed.stack import ADMIN_PASSWORD, Stack

API_DOC = Path(__file__).resolve().parents[2] / "docs" / "api.md"
GENERATOR = Path(sys.executable).with_name("openapi-python-client")
CLIENT_PACKAGE = "taskstream_e2e_client"
PUBLIC_OPERATIONS = {
    ("/auth/login", "post"), ("/auth/register", "post"), ("/auth/refresh", "post"),
    ("/auth/logout", "post"), ("/auth/me", "get"), ("/auth/users", "get"),
    ("/auth/users", "post"), ("/auth/users/{user_id}", "patch"),
    ("/.well-known/jwks.json", "get"), ("/task", "post"), ("/task/{task_id}", "put"),
    ("/task/{task_id}", "delete"), ("/task/{task_id}", "get"), ("/upload-csv", "post"),
    ("/admin/transfer", "post"), ("/tasks", "get"), ("/audit", "get"),
    ("/webhooks", "get"), ("/webhooks", "post"), ("/webhooks/{webhook_id}", "get"),
    ("/webhooks/{webhook_id}", "patch"), ("/webhooks/{webhook_id}", "delete"),
    ("/webhooks/{webhook_id}/rotate-secret", "post"),
    ("/webhooks/{webhook_id}/deliveries", "get"),
    ("/webhooks/{webhook_id}/deliveries/{delivery_id}/resend", "post"),
    ("/webhooks/{webhook_id}/replay", "post"),
}


@pytest.fixture(scope="module")
def document(stack: Stack) -> dict[str, Any]:
    """The gateway's /openapi.json."""
    return stack.session.get(f"{stack.base_url}/openapi.json").json()  # type: ignore[no-any-return]


def test_openapi_covers_the_whole_public_api(document: dict[str, Any]) -> None:
    operations = {(p, m) for p, ops in document["paths"].items() for m in ops}
    assert operations >= PUBLIC_OPERATIONS, PUBLIC_OPERATIONS - operations
    for path, method in PUBLIC_OPERATIONS:
        operation = document["paths"][path][method]
        assert operation.get("summary"), (path, method)
        assert operation.get("responses"), (path, method)


def test_openapi_spec_validator_accepts_the_document(document: dict[str, Any]) -> None:
    validate(document)


@pytest.fixture(scope="module")
def generated(stack: Stack, tmp_path_factory: pytest.TempPathFactory
              ) -> Iterator[tuple[ModuleType, str]]:
    """A client package made by openapi-python-client from the running gateway's document,
    imported; with the generator's output."""
    folder = tmp_path_factory.mktemp("client")
    config = folder / "generator.yaml"
    config.write_text("post_hooks: []\n")  # no formatter run over the generated code
    run = subprocess.run(
        [str(GENERATOR), "generate", "--url", f"{stack.base_url}/openapi.json", "--meta", "none",
         "--config", str(config), "--output-path", str(folder / CLIENT_PACKAGE)],
        capture_output=True, text=True, timeout=120, check=False)
    output = run.stdout + run.stderr
    assert run.returncode == 0, output
    sys.path.insert(0, str(folder))
    try:
        yield importlib.import_module(CLIENT_PACKAGE), output
    finally:
        sys.path.remove(str(folder))
        for name in [n for n in sys.modules if n.split(".")[0] == CLIENT_PACKAGE]:
            del sys.modules[name]


def test_generated_client_has_every_operation_without_warnings(
        generated: tuple[ModuleType, str], document: dict[str, Any]) -> None:
    package, output = generated
    assert "warning" not in output.lower(), output
    made = {module.stem for module in Path(package.__file__).parent.glob("api/*/*.py")
            if module.stem != "__init__"}
    expected = {op["operationId"] for item in document["paths"].values() for op in item.values()}
    assert made == expected


def endpoint(package: ModuleType, tag: str, operation: str) -> Any:
    """One generated operation module, e.g. `api.tasks.create_task`."""
    return importlib.import_module(f"{package.__name__}.api.{tag}.{operation}")


def test_generated_client_drives_the_running_system(
        stack: Stack, generated: tuple[ModuleType, str]) -> None:
    """Log in, create with a retry key, change under If-Match, import a CSV, delete."""
    package, _ = generated
    models = importlib.import_module(f"{package.__name__}.models")
    types = importlib.import_module(f"{package.__name__}.types")
    anonymous = package.Client(base_url=stack.base_url)
    tokens = endpoint(package, "auth", "login").sync(
        client=anonymous, body=models.Credentials(username="admin", password=ADMIN_PASSWORD))
    client = package.AuthenticatedClient(base_url=stack.base_url, token=tokens.access_token)
    assert endpoint(package, "auth", "me").sync(client=client).role == "admin"

    create = endpoint(package, "tasks", "create_task")
    body = models.TaskCreate(title="From the generated client",
                             priority=models.TaskCreatePriority.HIGH)
    created = create.sync_detailed(client=client, body=body, idempotency_key="e2e-client-1",
                                   x_request_id="e2e-client")
    assert created.status_code == 201 and created.parsed.title == "From the generated client"
    assert created.headers["Location"] == f"/task/{created.parsed.id}"
    assert created.headers["X-Request-ID"] == "e2e-client"
    retried = create.sync_detailed(client=client, body=body, idempotency_key="e2e-client-1")
    assert retried.parsed.id == created.parsed.id

    update = endpoint(package, "tasks", "update_task")
    changed = update.sync_detailed(created.parsed.id, client=client,
                                   body=models.TaskUpdate(status=models.TaskUpdateStatus.IN_PROGRESS),
                                   if_match=created.headers["ETag"])
    assert (changed.status_code, changed.parsed.version) == (200, 2)
    stale = update.sync_detailed(created.parsed.id, client=client,
                                 body=models.TaskUpdate(status=models.TaskUpdateStatus.COMPLETED),
                                 if_match=created.headers["ETag"])
    assert stale.status_code == 412 and isinstance(stale.parsed, models.Error)

    csv = types.File(payload=io.BytesIO(b"title\nImported one\nImported two\n"),
                     file_name="tasks.csv")
    imported = endpoint(package, "imports", "upload_csv").sync(client=client, body=csv)
    assert imported.imported == 2

    deleted = endpoint(package, "tasks", "delete_task").sync(created.parsed.id, client=client)
    assert deleted.message == "Task soft deleted successfully"
    page = endpoint(package, "users", "list_users").sync_detailed(client=client, per_page=5)
    assert page.status_code == 200 and int(page.headers["X-Total-Count"]) >= 1


def test_committed_api_reference_is_current(document: dict[str, Any]) -> None:
    assert API_DOC.read_text() == render_markdown(document), (
        "docs/api.md is stale: run `make run` and then `taskstream docs generate`")
