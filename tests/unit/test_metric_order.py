"""What the coordinator does with metric records and messages that arrive out of order, twice,
or with values that are not numbers (issue 11, item 20). The rule: nothing is acknowledged
and then dropped; each case is either stored or refused with an error the sender can act on.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from sweepd.coordinator.dispatcher import (
    Dispatcher,
    Hello,
    MetricsEvent,
    WorkerSession,
    check_record_order,
)
from sweepd.coordinator.domain import AckOrder, AssignOrder, MetricRecord, Run
from sweepd.coordinator.errors import FailedPrecondition, InvalidArgument
from sweepd.coordinator.servicers.workers import hello_from_proto
from sweepd.coordinator.store import Store
from sweepd.v1 import workers_pb2

SWEEP = ("method: grid\nprogram: train.py\nmetric: {name: loss, goal: minimize, target: -5}\n"
         "parameters:\n  a: {values: [1, 2]}\n")


def rec(index: int, loss: float = 1.0) -> MetricRecord:
    return MetricRecord(index=index, step=index, time=1.0, values={"loss": loss})


def setup(tmp_path: Path) -> tuple[Dispatcher, WorkerSession, Run]:
    d = Dispatcher(Store(tmp_path / "db.sqlite3"), clock=lambda: 1_000_000.0)
    session, _ = d.attach_worker(Hello(
        worker_id="w1", incarnation="i1", host="h", slots=1, labels={}, held_runs={},
        sweep_id="", heartbeat_interval_s=1.0, max_runs=0, runs_assigned=0))
    d.create_sweep(SWEEP)
    [order] = [o for o in drain(session) if isinstance(o, AssignOrder)]
    return d, session, d.runs[order.run_id]


def drain(session: WorkerSession) -> list[object]:
    out = []
    while not session.outbox.empty():
        out.append(session.outbox.get_nowait())
    return out


def acks(session: WorkerSession) -> list[AckOrder]:
    return [o for o in drain(session) if isinstance(o, AckOrder)]


def test_a_duplicate_index_in_one_batch_is_refused_whole(tmp_path: Path) -> None:
    d, session, run = setup(tmp_path)
    d.worker_message(session, 1, MetricsEvent(run.id, 1, [rec(0, 3.0), rec(1, 2.0), rec(0, 9.0)]))
    [ack] = acks(session)
    assert ack.seq == 1 and "records[2].index: 0 appears twice" in ack.refused
    assert d.history(run) == [] and run.summary == {}
    with pytest.raises(InvalidArgument, match=r"records\[1\].index: 4 appears twice"):
        check_record_order(run, [rec(4), rec(4)])  # the rule ReportMetrics follows too


def test_records_after_a_gap_are_refused_naming_the_index_to_send(tmp_path: Path) -> None:
    d, session, run = setup(tmp_path)
    d.worker_message(session, 1, MetricsEvent(run.id, 1, [rec(0), rec(1)]))
    d.worker_message(session, 2, MetricsEvent(run.id, 1, [rec(5), rec(6)]))
    ack = acks(session)[-1]
    assert ack.seq == 2 and "records[0].index: 5 skips ahead" in ack.refused
    assert "accepts 2 next" in ack.refused
    assert [r.index for r in d.history(run)] == [0, 1] and run.next_record_index == 2
    # The sender acts on it: the missing records first, then the rest; and a resend of
    # records already stored is skipped, not stored twice.
    d.worker_message(session, 3, MetricsEvent(run.id, 1, [rec(1), rec(3), rec(2), rec(4)]))
    d.worker_message(session, 4, MetricsEvent(run.id, 1, [rec(5), rec(6)]))
    assert all(not a.refused for a in acks(session))
    assert [r.index for r in d.history(run)] == [0, 1, 2, 3, 4, 5, 6]


def test_a_message_after_a_seq_gap_is_refused_and_not_acknowledged(tmp_path: Path) -> None:
    d, session, run = setup(tmp_path)
    d.worker_message(session, 1, MetricsEvent(run.id, 1, [rec(0)]))
    with pytest.raises(FailedPrecondition, match="seq: 3 skips ahead of 2"):
        d.worker_message(session, 3, MetricsEvent(run.id, 1, [rec(1)]))
    assert acks(session) == [AckOrder(1)]  # an ack of 3 would also cover the missing 2
    assert session.info.applied_seq == 1 and run.next_record_index == 1
    # Out of order below what was applied: a resend, acknowledged again and not re-applied.
    d.worker_message(session, 1, MetricsEvent(run.id, 1, [rec(0, 99.0)]))
    assert acks(session) == [AckOrder(1)] and run.summary["loss"] == 1.0
    d.worker_message(session, 2, MetricsEvent(run.id, 1, [rec(1)]))
    d.worker_message(session, 3, MetricsEvent(run.id, 1, [rec(2)]))
    assert [a.seq for a in acks(session)] == [2, 3]
    assert [r.index for r in d.history(run)] == [0, 1, 2]


def test_a_malformed_message_still_counts_in_the_sequence(tmp_path: Path) -> None:
    d, session, run = setup(tmp_path)
    d.refuse_worker_message(session, 1, "run_started.argv: too long")
    d.worker_message(session, 2, MetricsEvent(run.id, 1, [rec(0)]))
    assert [(a.seq, bool(a.refused)) for a in acks(session)] == [(1, True), (2, False)]


def test_values_that_are_not_finite_are_stored_with_one_notice(tmp_path: Path) -> None:
    d, session, run = setup(tmp_path)
    d.worker_message(session, 1, MetricsEvent(run.id, 1, [
        rec(0, 2.0), rec(1, math.nan), rec(2, math.nan), rec(3, -math.inf)]))
    assert not acks(session)[-1].refused
    stored = [r.values["loss"] for r in d.history(run)]
    assert stored[0] == 2.0 and math.isnan(stored[1]) and math.isnan(stored[2])
    assert stored[3] == -math.inf
    assert run.summary["loss"] == -math.inf
    notices = [e.reason for e in d.events(run) if e.reason.startswith("notice")]
    # One when the value stopped being finite; none for the NaN after a NaN.
    assert len(notices) == 1 and "loss = nan at record 1" in notices[0]
    view = d.sweeps[run.sweep_id]
    assert d.best_run(view) is None  # never the best run
    assert view.sweep.exhausted_reason == ""  # -inf does not reach metric.target -5
    d.worker_message(session, 2, MetricsEvent(run.id, 1, [rec(4, 1.0), rec(5, math.inf)]))
    assert len([e for e in d.events(run) if e.reason.startswith("notice")]) == 2


@pytest.mark.parametrize("interval", [math.nan, math.inf, -math.inf, -1.0])
def test_a_heartbeat_interval_that_is_not_a_duration_is_refused(interval: float) -> None:
    msg = workers_pb2.Hello(worker_id="w1", slots=1, heartbeat_interval_s=interval)
    with pytest.raises(InvalidArgument, match=r"hello\.heartbeat_interval_s"):
        hello_from_proto(msg)


def test_a_proposed_interval_that_is_a_duration_gets_a_finite_one(tmp_path: Path) -> None:
    d = Dispatcher(Store(tmp_path / "db.sqlite3"), clock=lambda: 1_000_000.0)
    for proposed in (0.0, 1e300, 0.001):  # 0: the coordinator's default
        hello = hello_from_proto(workers_pb2.Hello(worker_id=f"w{proposed}", slots=1,
                                                   heartbeat_interval_s=proposed))
        _, welcome = d.attach_worker(hello)
        assert 0 < welcome.heartbeat_interval_s <= 60 and math.isfinite(welcome.lease_s)


def test_a_gap_inside_a_batch_names_the_missing_record_and_the_index_to_send(
        tmp_path: Path) -> None:
    d, session, run = setup(tmp_path)
    d.worker_message(session, 1, MetricsEvent(run.id, 1, [rec(0), rec(1)]))
    d.worker_message(session, 2, MetricsEvent(run.id, 1, [rec(2), rec(3), rec(5)]))
    refused = acks(session)[-1].refused
    assert "records[2].index: 5 skips ahead: the batch has no record 4" in refused
    assert "has records 0..1 and accepts 2 next" in refused
    assert [r.index for r in d.history(run)] == [0, 1]
