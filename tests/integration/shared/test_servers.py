"""The suite's own servers: TEST_USE_DOCKER=1 without a reachable Docker falls back."""

from __future__ import annotations

import pytest
import redis

from testbed.servers import redis_server


def test_docker_requested_but_unreachable_falls_back_to_embedded_servers(
        monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    monkeypatch.delenv("TEST_REDIS_URL", raising=False)
    monkeypatch.setenv("TEST_USE_DOCKER", "1")
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-docker.sock")
    with redis_server() as url:
        assert redis.Redis.from_url(url).ping()
