"""`python -m tests.cluster`: the clustered chaos run (`make test-cluster` runs it after the
cluster tests); exit 1 unless it is clean.

Environment: CHAOS_SEED (default 1), CHAOS_COMMANDS (default 400), CHAOS_FAULTS (default 12),
CHAOS_WORKERS (default 4), CHAOS_LOG_DIR (a folder to keep every process's log in).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from testbed.cluster_deployment import cluster_deployment
from tests.chaos.scenario import ScenarioConfig
from tests.cluster.chaos import run_cluster_chaos


def main() -> int:
    """Start the deployment, run the scenario and the probes, print the figures."""
    config = ScenarioConfig(seed=int(os.environ.get("CHAOS_SEED", "1")),
                            commands=int(os.environ.get("CHAOS_COMMANDS", "400")),
                            faults=int(os.environ.get("CHAOS_FAULTS", "12")),
                            workers=int(os.environ.get("CHAOS_WORKERS", "4")))
    print(f"Starting the clustered deployment for the chaos run ({config})...", flush=True)
    keep = os.environ.get("CHAOS_LOG_DIR")
    with cluster_deployment(keep_logs=Path(keep) if keep else None) as chaos:
        outcome = run_cluster_chaos(chaos, config)
    print(outcome.text(), flush=True)
    return 0 if outcome.ok else 1


if __name__ == "__main__":
    sys.exit(main())
