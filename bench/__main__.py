"""`make bench`: run the benchmarks, write JSON results and the table in docs/benchmarks.md.

`BENCH=name[,name]` runs only some of them.
"""

from __future__ import annotations

import json
import os
import sys
import time
from importlib import import_module
from typing import Any

from bench.core import BENCH_DOC, RESULTS, machine

# `cluster` measures only where redis-server, redis-cli and HAProxy are installed; elsewhere
# it says how to install them and leaves its last results as they are.
BENCHMARKS = ("skeleton", "gateway", "task_service", "logger_service", "webhooks", "reads",
              "cluster")


def _selected() -> list[str]:
    wanted = [n.strip() for n in os.environ.get("BENCH", "").split(",") if n.strip()]
    unknown = set(wanted) - set(BENCHMARKS)
    if unknown:
        sys.exit(f"unknown benchmark(s): {', '.join(sorted(unknown))}; have {BENCHMARKS}")
    return wanted or list(BENCHMARKS)


def _write(name: str, results: list[dict[str, Any]], partial: bool) -> None:
    """This run's results, and the latest ones: a whole run's replace them all (a figure it
    no longer measures goes), a `partial` run's only the figures it measured."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    (RESULTS / f"{name}-{stamp}.json").write_text(json.dumps(results, indent=2) + "\n")
    latest = RESULTS / f"{name}-latest.json"
    measured = {r["figure"] for r in results}
    kept = [r for r in json.loads(latest.read_text()) if r["figure"] not in measured] \
        if partial and latest.exists() else []
    latest.write_text(json.dumps(kept + results, indent=2) + "\n")


def _table() -> str:
    rows = []
    for name in BENCHMARKS:
        path = RESULTS / f"{name}-latest.json"
        if path.exists():
            rows += json.loads(path.read_text())
    lines = ["| figure | value | unit | command | measured | notes |", "|---|---|---|---|---|---|"]
    lines += [f"| {r['figure']} | {r['value']} | {r['unit']} | `{r['command']}` | "
              f"{r['measured_at']} | {r['notes']} |" for r in rows]
    machines = sorted({r["machine"] for r in rows}) or [machine()]
    return "\n".join(lines) + "\n\nMachine: " + "; ".join(machines) + "\n"


def _update_doc() -> None:
    begin, end = "<!-- results:begin -->", "<!-- results:end -->"
    text = BENCH_DOC.read_text()
    head, _, rest = text.partition(begin)
    _, _, tail = rest.partition(end)
    BENCH_DOC.write_text(f"{head}{begin}\n{_table()}{end}{tail}")


def main() -> None:
    """Run the selected benchmarks in order."""
    for name in _selected():
        print(f"== {name}", flush=True)
        module = import_module(f"bench.{name}")
        results = module.run()
        if not results:
            print(f"  {name}: nothing measured", flush=True)
            continue
        for r in results:
            print(f"  {r['figure']}: {r['value']} {r['unit']}", flush=True)
        _write(name, results, partial=getattr(module, "PARTIAL", False))
        _update_doc()


if __name__ == "__main__":
    main()
