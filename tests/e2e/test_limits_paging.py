"""Text limits where text enters, and ListRuns in pages: a sweep of 100,000 runs lists through
the CLI and the Python client, and an oversized reason is refused without growing the
database."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path

import grpc
import pytest
from sweepd.coordinator import limits
from sweepd.coordinator.config import RenderedArgv
from sweepd.coordinator.domain import Run, RunState
from sweepd.coordinator.store import DB_FILENAME, Store
from sweepd.v1 import common_pb2, sweeps_pb2, sweeps_pb2_grpc, workers_pb2, workers_pb2_grpc

from .harness import Cluster

pytestmark = pytest.mark.e2e

RUNS = 100_000


def db_bytes(state_dir: Path) -> int:
    return sum(p.stat().st_size for p in state_dir.glob(DB_FILENAME + "*"))


def test_a_sweep_of_100000_runs_lists_in_pages(cluster: Cluster, tmp_path: Path) -> None:
    coordinator = cluster.start_coordinator()
    config = tmp_path / "sweep.yaml"
    config.write_text("program: train.py\nmethod: random\nmetric: {name: loss, goal: minimize}\n"
                      "parameters:\n  lr: {min: 0.001, max: 0.1}\n  layers: {values: [1, 2]}\n")
    sweep_id = cluster.create(config)
    coordinator.signal(signal.SIGTERM)
    assert coordinator.wait() == 0, coordinator.output()

    # 100,000 finished runs, written as the coordinator would have stored them (through a
    # worker fleet this would take an hour).
    started = time.monotonic()
    store = Store(cluster.state_dir / DB_FILENAME)
    [sweep] = store.load_sweeps()
    with store.transaction():
        for n in range(1, RUNS + 1):
            lr = 0.001 + (n % 997) / 997 * 0.099
            store.insert_run(Run(
                id=f"{sweep_id}-{n}", sweep_id=sweep_id, number=n, state=RunState.FINISHED,
                point={("lr",): lr, ("layers",): 1 + n % 2},
                created_at=1e9 + n, attempt=1, worker_id="w1",
                command=RenderedArgv(["${interpreter}", "train.py", f"--lr={lr}",
                                      f"--layers={1 + n % 2}"], (2, 3)),
                argv=["python", "train.py", f"--lr={lr}", f"--layers={1 + n % 2}"],
                exit_code=0, summary={"loss": float(n)}, ended_at=1e9 + n + 1,
            ))
        sweep.run_count = RUNS
        sweep.exhausted_reason = f"{RUNS} runs created (MAX_RUNS_PER_SWEEP)"
        store.update_sweep(sweep)
    store.close()
    print(f"stored {RUNS} runs in {time.monotonic() - started:.1f} s")

    cluster.start_coordinator()
    stub = sweeps_pb2_grpc.SweepServiceStub(cluster.channel())
    first = stub.ListRuns(sweeps_pb2.ListRunsRequest(sweep_id=sweep_id), timeout=60)
    assert len(first.runs) == limits.DEFAULT_PAGE_SIZE and first.next_page_token
    assert [r.number for r in first.runs] == list(range(1, limits.DEFAULT_PAGE_SIZE + 1))
    big = stub.ListRuns(sweeps_pb2.ListRunsRequest(sweep_id=sweep_id, page_size=10**9,
                                                   page_token=first.next_page_token),
                        timeout=60)
    assert len(big.runs) == limits.MAX_PAGE_SIZE
    assert big.runs[0].number == limits.DEFAULT_PAGE_SIZE + 1
    for bad in ("garbage!", first.next_page_token + "x", "cnVuczE6b3RoZXI6MTA"):
        with pytest.raises(grpc.RpcError) as err:
            stub.ListRuns(sweeps_pb2.ListRunsRequest(sweep_id=sweep_id, page_token=bad),
                          timeout=60)
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "page_token" in (err.value.details() or "")

    started = time.monotonic()
    listed = json.loads(cluster.sweep("runs", sweep_id, "--format", "json").stdout)
    print(f"`sweep runs` listed {RUNS} runs in {time.monotonic() - started:.1f} s")
    # Client.runs pages through them all, in creation order.
    assert [r["number"] for r in listed] == list(range(1, RUNS + 1))
    assert len({r["id"] for r in listed}) == RUNS
    assert listed[-1]["summary"]["loss"] == float(RUNS)


def test_oversized_text_is_refused_naming_the_field(cluster: Cluster, tmp_path: Path) -> None:
    cluster.start_coordinator()
    config = tmp_path / "sweep.yaml"
    config.write_text("program: train.py\nmethod: grid\nparameters:\n  a: {values: [1, 2]}\n")
    sweep_id = cluster.create(config)
    channel = cluster.channel()
    stub = sweeps_pb2_grpc.SweepServiceStub(channel)
    run = stub.SuggestRun(sweeps_pb2.SuggestRunRequest(sweep_id=sweep_id, client_id="c1"),
                          timeout=10).run
    before = db_bytes(cluster.state_dir)
    for _ in range(5):
        with pytest.raises(grpc.RpcError) as err:
            stub.FinishRun(sweeps_pb2.FinishRunRequest(
                run_id=run.id, attempt=run.attempt, client_id="c1",
                state=common_pb2.RUN_STATE_FINISHED, reason="x" * (3 * 1024 * 1024)),
                timeout=30)
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        details = err.value.details() or ""
        assert details.startswith("reason:") and "MAX_TEXT_LENGTH" in details, details
    assert db_bytes(cluster.state_dir) - before < 64 * 1024
    got = stub.GetRun(sweeps_pb2.GetRunRequest(run_id=run.id), timeout=10).run
    assert got.state == common_pb2.RUN_STATE_ASSIGNED and got.reason == ""

    # A worker's incarnation and argv are bounded where they enter, too.
    wstub = workers_pb2_grpc.WorkerServiceStub(channel)
    with pytest.raises(grpc.RpcError) as err:
        list(wstub.Connect(iter([workers_pb2.WorkerMessage(hello=workers_pb2.Hello(
            worker_id="w", incarnation="i" * 100_000, slots=1))]), timeout=10))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "hello.incarnation" in (err.value.details() or "")
    # A finish that still fits is recorded with its reason.
    finished = stub.FinishRun(sweeps_pb2.FinishRunRequest(
        run_id=run.id, attempt=run.attempt, client_id="c1",
        state=common_pb2.RUN_STATE_FINISHED, reason="r" * limits.MAX_TEXT_LENGTH), timeout=10)
    assert finished.state == common_pb2.RUN_STATE_FINISHED
    channel.close()
