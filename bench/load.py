"""One load tool for every HTTP benchmark: wrk when installed, else a Python thread pool."""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor

import requests

WRK_RATE = re.compile(r"Requests/sec:\s+([\d.]+)")


def tool_name() -> str:
    """The load tool this machine will use."""
    return "wrk" if shutil.which("wrk") else "python-threads"


def requests_per_second(url: str, headers: dict[str, str], seconds: int = 10,
                        connections: int = 16) -> float:
    """Sustained GET requests/s against `url`."""
    if shutil.which("wrk"):
        return _wrk(url, headers, seconds, connections)
    return _threads(url, headers, seconds, connections)


def _wrk(url: str, headers: dict[str, str], seconds: int, connections: int) -> float:
    args = ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency"]
    for name, value in headers.items():
        args += ["-H", f"{name}: {value}"]
    output = subprocess.run([*args, url], check=True, capture_output=True, text=True).stdout
    if "Non-2xx" in output:
        raise RuntimeError(f"non-2xx responses under load:\n{output}")
    match = WRK_RATE.search(output)
    if not match:
        raise RuntimeError(f"unexpected wrk output:\n{output}")
    return float(match.group(1))


def _threads(url: str, headers: dict[str, str], seconds: int, connections: int) -> float:
    deadline = time.monotonic() + seconds

    def worker(_: int) -> int:
        session, done = requests.Session(), 0
        while time.monotonic() < deadline:
            session.get(url, headers=headers, timeout=10).raise_for_status()
            done += 1
        return done

    started = time.monotonic()
    with ThreadPoolExecutor(connections) as pool:
        total = sum(pool.map(worker, range(connections)))
    return total / (time.monotonic() - started)
