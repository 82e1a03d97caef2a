"""ReportMetrics over a real channel: records twice in a batch, after a gap, resent, and values
that are not finite. Nothing is acknowledged and then dropped."""

from __future__ import annotations

import math
from pathlib import Path

import grpc
import pytest
from sweepd.v1 import common_pb2, sweeps_pb2, sweeps_pb2_grpc

from .harness import Cluster

pytestmark = pytest.mark.e2e


def test_report_metrics_stores_or_refuses_every_record(cluster: Cluster, tmp_path: Path) -> None:
    cluster.start_coordinator()
    config = tmp_path / "sweep.yaml"
    config.write_text("program: train.py\nmethod: grid\nmetric: {name: loss, goal: minimize}\n"
                      "parameters:\n  a: {values: [1, 2]}\n")
    sweep_id = cluster.create(config)
    channel = cluster.channel()
    stub = sweeps_pb2_grpc.SweepServiceStub(channel)
    run = stub.SuggestRun(sweeps_pb2.SuggestRunRequest(sweep_id=sweep_id, client_id="c1"),
                          timeout=10).run

    def report(*records: tuple[int, float]) -> None:
        stub.ReportMetrics(sweeps_pb2.ReportMetricsRequest(
            run_id=run.id, attempt=run.attempt, client_id="c1", records=[
                common_pb2.MetricRecord(index=i, step=i, values={"loss": v})
                for i, v in records]), timeout=10)

    def refused(*records: tuple[int, float]) -> str:
        with pytest.raises(grpc.RpcError) as err:
            report(*records)
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT, err.value
        return err.value.details() or ""

    def history() -> list[tuple[int, float]]:
        got = stub.GetRun(sweeps_pb2.GetRunRequest(run_id=run.id, include_history=True),
                          timeout=10)
        return [(r.index, r.values["loss"]) for r in got.history]

    report((0, 5.0), (1, 4.0))
    assert "records[1].index: 2 appears twice" in refused((2, 3.0), (2, 9.0))
    details = refused((3, 3.0), (4, 2.0))
    assert "records[0].index: 3 skips ahead" in details and "accepts 2 next" in details
    assert history() == [(0, 5.0), (1, 4.0)]
    report((1, 4.0), (2, 3.0))  # a resend and the missing record: stored once each
    report((3, math.nan), (4, -math.inf), (5, 1.0))
    stored = history()
    assert [i for i, _ in stored] == [0, 1, 2, 3, 4, 5]
    assert math.isnan(stored[3][1]) and stored[4][1] == -math.inf
    got = stub.GetRun(sweeps_pb2.GetRunRequest(run_id=run.id, include_history=True),
                      timeout=10)
    notices = [e.reason for e in got.events if e.reason.startswith("notice")]
    assert len(notices) == 1 and "loss = nan at record 3" in notices[0]
    assert got.run.summary["loss"] == 1.0
    channel.close()
