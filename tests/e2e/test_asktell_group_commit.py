"""Ask/tell at speed: concurrent clients' calls share commits (group commit), a trial's
result travels in its FinishRun, and nothing acknowledged is lost when the coordinator is
SIGKILLed in the middle of it."""

from __future__ import annotations

import os
import signal
import threading
import time

import grpc
import pytest
from sweepd.v1 import common_pb2, sweeps_pb2, sweeps_pb2_grpc

from .harness import Cluster, wait_for

pytestmark = pytest.mark.e2e

CONFIG = """
method: random
run_cap: 100000
metric: {name: loss, goal: minimize}
parameters:
  x: {min: -2.0, max: 2.0}
  k: {values: [1, 2, 3]}
  n: {min: 1, max: 50}
"""
CLIENTS = 6


def _loss(run: common_pb2.Run) -> float:
    return run.params.fields["x"].double_value ** 2 + run.params.fields["k"].int_value


def _client(address: str, token: str, sweep_id: str, name: str, stop: threading.Event,
            acknowledged: dict[str, float], errors: list[str]) -> None:
    """Trials until ``stop``: ask, then the record inside FinishRun. A trial counts as
    acknowledged only once FinishRun answered OK; a call that fails is abandoned (the
    coordinator may be dead) and the client starts over when it answers again."""
    from sweepd.common.transport import Security, open_channel

    with open_channel(address, Security(token=token)) as channel:
        stub = sweeps_pb2_grpc.SweepServiceStub(channel)
        while not stop.is_set():
            try:
                reply = stub.SuggestRun(sweeps_pb2.SuggestRunRequest(
                    sweep_id=sweep_id, client_id=name), timeout=10)
                run = reply.run
                loss = _loss(run)
                finished = stub.FinishRun(sweeps_pb2.FinishRunRequest(
                    run_id=run.id, attempt=run.attempt, state=common_pb2.RUN_STATE_FINISHED,
                    client_id=name, records=[common_pb2.MetricRecord(
                        index=0, step=0, values={"loss": loss})]), timeout=10)
                assert finished.state == common_pb2.RUN_STATE_FINISHED
                assert finished.summary["loss"] == loss
                acknowledged[run.id] = loss
            except grpc.RpcError as exc:
                if exc.code() not in (grpc.StatusCode.UNAVAILABLE,
                                      grpc.StatusCode.DEADLINE_EXCEEDED,
                                      grpc.StatusCode.FAILED_PRECONDITION):
                    errors.append(f"{name}: {exc.code()}: {exc.details()}")
                    return
                time.sleep(0.05)


def test_concurrent_tells_survive_a_sigkill_and_each_is_stored_once(cluster: Cluster) -> None:
    cluster.start_coordinator("--lease-seconds", "5")
    port = cluster.port
    with cluster.channel() as channel:
        stub = sweeps_pb2_grpc.SweepServiceStub(channel)
        sweep_id = stub.CreateSweep(sweeps_pb2.CreateSweepRequest(config_text=CONFIG)).sweep.id
    acknowledged: dict[str, float] = {}
    errors: list[str] = []
    stop = threading.Event()
    threads = [threading.Thread(target=_client, args=(
        cluster.address, cluster.token, sweep_id, f"c{k}", stop, acknowledged, errors))
        for k in range(CLIENTS)]
    for t in threads:
        t.start()
    try:
        wait_for(lambda: len(acknowledged) >= 150 or errors, what="150 trials")
        assert cluster.coordinator is not None
        os.kill(cluster.coordinator.pid, signal.SIGKILL)  # calls in flight, groups open
        cluster.coordinator.wait()
        before = len(acknowledged)
        cluster.start_coordinator("--lease-seconds", "5", port=port)
        wait_for(lambda: len(acknowledged) >= before + 100 or errors,
                 what="100 more trials after the restart")
    finally:
        stop.set()
        for t in threads:
            t.join(30)
    assert not errors, errors
    with cluster.channel() as channel:
        stub = sweeps_pb2_grpc.SweepServiceStub(channel)
        runs: dict[str, common_pb2.Run] = {}
        token = ""
        while True:
            page = stub.ListRuns(sweeps_pb2.ListRunsRequest(sweep_id=sweep_id, page_size=500,
                                                            page_token=token))
            runs.update((r.id, r) for r in page.runs)
            token = page.next_page_token
            if not token:
                break
        # Every acknowledged trial is stored FINISHED with the result it was told, once.
        for run_id, loss in acknowledged.items():
            run = runs[run_id]
            assert run.state == common_pb2.RUN_STATE_FINISHED, (run_id, run.state)
            assert run.summary["loss"] == loss
        some = sorted(acknowledged)[0]
        detail = stub.GetRun(sweeps_pb2.GetRunRequest(run_id=some, include_history=True))
        assert [r.index for r in detail.history] == [0]
        assert [e.state for e in detail.events][-1] == common_pb2.RUN_STATE_FINISHED


def test_a_tell_in_finish_is_stored_and_a_retry_is_answered_the_same(cluster: Cluster) -> None:
    cluster.start_coordinator()
    with cluster.channel() as channel:
        stub = sweeps_pb2_grpc.SweepServiceStub(channel)
        sweep_id = stub.CreateSweep(sweeps_pb2.CreateSweepRequest(config_text=CONFIG)).sweep.id
        run = stub.SuggestRun(sweeps_pb2.SuggestRunRequest(sweep_id=sweep_id,
                                                           client_id="t")).run
        records = [common_pb2.MetricRecord(index=i, step=i, values={"loss": 5.0 - i})
                   for i in range(4)]
        request = sweeps_pb2.FinishRunRequest(
            run_id=run.id, attempt=run.attempt, state=common_pb2.RUN_STATE_FINISHED,
            client_id="t", records=records, exit_code=0)
        first = stub.FinishRun(request)
        again = stub.FinishRun(request)  # the first answer was lost, say
        assert first == again and first.summary["loss"] == 2.0
        detail = stub.GetRun(sweeps_pb2.GetRunRequest(run_id=run.id, include_history=True))
        assert [r.values["loss"] for r in detail.history] == [5.0, 4.0, 3.0, 2.0]
        # Records with a gap are refused whole, naming the index to send, and end nothing.
        other = stub.SuggestRun(sweeps_pb2.SuggestRunRequest(sweep_id=sweep_id,
                                                             client_id="t")).run
        with pytest.raises(grpc.RpcError) as err:
            stub.FinishRun(sweeps_pb2.FinishRunRequest(
                run_id=other.id, attempt=other.attempt, state=common_pb2.RUN_STATE_FINISHED,
                client_id="t", records=[common_pb2.MetricRecord(index=2, values={"loss": 1})]))
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "the batch has no record 0" in (err.value.details() or "")
        assert "has no records yet and accepts 0 next" in (err.value.details() or "")
        still = stub.GetRun(sweeps_pb2.GetRunRequest(run_id=other.id)).run
        assert still.state in (common_pb2.RUN_STATE_ASSIGNED, common_pb2.RUN_STATE_RUNNING)


def test_tell_and_ask_in_one_call(cluster: Cluster) -> None:
    """SuggestRun carrying the previous run's finish: one call a trial in steady state."""
    cluster.start_coordinator()
    with cluster.channel() as channel:
        stub = sweeps_pb2_grpc.SweepServiceStub(channel)
        sweep_id = stub.CreateSweep(sweeps_pb2.CreateSweepRequest(
            config_text=CONFIG.replace("run_cap: 100000", "run_cap: 12"))).sweep.id
        ask = sweeps_pb2.SuggestRunRequest(sweep_id=sweep_id, client_id="one")
        reply = stub.SuggestRun(ask)
        told: dict[str, float] = {}
        while reply.HasField("run"):
            run = reply.run
            loss = _loss(run)
            request = sweeps_pb2.SuggestRunRequest(
                sweep_id=sweep_id, client_id="one", finish=sweeps_pb2.FinishRunRequest(
                    run_id=run.id, attempt=run.attempt, state=common_pb2.RUN_STATE_FINISHED,
                    records=[common_pb2.MetricRecord(index=0, values={"loss": loss})]))
            reply = stub.SuggestRun(request)
            again = stub.SuggestRun(request)  # a lost answer, resent: answered the same
            assert again.run == reply.run and again.finished.state == reply.finished.state
            assert reply.finished.id == run.id
            assert reply.finished.state == common_pb2.RUN_STATE_FINISHED
            assert reply.finished.summary["loss"] == loss
            told[run.id] = loss
        assert len(told) == 12 and reply.sweep_done
        runs = stub.ListRuns(sweeps_pb2.ListRunsRequest(sweep_id=sweep_id)).runs
        assert {r.id: r.summary["loss"] for r in runs} == told
        assert all(r.state == common_pb2.RUN_STATE_FINISHED for r in runs)


def test_a_refused_finish_in_suggest_run_suggests_nothing(cluster: Cluster) -> None:
    cluster.start_coordinator()
    with cluster.channel() as channel:
        stub = sweeps_pb2_grpc.SweepServiceStub(channel)
        sweep_id = stub.CreateSweep(sweeps_pb2.CreateSweepRequest(config_text=CONFIG)).sweep.id
        run = stub.SuggestRun(sweeps_pb2.SuggestRunRequest(sweep_id=sweep_id,
                                                           client_id="c")).run
        gap = sweeps_pb2.FinishRunRequest(
            run_id=run.id, attempt=run.attempt, state=common_pb2.RUN_STATE_FINISHED,
            records=[common_pb2.MetricRecord(index=1, values={"loss": 1.0})])
        with pytest.raises(grpc.RpcError) as err:
            stub.SuggestRun(sweeps_pb2.SuggestRunRequest(sweep_id=sweep_id, client_id="c",
                                                         finish=gap))
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "records[0].index: 1 skips ahead" in (err.value.details() or "")
        other = sweeps_pb2.FinishRunRequest(run_id=run.id, attempt=run.attempt,
                                            state=common_pb2.RUN_STATE_FINISHED,
                                            client_id="someone-else")
        with pytest.raises(grpc.RpcError) as err:
            stub.SuggestRun(sweeps_pb2.SuggestRunRequest(sweep_id=sweep_id, client_id="c",
                                                         finish=other))
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "finish.client_id" in (err.value.details() or "")
        # Nothing ended and nothing new: the client still holds its run.
        held = stub.SuggestRun(sweeps_pb2.SuggestRunRequest(sweep_id=sweep_id, client_id="c"))
        assert held.run.id == run.id and not held.HasField("finished")
        assert stub.GetSweep(sweeps_pb2.GetSweepRequest(sweep_id=sweep_id)).run_counts == {
            "ASSIGNED": 1}
