"""What a user does through the published gateway, and the metrics of every process read
from inside the compose network."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from typing import Any

import requests

from testbed.polling import wait_for
from tests.containers.docker import say
from tests.containers.stack import ComposeStack

# Where each process serves /metrics inside the network, and a metric it must show.
METRICS = {
    "gateway": ("http://gateway:5000/metrics", "taskstream_http_requests_total"),
    "auth": ("http://auth:5001/metrics", "taskstream_http_requests_total"),
    "tasks": ("http://tasks:5002/metrics", "taskstream_http_requests_total"),
    "logger": ("http://logger:5003/metrics", "taskstream_http_requests_total"),
    "relay": ("http://relay:9101/metrics", "taskstream_relay_published_total"),
    "projector": ("http://projector:9102/metrics", "taskstream_projector_events_applied_total"),
    "webhooks": ("http://webhooks:9103/metrics", "taskstream_webhook_deliveries_total"),
}
# Run inside the gateway's container: fetch each URL, print {name: [status, body]}.
FETCH = """
import json, sys, urllib.request
out = {}
for name, url in json.loads(sys.argv[1]).items():
    with urllib.request.urlopen(url, timeout=5) as response:
        out[name] = [response.status, response.read().decode()]
print(json.dumps(out))
"""


class CheckFailed(AssertionError):
    """A check of the container run did not hold."""


@dataclass
class Checks:
    """The checks made so far, by name."""

    passed: list[str] = field(default_factory=list)

    def expect(self, name: str, holds: bool, detail: Any = "") -> None:
        """Record a check that holds, or stop the run with what was seen instead."""
        if not holds:
            raise CheckFailed(f"{name}: {detail}")
        self.passed.append(name)
        say(f"ok: {name}")


@dataclass
class Gateway:
    """An admin's session with the published gateway."""

    url: str
    session: requests.Session = field(default_factory=requests.Session)

    def login(self, password: str) -> None:
        """Log in as the first admin and send the token from now on."""
        response = self.session.post(f"{self.url}/auth/login",
                                     json={"username": "admin", "password": password}, timeout=10)
        response.raise_for_status()
        self.session.headers["Authorization"] = f"Bearer {response.json()['access_token']}"

    def call(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        """One request to the gateway."""
        return self.session.request(method, f"{self.url}{path}", timeout=30, **kwargs)

    def day(self, date: str) -> dict[int, dict[str, Any]]:
        """The day's TaskLogger entries, by task id."""
        response = self.call("GET", "/tasks", params={"date": date, "per_page": 100})
        response.raise_for_status()
        return {entry["task_id"]: entry for entry in response.json()}

    def audit(self, task_id: int) -> list[dict[str, Any]]:
        """The audit trail of one task."""
        response = self.call("GET", "/audit", params={"task_id": task_id})
        response.raise_for_status()
        entries: list[dict[str, Any]] = response.json()
        return entries


@dataclass
class Snapshot:
    """What the API shows after the smoke test: it must survive a stop and a start."""

    date: str
    day: dict[int, dict[str, Any]]
    audits: dict[int, list[dict[str, Any]]]


def smoke(stack: ComposeStack, checks: Checks) -> Snapshot:
    """Log in, create, update, delete, import, transfer; read the day and the audit trail."""
    gateway = Gateway(stack.gateway_url)
    registration = gateway.call("POST", "/auth/register",
                                json={"username": "visitor", "password": "long enough 1"})
    checks.expect("production settings honoured (registration closed)",
                  registration.status_code == 403, registration.text)
    gateway.login(stack.admin_password)
    checks.expect("admin logs in with the password from its secret file", True)
    kept, dropped = (create(gateway, checks, title) for title in ("Keep me", "Drop me"))
    changed = gateway.call("PUT", f"/task/{kept}",
                           json={"title": "Kept and started", "status": "in_progress"})
    checks.expect("update a task", changed.status_code == 200, changed.text)
    deleted = gateway.call("DELETE", f"/task/{dropped}")
    checks.expect("delete a task", deleted.status_code == 200, deleted.text)
    imported = gateway.call("POST", "/upload-csv", data=b"title,priority\nFrom CSV 1,high\n"
                            b"From CSV 2,low\n", headers={"Content-Type": "text/csv"})
    checks.expect("import a CSV", imported.status_code == 201 and
                  imported.json()["imported"] == 2, imported.text)
    date = dt.datetime.now(dt.UTC).date().isoformat()
    transfer = gateway.call("POST", "/admin/transfer", json={"date": date})
    checks.expect("request a transfer", transfer.status_code == 202, transfer.text)
    day = wait_for(lambda: listed(gateway, date, kept), timeout=60, interval=0.5,
                   what="the transfer in the day's list")
    checks.expect("the day's list has the changed task and the imports, not the deleted one",
                  day[kept]["title"] == "Kept and started" and dropped not in day
                  and sum(e["title"].startswith("From CSV") for e in day.values()) == 2, day)
    audit = gateway.audit(kept)
    checks.expect("the audit trail has the status change",
                  [(a["previous_status"], a["new_status"]) for a in audit][-1:]
                  == [("active", "in_progress")], audit)
    return Snapshot(date, day, {task: gateway.audit(task) for task in (kept, dropped)})


def create(gateway: Gateway, checks: Checks, title: str) -> int:
    """Create a task; return its id."""
    response = gateway.call("POST", "/task", json={"title": title})
    checks.expect(f"create a task ({title})", response.status_code == 201, response.text)
    task_id: int = response.json()["id"]
    return task_id


def listed(gateway: Gateway, date: str, task_id: int) -> dict[int, dict[str, Any]]:
    """The day's entries once the task is among them (with its new status), else none."""
    day = gateway.day(date)
    entry = day.get(task_id)
    return day if entry and entry["status"] == "in_progress" and len(day) >= 3 else {}


def read_metrics(stack: ComposeStack, checks: Checks) -> None:
    """Every process's /metrics, reached over the compose network (only the gateway is
    published, so this runs inside the gateway's container)."""
    urls = json.dumps({name: url for name, (url, _) in METRICS.items()})
    result = stack("exec", "-T", "gateway", "python3", "-c", FETCH, urls)
    bodies = json.loads(result.stdout)
    for name, (_, metric) in METRICS.items():
        status, body = bodies[name]
        checks.expect(f"/metrics of {name} on the compose network",
                      status == 200 and metric in body, f"{status} {body[:200]}")


def after_restart(stack: ComposeStack, checks: Checks, before: Snapshot) -> None:
    """Nothing the API showed is lost, and the pipeline works again end to end."""
    gateway = Gateway(stack.gateway_url)
    gateway.login(stack.admin_password)
    checks.expect("the day's list is unchanged after the restart",
                  gateway.day(before.date) == before.day, gateway.day(before.date))
    audits = {task: gateway.audit(task) for task in before.audits}
    checks.expect("the audit trails are unchanged after the restart", audits == before.audits,
                  audits)
    task = create(gateway, checks, "After the restart")
    transfer = gateway.call("POST", "/admin/transfer", json={"date": before.date})
    checks.expect("request a transfer after the restart", transfer.status_code == 202)
    wait_for(lambda: task in gateway.day(before.date), timeout=60, interval=0.5,
             what="a task made after the restart in the day's list")
    checks.expect("a task made after the restart reaches the day's list", True)
