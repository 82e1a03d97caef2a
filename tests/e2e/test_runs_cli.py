"""`sweep runs` through the real CLI: --sort, --top, --metrics, --format csv, and a column per
parameter when the terminal is wide enough."""

from __future__ import annotations

import csv
import io
import subprocess

import pytest
from sweepd.v1 import common_pb2, sweeps_pb2, sweeps_pb2_grpc

from .harness import Cluster, command

pytestmark = pytest.mark.e2e

CONFIG = """
method: grid
metric: {name: acc, goal: maximize}
parameters:
  lr: {values: [0.1, 0.01, 0.001]}
  opt:
    parameters:
      name: {values: ["adam", "s\\ngd"]}
"""


def _cli(cluster: Cluster, columns: int, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**cluster.env, "COLUMNS": str(columns)}
    return subprocess.run(command("sweep") + [args[0], "--coordinator", cluster.address,
                                              *args[1:]],
                          capture_output=True, text=True, env=env, timeout=60, check=False)


def test_runs_sort_top_metrics_csv_and_columns(cluster: Cluster) -> None:
    cluster.start_coordinator()
    stub = sweeps_pb2_grpc.SweepServiceStub(cluster.channel())
    sweep_id = stub.CreateSweep(sweeps_pb2.CreateSweepRequest(config_text=CONFIG)).sweep.id
    for _ in range(6):
        run = stub.SuggestRun(sweeps_pb2.SuggestRunRequest(sweep_id=sweep_id,
                                                           client_id="c")).run
        lr = run.params.fields["lr"].double_value
        name = run.params.fields["opt"].map_value.fields["name"].string_value
        acc = 1.0 - lr - (0.5 if name == "adam" else 0.0)
        stub.ReportMetrics(sweeps_pb2.ReportMetricsRequest(
            run_id=run.id, attempt=run.attempt, client_id="c", records=[
                common_pb2.MetricRecord(index=0, step=0, values={"acc": acc, "epoch": 3.0})]))
        stub.FinishRun(sweeps_pb2.FinishRunRequest(run_id=run.id, attempt=run.attempt,
                                                   client_id="c",
                                                   state=common_pb2.RUN_STATE_FINISHED))

    # --top with no --sort: the best by the sweep's metric (maximize), best first.
    top = cluster.sweep_json("runs", sweep_id, "--top", "2")
    assert [r["summary"]["acc"] for r in top] == pytest.approx([0.999, 0.99])
    by_lr = cluster.sweep_json("runs", sweep_id, "--sort", "-lr")
    assert [r["params"]["lr"] for r in by_lr] == [0.1, 0.1, 0.01, 0.01, 0.001, 0.001]

    wide = _cli(cluster, 200, "runs", sweep_id, "--metrics", "epoch", "--sort", "acc")
    assert wide.returncode == 0, wide.stderr
    header = wide.stdout.splitlines()[0].split()
    assert header[:6] == ["RUN", "STATE", "lr", "opt.name", "acc", "epoch"]
    assert "s\\ngd" in wide.stdout and all(len(line) <= 200 for line in wide.stdout.splitlines())
    assert len(wide.stdout.splitlines()) == 7  # a newline in a value does not break a row
    narrow = _cli(cluster, 60, "runs", sweep_id)
    assert narrow.stdout.splitlines()[0].split()[:3] == ["RUN", "STATE", "PARAMS"]

    table = _cli(cluster, 200, "runs", sweep_id, "--format", "csv")
    rows = list(csv.reader(io.StringIO(table.stdout)))
    assert rows[0][-4:] == ["lr", "opt.name", "acc", "epoch"]
    assert len(rows) == 7 and {r[rows[0].index("opt.name")] for r in rows[1:]} == {"adam",
                                                                                  "s\ngd"}

    bad = _cli(cluster, 200, "runs", sweep_id, "--sort", "accuracy")
    assert bad.returncode == 2 and "did you mean 'acc'" in bad.stderr
    missing = _cli(cluster, 200, "runs", sweep_id, "--metrics", "los")
    assert missing.returncode == 0 and "no run has logged 'los'" in missing.stderr
