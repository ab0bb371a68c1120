"""Gateway overhead: a cached `GET /tasks?date=` direct and through the gateway, two ceilings."""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any

from bench.core import ROOT, result, servers
from bench.load import requests_per_second, tool_name
from services.embedded import free_port
from tests.polling import wait_for
from tests.stack import running_stack

COMMAND = "make bench BENCH=gateway"
DAY = "2031-01-01"
SECONDS = 5
# gunicorn's workers race to accept connections: in some runs one worker takes all of the
# load tool's connections and the other idles, which costs the bare endpoint up to two
# thirds of its rate. Each target is measured in several interleaved rounds on fresh
# connections and its best round is reported, the same rule for every target.
ROUNDS = 5


def _serve_bare(env: dict[str, str], factory: str = "create_app"
                ) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    gunicorn = os.path.join(os.path.dirname(sys.executable), "gunicorn")
    process = subprocess.Popen(
        [gunicorn, "--config", "deploy/gunicorn.conf.py", "--bind", f"127.0.0.1:{port}",
         f"bench.bare_app:{factory}()"], cwd=ROOT, env=env,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return process, f"http://127.0.0.1:{port}"


def _prime(stack: Any, headers: dict[str, str]) -> str:
    session, base = stack.session, stack.base_url
    session.post(f"{base}/task", headers=headers, json={"title": "cached"}).raise_for_status()
    session.post(f"{base}/admin/transfer", headers=headers, json={"date": DAY}).raise_for_status()
    path = f"/tasks?date={DAY}"
    wait_for(lambda: session.get(base + path, headers=headers).json(), timeout=30,
               what="the transferred task")
    assert session.get(base + path, headers=headers).headers.get("X-Cache") == "HIT"
    return path


def run() -> list[dict[str, Any]]:
    """Requests/s of the bare endpoint, the logger directly and the gateway, in one run."""
    extra = {"WEB_CONCURRENCY": "2", "RATE_LIMIT_DEFAULT": "100000000/minute",
             "LOG_LEVEL": "WARNING"}
    with servers() as (pg, rds), running_stack(pg, rds, extra_env=extra) as stack:
        headers = stack.login()
        path = _prime(stack, headers)
        bare, bare_url = _serve_bare({**stack.env, **extra})
        hop, hop_url = _serve_bare({**stack.env, **extra, "BARE_UPSTREAM_URL": bare_url},
                                   "create_hop")
        try:
            wait_for(lambda: _up(bare_url) and _up(hop_url), timeout=30,
                       what="the bare endpoint and hop")
            targets = {"bare": (bare_url + "/tasks", {}),
                       "hop": (hop_url + "/tasks", {}),
                       "logger": (stack.url("logger") + path, headers),
                       "gateway": (stack.base_url + path, headers)}
            rounds: dict[str, list[float]] = {name: [] for name in targets}
            for _ in range(ROUNDS):
                for name, (url, url_headers) in targets.items():
                    rounds[name].append(requests_per_second(url, url_headers, SECONDS))
        finally:
            for process in (bare, hop):
                process.terminate()
                process.wait(10)
    rates = {name: max(values) for name, values in rounds.items()}
    spread = "; ".join(f"{name} {min(values):.0f}-{max(values):.0f}"
                       for name, values in rounds.items())
    notes = (f"{tool_name()}, 16 connections, best of {ROUNDS} interleaved {SECONDS} s rounds "
             f"(all rounds: {spread} req/s); gunicorn 2 workers x 4 threads per service; "
             "cached date page (X-Cache: HIT); all on this one machine")
    return [
        result("bare Flask JSON endpoint", rates["bare"], "req/s", COMMAND, notes),
        result("bare Flask hop in front of it (forward only)", rates["hop"], "req/s", COMMAND,
               notes),
        result("GET /tasks?date= direct to logger", rates["logger"], "req/s", COMMAND, notes),
        result("GET /tasks?date= through gateway", rates["gateway"], "req/s", COMMAND, notes),
        result("gateway / bare ratio", rates["gateway"] / rates["bare"], "x", COMMAND, notes),
        result("gateway / direct ratio", rates["gateway"] / rates["logger"], "x", COMMAND, notes),
        result("bare hop / bare ratio", rates["hop"] / rates["bare"], "x", COMMAND, notes),
    ]


def _up(url: str) -> bool:
    import requests

    try:
        return requests.get(url + "/tasks", timeout=1).status_code == 200
    except requests.RequestException:
        return False
