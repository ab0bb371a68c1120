"""The one place a Redis client is made: a single server, or a Redis Cluster.

A URL whose scheme ends in `+cluster` (`redis+cluster://host:port[,host:port...]`, the form
the `limits` library also takes) names some nodes of a Redis Cluster, and gets redis-py's
cluster client, which follows the cluster's slot map, redirections and failovers. Any other
URL gets a plain client of one server.

Both clients are typed as `redis.Redis` for the code that uses them: the cluster client
answers the same commands, and keys that a command, script or transaction uses together
carry one hash tag (see `hash_tagged`), so they always sit in one slot.
"""

from __future__ import annotations

from typing import Any, cast
from urllib.parse import unquote, urlsplit

import redis
from redis.cluster import ClusterNode, RedisCluster

CLUSTER_SUFFIX = "+cluster"
DEFAULT_PORT = 6379


def is_cluster_url(url: str) -> bool:
    """True for a `redis+cluster://` (or `rediss+cluster://`) URL."""
    return urlsplit(url).scheme.endswith(CLUSTER_SUFFIX)


def cluster_url(url: str) -> str:
    """`redis://host:port` as `redis+cluster://host:port`; a cluster URL stays as it is."""
    if is_cluster_url(url):
        return url
    scheme, rest = url.split("://", 1)
    return f"{scheme}{CLUSTER_SUFFIX}://{rest}"


def redis_client(url: str, **options: Any) -> redis.Redis:
    """A client of the server or cluster `url` names; `options` go to redis-py as they are."""
    if not is_cluster_url(url):
        return redis.Redis.from_url(url, **options)
    return cast(redis.Redis, cluster_client(url, **options))


def cluster_client(url: str, **options: Any) -> RedisCluster:
    """A cluster client starting from every node the URL lists."""
    parts = urlsplit(url)
    auth, _, hosts = parts.netloc.rpartition("@")
    user, _, password = auth.partition(":")
    if auth:
        options.setdefault("username", unquote(user) or None)
        options.setdefault("password", unquote(password) or None)
    if parts.scheme.startswith("rediss"):
        options.setdefault("ssl", True)
    return RedisCluster(startup_nodes=[_node(host) for host in hosts.split(",")], **options)


def is_cluster(client: object) -> bool:
    """True when `client` talks to a Redis Cluster."""
    return isinstance(client, RedisCluster)


def hash_tagged(key: str) -> str:
    """`key` as its own hash tag (`{ns:name}`), unless it already has one.

    Redis Cluster places a key by the part between its first `{` and `}`; keys made by
    appending to a tagged key (`{ns:name}:dead`) therefore share its slot.
    """
    return key if "{" in key else f"{{{key}}}"


def _node(host_port: str) -> ClusterNode:
    host, _, port = host_port.strip().rpartition(":")
    if not host:  # no port given
        return ClusterNode(port, DEFAULT_PORT)
    return ClusterNode(host.strip("[]"), int(port))
