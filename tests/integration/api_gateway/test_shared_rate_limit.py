"""Two gateway processes started together share one rate limit through Redis."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from services.embedded import free_port
from testbed.polling import wait_for
from testbed.tokens import TokenFactory
from tests.stub_upstream import echo_app, serve

ROOT = Path(__file__).resolve().parents[3]
LIMIT = 12


def _healthy(url: str) -> bool:
    try:
        return requests.get(f"{url}/healthz", timeout=1).status_code == 200
    except requests.RequestException:
        return False


@pytest.fixture
def two_gateways(redis_url: str, namespace: str, tmp_path: Path
                 ) -> Iterator[tuple[list[str], TokenFactory]]:
    tokens = TokenFactory()
    with serve(echo_app(tokens.jwks())) as upstream:
        env = {**os.environ, "TASKSTREAM_ENV": "test", "REDIS_URL": redis_url,
               "REDIS_NAMESPACE": namespace, "AUTH_SERVICE_URL": upstream,
               "TASK_SERVICE_URL": upstream, "LOGGER_SERVICE_URL": upstream,
               "RATE_LIMIT_DEFAULT": f"{LIMIT}/minute", "WEB_CONCURRENCY": "2"}
        ports = [free_port(), free_port()]
        gunicorn = Path(sys.executable).with_name("gunicorn")
        processes = [subprocess.Popen(
            [str(gunicorn), "--config", "deploy/gunicorn.conf.py", "--bind", f"127.0.0.1:{port}",
             "services.api_gateway.entrypoints.app:create_app()"],
            cwd=ROOT, env=env, stdout=(tmp_path / f"gw{port}.log").open("wb"),
            stderr=subprocess.STDOUT) for port in ports]
        urls = [f"http://127.0.0.1:{port}" for port in ports]
        try:
            wait_for(lambda: all(_healthy(u) for u in urls), timeout=30, what="two gateways")
            yield urls, tokens
        finally:
            for process in processes:
                process.terminate()
                process.wait(10)


def test_exactly_the_limit_passes_across_two_processes(
    two_gateways: tuple[list[str], TokenFactory],
) -> None:
    urls, tokens = two_gateways
    headers = tokens.headers(user_id=77)
    targets = [urls[i % 2] + "/tasks" for i in range(LIMIT * 3)]
    with ThreadPoolExecutor(max_workers=8) as pool:
        responses = list(pool.map(lambda url: requests.get(url, headers=headers, timeout=10),
                                  targets))
    statuses = [r.status_code for r in responses]
    assert statuses.count(200) == LIMIT
    assert statuses.count(429) == LIMIT * 2
    rejected = next(r for r in responses if r.status_code == 429)
    assert rejected.json() == {"error": "Too many requests, please try again later."}
    assert "Retry-After" in rejected.headers
    assert rejected.headers.get("Server", "").lower().find("gunicorn") == -1
