"""Walking-skeleton latency: POST /task → visible in GET /tasks?date= after a transfer."""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

from bench.core import percentile, result, servers
from testbed.polling import wait_for
from testbed.stack import running_stack

TASKS = 200
COMMAND = "make bench BENCH=skeleton"


def _one_round(stack: Any, headers: dict[str, str], day: dt.date) -> float:
    session, base = stack.session, stack.base_url
    started = time.perf_counter()
    created = session.post(f"{base}/task", headers=headers, json={"title": f"bench {day}"})
    created.raise_for_status()
    task_id = created.json()["id"]
    session.post(f"{base}/admin/transfer", headers=headers,
                 json={"date": day.isoformat()}).raise_for_status()

    def visible() -> bool:
        response = session.get(f"{base}/tasks", params={"date": day.isoformat(),
                                                        "per_page": 100}, headers=headers)
        response.raise_for_status()
        return any(row["task_id"] == task_id for row in response.json())

    wait_for(visible, timeout=30, interval=0.002, what="the task in the TaskLogger")
    elapsed_ms = (time.perf_counter() - started) * 1000
    # Complete it (untimed) so that each date's transfer holds just the next round's task.
    session.put(f"{base}/task/{task_id}", headers=headers,
                json={"status": "completed"}).raise_for_status()
    return elapsed_ms


def run() -> list[dict[str, Any]]:
    """Measure p50/p99 over TASKS rounds, each on its own transfer date."""
    extra = {"RATE_LIMIT_DEFAULT": "100000000/minute"}
    with servers() as (pg, rds), running_stack(pg, rds, extra_env=extra) as stack:
        headers = stack.login()
        start = dt.date(2030, 1, 1)
        samples = [_one_round(stack, headers, start + dt.timedelta(days=i))
                   for i in range(TASKS)]
    notes = (f"{TASKS} rounds of one client: create, transfer for a new date, poll every 2 ms "
             "until listed (the task is then completed, untimed)")
    return [
        result("skeleton path latency p50", percentile(samples, 50), "ms", COMMAND, notes),
        result("skeleton path latency p99", percentile(samples, 99), "ms", COMMAND, notes),
    ]
