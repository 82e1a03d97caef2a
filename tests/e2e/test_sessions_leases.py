"""Worker sessions and leases end to end (issue #11 items 2, 7, 8, 9, 19, 21): a worker frozen
past its lease, two workers with one id, one client id asking from twenty threads, ask/tell
runs whose client dies, and what --lease-seconds means. Real coordinator and worker
processes, a real SQLite file."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from sweepd.client.api import Client
from sweepd.common.transport import Security
from sweepd.v1 import common_pb2, sweeps_pb2, sweeps_pb2_grpc, workers_pb2, workers_pb2_grpc

from .harness import DEFAULT_TIMEOUT_S, Cluster, command, wait_for

pytestmark = pytest.mark.e2e

# Short enough that a frozen worker loses its run within seconds, long enough (six beats of
# half a second) that a loaded machine does not lose runs by accident.
LEASE_S = 3.0
STEPS = 20

TRAIN = textwrap.dedent(f'''
    import time
    from sweepd.client import run

    for k in range({STEPS}):
        run.log({{"k": k}})
        time.sleep(0.2)
''')


def client_of(cluster: Cluster) -> Client:
    return Client(cluster.address, security=Security(token=cluster.token))


def one_point_sweep(cluster: Cluster, tmp_path: Path) -> str:
    config = tmp_path / "one.yaml"
    config.write_text("program: train.py\nmethod: grid\nparameters:\n  a: {values: [1]}\n")
    return cluster.create(config)


def worker_dir(tmp_path: Path, name: str, train: str = TRAIN) -> Path:
    d = tmp_path / name
    d.mkdir()
    (d / "train.py").write_text(train)
    return d


# -- item 2 --------------------------------------------------------------------------------------


@pytest.mark.parametrize("workers", [1, 2], ids=["same-worker", "other-worker"])
def test_a_worker_frozen_past_its_lease_does_not_kill_the_retry(
    cluster: Cluster, tmp_path: Path, workers: int
) -> None:
    """SIGSTOP past the lease, then SIGCONT: the run ends FINISHED with every step, from
    whichever attempt; the stale attempt's stop order never kills the retry."""
    cluster.start_coordinator("--lease-seconds", str(LEASE_S))
    sweep_id = one_point_sweep(cluster, tmp_path)
    w1 = cluster.start_worker("--sweep", sweep_id, "--worker-id", "w1",
                              workdir=worker_dir(tmp_path, "w1"))
    with client_of(cluster) as client:
        [run] = wait_for(lambda: [r for r in client.runs(sweep_id) if r["state"] == "RUNNING"],
                         what="w1 to start the run")
        w2 = None
        if workers == 2:
            w2 = cluster.start_worker("--sweep", sweep_id, "--worker-id", "w2",
                                      workdir=worker_dir(tmp_path, "w2"))
            wait_for(lambda: any(w["id"] == "w2" and w["connected"] for w in client.workers()),
                     what="w2 to connect")
        w1.signal(signal.SIGSTOP)
        try:
            # The lease runs out while w1 is frozen (its program goes on running).
            wait_for(lambda: any("lost" in e["reason"]
                                 for e in client.get_run(run["id"], history=True)["events"]),
                     what="the frozen worker's run to be lost")
            if w2 is not None:
                # A free worker that is alive gets the retry, not the frozen one.
                wait_for(lambda: client.get_run(run["id"])["worker_id"] == "w2",
                         what="the retry to go to w2")
            time.sleep(0.5)
        finally:
            w1.signal(signal.SIGCONT)
        done = wait_for(lambda: [r for r in client.runs(sweep_id) if r["state"] == "FINISHED"],
                        90, 0.2, "the run to finish")[0]
        detail = client.get_run(run["id"], history=True)
    assert done["attempt"] == 2, done
    assert done["worker_id"] == ("w2" if workers == 2 else "w1"), done
    assert [h["k"] for h in detail["history"]] == list(range(STEPS)), detail["history"]
    assert w1.wait(60) == 0, w1.output()
    if w2 is not None:
        assert w2.wait(60) == 0, w2.output()


# -- item 7 --------------------------------------------------------------------------------------


def _hello(worker_id: str, incarnation: str, host: str) -> workers_pb2.WorkerMessage:
    return workers_pb2.WorkerMessage(hello=workers_pb2.Hello(
        worker_id=worker_id, incarnation=incarnation, host=host, slots=1,
        heartbeat_interval_s=2.0))


def _connect(cluster: Cluster, hello: workers_pb2.WorkerMessage,
             hold: threading.Event | None = None) -> Iterator[workers_pb2.CoordinatorMessage]:
    def messages() -> Iterator[workers_pb2.WorkerMessage]:
        yield hello
        if hold is not None:
            hold.wait(DEFAULT_TIMEOUT_S)

    channel = cluster.channel()
    stub = workers_pb2_grpc.WorkerServiceStub(channel)
    return iter(stub.Connect(messages()))


def test_a_second_worker_with_the_same_id_is_refused_and_the_first_keeps_working(
    cluster: Cluster, tmp_path: Path
) -> None:
    cluster.start_coordinator()
    config = tmp_path / "six.yaml"
    config.write_text("program: train.py\nmethod: grid\n"
                      "parameters:\n  a: {values: [1, 2, 3, 4, 5, 6]}\n")
    sweep_id = cluster.create(config)
    short = TRAIN.replace(f"range({STEPS})", "range(4)")
    first = cluster.start_worker("--sweep", sweep_id, "--worker-id", "twin",
                                 workdir=worker_dir(tmp_path, "a", short))
    with client_of(cluster) as client:
        wait_for(lambda: any(r["state"] == "RUNNING" for r in client.runs(sweep_id)),
                 what="the first twin to run")
        second = cluster.start_worker("--sweep", sweep_id, "--worker-id", "twin",
                                      workdir=worker_dir(tmp_path, "b", short))
        # A hello from another process with that id is refused, naming the holder's host.
        with pytest.raises(grpc.RpcError) as err:
            next(_connect(cluster, _hello("twin", "someone-else", "intruder")))
        assert err.value.code() == grpc.StatusCode.ALREADY_EXISTS
        assert os.uname().nodename in err.value.details(), err.value.details()
        assert "--worker-id" in err.value.details()
        wait_for(lambda: "ALREADY_EXISTS" in second.output(), what="the second to be refused")
        assert first.wait(120) == 0, first.output()
        runs = client.runs(sweep_id)
    # Every run ran once, on the first twin's session: no reconnect storm, nothing lost.
    assert len(runs) == 6 and all(r["state"] == "FINISHED" and r["attempt"] == 1 for r in runs)
    assert "lost" not in first.output().lower()
    # Once the first left, the id is free: the second connects, finds the sweep over, exits.
    assert second.wait(60) == 0, second.output()


# -- item 19 -------------------------------------------------------------------------------------


def test_lease_seconds_is_the_lease(cluster: Cluster) -> None:
    cluster.start_coordinator("--lease-seconds", "3")
    welcome = next(_connect(cluster, _hello("w", "i", "h"))).welcome
    assert welcome.lease_s == 3.0  # was max(3, 2 s * 6) = 12
    assert welcome.heartbeat_interval_s == pytest.approx(0.5)
    help_text = subprocess.run(command("coordinator") + ["serve", "--help"], capture_output=True,
                               text=True, check=True).stdout
    assert "--lease-seconds" in help_text and "heartbeats" in help_text
    refused = subprocess.run(command("coordinator") + ["serve", "--lease-seconds", "1"],
                             capture_output=True, text=True)
    assert refused.returncode == 2 and "--lease-seconds" in refused.stderr, refused.stderr


# -- item 8 --------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["bayes", "sobol"])
def test_one_client_id_asking_from_twenty_threads_gets_one_run(
    cluster: Cluster, method: str
) -> None:
    cluster.start_coordinator()
    config = (f"method: {method}\nrun_cap: 3\nmetric: {{name: loss, goal: minimize}}\n"
              "parameters:\n  x: {min: 0.0, max: 1.0}\n  y: {min: 0.0, max: 1.0}\n")
    with cluster.channel() as channel:
        stub = sweeps_pb2_grpc.SweepServiceStub(channel)
        sweep_id = stub.CreateSweep(sweeps_pb2.CreateSweepRequest(config_text=config)).sweep.id

        def ask_from_twenty_threads() -> list[Any]:
            barrier = threading.Barrier(20)
            answers: list[Any] = [None] * 20

            def ask(i: int) -> None:
                barrier.wait(DEFAULT_TIMEOUT_S)
                try:
                    answers[i] = stub.SuggestRun(sweeps_pb2.SuggestRunRequest(
                        sweep_id=sweep_id, client_id="one"), timeout=DEFAULT_TIMEOUT_S)
                except grpc.RpcError as exc:  # shown by the assertion below
                    answers[i] = exc

            threads = [threading.Thread(target=ask, args=(i,)) for i in range(20)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(DEFAULT_TIMEOUT_S)
            return answers

        for trial in range(3):
            answers = ask_from_twenty_threads()
            assert all(isinstance(a, sweeps_pb2.SuggestRunResponse) and a.HasField("run")
                       and not a.sweep_done for a in answers), answers
            assert len({a.run.id for a in answers}) == 1, {a.run.id for a in answers}
            run = answers[0].run
            runs = stub.ListRuns(sweeps_pb2.ListRunsRequest(sweep_id=sweep_id)).runs
            assert len(runs) == trial + 1
            stub.ReportMetrics(sweeps_pb2.ReportMetricsRequest(
                run_id=run.id, attempt=run.attempt, client_id="one",
                records=[common_pb2.MetricRecord(index=0, step=0, values={"loss": 0.5})]))
            stub.FinishRun(sweeps_pb2.FinishRunRequest(
                run_id=run.id, attempt=run.attempt, client_id="one",
                state=common_pb2.RUN_STATE_FINISHED))
        # run_cap 3 reached and nothing running: now, and only now, the sweep is done.
        answers = ask_from_twenty_threads()
        assert all(isinstance(a, sweeps_pb2.SuggestRunResponse) and not a.HasField("run")
                   and a.sweep_done for a in answers), answers


# -- items 9 and 21 ------------------------------------------------------------------------------


def test_an_ask_tell_run_is_leased_owned_and_retried(cluster: Cluster) -> None:
    cluster.start_coordinator("--lease-seconds", "2")
    config = "method: grid\nparameters:\n  a: {values: [1]}\n"
    with cluster.channel() as channel:
        stub = sweeps_pb2_grpc.SweepServiceStub(channel)
        sweep_id = stub.CreateSweep(sweeps_pb2.CreateSweepRequest(config_text=config)).sweep.id
        taken = stub.SuggestRun(sweeps_pb2.SuggestRunRequest(sweep_id=sweep_id, client_id="a"))
        run = taken.run
        assert taken.lease_seconds == 2.0 and run.attempt == 1

        def code_of(call: Any, request: Any) -> grpc.StatusCode:
            with pytest.raises(grpc.RpcError) as err:
                call(request)
            return err.value.code()

        # Only client "a" may report on or finish its run; a request naming nobody is malformed.
        assert code_of(stub.ReportMetrics, sweeps_pb2.ReportMetricsRequest(
            run_id=run.id, attempt=1, client_id="b")) == grpc.StatusCode.PERMISSION_DENIED
        assert code_of(stub.FinishRun, sweeps_pb2.FinishRunRequest(
            run_id=run.id, attempt=1, client_id="b", state=common_pb2.RUN_STATE_FINISHED)
        ) == grpc.StatusCode.PERMISSION_DENIED
        assert code_of(stub.FinishRun, sweeps_pb2.FinishRunRequest(
            run_id=run.id, attempt=1, state=common_pb2.RUN_STATE_FINISHED)
        ) == grpc.StatusCode.INVALID_ARGUMENT
        # Empty reports keep the run alive for three lease lengths...
        deadline = time.monotonic() + 3 * 2.0
        while time.monotonic() < deadline:
            stub.ReportMetrics(sweeps_pb2.ReportMetricsRequest(run_id=run.id, attempt=1,
                                                               client_id="a"))
            time.sleep(0.5)
        got = stub.GetRun(sweeps_pb2.GetRunRequest(run_id=run.id, include_history=True))
        assert got.run.attempt == 1 and not any("lost" in e.reason for e in got.events)
        # ...then client "a" dies: the run is LOST and retried for the next asker.
        wait_for(lambda: any("lost" in e.reason for e in stub.GetRun(sweeps_pb2.GetRunRequest(
            run_id=run.id, include_history=True)).events), what="the dead client's run to be lost")
        assert code_of(stub.ReportMetrics, sweeps_pb2.ReportMetricsRequest(
            run_id=run.id, attempt=1, client_id="a")) == grpc.StatusCode.FAILED_PRECONDITION
        again = stub.SuggestRun(sweeps_pb2.SuggestRunRequest(sweep_id=sweep_id,
                                                             client_id="b")).run
        assert (again.id, again.attempt) == (run.id, 2)
        records = [common_pb2.MetricRecord(index=i, step=i, values={"v": float(i)})
                   for i in range(3)]
        finish = sweeps_pb2.FinishRunRequest(run_id=run.id, attempt=2, client_id="b",
                                             state=common_pb2.RUN_STATE_FINISHED, exit_code=0)
        report = sweeps_pb2.ReportMetricsRequest(run_id=run.id, attempt=2, client_id="b",
                                                 records=records)
        stub.ReportMetrics(report)
        first = stub.FinishRun(finish)
        # Item 21: a client retrying calls whose answers were lost is answered the same.
        stub.ReportMetrics(report)
        assert stub.FinishRun(finish) == first
        assert first.state == common_pb2.RUN_STATE_FINISHED
        got = stub.GetRun(sweeps_pb2.GetRunRequest(run_id=run.id, include_history=True))
        assert [r.index for r in got.history] == [0, 1, 2]
        done = stub.SuggestRun(sweeps_pb2.SuggestRunRequest(sweep_id=sweep_id, client_id="b"))
        assert done.sweep_done and not done.HasField("run")


AGENT_SCRIPT = textwrap.dedent('''
    import sys, time
    from sweepd.client import agent, run

    def train():
        time.sleep(float(sys.argv[3]))  # longer than the lease, without a word
        run.log({"score": 1.0})

    print(agent(sys.argv[1], function=train, count=1, coordinator=sys.argv[2]))
''')


def test_the_agent_keeps_its_run_through_a_quiet_trial(cluster: Cluster, tmp_path: Path) -> None:
    cluster.start_coordinator("--lease-seconds", "2")
    config = tmp_path / "one.yaml"
    config.write_text("method: grid\nparameters:\n  a: {values: [1]}\n")
    sweep_id = cluster.create(config)
    script = tmp_path / "nb.py"
    script.write_text(AGENT_SCRIPT)
    result = subprocess.run([sys.executable, str(script), sweep_id, cluster.address, "5"],
                            capture_output=True, text=True, cwd=tmp_path, env=cluster.env,
                            timeout=DEFAULT_TIMEOUT_S)
    assert result.returncode == 0, result.stderr
    [run] = cluster.runs(sweep_id)
    assert run["state"] == "FINISHED" and run["attempt"] == 1, run
