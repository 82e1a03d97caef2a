"""The hostile tester's findings on coordinator state (issue #11 follow-up, FIX1): a frozen
coordinator, a worker id another process took, reserved worker ids, sweeps that end with
their last run, forged page tokens and small wire checks. Real coordinator and worker
processes, a real SQLite file."""

from __future__ import annotations

import base64
import signal
import textwrap
import time
from pathlib import Path

import grpc
import pytest
from sweepd.client.api import Client
from sweepd.common.transport import Security
from sweepd.v1 import common_pb2, sweeps_pb2, sweeps_pb2_grpc, workers_pb2, workers_pb2_grpc

from .harness import Cluster, wait_for

pytestmark = pytest.mark.e2e

LEASE_S = 3.0


def client_of(cluster: Cluster) -> Client:
    return Client(cluster.address, security=Security(token=cluster.token))


def write_sweep(cluster: Cluster, tmp_path: Path, points: int, train: str) -> str:
    """A grid of ``points`` points whose program is ``train``, in the workdirs a and b."""
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "train.py").write_text(train)
    config = tmp_path / "sweep.yaml"
    values = ", ".join(str(i) for i in range(points))
    config.write_text("program: train.py\nmethod: grid\n"
                      f"parameters:\n  a: {{values: [{values}]}}\n")
    return cluster.create(config)


def steps(n: int, pause_s: float) -> str:
    return textwrap.dedent(f'''
        import time
        from sweepd.client import run

        for k in range({n}):
            run.log({{"k": k}})
            time.sleep({pause_s})
    ''')


def lost_events(client: Client, run_id: str) -> list[str]:
    return [e["reason"] for e in client.get_run(run_id, history=True)["events"]
            if "lost" in e["reason"]]


# -- F1: the coordinator frozen past the lease ------------------------------------------------


def test_a_frozen_coordinator_does_not_lose_the_runs_of_live_workers(
    cluster: Cluster, tmp_path: Path
) -> None:
    """SIGSTOP the coordinator for twice the lease, then SIGCONT: the worker was alive all
    along, so its run ends FINISHED in its first attempt with every record."""
    coordinator = cluster.start_coordinator("--lease-seconds", str(LEASE_S))
    sweep_id = write_sweep(cluster, tmp_path, 1, steps(30, 0.3))
    worker = cluster.start_worker("--sweep", sweep_id, "--worker-id", "w1", workdir=tmp_path / "a")
    with client_of(cluster) as client:
        [run] = wait_for(lambda: [r for r in client.runs(sweep_id) if r["state"] == "RUNNING"],
                         what="the run to start")
    coordinator.signal(signal.SIGSTOP)
    try:
        time.sleep(2 * LEASE_S + 1)  # the freeze is the subject: it must outlast the lease
    finally:
        coordinator.signal(signal.SIGCONT)
    with client_of(cluster) as client:
        done = wait_for(lambda: [r for r in client.runs(sweep_id) if r["state"] == "FINISHED"],
                        90, 0.2, "the run to finish")[0]
        assert lost_events(client, run["id"]) == []
        detail = client.get_run(run["id"], history=True)
    assert done["attempt"] == 1, done
    assert [h["k"] for h in detail["history"]] == list(range(30))
    assert worker.wait(60) == 0, worker.output()
    assert "did not run for" in coordinator.output()


# -- F2: a worker id another process took ------------------------------------------------------


def test_a_worker_whose_id_another_process_took_exits_with_a_message(
    cluster: Cluster, tmp_path: Path
) -> None:
    """A (id X) freezes; B starts with id X and takes it; A wakes: A is refused for good and
    exits non-zero saying why (it used to reconnect for ever with "seq skips ahead"); B
    finishes the sweep."""
    cluster.start_coordinator("--lease-seconds", str(LEASE_S))
    sweep_id = write_sweep(cluster, tmp_path, 1, steps(20, 0.2))
    a = cluster.start_worker("--sweep", sweep_id, "--worker-id", "X", workdir=tmp_path / "a")
    with client_of(cluster) as client:
        [run] = wait_for(lambda: [r for r in client.runs(sweep_id) if r["state"] == "RUNNING"],
                         what="A to start the run")
        a.signal(signal.SIGSTOP)
        try:
            wait_for(lambda: lost_events(client, run["id"]), what="A's run to be lost")
            b = cluster.start_worker("--sweep", sweep_id, "--worker-id", "X",
                                     workdir=tmp_path / "b")
            wait_for(lambda: client.get_run(run["id"])["attempt"] == 2
                     and client.get_run(run["id"])["state"] == "RUNNING",
                     what="B to take the id and the retry")
        finally:
            a.signal(signal.SIGCONT)
        code = a.wait(60)
        assert code != 0, a.output()
        assert "was taken by another worker process" in a.output(), a.output()
        done = wait_for(lambda: client.get_run(run["id"])["state"] == "FINISHED" and
                        client.get_run(run["id"]), 90, 0.2, "B to finish the run")
    assert done["attempt"] == 2
    assert b.wait(60) == 0, b.output()


# -- F6: reserved and unsafe worker ids ---------------------------------------------------------


def test_a_worker_cannot_take_a_client_id_and_finish_its_runs(
    cluster: Cluster, tmp_path: Path
) -> None:
    cluster.start_coordinator()
    sweep_id = write_sweep(cluster, tmp_path, 3, steps(1, 0))
    with client_of(cluster) as client:
        run, _ = client.suggest_run(sweep_id, "c1")
        assert run is not None
        channel = cluster.channel()
        stub = workers_pb2_grpc.WorkerServiceStub(channel)
        for bad in ["client:c1", "a\x00b", "../x", "a/b"]:
            hello = workers_pb2.WorkerMessage(hello=workers_pb2.Hello(
                worker_id=bad, incarnation="evil", host="h", slots=0,
                held_runs=[workers_pb2.HeldRun(run_id=run["id"], attempt=run["attempt"])]))
            with pytest.raises(grpc.RpcError) as info:
                list(stub.Connect(iter([hello]), timeout=20))
            assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT, bad
            assert "hello.worker_id" in (info.value.details() or ""), info.value.details()
        channel.close()
        # The client still holds and finishes its run.
        assert client.get_run(run["id"])["state"] == "ASSIGNED"
        client.finish_run(run["id"], run["attempt"], client_id="c1")
        assert client.get_run(run["id"])["state"] == "FINISHED"
    # `worker join --worker-id client:c1` stops at once, saying why, instead of retrying.
    worker = cluster.start_worker("--sweep", sweep_id, "--worker-id", "client:c1")
    assert worker.wait(60) != 0
    assert "reserved for ask/tell clients" in worker.output(), worker.output()


# -- F9: a sweep ends with its last run ----------------------------------------------------------


def test_a_grid_sweep_finishes_when_its_last_run_ends_without_another_ask(
    cluster: Cluster, tmp_path: Path
) -> None:
    cluster.start_coordinator()
    sweep_id = write_sweep(cluster, tmp_path, 2, steps(2, 0))
    worker = cluster.start_worker("--sweep", sweep_id, "--count", "2", workdir=tmp_path / "a")
    assert worker.wait(90) == 0, worker.output()
    with client_of(cluster) as client:
        assert [r["state"] for r in client.runs(sweep_id)] == ["FINISHED", "FINISHED"]
        wait_for(lambda: client.get_sweep(sweep_id)["state"] == "FINISHED",
                 30, what="the sweep to finish")


def test_an_ask_tell_sweep_finishes_when_its_last_run_ends(
    cluster: Cluster, tmp_path: Path
) -> None:
    cluster.start_coordinator()
    sweep_id = write_sweep(cluster, tmp_path, 2, steps(1, 0))
    with client_of(cluster) as client:
        for client_id in ("c1", "c2"):
            run, _ = client.suggest_run(sweep_id, client_id)
            assert run is not None
            client.finish_run(run["id"], run["attempt"], client_id=client_id)
        assert client.get_sweep(sweep_id)["state"] == "FINISHED"


# -- F10: forged page tokens -----------------------------------------------------------------------


def test_forged_page_tokens_are_refused_as_invalid_argument(
    cluster: Cluster, tmp_path: Path
) -> None:
    cluster.start_coordinator()
    sweep_id = write_sweep(cluster, tmp_path, 12, steps(1, 0))
    with client_of(cluster) as client:
        for i in range(12):
            client.suggest_run(sweep_id, f"c{i}")
    channel = cluster.channel()
    stub = sweeps_pb2_grpc.SweepServiceStub(channel)
    real = stub.ListRuns(sweeps_pb2.ListRunsRequest(sweep_id=sweep_id, page_size=5))
    assert len(real.runs) == 5 and real.next_page_token
    rest = stub.ListRuns(sweeps_pb2.ListRunsRequest(sweep_id=sweep_id,
                                                    page_token=real.next_page_token))
    assert [r.number for r in rest.runs] == list(range(6, 13))

    def forged(number: str) -> str:
        raw = f"runs1:{sweep_id}:{number}".encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    for number in ["9" * 5000, "07", "\u0667", "+7", " 7", "7\n", "-5", "13", "1e3"]:
        with pytest.raises(grpc.RpcError) as info:
            stub.ListRuns(sweeps_pb2.ListRunsRequest(sweep_id=sweep_id,
                                                     page_token=forged(number)))
        assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT, number[:20]
        assert "page_token" in (info.value.details() or "")
    channel.close()


# -- small: ReportMetrics checks -------------------------------------------------------------------


def test_report_metrics_refuses_a_negative_step_an_empty_name_and_a_wild_attempt(
    cluster: Cluster, tmp_path: Path
) -> None:
    cluster.start_coordinator()
    sweep_id = write_sweep(cluster, tmp_path, 1, steps(1, 0))
    with client_of(cluster) as client:
        run, _ = client.suggest_run(sweep_id, "c1")
        assert run is not None
    channel = cluster.channel()
    stub = sweeps_pb2_grpc.SweepServiceStub(channel)

    def report(attempt: int, rec: common_pb2.MetricRecord) -> tuple[grpc.StatusCode, str]:
        with pytest.raises(grpc.RpcError) as info:
            stub.ReportMetrics(sweeps_pb2.ReportMetricsRequest(
                run_id=run["id"], attempt=attempt, records=[rec], client_id="c1"))
        return info.value.code(), info.value.details() or ""

    code, details = report(1, common_pb2.MetricRecord(index=0, step=-1, values={"a": 1.0}))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "records[0].step" in details, details
    code, details = report(1, common_pb2.MetricRecord(index=0, values={"": 1.0}))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "records[0].values" in details, details
    code, details = report(2**63 - 1, common_pb2.MetricRecord(index=0, values={"a": 1.0}))
    assert code == grpc.StatusCode.INVALID_ARGUMENT, details
    assert "out of range" in details and "stale" not in details, details
    channel.close()
