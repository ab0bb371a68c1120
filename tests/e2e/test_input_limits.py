"""Hostile input through the gateway is refused with the contract's error, never a 500."""

from __future__ import annotations

from testbed.stack import Stack
from tests.e2e.conftest import CSV_MAX_ROWS


def test_bad_input_through_the_gateway_is_refused_not_a_500(stack: Stack) -> None:
    headers = stack.login()
    base = stack.base_url
    for path in ("/task/99999999999999999999", "/task/9223372036854775808"):
        response = stack.session.get(f"{base}{path}", headers=headers)
        assert (response.status_code, response.json()) == (404, {"error": "Not found"})
    audit = stack.session.get(f"{base}/audit?task_id=99999999999999999999", headers=headers)
    assert (audit.status_code, audit.json()["error"]) == (
        400, "Invalid task_id, expected a positive integer")
    for body in (b"[" * 100_000, b'{"a":' * 100_000):
        response = stack.session.post(f"{base}/task", data=body, headers={
            **headers, "Content-Type": "application/json"})
        assert (response.status_code, response.json()) == (
            400, {"error": "Request body nests JSON deeper than 32 levels"})


def test_a_csv_over_the_row_limit_is_413_through_the_gateway(stack: Stack) -> None:
    """Streamed through the gateway, raw or multipart (nothing imported: see the service's
    integration test; an import here would also crowd the other tests' day lists)."""
    headers = stack.login()
    over = b"title\n" + b"".join(b"Row %d\n" % n for n in range(CSV_MAX_ROWS + 1))
    raw = stack.session.post(f"{stack.base_url}/upload-csv", data=over,
                             headers={**headers, "Content-Type": "text/csv"})
    multipart = stack.session.post(f"{stack.base_url}/upload-csv", headers=headers,
                                   files={"file": ("tasks.csv", over, "text/csv")})
    for response in (raw, multipart):
        assert (response.status_code, response.json()) == (
            413, {"error": f"CSV file has more than {CSV_MAX_ROWS} data rows"})
