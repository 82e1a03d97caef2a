"""`sweep importance`: which parameters matter, through the real CLI and a live coordinator."""

from __future__ import annotations

import math

import pytest
from sweepd.v1 import common_pb2, sweeps_pb2, sweeps_pb2_grpc

from .harness import Cluster

pytestmark = pytest.mark.e2e

CONFIG = """
method: random
run_cap: 40
metric: {name: loss, goal: minimize}
parameters:
  lr: {distribution: log_uniform_values, min: 0.0001, max: 0.1}
  dropout: {min: 0.0, max: 0.5}
  batch_size: {values: [16, 32, 64, 128]}
  optimizer:
    parameters:
      name: {values: ["<b>adam</b>", sgd]}
"""


def _finish(stub: sweeps_pb2_grpc.SweepServiceStub, sweep_id: str, count: int) -> None:
    for _ in range(count):
        reply = stub.SuggestRun(sweeps_pb2.SuggestRunRequest(sweep_id=sweep_id, client_id="t"))
        run = reply.run
        lr = run.params.fields["lr"].double_value
        dropout = run.params.fields["dropout"].double_value
        sgd = run.params.fields["optimizer"].map_value.fields["name"].string_value == "sgd"
        loss = (math.log10(lr) + 2.5) ** 2 + 0.5 * dropout + (1.0 if sgd else 0.0)
        stub.ReportMetrics(sweeps_pb2.ReportMetricsRequest(
            run_id=run.id, attempt=run.attempt, client_id="t",
            records=[common_pb2.MetricRecord(index=0, step=0, values={"loss": loss})]))
        stub.FinishRun(sweeps_pb2.FinishRunRequest(
            run_id=run.id, attempt=run.attempt, client_id="t",
            state=common_pb2.RUN_STATE_FINISHED))


def test_importance_ranks_parameters_and_says_when_runs_are_too_few(cluster: Cluster) -> None:
    cluster.start_coordinator()
    stub = sweeps_pb2_grpc.SweepServiceStub(cluster.channel())
    sweep_id = stub.CreateSweep(sweeps_pb2.CreateSweepRequest(config_text=CONFIG)).sweep.id

    _finish(stub, sweep_id, 4)
    early = cluster.sweep("importance", sweep_id, check=False)
    assert early.returncode != 0
    assert "needs at least 10 finished runs" in early.stderr and "has 4" in early.stderr

    _finish(stub, sweep_id, 36)
    ranked = cluster.sweep_json("importance", sweep_id)
    names = [p["param"] for p in ranked]
    assert set(names) == {"lr", "dropout", "batch_size", "optimizer.name"}
    share = {p["param"]: p["importance"] for p in ranked}
    assert share["lr"] > share["dropout"] > share["batch_size"]
    assert math.isclose(sum(share.values()), 1.0, rel_tol=1e-6)
    by_name = {p["param"]: p for p in ranked}
    assert by_name["optimizer.name"]["correlation"] is None
    values = {v["value"]: v for v in by_name["optimizer.name"]["by_value"]}
    assert values["sgd"]["correlation"] > 0 > values["<b>adam</b>"]["correlation"]

    text = cluster.sweep("importance", sweep_id).stdout
    assert "PARAMETER" in text and "from 40 finished runs" in text
    assert text.index("lr") < text.index("batch_size")
