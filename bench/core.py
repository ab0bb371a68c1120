"""Result records, the machine description, and where results are written."""

from __future__ import annotations

import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psutil
import requests

from services.embedded import free_port
from testbed.servers import postgres_server, redis_server

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
BENCH_DOC = ROOT / "docs" / "benchmarks.md"


def machine() -> str:
    """One line describing this machine."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = psutil.virtual_memory().total / 2**30
    return (f"{cpu}, {os.cpu_count()} cores, {memory:.0f} GiB, "
            f"{platform.system()} {platform.release()}, Python {platform.python_version()}")


def result(figure: str, value: float, unit: str, command: str, notes: str = "") -> dict[str, Any]:
    """One measured figure."""
    return {"figure": figure, "value": round(value, 3), "unit": unit, "command": command,
            "notes": notes, "machine": machine(),
            "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}


def percentile(samples: Sequence[float], pct: float) -> float:
    """The pct-th percentile (nearest rank) of samples."""
    ordered = sorted(samples)
    rank = max(0, min(len(ordered) - 1, round(pct / 100 * len(ordered) + 0.5) - 1))
    return ordered[rank]


def mean(samples: Sequence[float]) -> float:
    """Arithmetic mean."""
    return statistics.fmean(samples)


@contextmanager
def servers() -> Iterator[tuple[str, str]]:
    """PostgreSQL and Redis for a benchmark, found as the tests find theirs (testbed.servers)."""
    with postgres_server() as pg, redis_server() as rds:
        yield pg, rds


def serve_gunicorn(env: dict[str, str], app: str) -> tuple[subprocess.Popen[bytes], str]:
    """Run `app` (a gunicorn app spec) under the services' gunicorn settings on a free
    port; the process and its base URL."""
    port = free_port()
    gunicorn = os.path.join(os.path.dirname(sys.executable), "gunicorn")
    process = subprocess.Popen(
        [gunicorn, "--config", "deploy/gunicorn.conf.py", "--bind", f"127.0.0.1:{port}", app],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return process, f"http://127.0.0.1:{port}"


def answers(url: str, timeout: float = 2.0,
            accept: Callable[[int], bool] = lambda status: status < 500) -> bool:
    """Whether a server answers a GET of `url` as `accept` wants (by default anything but a
    5xx: a 401 of a route that needs a token, or a 405 of a POST route, says it is up)."""
    try:
        return accept(requests.get(url, timeout=timeout).status_code)
    except requests.RequestException:
        return False
