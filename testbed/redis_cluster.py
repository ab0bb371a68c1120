"""A Redis Cluster on loopback ports for tests and `make test-cluster`: 3 masters, 3 replicas.

Six `redis-server` processes in cluster mode, joined by `redis-cli --cluster create`, each
on a free port (its cluster bus on port + 10000 must be free too). `kill_master` SIGKILLs the
master of a key's slot and waits until its replica has taken the slot over. `single_redis` is
one plain server of the same binary and settings, for references measured beside the cluster.
"""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis
from redis.cluster import RedisCluster
from redis.crc import key_slot

from services.embedded import free_port
from testbed.polling import wait_for

BUS_PORT_OFFSET = 10000
NODE_TIMEOUT_MS = 1500  # how long a master may be silent before its replica is promoted


@dataclass
class ClusterNode:
    """One redis-server of the cluster."""

    port: int
    data_dir: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        """`127.0.0.1:<port>`."""
        return f"127.0.0.1:{self.port}"

    def client(self) -> redis.Redis:
        """A plain client of this node alone."""
        return redis.Redis(port=self.port, socket_timeout=2, socket_connect_timeout=1)

    def start(self, binary: str) -> None:
        """Start the server in cluster mode (it keeps its node id in `nodes.conf`)."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1",
             "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
             "--cluster-node-timeout", str(NODE_TIMEOUT_MS), "--save", "",
             "--appendonly", "no", "--dir", str(self.data_dir),
             "--logfile", str(self.data_dir / "redis.log")],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True)
        wait_for(self._answers, timeout=15, what=f"redis-server on {self.port}")

    def kill(self) -> None:
        """SIGKILL the server."""
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait()

    def stop(self) -> None:
        """Terminate the server and wait for it."""
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()

    def alive(self) -> bool:
        """True while the process runs."""
        return self.process is not None and self.process.poll() is None

    def _answers(self) -> bool:
        if self.process and self.process.poll() is not None:
            raise RuntimeError(f"redis-server on {self.port} exited with "
                               f"{self.process.returncode}; see {self.data_dir}/redis.log")
        try:
            return bool(self.client().ping())
        except redis.ConnectionError:
            return False


@dataclass
class LocalRedisCluster:
    """Six cluster nodes on this machine; `url` is the `redis+cluster://` URL of them all."""

    root: Path
    nodes: list[ClusterNode] = field(default_factory=list)

    @property
    def url(self) -> str:
        """The cluster's URL in the form `REDIS_URL` and `limits` take."""
        return "redis+cluster://" + ",".join(node.address for node in self.nodes)

    def start(self, masters: int = 3, replicas_each: int = 1) -> str:
        """Start the nodes, create the cluster, wait until every slot is served; return `url`."""
        binary, cli = _binaries()
        for index in range(masters * (1 + replicas_each)):
            self.nodes.append(ClusterNode(_free_cluster_port(), self.root / f"node{index}"))
        for node in self.nodes:
            node.start(binary)
        subprocess.run(
            [cli, "--cluster", "create", *(node.address for node in self.nodes),
             "--cluster-replicas", str(replicas_each), "--cluster-yes"],
            check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=60)
        wait_for(lambda: self._settled(masters * replicas_each), timeout=60,
                 what="the Redis Cluster to serve every slot with its replicas")
        return self.url

    def stop(self) -> None:
        """Stop every node."""
        for node in self.nodes:
            node.stop()

    def client(self, **options: Any) -> RedisCluster:
        """A cluster client of this cluster."""
        return RedisCluster(host="127.0.0.1", port=self.live_nodes()[0].port, **options)

    def live_nodes(self) -> list[ClusterNode]:
        """The nodes whose process runs."""
        return [node for node in self.nodes if node.alive()]

    def master_of(self, key: str) -> ClusterNode:
        """The node serving the slot of `key` now."""
        slot = key_slot(key.encode())
        for start, end, (_host, port, *_), *_replicas in self._slots():
            if int(start) <= slot <= int(end):
                return next(node for node in self.nodes if node.port == int(port))
        raise LookupError(f"no node serves slot {slot}")

    def kill_master(self, key: str, timeout: float = 30.0) -> ClusterNode:
        """SIGKILL the master of `key`'s slot; return it once another node serves the slot."""
        victim = self.master_of(key)
        victim.kill()
        wait_for(lambda: self._served_by_other(key, victim), timeout=timeout,
                 what=f"a replica to take over from {victim.address}")
        return victim

    def wait_replicated(self, key: str, timeout: float = 30.0) -> None:
        """Wait until the replicas of `key`'s master have every write it took (replication is
        asynchronous: a master killed before that loses the writes its replicas lack)."""
        master = self.master_of(key).client()
        wait_for(lambda: _replicas_caught_up(master), timeout=timeout,
                 what=f"the replicas of the master of {key!r} to catch up")

    def restart(self, node: ClusterNode) -> None:
        """Start a killed node again (it rejoins as a replica of the master that replaced it)."""
        binary, _cli = _binaries()
        node.start(binary)
        wait_for(lambda: self._settled(None), timeout=60, what=f"{node.address} to rejoin")

    def _served_by_other(self, key: str, victim: ClusterNode) -> bool:
        try:
            return self.master_of(key).port != victim.port and self._ok()
        except (redis.RedisError, LookupError, StopIteration):
            return False

    def _slots(self) -> list[list[Any]]:
        reply = self.live_nodes()[0].client().execute_command("CLUSTER", "SLOTS")
        return [list(entry) for entry in reply]  # type: ignore[union-attr]

    def _ok(self) -> bool:
        for node in self.live_nodes():
            info = node.client().execute_command("CLUSTER", "INFO")
            text = info.decode() if isinstance(info, bytes) else str(info)
            if "cluster_state:ok" not in text:
                return False
        return True

    def _settled(self, replicas: int | None) -> bool:
        """Every live node says the cluster is ok; with `replicas`, that many are linked."""
        try:
            if not self._ok():
                return False
            slots = self._slots()
        except redis.RedisError:
            return False
        served = sum(int(entry[1]) - int(entry[0]) + 1 for entry in slots)
        linked = sum(len(entry) - 3 for entry in slots)
        return served == 16384 and (replicas is None or linked >= replicas)


@contextmanager
def redis_cluster(masters: int = 3, replicas_each: int = 1) -> Iterator[LocalRedisCluster]:
    """A running local Redis Cluster, stopped (and its files removed) on exit."""
    with tempfile.TemporaryDirectory(prefix="ts-redis-cluster-") as tmp:
        cluster = LocalRedisCluster(Path(tmp))
        try:
            cluster.start(masters, replicas_each)
            yield cluster
        finally:
            cluster.stop()


@contextmanager
def single_redis() -> Iterator[str]:
    """One plain redis-server (not in cluster mode), the same binary and settings as the
    cluster's nodes, for a reference measured beside the cluster; yields its URL."""
    binary, _cli = _binaries()
    with tempfile.TemporaryDirectory(prefix="ts-redis-single-") as tmp:
        port = free_port()
        process = subprocess.Popen(
            [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", tmp, "--logfile", f"{tmp}/redis.log"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True)
        node = ClusterNode(port, Path(tmp), process)
        try:
            wait_for(node._answers, timeout=15, what=f"redis-server on {port}")
            yield f"redis://127.0.0.1:{port}/0"
        finally:
            node.stop()


def _replicas_caught_up(master: redis.Redis) -> bool:
    info: dict[str, Any] = master.info("replication")  # type: ignore[assignment]
    offset = int(info["master_repl_offset"])
    replicas = [value for name, value in info.items() if name.startswith("slave")
                and isinstance(value, dict)]
    return bool(replicas) and all(int(replica["offset"]) >= offset for replica in replicas)


def _binaries() -> tuple[str, str]:
    server, cli = shutil.which("redis-server"), shutil.which("redis-cli")
    if not server or not cli:
        raise RuntimeError("a local Redis Cluster needs redis-server and redis-cli on PATH "
                           "(Debian: apt-get install redis-server)")
    return server, cli


def _free_cluster_port() -> int:
    """A free port whose cluster bus port (+10000) is free as well."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        port = free_port()
        if port + BUS_PORT_OFFSET < 65536 and _free(port + BUS_PORT_OFFSET):
            return port
    raise RuntimeError("no free port pair for a Redis Cluster node")


def _free(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True
