"""A program that runs trials itself through the ask / report / finish calls, with nothing
but the generated stubs (as a program in another language would)."""

from __future__ import annotations

import grpc
import pytest
from sweepd.v1 import common_pb2, sweeps_pb2, sweeps_pb2_grpc

from .harness import Cluster

pytestmark = pytest.mark.e2e

CONFIG = """
method: random
run_cap: 10
metric: {name: loss, goal: minimize}
parameters:
  x: {min: -2.0, max: 2.0}
  k: {values: [1, 2, 3]}
"""


def test_ask_report_finish_completes_ten_runs(cluster: Cluster) -> None:
    cluster.start_coordinator()
    channel = cluster.channel()
    stub = sweeps_pb2_grpc.SweepServiceStub(channel)
    sweep = stub.CreateSweep(sweeps_pb2.CreateSweepRequest(config_text=CONFIG)).sweep
    done_runs = []
    while True:
        reply = stub.SuggestRun(sweeps_pb2.SuggestRunRequest(sweep_id=sweep.id,
                                                             client_id="trainer-1"))
        if not reply.HasField("run"):
            assert reply.sweep_done
            break
        run = reply.run
        again = stub.SuggestRun(sweeps_pb2.SuggestRunRequest(sweep_id=sweep.id,
                                                             client_id="trainer-1"))
        assert again.run.id == run.id  # idempotent by client id until finished
        x = run.params.fields["x"].double_value
        k = run.params.fields["k"].int_value
        records = [
            common_pb2.MetricRecord(index=i, step=i, values={"loss": x * x + k + 1 / (i + 1)})
            for i in range(3)
        ]
        stub.ReportMetrics(sweeps_pb2.ReportMetricsRequest(run_id=run.id, attempt=run.attempt,
                                                           records=records,
                                                           client_id="trainer-1"))
        # A resent report is stored once.
        stub.ReportMetrics(sweeps_pb2.ReportMetricsRequest(run_id=run.id, attempt=run.attempt,
                                                           records=records,
                                                           client_id="trainer-1"))
        # Since issue #11 item 9 reports and finishes name the client that took the run.
        finished = stub.FinishRun(sweeps_pb2.FinishRunRequest(
            run_id=run.id, attempt=run.attempt, state=common_pb2.RUN_STATE_FINISHED,
            client_id="trainer-1"))
        assert finished.state == common_pb2.RUN_STATE_FINISHED
        done_runs.append(run.id)
    assert len(done_runs) == 10 == len(set(done_runs))
    detail = stub.GetRun(sweeps_pb2.GetRunRequest(run_id=done_runs[0], include_history=True))
    assert [r.index for r in detail.history] == [0, 1, 2]
    final = stub.GetSweep(sweeps_pb2.GetSweepRequest(sweep_id=sweep.id))
    assert final.state == common_pb2.SWEEP_STATE_FINISHED
    assert final.run_counts["FINISHED"] == 10
    # Reporting on a finished run is refused precisely.
    with pytest.raises(grpc.RpcError) as err:
        stub.ReportMetrics(sweeps_pb2.ReportMetricsRequest(run_id=done_runs[0], attempt=1,
                                                           client_id="trainer-1"))
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    with pytest.raises(grpc.RpcError) as err:
        stub.GetSweep(sweeps_pb2.GetSweepRequest(sweep_id="nosuchid"))
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    channel.close()


def test_two_clients_get_different_runs(cluster: Cluster) -> None:
    cluster.start_coordinator()
    with cluster.channel() as channel:
        stub = sweeps_pb2_grpc.SweepServiceStub(channel)
        sweep = stub.CreateSweep(sweeps_pb2.CreateSweepRequest(config_text=CONFIG)).sweep
        a = stub.SuggestRun(sweeps_pb2.SuggestRunRequest(sweep_id=sweep.id, client_id="a")).run
        b = stub.SuggestRun(sweeps_pb2.SuggestRunRequest(sweep_id=sweep.id, client_id="b")).run
        assert a.id != b.id
        with pytest.raises(grpc.RpcError) as err:
            stub.SuggestRun(sweeps_pb2.SuggestRunRequest(sweep_id=sweep.id, client_id=""))
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "client_id" in (err.value.details() or "")
