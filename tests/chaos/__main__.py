"""`python -m tests.chaos` (`make chaos`): the long chaos run; exit 1 unless it is clean.

Environment: CHAOS_SEED (default 1), CHAOS_COMMANDS (default 1500), CHAOS_FAULTS (default 30),
CHAOS_WORKERS (default 4), CHAOS_JSON (a path to write the figures to, optional),
CHAOS_LOG_DIR (a folder to keep every process's log in, optional).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from testbed.processes import chaos_stack
from tests.chaos.report import run_chaos
from tests.chaos.scenario import ScenarioConfig


def config_from_env() -> ScenarioConfig:
    """The scenario's size from the environment."""
    return ScenarioConfig(
        seed=int(os.environ.get("CHAOS_SEED", "1")),
        commands=int(os.environ.get("CHAOS_COMMANDS", "1500")),
        faults=int(os.environ.get("CHAOS_FAULTS", "30")),
        workers=int(os.environ.get("CHAOS_WORKERS", "4")),
    )


def main() -> int:
    """Start a private stack, run the scenario, print the figures."""
    config = config_from_env()
    print(f"Starting a private stack for the chaos run ({config})...", flush=True)
    keep = os.environ.get("CHAOS_LOG_DIR")
    with chaos_stack(keep_logs=Path(keep) if keep else None) as chaos:
        report = run_chaos(chaos, config, quiesce_timeout=300)
    print(report.text(), flush=True)
    if os.environ.get("CHAOS_JSON"):
        Path(os.environ["CHAOS_JSON"]).write_text(json.dumps(report.figures(), indent=2))
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
