"""The worker's sequenced outbox (worker/outbox.py): numbers, acknowledgements, what is kept,
and the resend after a reconnect, alone and through the worker's real session code."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import grpc
from sweepd.common.runfile import Record
from sweepd.v1 import workers_pb2
from sweepd.worker.daemon import Worker, WorkerOptions
from sweepd.worker.messages import MetricBatch, RunFinished, RunStarted
from sweepd.worker.outbox import Outbox
from sweepd.worker.runner import RunningRun, RunSpec
from sweepd.worker.supervision import HeldRun


def _started(run_id: str = "r-1", attempt: int = 1) -> RunStarted:
    return RunStarted(run_id=run_id, attempt=attempt, argv=["python", "train.py"], pid=42,
                      time=1.0)


def _metrics(step: int) -> MetricBatch:
    return MetricBatch(run_id="r-1", attempt=1,
                       records=[Record(index=step, step=step, time=2.0, values={"loss": 0.5})])


def _finished(run_id: str = "r-1", attempt: int = 1) -> RunFinished:
    return RunFinished(run_id=run_id, attempt=attempt, state="FINISHED", reason="", time=3.0,
                       exit_code=0)


def test_events_are_numbered_from_one_in_order() -> None:
    outbox = Outbox()
    assert outbox.last_seq == 0 and outbox.acked_seq == 0 and len(outbox) == 0
    events = [_started(), _metrics(0), _metrics(1), _finished()]
    assert [outbox.add(e) for e in events] == [1, 2, 3, 4]
    assert outbox.last_seq == 4
    assert outbox.unacked() == list(enumerate(events, start=1))


def test_an_ack_lets_go_of_everything_up_to_its_number_and_never_goes_back() -> None:
    outbox = Outbox()
    events = [_started(), _metrics(0), _metrics(1), _finished()]
    for e in events:
        outbox.add(e)
    assert outbox.ack_up_to(2) == events[:2]
    assert [seq for seq, _ in outbox.unacked()] == [3, 4] and outbox.acked_seq == 2
    # A late, older acknowledgement changes nothing.
    assert outbox.ack_up_to(1) == [] and outbox.acked_seq == 2 and len(outbox) == 2
    assert outbox.ack_up_to(4) == events[2:]
    assert len(outbox) == 0 and not outbox and outbox.acked_seq == 4
    # Numbers go on after everything was acknowledged: never reused.
    assert outbox.add(_metrics(2)) == 5


def test_an_ack_past_the_last_number_is_remembered() -> None:
    # The coordinator's welcome can name a number this process never gave (it applied the
    # events of an earlier incarnation with the same id): the hello must not go back.
    outbox = Outbox()
    outbox.add(_started())
    assert outbox.ack_up_to(7) == [_started()]
    assert outbox.acked_seq == 7


def test_an_unsendable_event_is_dropped_and_the_rest_kept() -> None:
    outbox = Outbox()
    for e in (_started(), _metrics(0), _finished()):
        outbox.add(e)
    outbox.drop(2)
    outbox.drop(99)  # unknown: nothing happens
    assert [seq for seq, _ in outbox.unacked()] == [1, 3]
    assert outbox.get(2) is None and outbox.get(3) == _finished()


# -- through the worker's session code ----------------------------------------------------------

class _Stream:
    """A worker stream: answers the hello with a welcome, then ends once ``expect`` messages
    were written after the hello (or at once if none are expected)."""

    def __init__(self, applied_seq: int, expect: int) -> None:
        self.welcome = workers_pb2.CoordinatorMessage(welcome=workers_pb2.Welcome(
            heartbeat_interval_s=60.0, applied_seq=applied_seq))
        self.expect = expect
        self.written: list[workers_pb2.WorkerMessage] = []
        self.enough = asyncio.Event()
        self.reads = 0

    async def write(self, msg: workers_pb2.WorkerMessage) -> None:
        self.written.append(msg)
        if len(self.written) > self.expect:
            self.enough.set()

    async def read(self) -> Any:
        self.reads += 1
        if self.reads == 1:
            return self.welcome
        if self.expect:
            await asyncio.wait_for(self.enough.wait(), 10)
        return grpc.aio.EOF

    def cancel(self) -> None:
        pass


def test_a_reconnect_resends_exactly_what_was_not_acknowledged_in_order(tmp_path: Path) -> None:
    async def scenario() -> tuple[list[workers_pb2.WorkerMessage], Worker]:
        worker = Worker(WorkerOptions(coordinator="127.0.0.1:1", workdir=tmp_path))
        # Made while the coordinator was away: nobody to send them to, the outbox keeps them.
        worker._send(_started())
        worker._send(_metrics(0))
        worker._send(_finished("r-2"))
        spec = RunSpec(run_id="r-2", sweep_id="r", attempt=1, params={}, argv=[])
        worker.held[("r-2", 1)] = HeldRun.following(RunningRun(spec=spec, run_dir=tmp_path))
        # The coordinator comes back having applied the first before the stream broke.
        stream = _Stream(applied_seq=1, expect=2)
        assert await worker.connection.session(stream)
        return stream.written, worker

    written, worker = asyncio.run(scenario())
    hello, *resent = written
    assert hello.hello.last_acked_seq == 0  # what this worker knew when it said hello
    assert [(m.seq, m.WhichOneof("body")) for m in resent] == [
        (2, "metrics"), (3, "run_finished")]
    assert resent[1].run_finished.run_id == "r-2"
    assert [seq for seq, _ in worker.outbox.unacked()] == [2, 3]  # sent is not acknowledged
    assert ("r-2", 1) in worker.held  # its end not acknowledged: still held

    # The next session's welcome acknowledges them all: nothing is resent, the run is let go.
    async def again() -> list[workers_pb2.WorkerMessage]:
        stream = _Stream(applied_seq=3, expect=0)
        assert await worker.connection.session(stream)
        return stream.written

    (hello,) = asyncio.run(again())
    assert hello.hello.last_acked_seq == 1
    assert len(worker.outbox) == 0 and ("r-2", 1) not in worker.held


def test_best_effort_messages_are_not_kept(tmp_path: Path) -> None:
    worker = Worker(WorkerOptions(coordinator="127.0.0.1:1", workdir=tmp_path))
    worker._send_heartbeat()  # no session: dropped, never resent
    assert len(worker.outbox) == 0
