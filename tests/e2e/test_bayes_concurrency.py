"""Issue #13: many ask/tell clients on one bayes sweep at once, through the real API.

Sixteen clients (threads, one channel each) ask, report and finish until the sweep is done.
Every SuggestRun is answered, no point is handed out twice (the space is discrete: bayes
must not repeat a run's point, nor the points it hands out together from one fit), and every
run ends FINISHED with its metric. The time bound is generous: timing targets are measured by
the benchmark, not here.
"""

from __future__ import annotations

import threading
import time

import pytest
from sweepd.v1 import common_pb2, sweeps_pb2, sweeps_pb2_grpc

from .harness import Cluster

pytestmark = pytest.mark.e2e

CLIENTS = 16
RUN_CAP = 96
# Far above what the sweep takes on a loaded 2-core machine (~10 s): only a hang fails it.
TOTAL_S = 240.0
CONFIG = f"""
method: bayes
run_cap: {RUN_CAP}
metric: {{name: loss, goal: minimize}}
parameters:
  n: {{distribution: int_uniform, min: 1, max: 40}}
  c: {{values: [a, b, c, d]}}
"""
C_COST = {"a": 3.0, "b": 0.0, "c": 1.0, "d": 5.0}


def test_sixteen_clients_on_one_bayes_sweep(cluster: Cluster) -> None:
    cluster.start_coordinator()
    with cluster.channel() as channel:
        stub = sweeps_pb2_grpc.SweepServiceStub(channel)
        sweep_id = stub.CreateSweep(sweeps_pb2.CreateSweepRequest(config_text=CONFIG)).sweep.id
    lock = threading.Lock()
    handed: dict[tuple[int, str], str] = {}  # point -> run id
    repeats: list[str] = []
    errors: list[BaseException] = []
    deadline = time.monotonic() + TOTAL_S

    def client(name: str) -> None:
        try:
            with cluster.channel() as ch:
                api = sweeps_pb2_grpc.SweepServiceStub(ch)
                while time.monotonic() < deadline:
                    reply = api.SuggestRun(sweeps_pb2.SuggestRunRequest(
                        sweep_id=sweep_id, client_id=name), timeout=60)
                    if not reply.HasField("run"):
                        if reply.sweep_done:
                            return
                        time.sleep(0.05)  # e.g. the last runs still going: ask again
                        continue
                    run = reply.run
                    n = run.params.fields["n"].int_value
                    c = run.params.fields["c"].string_value
                    with lock:
                        if (n, c) in handed and handed[(n, c)] != run.id:
                            repeats.append(f"{(n, c)}: {handed[(n, c)]} and {run.id}")
                        handed[(n, c)] = run.id
                    loss = (n - 17) ** 2 / 10 + C_COST[c]
                    api.ReportMetrics(sweeps_pb2.ReportMetricsRequest(
                        run_id=run.id, attempt=run.attempt, client_id=name,
                        records=[common_pb2.MetricRecord(index=0, step=0,
                                                         values={"loss": loss})]), timeout=60)
                    api.FinishRun(sweeps_pb2.FinishRunRequest(
                        run_id=run.id, attempt=run.attempt, client_id=name,
                        state=common_pb2.RUN_STATE_FINISHED), timeout=60)
        except BaseException as exc:  # reported by the test thread
            errors.append(exc)

    threads = [threading.Thread(target=client, args=(f"client-{i}",)) for i in range(CLIENTS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(max(1.0, deadline - time.monotonic() + 70))
    assert not any(t.is_alive() for t in threads), "a client hung"
    assert not errors, errors
    assert not repeats, repeats
    assert len(handed) == RUN_CAP
    with cluster.channel() as channel:
        stub = sweeps_pb2_grpc.SweepServiceStub(channel)
        sweep = stub.GetSweep(sweeps_pb2.GetSweepRequest(sweep_id=sweep_id))
        assert sweep.state == common_pb2.SWEEP_STATE_FINISHED
        assert dict(sweep.run_counts) == {"FINISHED": RUN_CAP}
        assert sweep.best_run.summary["loss"] <= 1.0  # the model found the good region
