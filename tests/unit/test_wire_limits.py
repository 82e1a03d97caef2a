"""Limits on what arrives on the wire, checked where it enters (the servicers' conversions):
every integer the coordinator stores or counts from, every text it keeps, and ListRuns pages.
Each refusal is INVALID_ARGUMENT naming the field (and the limit)."""

from __future__ import annotations

from pathlib import Path

import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from sweepd.common import transport
from sweepd.coordinator import limits
from sweepd.coordinator.dispatcher import Dispatcher, RunFinishedEvent
from sweepd.coordinator.domain import Run, RunState
from sweepd.coordinator.errors import InvalidArgument
from sweepd.coordinator.servicers.convert import (
    _page_token,
    argv_from_proto,
    check_seq,
    records_from_proto,
    runs_page,
)
from sweepd.coordinator.servicers.workers import event_from_proto, hello_from_proto
from sweepd.coordinator.store import Store
from sweepd.v1 import common_pb2, workers_pb2


def test_one_message_size_limit() -> None:
    assert limits.MAX_MESSAGE_BYTES is transport.MAX_MESSAGE_BYTES
    assert limits.MAX_REQUEST_BYTES < limits.MAX_MESSAGE_BYTES
    assert limits.MAX_PAGE_BYTES < limits.MAX_MESSAGE_BYTES


def test_integers_that_do_not_fit_int64_with_room_are_refused() -> None:
    ok = common_pb2.MetricRecord(index=2**63 - 2, step=2**63 - 1, values={"a": 1.0})
    assert records_from_proto([ok], 1.0)[0].index == 2**63 - 2
    # A negative step is refused (it was stored as sent before the hostile tester's F11).
    with pytest.raises(InvalidArgument, match=r"^records\[0\]\.step: -9223372036854775808"):
        records_from_proto([common_pb2.MetricRecord(index=0, step=-(2**63))], 1.0)
    with pytest.raises(InvalidArgument, match=r"^records\[1\]\.index: 9223372036854775807"):
        records_from_proto([common_pb2.MetricRecord(index=0), common_pb2.MetricRecord(
            index=2**63 - 1)], 1.0)
    assert check_seq(2**63 - 2) == 2**63 - 2
    for seq in (2**63 - 1, 2**64 - 1):
        with pytest.raises(InvalidArgument, match=r"^seq: .*MAX_WIRE_INT"):
            check_seq(seq)


def test_times_outside_what_a_timestamp_can_show_are_refused() -> None:
    rec = common_pb2.MetricRecord(index=0, time=Timestamp(seconds=2**62))
    with pytest.raises(InvalidArgument, match=r"^metrics\.records\[0\]\.time: "):
        event_from_proto(workers_pb2.WorkerMessage(seq=1, metrics=workers_pb2.MetricBatch(
            run_id="r", attempt=1, records=[rec])), 1.0)
    with pytest.raises(InvalidArgument, match=r"^run_finished\.time: "):
        event_from_proto(workers_pb2.WorkerMessage(seq=1, run_finished=workers_pb2.RunFinished(
            run_id="r", attempt=1, state=common_pb2.RUN_STATE_FINISHED,
            time=Timestamp(seconds=-(2**40)))), 1.0)


def test_text_limits_of_a_worker() -> None:
    def hello(**fields: object) -> workers_pb2.Hello:
        return workers_pb2.Hello(worker_id="w", slots=1, **fields)

    with pytest.raises(InvalidArgument, match=r"^hello\.incarnation: .*MAX_NAME_LENGTH"):
        hello_from_proto(hello(incarnation="i" * 10_000))
    with pytest.raises(InvalidArgument, match=r"^hello\.sweep_id: "):
        hello_from_proto(hello(sweep_id="s" * 10_000))
    with pytest.raises(InvalidArgument, match=r"^hello\.gpus: 257 items.*MAX_WORKER_GPUS"):
        hello_from_proto(hello(gpus=[str(i) for i in range(257)]))
    with pytest.raises(InvalidArgument, match=r"^hello\.queues\[1\]: "):
        hello_from_proto(hello(queues=["a", "q" * 300]))


def test_argv_is_bounded_as_exec_bounds_it() -> None:
    assert argv_from_proto("argv", ["python", "x" * 1000]) == ["python", "x" * 1000]
    with pytest.raises(InvalidArgument, match=r"^run_started\.argv\[1\]: .*MAX_ARGV_ITEM_BYTES"):
        argv_from_proto("run_started.argv", ["python", "x" * (limits.MAX_ARGV_ITEM_BYTES + 1)])
    with pytest.raises(InvalidArgument, match=r"^argv: .*MAX_ARGV_BYTES"):
        argv_from_proto("argv", ["x" * 100_000] * 30)
    with pytest.raises(InvalidArgument, match=r"^argv: 4097 items.*MAX_ARGV_ITEMS"):
        argv_from_proto("argv", ["x"] * 4097)


def test_a_workers_long_reason_is_cut_not_refused() -> None:
    event = event_from_proto(workers_pb2.WorkerMessage(seq=1, run_finished=workers_pb2.RunFinished(
        run_id="r", attempt=1, state=common_pb2.RUN_STATE_FAILED, reason="y" * 1_000_000)), 1.0)
    assert isinstance(event, RunFinishedEvent)
    reason = event.reason
    assert len(reason) == limits.MAX_TEXT_LENGTH and reason.endswith("cut, MAX_TEXT_LENGTH)")
    with pytest.raises(InvalidArgument, match=r"^reason: 4097 characters.*MAX_TEXT_LENGTH"):
        limits.check_text("reason", "z" * 4097)


def test_list_runs_pages(tmp_path: Path) -> None:
    d = Dispatcher(Store(tmp_path / "db.sqlite3"))
    view = d.create_sweep("method: random\nprogram: t.py\nparameters:\n  a: {min: 0, max: 1}\n")
    other = d.create_sweep("method: random\nprogram: t.py\nparameters:\n  a: {min: 0, max: 1}\n")
    for n in range(1, 8):
        run = Run(id=f"{view.sweep.id}-{n}", sweep_id=view.sweep.id, number=n,
                  state=RunState.FINISHED, point={("a",): 0.5},
                  created_at=1.0, reason="r" * (1000 if n == 5 else 1))
        view.runs[run.id] = run
    view.sweep.run_count = 7
    numbers, token, pages = [], "", 0
    while True:
        page = runs_page(view, 3, token)
        numbers += [r.number for r in page.runs]
        pages += 1
        token = page.next_page_token
        if not token:
            break
    assert numbers == list(range(1, 8)) and pages == 3
    for bad in ("x", "!!", _page_token(other.sweep.id, 3), _page_token(view.sweep.id, -1)):
        with pytest.raises(InvalidArgument, match=r"^page_token: "):
            runs_page(view, 3, bad)
    with pytest.raises(InvalidArgument, match=r"^page_size: -1 is negative"):
        runs_page(view, -1, "")
    assert len(runs_page(view, 10**9, "").runs) == 7  # capped at MAX_PAGE_SIZE, not refused


def test_a_page_ends_early_when_its_runs_are_large(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    d = Dispatcher(Store(tmp_path / "db.sqlite3"))
    view = d.create_sweep("method: random\nprogram: t.py\nparameters:\n  a: {min: 0, max: 1}\n")
    for n in range(1, 11):
        run = Run(id=f"{view.sweep.id}-{n}", sweep_id=view.sweep.id, number=n,
                  state=RunState.FINISHED, point={}, created_at=1.0,
                  argv=["x" * 1000])
        view.runs[run.id] = run
    view.sweep.run_count = 10
    monkeypatch.setattr(limits, "MAX_PAGE_BYTES", 3500)
    page = runs_page(view, 100, "")
    assert [r.number for r in page.runs] == [1, 2, 3] and page.next_page_token
    assert page.ByteSize() <= 3500
