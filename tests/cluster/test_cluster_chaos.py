"""The clustered deployment under chaos: a Redis master, relays, projector members and one
replica of each HTTP service killed under load; nothing lost or duplicated, and the rate
limit, `Idempotency-Key` and `If-Match` hold across replicas."""

from __future__ import annotations

import os

from testbed.cluster_deployment import cluster_deployment
from tests.chaos.scenario import ScenarioConfig
from tests.cluster.chaos import ClusterInjector, run_cluster_chaos


def test_the_clustered_deployment_loses_nothing_under_faults() -> None:
    config = ScenarioConfig(seed=int(os.environ.get("CHAOS_SEED", "7")), commands=200,
                            faults=len(ClusterInjector.KINDS), workers=3)
    with cluster_deployment() as chaos:
        outcome = run_cluster_chaos(chaos, config)
    print(outcome.text())
    figures = outcome.report.figures()
    assert set(outcome.report.record.injected) == set(ClusterInjector.KINDS), outcome.text()
    assert figures["commands_accepted"] > config.commands // 2, outcome.text()
    assert figures["lost"] == 0 and figures["duplicated"] == 0, outcome.text()
    assert outcome.report.findings.problems() == [], outcome.text()
    assert outcome.before.problems() == [] and outcome.after.problems() == [], outcome.text()
    assert outcome.after.scheduled_transfers > 0, outcome.text()  # beat, RabbitMQ, worker
    assert figures["events"] == figures["stream_entries"] == figures["checkpoint"] > 0


def test_a_partitioned_log_on_the_cluster_loses_nothing_under_faults() -> None:
    """The same with `STREAM_PARTITIONS=4`: the partitions spread over the masters, a master's
    death fails its partitions over, a killed projector member's partitions move."""
    config = ScenarioConfig(seed=int(os.environ.get("CHAOS_SEED", "7")), commands=200,
                            faults=len(ClusterInjector.KINDS), workers=3)
    with cluster_deployment(extra_env={"STREAM_PARTITIONS": "4"}) as chaos:
        outcome = run_cluster_chaos(chaos, config)
    print(outcome.text())
    figures = outcome.report.figures()
    assert set(outcome.report.record.injected) == set(ClusterInjector.KINDS), outcome.text()
    assert figures["lost"] == 0 and figures["duplicated"] == 0, outcome.text()
    assert outcome.report.findings.problems() == [], outcome.text()
    assert outcome.before.problems() == [] and outcome.after.problems() == [], outcome.text()
    assert figures["events"] == figures["stream_entries"] == figures["checkpoint"] > 0
    assert len(outcome.report.status_json["partitions"]) == 4
