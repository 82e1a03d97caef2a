"""The worker's defences against what it reads (issue #11): metrics lines a program writes,
ids the coordinator sends, stop orders for an older attempt, and the --count drain race."""

from __future__ import annotations

import asyncio
import json
import math
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from sweepd.common.names import check_wire_ids
from sweepd.common.runfile import (
    MAX_BAD_LINES_NOTED,
    MAX_TIMESTAMP_S,
    MetricsFollower,
    UnusableLine,
    read_metric_line,
)
from sweepd.v1 import common_pb2, workers_pb2
from sweepd.worker.daemon import Worker, WorkerOptions
from sweepd.worker.messages import RunFinished
from sweepd.worker.protocol import order_from_wire, to_wire
from sweepd.worker.protocol import timestamp as _ts
from sweepd.worker.runner import RunningRun, RunSpec

# -- metrics lines ---------------------------------------------------------------------------

# JSON values of every kind, the edge numbers in particular.
_numbers = st.one_of(
    st.integers(), st.integers(min_value=-(10**400), max_value=10**400),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([2**63, 2**63 - 1, -1, 10**20, 1.7e12, 1e308, -0.0]),
)
_json = st.recursive(
    st.one_of(st.none(), st.booleans(), _numbers, st.text(max_size=20)),
    lambda inner: st.one_of(st.lists(inner, max_size=4),
                            st.dictionaries(st.text(max_size=10), inner, max_size=4)),
    max_leaves=12,
)
_records = st.dictionaries(
    st.one_of(st.sampled_from(["_step", "_timestamp", "loss", "acc", "a\ud800b"]),
              st.text(max_size=300)),
    _json, max_size=6,
)


def _to_wire(values: dict[str, float], step: int | None, stamp: float | None) -> None:
    """What the worker does with a parsed line: it must always fit the protobuf."""
    record = common_pb2.MetricRecord(index=0, step=0 if step is None else step, values=values,
                                     time=_ts(0.0 if stamp is None else stamp))
    record.SerializeToString()


@settings(max_examples=400, deadline=None)
@given(_records)
def test_any_metrics_object_is_used_or_refused_with_a_reason(record: dict[str, Any]) -> None:
    line = json.dumps(record, allow_nan=True)
    try:
        values, step, stamp = read_metric_line(line)
    except UnusableLine as exc:
        assert str(exc)  # a reason for the user
        return
    _to_wire(values, step, stamp)


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(max_size=200), st.binary(max_size=200).map(
    lambda b: b.decode("utf-8", errors="replace")), _json.map(json.dumps)))
def test_any_text_is_used_or_refused_with_a_reason(line: str) -> None:
    try:
        values, step, stamp = read_metric_line(line)
    except UnusableLine as exc:
        assert str(exc)
        return
    _to_wire(values, step, stamp)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.one_of(_records.map(lambda r: json.dumps(r, allow_nan=True)),
                          st.binary(max_size=40).map(lambda b: b.decode("latin-1"))),
                max_size=12),
       st.lists(st.integers(min_value=0, max_value=400), max_size=6))
def test_follower_reads_the_same_whatever_the_write_boundaries(
        tmp_path_factory: Any, lines: list[str], cuts: list[int]) -> None:
    data = "".join(line.replace("\n", " ") + "\n" for line in lines).encode("utf-8")
    path = tmp_path_factory.mktemp("m") / "metrics.jsonl"
    path.write_bytes(data)
    whole = MetricsFollower(path)
    expected = whole.read_new(final=True)
    path.write_bytes(b"")
    follower = MetricsFollower(path)
    got = []
    start = 0
    for cut in sorted(min(c, len(data)) for c in cuts) + [len(data)]:
        with open(path, "ab") as f:
            f.write(data[start:cut])
        start = max(start, cut)
        got += follower.read_new()
    got += follower.read_new(final=True)
    strip = [(r.index, r.step, r.values) for r in expected]
    assert [(r.index, r.step, r.values) for r in got] == strip or any(
        v != v for r in expected for v in r.values.values())  # NaN != NaN
    assert follower.bad_lines == whole.bad_lines
    for r in got:
        _to_wire(r.values, r.step, r.time)


def test_the_lines_of_the_report_are_refused_with_why() -> None:
    cases = {
        '{"loss": 1, "_timestamp": 1732000000000}': "milliseconds",
        '{"loss": 1, "_step": 100000000000000000000}': "_step",
        '{"loss": %s}' % ("9" * 400): "400-digit integer",
        '{"loss": 1, "_step": -1}': "_step",
        '{"loss": 1, "_step": "3"}': "whole number",
        '{"loss": 1, "_timestamp": NaN}': "_timestamp",
        '[1, 2]': "not an object",
        'garbage': "not JSON",
        '{"' + "k" * 300 + '": 1}': "over the limit",
        '[' * 100_000 + ']' * 100_000: "not JSON",
        '{"a\\ud800b": 1}': "lone surrogate",
    }
    for line, why in cases.items():
        try:
            read_metric_line(line)
        except UnusableLine as exc:
            assert why in str(exc), (line[:60], str(exc))
        else:
            raise AssertionError(f"{line[:60]!r} was accepted")
    # Still fine: an integral float step, a seconds timestamp, NaN values, strings skipped.
    values, step, stamp = read_metric_line(
        '{"loss": NaN, "name": "x", "_step": 4.0, "_timestamp": 1732000000.5}')
    assert step == 4 and stamp == 1732000000.5 and math.isnan(values["loss"])
    assert set(values) == {"loss"}
    assert MAX_TIMESTAMP_S < 1732000000000


def test_follower_counts_bad_lines_and_says_which(tmp_path: Path) -> None:
    path = tmp_path / "metrics.jsonl"
    path.write_text('{"loss": 1}\n{"loss": 2, "_step": 100000000000000000000}\n\n'
                    '{"loss": 3}\nnope\n')
    follower = MetricsFollower(path)
    records = follower.read_new()
    assert [(r.index, r.values["loss"]) for r in records] == [(0, 1.0), (1, 3.0)]
    assert follower.bad_lines == 2
    bad = follower.take_bad()
    assert [b.number for b in bad] == [2, 5] and "_step" in bad[0].why
    assert follower.take_bad() == []  # handed over once
    assert follower.first_bad is not None and follower.first_bad.number == 2
    # A program writing nothing but garbage: counted, and named only up to a bound.
    with open(path, "a") as f:
        f.write("x\n" * 10_000)
    assert follower.read_new() == [] and follower.bad_lines == 10_002
    noted = follower.take_bad()
    assert len(noted) == MAX_BAD_LINES_NOTED - 1 and "counted, not listed" in noted[-1].why


# -- ids from the wire -----------------------------------------------------------------------

def test_ids_that_are_not_plain_names_are_refused() -> None:
    assert check_wire_ids("k3x9a2bq-1", "k3x9a2bq", 1) == ""
    for run_id in ["../../escaped", "/etc/passwd", "a/b", ".", "..", "", "a.b", "a\x00b",
                   "x" * 300, "-rf", "ü"]:
        assert "assign.run_id" in check_wire_ids(run_id, "k3x9a2bq", 1), run_id
    assert "assign.sweep_id" in check_wire_ids("k3x9a2bq-1", "../s", 1)
    for attempt in (0, -1, 2**62):
        assert "assign.attempt" in check_wire_ids("k3x9a2bq-1", "k3x9a2bq", attempt)


# -- stop orders name their attempt ----------------------------------------------------------

class _FakeProcess:
    pid = 999_999_999
    returncode = None


def _worker_holding(tmp_path: Path, *attempts: int) -> tuple[Worker, list[tuple[str, int]]]:
    from sweepd.worker.runner import OutputFollower
    from sweepd.worker.supervision import HeldRun as _Held

    worker = Worker(WorkerOptions(coordinator="127.0.0.1:1", workdir=tmp_path))
    stopped: list[tuple[str, int]] = []
    worker.runner.request_stop = (
        lambda running, reason: stopped.append((running.spec.run_id, running.spec.attempt)))
    for attempt in attempts:
        spec = RunSpec(run_id="r-1", sweep_id="r", attempt=attempt, params={}, argv=[])
        running = RunningRun(spec=spec, run_dir=tmp_path, process=_FakeProcess())
        worker.held[("r-1", attempt)] = _Held(
            running=running, follower=MetricsFollower(tmp_path / "m"),
            output=OutputFollower(tmp_path / "o"))
    return worker, stopped


def test_a_stop_for_an_old_attempt_never_stops_the_new_one(tmp_path: Path) -> None:
    worker, stopped = _worker_holding(tmp_path, 1, 2)
    worker._stop(workers_pb2.StopRun(run_id="r-1", attempt=1, reason="stale"))
    assert stopped == [("r-1", 1)]
    worker, stopped = _worker_holding(tmp_path, 2)
    worker._stop(workers_pb2.StopRun(run_id="r-1", attempt=1, reason="stale"))
    assert stopped == []  # attempt 2 runs on untouched
    worker._stop(workers_pb2.StopRun(run_id="r-1", reason="old coordinator: any attempt"))
    assert stopped == [("r-1", 2)]


class _FakeCall:
    """A worker stream that answers the hello with ``welcome`` and then ends."""

    def __init__(self, welcome: workers_pb2.Welcome) -> None:
        self.replies: list[Any] = [workers_pb2.CoordinatorMessage(welcome=welcome)]
        self.written: list[workers_pb2.WorkerMessage] = []

    async def write(self, msg: workers_pb2.WorkerMessage) -> None:
        self.written.append(msg)

    async def read(self) -> Any:
        import grpc

        return self.replies.pop(0) if self.replies else grpc.aio.EOF

    def cancel(self) -> None:
        pass


def _welcome_stops(worker: Worker, welcome: workers_pb2.Welcome) -> None:
    call = _FakeCall(welcome)
    assert asyncio.run(worker.connection.session(call))
    hello = call.written[0].hello
    assert [(h.run_id, h.attempt) for h in hello.held_runs] == sorted(worker.held)


def test_a_welcome_stops_only_the_attempt_it_names(tmp_path: Path) -> None:
    # This worker lost attempt 1 (its lease expired while it lived) and was handed attempt 2
    # of the same run: the welcome's stop for attempt 1 must leave attempt 2 running.
    worker, stopped = _worker_holding(tmp_path, 1, 2)
    _welcome_stops(worker, workers_pb2.Welcome(
        heartbeat_interval_s=1.0, stop_run_ids=["r-1"],
        stop_runs=[workers_pb2.HeldRun(run_id="r-1", attempt=1)]))
    assert stopped == [("r-1", 1)]
    # An older coordinator names ids only: every attempt of the run goes, as it expects.
    worker, stopped = _worker_holding(tmp_path, 1, 2)
    _welcome_stops(worker, workers_pb2.Welcome(heartbeat_interval_s=1.0, stop_run_ids=["r-1"]))
    assert sorted(stopped) == [("r-1", 1), ("r-1", 2)]
    # Nothing named: nothing stopped.
    worker, stopped = _worker_holding(tmp_path, 1)
    _welcome_stops(worker, workers_pb2.Welcome(heartbeat_interval_s=1.0))
    assert stopped == []


def test_an_acknowledged_end_forgets_only_its_own_attempt(tmp_path: Path) -> None:
    worker, _ = _worker_holding(tmp_path, 1, 2)
    worker._forget_if_finished(RunFinished(run_id="r-1", attempt=1, state="FINISHED",
                                           reason="", time=0.0))
    assert list(worker.held) == [("r-1", 2)]


# -- --count 1: the run taken last is not lost -----------------------------------------------

def test_count_one_waits_for_the_run_it_just_took(tmp_path: Path) -> None:
    """The drain of ``--count 1`` happens while the program is still being started; a slow
    start (many loop turns) must not let the worker leave and cancel the run."""

    async def scenario() -> tuple[list[str], bool]:
        worker = Worker(WorkerOptions(coordinator="127.0.0.1:1", workdir=tmp_path, count=1))
        events: list[str] = []

        async def slow_start(spec: RunSpec, extra_env: dict[str, str]) -> None:
            for _ in range(50):
                await asyncio.sleep(0)
            await asyncio.sleep(0.2)
            events.append("started")
            worker._send(RunFinished(run_id=spec.run_id, attempt=spec.attempt,
                                     state="FINISHED", reason="", time=0.0))
            worker._ack_up_to(worker.outbox.last_seq)

        worker._run_started = slow_start
        until = asyncio.ensure_future(worker._until_done())
        await asyncio.sleep(0)
        worker.on_order(order_from_wire(workers_pb2.CoordinatorMessage(
            assign=workers_pb2.Assign(run_id="r-1", sweep_id="r", attempt=1))))
        await asyncio.wait_for(until, 10)
        events.append("left")
        return events, worker.draining

    events, draining = asyncio.run(scenario())
    assert draining and events == ["started", "left"]


# -- nothing in a run's supervision fails without ending the run -----------------------------

def test_a_failure_while_supervising_ends_the_run_failed_and_kills_it(
        tmp_path: Path, monkeypatch: Any) -> None:
    import sys

    def broken(self: MetricsFollower, final: bool = False) -> list[Any]:
        raise RuntimeError("boom")

    monkeypatch.setattr(MetricsFollower, "read_new", broken)

    async def scenario() -> tuple[list[workers_pb2.WorkerMessage], int]:
        worker = Worker(WorkerOptions(coordinator="127.0.0.1:1", workdir=tmp_path))
        worker.on_order(order_from_wire(workers_pb2.CoordinatorMessage(
            assign=workers_pb2.Assign(run_id="r-1", sweep_id="r", attempt=1,
                                      argv=[sys.executable, "-c", "import time; time.sleep(60)"]))))
        task = next(iter(worker._tasks))
        await asyncio.wait_for(task, 20)
        (held,) = worker.held.values()
        assert held.running.process is not None
        code = await asyncio.wait_for(held.running.process.wait(), 10)
        return [to_wire(event, seq) for seq, event in worker.outbox.unacked()], code

    sent, code = asyncio.run(scenario())
    assert code < 0  # killed, not left running
    kinds = [m.WhichOneof("body") for m in sent]
    assert kinds == ["run_started", "run_finished"], kinds
    finished = sent[-1].run_finished
    assert finished.state == common_pb2.RUN_STATE_FAILED
    assert "RuntimeError: boom" in finished.reason, finished.reason
    assert "boom" in (tmp_path / ".sweepd" / "runs" / "r-1.1" / "output.log").read_text()
