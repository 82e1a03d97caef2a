"""The coordinator's write path under faults, end to end: a state directory on a real full
filesystem, and integers from the wire that do not fit the database.

Nothing acknowledged may be lost: after space returns, every record a program wrote is
stored exactly once and its run ends FINISHED; a refused message never bricks a worker id.
"""

from __future__ import annotations

import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from sweepd.v1 import workers_pb2, workers_pb2_grpc

from .harness import Cluster, fill, wait_for

pytestmark = pytest.mark.e2e

RECORDS = 300
TRAIN = textwrap.dedent(f'''
    import os, time
    from sweepd.client import run

    for i in range({RECORDS}):
        run.log({{"loss": 1000.0 * run.config["a"] + i, "i": i}})
        time.sleep(float(os.environ.get("TRAIN_PAUSE", "0.02")))
''')


def test_a_full_disk_loses_no_record(small_disk: Path, cluster: Cluster,
                                     tmp_path: Path) -> None:
    cluster.start_coordinator()
    work = tmp_path / "work"
    work.mkdir()
    (work / "train.py").write_text(TRAIN)
    config = tmp_path / "sweep.yaml"
    config.write_text("program: train.py\nmethod: grid\nmetric: {name: loss, goal: minimize}\n"
                      "parameters:\n  a: {values: [1, 2]}\n")
    sweep_id = cluster.create(config)
    worker = cluster.start_worker("--sweep", sweep_id, workdir=work)
    # Fill the disk while the first run is writing its records.
    wait_for(lambda: any(r["state"] == "RUNNING" and r["summary"].get("i", 0) >= 20
                         for r in cluster.runs(sweep_id)), what="run 1 to report metrics")
    filler = fill(small_disk)
    try:
        coordinator = cluster.coordinator
        assert coordinator is not None
        wait_for(lambda: "full disk" in coordinator.output(), timeout=60,
                 what="a write to fail on the full disk")
        # While it is full, answers say so and change nothing.
        result = cluster.sweep("pause", sweep_id, check=False)
        assert result.returncode != 0 and "full disk" in result.stderr, result
    finally:
        filler.unlink()
    assert worker.wait(timeout=180) == 0, worker.output()
    runs = cluster.runs(sweep_id)
    assert len(runs) == 2
    for r in runs:
        assert r["state"] == "FINISHED" and r["attempt"] == 1, r
        detail = cluster.sweep_json("show", r["id"])
        history = detail["history"]
        assert [h["index"] for h in history] == list(range(RECORDS)), r["id"]
        assert [h["i"] for h in history] == list(range(RECORDS))
        assert r["summary"]["i"] == RECORDS - 1
    assert cluster.sweep_state(sweep_id) == "FINISHED"


def _connect(cluster: Cluster, messages: list[workers_pb2.WorkerMessage],
             until: int = 1) -> Any:
    """One worker stream sending ``messages`` and then holding its side open until the
    coordinator sent ``until`` messages after the welcome (or ended the stream). Returns the
    status it ended with (OK if we ended it), its details and what the coordinator sent."""
    channel = cluster.channel()
    stub = workers_pb2_grpc.WorkerServiceStub(channel)
    got: list[workers_pb2.CoordinatorMessage] = []
    enough = threading.Event()

    def requests() -> Iterator[workers_pb2.WorkerMessage]:
        yield from messages
        enough.wait(timeout=20)

    try:
        for msg in stub.Connect(requests(), timeout=30):
            got.append(msg)
            if len(got) > until:
                enough.set()
                break
    except grpc.RpcError as exc:
        return exc.code(), exc.details(), got
    finally:
        enough.set()
        channel.close()
    return grpc.StatusCode.OK, "", got


def hello(worker_id: str) -> workers_pb2.WorkerMessage:
    return workers_pb2.WorkerMessage(hello=workers_pb2.Hello(
        worker_id=worker_id, incarnation="inc-1", slots=0, host="h"))


def test_integers_that_do_not_fit_are_refused_and_harm_nothing(cluster: Cluster,
                                                               tmp_path: Path) -> None:
    from sweepd.client.api import Client
    from sweepd.common.transport import Security
    from sweepd.v1 import common_pb2, sweeps_pb2, sweeps_pb2_grpc

    cluster.start_coordinator()
    config = tmp_path / "sweep.yaml"
    config.write_text("program: train.py\nmethod: grid\nmetric: {name: loss, goal: minimize}\n"
                      "parameters:\n  a: {values: [1, 2]}\n")
    sweep_id = cluster.create(config)
    client = Client(cluster.address, security=Security(token=cluster.token))
    run, _ = client.suggest_run(sweep_id, "c1")
    assert run is not None
    stub = sweeps_pb2_grpc.SweepServiceStub(cluster.channel())

    def report(*indices: int) -> Any:
        return stub.ReportMetrics(sweeps_pb2.ReportMetricsRequest(
            run_id=run["id"], attempt=run["attempt"], client_id="c1", records=[
                common_pb2.MetricRecord(index=i, step=0, values={"loss": 1.0})
                for i in indices]), timeout=10)

    with pytest.raises(grpc.RpcError) as err:
        report(0, 2**63 - 1)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "records[1].index" in (err.value.details() or "")
    # Later records are stored as usual.
    report(0, 1)
    report(2)
    assert [h["index"] for h in client.get_run(run["id"], history=True)["history"]] == [0, 1, 2]

    # A worker message whose seq cannot be stored ends that stream, nothing else.
    huge = workers_pb2.WorkerMessage(seq=2**64 - 1, metrics=workers_pb2.MetricBatch(
        run_id=run["id"], attempt=1))
    code, details, got = _connect(cluster, [hello("w-huge"), huge])
    assert code == grpc.StatusCode.INVALID_ARGUMENT, (code, details)
    assert "seq" in details
    assert got and got[0].WhichOneof("body") == "welcome"
    # The same worker id reconnects and its messages are still applied and acknowledged.
    finish = workers_pb2.WorkerMessage(seq=1, run_finished=workers_pb2.RunFinished(
        run_id="no-such-run", attempt=1, state=common_pb2.RUN_STATE_FINISHED))
    code, details, got = _connect(cluster, [hello("w-huge"), finish], until=2)
    welcome = got[0].welcome
    assert welcome.applied_seq == 0
    acks = [m.ack for m in got if m.WhichOneof("body") == "ack"]
    assert [a.seq for a in acks] == [1] and "no run" in acks[0].refused, (code, details, got)
    # A heartbeat interval that is not a duration is refused, never echoed back.
    nan_hello = workers_pb2.WorkerMessage(hello=workers_pb2.Hello(
        worker_id="w-nan", incarnation="i", slots=1, heartbeat_interval_s=float("nan")))
    code, details, got = _connect(cluster, [nan_hello])
    assert code == grpc.StatusCode.INVALID_ARGUMENT and not got, (code, got)
    assert "hello.heartbeat_interval_s" in details
    client.close()
