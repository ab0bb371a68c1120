"""The short chaos run of `make test`: every kind of fault, then nothing lost or duplicated."""

from __future__ import annotations

import os

from testbed.processes import ChaosStack
from tests.chaos.report import run_chaos
from tests.chaos.scenario import FAULT_KINDS, ScenarioConfig


def test_faults_lose_nothing_and_duplicate_nothing(chaos: ChaosStack) -> None:
    config = ScenarioConfig(seed=int(os.environ.get("CHAOS_SEED", "7")), commands=150,
                            faults=len(FAULT_KINDS) + 2, workers=3)
    report = run_chaos(chaos, config, quiesce_timeout=90)
    print(report.text())
    figures = report.figures()
    assert set(report.record.injected) == set(FAULT_KINDS)
    assert figures["faults_injected"] == config.faults
    assert figures["accepted_by_kind"].keys() >= {"create", "update", "import_csv"}, figures
    assert figures["commands_accepted"] > config.commands // 2, figures
    assert figures["lost"] == 0 and figures["duplicated"] == 0, report.text()
    assert report.findings.problems() == [], report.text()
    assert figures["events"] == figures["stream_entries"] == figures["checkpoint"] > 0
    assert report.status_json["lag_events"] == 0, report.status_json
