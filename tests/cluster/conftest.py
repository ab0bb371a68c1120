"""A Redis Cluster (3 masters, 3 replicas) on loopback ports for this folder.

`redis_url` and `redis_client` are the cluster's here, so fixtures of other folders that take
them (two gateways, say) run against the cluster unchanged.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis

from shared.redis_client import redis_client as make_client
from testbed.redis_cluster import LocalRedisCluster, redis_cluster


@pytest.fixture(scope="package")
def cluster() -> Iterator[LocalRedisCluster]:
    """The cluster of this folder's tests."""
    with redis_cluster() as running:
        yield running


@pytest.fixture(scope="package")
def redis_url(cluster: LocalRedisCluster) -> str:
    """The cluster's `redis+cluster://` URL."""
    return cluster.url


@pytest.fixture
def redis_client(redis_url: str, namespace: str) -> Iterator[redis.Redis]:
    """A cluster client, made as the services make theirs; the test's keys go afterwards."""
    client = make_client(redis_url, socket_timeout=2)
    yield client
    for key in list(client.scan_iter(match=f"*{namespace}*", count=1000)):
        client.delete(key)
    client.close()
