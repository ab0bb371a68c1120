"""The clustered chaos run: the single-machine scenario's traffic and checks, with the faults
of a cluster (a Redis master, relays, projector members, one replica of each HTTP service),
and probes of what must hold across replicas: the rate limit, `Idempotency-Key`, `If-Match`.
"""

from __future__ import annotations

import itertools
import uuid
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import requests

from testbed.cluster_deployment import (
    LOGIN_LIMIT,
    PROJECTORS,
    RELAYS,
    REPLICAS,
    ClusterChaosStack,
    client_address,
)
from tests.chaos.report import ChaosReport, run_chaos
from tests.chaos.scenario import Injector, ScenarioConfig

HTTP_VICTIMS = ("gateway", "auth", "tasks", "logger")


class ClusterInjector(Injector):
    """Kills a Redis master (its replica takes over), relays, projector members and one
    replica of each HTTP service at a time; each comes back after its downtime."""

    KINDS = ("kill_redis_master", "kill_relay", "kill_projector",
             *(f"kill_{service}" for service in HTTP_VICTIMS))
    chaos: ClusterChaosStack  # type: ignore[assignment]

    def actions(self) -> dict[str, Callable[[float], None]]:
        """What each kind of fault does."""
        members = {"relay": RELAYS, "projector": PROJECTORS} | {
            service: REPLICAS[service] for service in HTTP_VICTIMS}
        turns = getattr(self, "turns", None) or {
            name: itertools.cycle(range(1, count + 1)) for name, count in members.items()}
        self.turns = turns
        found: dict[str, Callable[[float], None]] = {"kill_redis_master": self.kill_master}
        for name in members:
            found[f"kill_{name}"] = lambda down, name=name: self.kill_member(  # type: ignore[misc]
                f"{name}-{next(turns[name])}", down)
        return found

    def kill_master(self, down: float) -> None:
        """SIGKILL the master of the stream's slot; start it again (it rejoins as a replica)."""
        victim = self.chaos.cluster.kill_master(self.chaos.stream_key)
        self.pause.wait(down)
        self.chaos.cluster.restart(victim)

    def kill_member(self, name: str, down: float) -> None:
        """SIGKILL one process; start it again; for an HTTP replica, wait until it is ready,
        so that one replica of a service is down at a time."""
        self.chaos.kill(name)
        self.pause.wait(down)
        self.chaos.start(name)
        if name in self.chaos.replica_ports:
            self.chaos.wait_healthy(name)


@dataclass
class ProbeResults:
    """What the probes across replicas found; `problems()` is empty when all held."""

    login_statuses: Counter[int] = field(default_factory=Counter)
    idempotent_statuses: Counter[int] = field(default_factory=Counter)
    idempotent_ids: set[Any] = field(default_factory=set)
    idempotent_tasks: int = 0
    if_match_statuses: Counter[int] = field(default_factory=Counter)
    stale_if_match: int = 0
    scheduled_transfers: int = 0  # appended by the Celery worker, sent by beat via RabbitMQ

    def problems(self) -> list[str]:
        """Everything that did not hold."""
        found = []
        admitted = sum(n for status, n in self.login_statuses.items() if status != 429)
        if admitted != LOGIN_LIMIT or self.login_statuses[429] != 2 * LOGIN_LIMIT:
            found.append(f"rate limit {LOGIN_LIMIT}/minute admitted {admitted} of "
                         f"{3 * LOGIN_LIMIT}: {dict(self.login_statuses)}")
        if len(self.idempotent_ids) != 1 or self.idempotent_tasks != 1 or not set(
                self.idempotent_statuses) <= {200, 201, 409}:
            found.append(f"Idempotency-Key: statuses {dict(self.idempotent_statuses)}, ids "
                         f"{self.idempotent_ids}, tasks made {self.idempotent_tasks}")
        ok = sum(n for status, n in self.if_match_statuses.items() if 200 <= status < 300)
        if ok != 1 or not set(self.if_match_statuses) <= {200, 409, 412}:
            found.append(f"If-Match: concurrent writers of one version got "
                         f"{dict(self.if_match_statuses)}")
        if self.stale_if_match != 412:
            found.append(f"If-Match with a stale version answered {self.stale_if_match}")
        return found

    def text(self) -> str:
        """One line per probe."""
        return (f"  rate limit {LOGIN_LIMIT}/minute across gateways: "
                f"{dict(self.login_statuses)}\n"
                f"  Idempotency-Key replays: {dict(self.idempotent_statuses)}, "
                f"{self.idempotent_tasks} task made\n"
                f"  If-Match, concurrent writers: {dict(self.if_match_statuses)}; stale: "
                f"{self.stale_if_match}\n"
                f"  scheduled transfers appended by the Celery worker: "
                f"{self.scheduled_transfers}")


def probe_replicas(chaos: ClusterChaosStack, workers: int = 6) -> ProbeResults:
    """Through the load balancer (round robin: consecutive requests reach other replicas)."""
    results = ProbeResults()
    base, headers = chaos.stack.base_url, chaos.stack.login()
    with ThreadPoolExecutor(max_workers=workers) as pool:
        address = client_address()
        results.login_statuses = Counter(pool.map(lambda _n: _failed_login(base, address),
                                                  range(3 * LOGIN_LIMIT)))
        key, title = uuid.uuid4().hex, f"idempotent {uuid.uuid4().hex}"
        replies = list(pool.map(lambda _n: requests.post(
            f"{base}/task", json={"title": title}, timeout=30,
            headers={**headers, "Idempotency-Key": key}), range(workers)))
        replies += [requests.post(f"{base}/task", json={"title": title}, timeout=30,
                                  headers={**headers, "Idempotency-Key": key})
                    for _ in range(4)]
        results.idempotent_statuses = Counter(r.status_code for r in replies)
        results.idempotent_ids = {r.json()["id"] for r in replies if r.ok}
        results.idempotent_tasks = chaos.scalar(
            "tasks", f"SELECT count(*) FROM task_manager WHERE title = '{title}'")
        made = requests.post(f"{base}/task", json={"title": "if-match"}, headers=headers,
                             timeout=30)
        assert made.status_code == 201, f"POST /task answered {made.status_code}: {made.text}"
        etag, url = made.headers["ETag"], f"{base}/task/{made.json()['id']}"
        replies = list(pool.map(lambda n: requests.put(
            url, json={"title": f"writer {n}"}, timeout=30,
            headers={**headers, "If-Match": etag}), range(workers)))
        results.if_match_statuses = Counter(r.status_code for r in replies)
        results.stale_if_match = requests.put(url, json={"title": "late"}, timeout=30,
                                              headers={**headers, "If-Match": etag}).status_code
    results.scheduled_transfers = chaos.scalar(
        "tasks", "SELECT count(*) FROM events WHERE type = 'DailyTransferRequested' "
        "AND metadata->'actor'->>'username' = 'scheduler'")
    return results


def _failed_login(base: str, address: str) -> int:
    """One login with a wrong password (and a new username) from the client `address`."""
    return requests.post(f"{base}/auth/login", timeout=30,
                         json={"username": f"nobody-{uuid.uuid4().hex[:8]}",
                               "password": "wrong-password"},
                         headers={"X-Forwarded-For": address}).status_code


@dataclass
class ClusterChaosOutcome:
    """The chaos report, and the probes before the faults and after them."""

    report: ChaosReport
    before: ProbeResults
    after: ProbeResults

    @property
    def ok(self) -> bool:
        """The chaos run passed, every probe held before and after, and Celery ran the
        scheduled transfer."""
        return (self.report.ok and not self.before.problems() and not self.after.problems()
                and self.after.scheduled_transfers > 0)

    def text(self) -> str:
        """The figures for a person."""
        lines = [self.report.text(), "Across replicas, before the faults:", self.before.text(),
                 "Across replicas, after the faults:", self.after.text()]
        lines += [f"  PROBLEM: {p}" for p in self.before.problems() + self.after.problems()]
        if not self.after.scheduled_transfers:
            lines.append("  PROBLEM: no scheduled transfer: beat, RabbitMQ or the worker failed")
        return "\n".join(lines)


def run_cluster_chaos(chaos: ClusterChaosStack, config: ScenarioConfig,
                      quiesce_timeout: float = 300.0) -> ClusterChaosOutcome:
    """Probe, drive traffic under the cluster's faults, wait for quiescence, check, probe."""
    before = probe_replicas(chaos)
    report = run_chaos(chaos, config, quiesce_timeout, ClusterInjector)  # type: ignore[arg-type]
    return ClusterChaosOutcome(report, before, probe_replicas(chaos))
