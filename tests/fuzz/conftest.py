"""A running system for the API fuzzer, and its OpenAPI document as schemathesis sees it."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import pytest
import requests
import schemathesis
from schemathesis.specs.openapi.schemas import OpenApiSchema

from testbed.stack import Stack, running_stack

# Login gets a strict limit in production; the fuzzer logs in far more often than a person.
# Reads given a min_seq far past the log wait READ_WAIT_SECONDS before their 503: keep it short.
# A generated `GET /events?wait=30` past the log's end would hold its answer 30 s (the whole
# request timeout): no feed read may wait here, so each answers at once.
FUZZ_ENV = {"RATE_LIMIT_LOGIN": "100000/minute", "RATE_LIMIT_LOGIN_USERNAME": "100000/minute",
            "ALLOW_REGISTRATION": "true", "READ_WAIT_SECONDS": "0.2", "FEED_MAX_WAITING": "0"}


@pytest.fixture(scope="module")
def fuzz_stack(pg_url: str, redis_url: str) -> Iterator[Stack]:
    """Every process of the Procfile, for the fuzzer alone."""
    with running_stack(pg_url, redis_url, extra_env=FUZZ_ENV) as running:
        yield running


@pytest.fixture(scope="module")
def admin_headers(fuzz_stack: Stack) -> dict[str, str]:
    """An admin's Authorization header."""
    return fuzz_stack.login()


def strict_document(document: dict[str, Any]) -> dict[str, Any]:
    """The document without `default` responses, so that every status must be listed."""
    strict = copy.deepcopy(document)
    for operations in strict["paths"].values():
        for operation in operations.values():
            if isinstance(operation, dict):
                operation.get("responses", {}).pop("default", None)
    return strict


@pytest.fixture(scope="module")
def api_schema(fuzz_stack: Stack) -> OpenApiSchema:
    """The gateway's /openapi.json, with only the statuses it names."""
    document = requests.get(f"{fuzz_stack.base_url}/openapi.json", timeout=10).json()
    return schemathesis.openapi.from_dict(strict_document(document))
