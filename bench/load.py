"""One load tool for every HTTP benchmark: wrk when installed, else a Python thread pool."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import requests

WRK_RATE = re.compile(r"Requests/sec:\s+([\d.]+)")


def tool_name() -> str:
    """The load tool this machine will use."""
    return "wrk" if shutil.which("wrk") else "python-threads"


def requests_per_second(url: str, headers: dict[str, str], seconds: int = 10,
                        connections: int = 16, json_body: Any = None) -> float:
    """Sustained requests/s against `url`: GET, or POST of `json_body` when one is given.

    Every response must be 2xx, or the measurement is refused.
    """
    if shutil.which("wrk"):
        return _wrk(url, headers, seconds, connections, json_body)
    return _threads(url, headers, seconds, connections, json_body)


def _wrk_script(headers: dict[str, str], json_body: Any) -> str:
    lines = [f"wrk.headers[{json.dumps(k)}] = {json.dumps(v)}" for k, v in headers.items()]
    if json_body is not None:
        lines += ['wrk.method = "POST"', f"wrk.body = {json.dumps(json.dumps(json_body))}",
                  'wrk.headers["Content-Type"] = "application/json"']
    return "\n".join(lines) + "\n"


def _wrk(url: str, headers: dict[str, str], seconds: int, connections: int,
         json_body: Any) -> float:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(_wrk_script(headers, json_body))
    try:
        output = subprocess.run(
            ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "-s", script.name, url],
            check=True, capture_output=True, text=True).stdout
    finally:
        os.unlink(script.name)
    if "Non-2xx" in output:
        raise RuntimeError(f"non-2xx responses under load:\n{output}")
    match = WRK_RATE.search(output)
    if not match:
        raise RuntimeError(f"unexpected wrk output:\n{output}")
    return float(match.group(1))


def _threads(url: str, headers: dict[str, str], seconds: int, connections: int,
             json_body: Any) -> float:
    deadline = time.monotonic() + seconds

    def worker(_: int) -> int:
        session, done = requests.Session(), 0
        while time.monotonic() < deadline:
            if json_body is None:
                response = session.get(url, headers=headers, timeout=10)
            else:
                response = session.post(url, headers=headers, json=json_body, timeout=10)
            response.raise_for_status()
            done += 1
        return done

    started = time.monotonic()
    with ThreadPoolExecutor(connections) as pool:
        total = sum(pool.map(worker, range(connections)))
    return total / (time.monotonic() - started)


def send_steadily(stack: Any, headers: dict[str, str], rate: int, seconds: int
                  ) -> dict[int, float]:
    """POST /task at `rate` per second; return each task id with the time of its 201."""
    sent: dict[int, float] = {}
    session = requests.Session()
    start = time.perf_counter()

    def one(index: int) -> None:
        delay = start + index / rate - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        reply = session.post(f"{stack.base_url}/task", headers=headers,
                             json={"title": f"lag {index}"})
        reply.raise_for_status()
        sent[int(reply.json()["id"])] = time.perf_counter()

    with ThreadPoolExecutor(max(8, rate // 25)) as pool:  # enough in flight for the rate
        list(pool.map(one, range(rate * seconds)))
    return sent
