"""Choosing a Redis Cluster: its URL forms, hash-tagged keys, and Celery's broker beside it."""

from __future__ import annotations

from datetime import time

import pytest

from services.task_service.config import Settings
from services.task_service.entrypoints.celery_app import celery_config
from shared.config import ConfigError, Env
from shared.redis_client import cluster_url, hash_tagged, is_cluster_url, redis_client
from shared.settings import CommonSettings

NODES = "redis+cluster://:pw@10.0.0.1:7000,10.0.0.2:7001"


def test_REDIS_CLUSTER_URL_wins_and_comes_back_in_the_cluster_form(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REDIS_URL", "redis://single:6379/0")
    monkeypatch.setenv("REDIS_CLUSTER_URL", "redis://node-a:7000,node-b:7001")
    assert Env("test").redis_url() == "redis+cluster://node-a:7000,node-b:7001"
    monkeypatch.setenv("REDIS_CLUSTER_URL", NODES)
    assert Env("test").redis_url() == NODES
    monkeypatch.delenv("REDIS_URL")
    monkeypatch.setenv("REDIS_CLUSTER_URL", "redis://:change-me@node-a:7000")
    with pytest.raises(ConfigError, match="REDIS_CLUSTER_URL has an empty or placeholder"):
        Env("production").redis_url()


def test_cluster_urls_are_told_apart() -> None:
    assert is_cluster_url(NODES) and is_cluster_url("rediss+cluster://h:1")
    assert not is_cluster_url("redis://h:6379/0") and not is_cluster_url("redis+unix:///s")
    assert cluster_url("rediss://h:1") == "rediss+cluster://h:1"
    assert cluster_url(NODES) == NODES


def test_a_plain_url_still_makes_a_plain_client() -> None:
    client = redis_client("redis://127.0.0.1:1/3")  # connects only when used
    assert client.connection_pool.connection_kwargs["db"] == 3


def test_keys_that_belong_together_are_hash_tagged_only_on_a_cluster() -> None:
    assert hash_tagged("ns:events") == "{ns:events}"
    assert hash_tagged("ns:events:{3}") == "ns:events:{3}"
    single = CommonSettings(environment="test", redis_url="redis://h:6379/0", namespace="ns")
    assert single.stream_key() == "ns:events" and not single.clustered
    clustered = CommonSettings(environment="test", redis_url=NODES, namespace="ns")
    assert clustered.stream_key() == "{ns:events}" and clustered.clustered


def test_celery_needs_its_own_broker_beside_a_cluster(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REDIS_CLUSTER_URL", NODES)
    monkeypatch.setenv("TASKS_DATABASE_URL", "postgresql://db/tasks")
    with pytest.raises(ConfigError, match="CELERY_BROKER_URL"):
        Settings.from_env(Env("test"))
    monkeypatch.setenv("CELERY_BROKER_URL", "amqp://guest:guest@127.0.0.1:5672//")
    settings = Settings.from_env(Env("test"))
    config = celery_config(settings)
    assert config["broker_url"] == "amqp://guest:guest@127.0.0.1:5672//"
    assert config["broker_transport_options"] == {}


def test_celery_uses_the_redis_server_when_no_broker_is_named() -> None:
    common = CommonSettings(environment="test", redis_url="redis://h:6379/0", namespace="ns")
    config = celery_config(Settings(common, "postgresql://x/y", time(0, 5)))
    assert config["broker_url"] == "redis://h:6379/0"
    assert config["broker_transport_options"]["global_keyprefix"] == "ns:celery:"
