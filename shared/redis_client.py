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

from collections.abc import Sequence
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


def pipelined(client: redis.Redis, commands: Sequence[Sequence[Any]]) -> list[Any]:
    """Send `commands` (each a command's words, its key second) in one pipeline and return
    each reply, an error as its exception.

    On a cluster redis-py's cluster pipeline looks up the slot and node of every command,
    which costs more than sending it; here the commands are grouped by the node of their key
    and each node gets a plain pipeline. A redirection (a failover moved a slot) or a lost
    node sends the whole list again through the cluster pipeline, which follows and refreshes
    the slot map, so callers must send only commands that may be repeated (an XADD with an
    explicit id, a SET)."""
    if is_cluster(client):
        try:
            return _by_node(cast(RedisCluster, client), commands)
        except (redis.ConnectionError, redis.TimeoutError, _Redirected):
            pass
    pipe = client.pipeline(transaction=False)
    for command in commands:
        pipe.execute_command(*command)
    return list(pipe.execute(raise_on_error=False))


class _Redirected(Exception):
    """A node answered MOVED or ASK, or its slot is being moved: the slot map changed."""


# The answers of a node that no longer (or not yet) serves the slot it was sent.
REDIRECTED = (redis.exceptions.AskError, redis.exceptions.TryAgainError,
              redis.exceptions.ClusterDownError)


def _by_node(client: RedisCluster, commands: Sequence[Sequence[Any]]) -> list[Any]:
    groups: dict[str, tuple[Any, list[int]]] = {}
    for index, command in enumerate(commands):
        node = client.get_node_from_key(command[1])
        groups.setdefault(node.name, (node, []))[1].append(index)
    replies: list[Any] = [None] * len(commands)
    for node, indexes in groups.values():
        pipe = client.get_redis_connection(node).pipeline(transaction=False)
        for index in indexes:
            pipe.execute_command(*commands[index])
        for index, reply in zip(indexes, pipe.execute(raise_on_error=False), strict=True):
            if isinstance(reply, REDIRECTED):
                raise _Redirected(str(reply))
            replies[index] = reply
    return replies


def _node(host_port: str) -> ClusterNode:
    host, _, port = host_port.strip().rpartition(":")
    if not host:  # no port given
        return ClusterNode(port, DEFAULT_PORT)
    return ClusterNode(host.strip("[]"), int(port))
