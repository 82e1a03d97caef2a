"""The worker's wire protocol (worker/protocol.py): every message a worker sends and every
order it takes, converted once, and protobuf nowhere else in the worker."""

from __future__ import annotations

import ast
import signal
from pathlib import Path

from sweepd.common.runfile import Record
from sweepd.v1 import common_pb2, workers_pb2
from sweepd.worker import protocol, signals
from sweepd.worker.messages import (
    ANY_ATTEMPT,
    Ack,
    Assignment,
    DrainOrder,
    Heartbeat,
    Hello,
    MetricBatch,
    RunFinished,
    RunOutput,
    RunStarted,
    StopOrder,
    Welcome,
)

WORKER = Path(__file__).resolve().parents[2] / "worker"


def test_only_the_protocol_module_imports_protobuf() -> None:
    importers = []
    for path in sorted(WORKER.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            if any(n.startswith(("sweepd.v1", "google.protobuf")) for n in names):
                importers.append(path.name)
    assert sorted(set(importers)) == ["protocol.py"]


def test_what_a_worker_sends_goes_on_the_wire_whole() -> None:
    hello = protocol.to_wire(Hello(
        worker_id="w", incarnation="i", host="h", slots=2, labels={"a": "b"}, sweep_id="s",
        gpus=["0"], queues=["default"], heartbeat_s=2.0, max_runs=3, last_acked_seq=7,
        runs_assigned=1, held_runs=[("r-1", 2)]))
    assert hello.seq == 0 and hello.hello.last_acked_seq == 7 and hello.hello.labels == {"a": "b"}
    assert [(h.run_id, h.attempt) for h in hello.hello.held_runs] == [("r-1", 2)]

    beat = protocol.to_wire(Heartbeat(runs=[("r-1", 2)], free_slots=1, draining=True,
                                      paused=False))
    assert beat.seq == 0 and beat.heartbeat.draining and beat.heartbeat.free_slots == 1

    out = protocol.to_wire(RunOutput(run_id="r-1", attempt=2, data=b"hi\n"))
    assert out.seq == 0 and out.output.data == b"hi\n"

    started = protocol.to_wire(RunStarted(run_id="r-1", attempt=2, argv=["python", "t.py"],
                                          pid=9, time=1.5), seq=4)
    assert started.seq == 4 and list(started.run_started.argv) == ["python", "t.py"]
    assert started.run_started.time.ToNanoseconds() == 1_500_000_000

    batch = protocol.to_wire(MetricBatch(run_id="r-1", attempt=2, records=[
        Record(index=0, step=3, time=2.0, values={"loss": 0.25})]), seq=5)
    (record,) = batch.metrics.records
    assert batch.seq == 5 and record.step == 3 and record.values == {"loss": 0.25}


def test_a_finished_run_keeps_an_unset_exit_code_unset() -> None:
    ran = protocol.to_wire(RunFinished(run_id="r-1", attempt=2, state="FAILED", reason="boom",
                                       time=3.0, exit_code=1, log_tail=b"tail"), seq=6)
    assert ran.run_finished.state == common_pb2.RUN_STATE_FAILED
    assert ran.run_finished.HasField("exit_code") and ran.run_finished.exit_code == 1
    assert ran.run_finished.log_tail == b"tail"
    handed_back = protocol.to_wire(RunFinished(run_id="r-1", attempt=2, state="PENDING",
                                               reason="leaving", time=3.0), seq=7)
    assert handed_back.run_finished.state == common_pb2.RUN_STATE_PENDING
    assert not handed_back.run_finished.HasField("exit_code")


def test_orders_arrive_as_plain_data() -> None:
    def order(**body: object) -> object:
        return protocol.order_from_wire(workers_pb2.CoordinatorMessage(**body))

    params = common_pb2.ParamMap()
    params.fields["lr"].double_value = 0.1
    params.fields["a"].int_value = 2
    got = order(assign=workers_pb2.Assign(run_id="r-1", sweep_id="r", attempt=2,
                                          params=params, argv=["x", "--lr=0.1"],
                                          literal_argv=[1]))
    assert got == Assignment(run_id="r-1", sweep_id="r", attempt=2,
                             params={"a": 2, "lr": 0.1}, argv=["x", "--lr=0.1"],
                             literal_argv=(1,))
    assert list(got.params) == ["a", "lr"]  # type: ignore[attr-defined]
    assert order(ack=workers_pb2.Ack(seq=3, refused="no")) == Ack(seq=3, refused="no")
    assert order(stop_run=workers_pb2.StopRun(run_id="r-1", reason="why")) == StopOrder(
        run_id="r-1", reason="why", attempt=ANY_ATTEMPT)
    assert order(drain=workers_pb2.Drain(reason="bye")) == DrainOrder(reason="bye")
    assert order(welcome=workers_pb2.Welcome()) is None  # only the first message welcomes


def test_a_welcome_names_attempts_or_for_an_older_coordinator_runs() -> None:
    def welcome(**fields: object) -> Welcome | None:
        return protocol.welcome_from_wire(workers_pb2.CoordinatorMessage(
            welcome=workers_pb2.Welcome(**fields)))

    assert welcome(heartbeat_interval_s=1.5, applied_seq=4, stop_run_ids=["r-1"],
                   stop_runs=[workers_pb2.HeldRun(run_id="r-1", attempt=1)]) == Welcome(
        heartbeat_s=1.5, applied_seq=4, stop_runs=[("r-1", 1)])
    assert welcome(stop_run_ids=["r-1", "r-2", "r-1"]) == Welcome(
        heartbeat_s=0.0, applied_seq=0, stop_runs=[("r-1", ANY_ATTEMPT), ("r-2", ANY_ATTEMPT)])
    assert protocol.welcome_from_wire(workers_pb2.CoordinatorMessage(
        ack=workers_pb2.Ack(seq=1))) is None


# -- the signal ladder (worker/signals.py), pure as well ----------------------------------------

def test_the_signal_ladder() -> None:
    first_int = signals.step(1, signal.SIGINT, worker_id="w", running=2)
    assert first_int.drain_reason == "received SIGINT" and not first_int.terminate_reason
    assert "waiting for 2 run(s)" in first_int.say
    first_term = signals.step(1, signal.SIGTERM, worker_id="w", running=0)
    assert first_term.drain_reason == "received SIGTERM" and first_term.say == ""
    assert first_term.terminate_reason == "worker w received SIGTERM; the run was sent SIGTERM"
    second = signals.step(2, signal.SIGINT, worker_id="w", running=1)
    assert not second.drain_reason and "interrupted twice" in second.terminate_reason
    third = signals.step(3, signal.SIGINT, worker_id="w", running=1)
    assert "three times" in third.kill_reason and not third.terminate_reason
    assert signals.step(5, signal.SIGTERM, worker_id="w", running=1) == third
