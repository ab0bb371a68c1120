"""The short chaos run on a partitioned log (`STREAM_PARTITIONS=4`) with two projector members:
the one that is killed has its partitions taken by the other, Redis is flushed and
restarted (every partition republished, the members announce themselves again), PostgreSQL
restarts; then nothing is lost or duplicated and the projections equal the log."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from testbed.processes import MANAGED, ChaosStack, chaos_stack
from tests.chaos.report import run_chaos
from tests.chaos.scenario import FAULT_KINDS, ScenarioConfig


@pytest.fixture
def partitioned() -> Iterator[ChaosStack]:
    """A private stack whose log has 4 partitions, with a second projector member."""
    with chaos_stack({"STREAM_PARTITIONS": "4"},
                     managed={**MANAGED, "projector-2": ("projector",)}) as running:
        yield running


def test_a_partitioned_log_loses_nothing_and_duplicates_nothing(partitioned: ChaosStack
                                                                ) -> None:
    config = ScenarioConfig(seed=int(os.environ.get("CHAOS_SEED", "11")), commands=150,
                            faults=len(FAULT_KINDS) + 2, workers=3)
    report = run_chaos(partitioned, config, quiesce_timeout=120)
    print(report.text())
    figures = report.figures()
    assert set(report.record.injected) == set(FAULT_KINDS)
    assert figures["lost"] == 0 and figures["duplicated"] == 0, report.text()
    assert report.findings.problems() == [], report.text()
    assert figures["events"] == figures["stream_entries"] == figures["checkpoint"] > 0
    assert report.status_json["lag_events"] == 0, report.status_json
    assert len(report.status_json["partitions"]) == 4
