"""One chaos run from traffic to verdict, and the figures it prints."""

from __future__ import annotations

import json
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from testbed.processes import ChaosStack
from tests.chaos.checks import Findings, check_everything, wait_for_quiescence
from tests.chaos.scenario import Injector, Record, ScenarioConfig, drive


@dataclass
class ChaosReport:
    """The figures of one run."""

    config: ScenarioConfig
    record: Record
    findings: Findings
    seconds: dict[str, float] = field(default_factory=dict)
    status_json: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """Nothing lost, nothing duplicated, everything equal, every planned fault injected."""
        return (not self.findings.problems()
                and sum(self.record.injected.values()) == self.config.faults)

    def figures(self) -> dict[str, Any]:
        """The numbers, as one JSON-able dict."""
        results = self.record.results
        sent = Counter(r.kind for r in results)
        accepted = Counter(r.kind for r in results if r.accepted)
        statuses = Counter(str(r.status) for r in results if not r.accepted)
        reasons = Counter(f"{r.kind} {r.status} {_error(r.body)}" for r in results
                          if not r.accepted)
        found = self.findings
        return {
            "seed": self.config.seed, "commands_sent": len(results),
            "commands_accepted": sum(accepted.values()), "sent_by_kind": dict(sent),
            "accepted_by_kind": dict(accepted), "rejected_by_status": dict(statuses),
            "rejections": dict(reasons.most_common(8)),
            "faults_injected": sum(self.record.injected.values()),
            "faults_by_kind": dict(self.record.injected), "events": found.events,
            "stream_entries": found.stream_entries, "checkpoint": found.checkpoint,
            "lost": found.lost, "duplicated": found.duplicated,
            "mismatched": len(found.mismatched_in_projection)
            + len(found.task_manager_mismatches),
            "dead_letters": found.dead_letters,
            "committed_without_2xx": found.committed_without_2xx,
            "server_errors": len(found.server_errors),
            "projections_verify": found.verify, "seconds": self.seconds,
        }

    def text(self) -> str:
        """The figures for a person."""
        f = self.figures()
        lines = [
            f"Chaos run, seed {f['seed']}: {'PASSED' if self.ok else 'FAILED'}",
            f"  commands sent/accepted: {f['commands_sent']}/{f['commands_accepted']}  "
            f"(sent {f['sent_by_kind']}, accepted {f['accepted_by_kind']}, "
            f"refused {f['rejected_by_status']})",
            f"  faults injected: {f['faults_injected']} {f['faults_by_kind']}",
            f"  events: {f['events']} (stream entries {f['stream_entries']}, "
            f"checkpoint {f['checkpoint']})",
            f"  lost: {f['lost']}  duplicated: {f['duplicated']}  "
            f"mismatched rows: {f['mismatched']}  dead letters: {f['dead_letters']}",
            f"  refusals: {f['rejections']}",
            f"  refused commands whose change committed anyway: {f['committed_without_2xx']}",
            f"  projections verify: {f['projections_verify']}",
            f"  time: {f['seconds']}",
        ]
        lines += [f"  fault: {entry}" for entry in self.record.fault_log]
        lines += [f"  PROBLEM: {problem}" for problem in self.findings.problems()]
        return "\n".join(lines)


def run_chaos(chaos: ChaosStack, config: ScenarioConfig, quiesce_timeout: float = 120.0,
              injector_class: type[Injector] = Injector) -> ChaosReport:
    """Drive traffic with faults, wait for quiescence, check everything."""
    started = time.monotonic()
    record = drive(chaos, config, injector_class)
    driven = time.monotonic()
    wait_for_quiescence(chaos, quiesce_timeout)
    quiet = time.monotonic()
    findings = check_everything(chaos, record.results)
    status = chaos.run_cli("projections", "status", "--json")
    report = ChaosReport(config, record, findings, {
        "traffic": round(driven - started, 1), "quiescence": round(quiet - driven, 1),
        "checks": round(time.monotonic() - quiet, 1)})
    if status.returncode == 0:
        report.status_json = json.loads(status.stdout.strip().splitlines()[-1])
    return report


def _error(body: Any) -> str:
    """The error message of a JSON error body, shortened."""
    return str(body.get("error"))[:80] if isinstance(body, dict) else str(body)[:80]
