"""Schemathesis against the gateway: no 5xx, and every response as the document says.

Every operation of `/openapi.json` gets FUZZ_MAX_EXAMPLES (default 10; `make fuzz`: 200)
generated requests with valid inputs and as many with invalid ones, sent with an admin
token. A response must not be a 5xx, its status must be listed for the operation (the
`default` responses are removed first: "anything else" would let any status through), and
its content type, headers and body must match what the document promises. The one 5xx that
is an answer rather than a failure is a documented 503 that says when to retry: a read given
a `min_seq` the projections have not reached (the fuzzer picks positions far past the log).
"""

from __future__ import annotations

import os
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import Case, GenerationMode, check
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from testbed.stack import Stack

MAX_EXAMPLES = int(os.environ.get("FUZZ_MAX_EXAMPLES", "10"))


@check
def not_a_server_error_but_a_retry(ctx: Any, response: Any, case: Case) -> bool | None:
    """No 5xx, except a 503 the operation documents that carries Retry-After."""
    documented = case.operation.definition.raw.get("responses", {})
    says_when = "retry-after" in {name.lower() for name in response.headers}
    if response.status_code == 503 and "503" in documented and says_when:
        return None
    return not_a_server_error(ctx, response, case)


CHECKS = [not_a_server_error_but_a_retry, status_code_conformance, content_type_conformance,
          response_headers_conformance, response_schema_conformance]
SHOWN_PER_OPERATION = 2


def fuzz_operation(operation: Any, mode: GenerationMode, base_url: str,
                   headers: dict[str, str]) -> list[str]:
    """Send generated requests to one operation; return the failures (with a curl each)."""
    failures: list[str] = []

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(max_examples=MAX_EXAMPLES, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    def send(case: Case) -> None:
        try:
            case.call_and_validate(base_url=base_url, headers=headers, checks=CHECKS,
                                   timeout=30)
        except (Exception, BaseExceptionGroup) as exc:  # failed checks, or a broken reply
            if len(failures) < SHOWN_PER_OPERATION:
                message = str(exc).strip()[:1500]
                if "curl" not in message:
                    message += "\n    " + case.as_curl_command(base_url=base_url)
                failures.append(f"{operation.label} [{mode.value}]: {message}")

    try:
        send()
    except Unsatisfiable:  # nothing to make invalid: the operation takes no input
        assert mode is GenerationMode.NEGATIVE, f"{operation.label}: no valid request"
    return failures


def test_gateway_api_keeps_its_documented_promises(
        api_schema: Any, fuzz_stack: Stack, admin_headers: dict[str, str]) -> None:
    failures: list[str] = []
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) > 15
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            failures += fuzz_operation(operation, mode, fuzz_stack.base_url, admin_headers)
    assert not failures, "\n\n".join(failures)
