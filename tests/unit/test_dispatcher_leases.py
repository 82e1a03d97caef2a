"""Leases on the Dispatcher with a controllable clock and a real Store: expiry, renewal by
heartbeats, retries up to the limit, fencing of stale attempts, wrong workers, restarts and
exactly-once application of sequenced messages. No test sleeps for a lease."""

from __future__ import annotations

from pathlib import Path

import pytest
from sweepd.coordinator.dispatcher import (
    LEASE_HEARTBEATS,
    RECONNECT_GRACE_S,
    Dispatcher,
    Hello,
    MetricsEvent,
    RunFinishedEvent,
    WorkerSession,
)
from sweepd.coordinator.domain import (
    AckOrder,
    AssignOrder,
    MetricRecord,
    Order,
    RunState,
    StopOrder,
)
from sweepd.coordinator.errors import InvalidArgument
from sweepd.coordinator.store import Store

HEARTBEAT_S = 1.0
LEASE_S = HEARTBEAT_S * LEASE_HEARTBEATS
GRID = "method: grid\nprogram: train.py\nparameters:\n  a: {values: [1, 2]}\n"


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def make(tmp_path: Path, clock: Clock, **kwargs: object) -> Dispatcher:
    return Dispatcher(Store(tmp_path / "db.sqlite3"), clock=clock, lease_s=LEASE_S,
                      **kwargs)  # type: ignore[arg-type]


def attach(d: Dispatcher, worker_id: str, held: dict[str, int] | None = None,
           incarnation: str = "i1", slots: int = 1) -> WorkerSession:
    session, _ = d.attach_worker(Hello(
        worker_id=worker_id, incarnation=incarnation, host="h", slots=slots, labels={},
        held_runs=held or {}, sweep_id="", heartbeat_interval_s=HEARTBEAT_S, max_runs=0,
        runs_assigned=0,
    ))
    return session


def drain(session: WorkerSession) -> list[Order]:
    out = []
    while not session.outbox.empty():
        order = session.outbox.get_nowait()
        if order is not None:
            out.append(order)
    return out


def assigned(orders: list[Order]) -> list[AssignOrder]:
    return [o for o in orders if isinstance(o, AssignOrder)]


def records(*indices: int) -> list[MetricRecord]:
    return [MetricRecord(index=i, step=i, time=1.0, values={"k": float(i)}) for i in indices]


def test_lease_expires_without_heartbeats_and_the_point_is_retried(tmp_path: Path) -> None:
    clock = Clock()
    d = make(tmp_path, clock)
    w1 = attach(d, "w1")
    d.create_sweep(GRID)
    [order] = assigned(drain(w1))
    assert order.attempt == 1
    run = d.runs[order.run_id]
    assert run.lease_expires_at == pytest.approx(clock.now + LEASE_S)

    clock.now += LEASE_S - 0.1
    assert d.expire_leases() == 0
    clock.now += 0.2
    assert d.expire_leases() == 1
    # w1 is still connected with a free slot but silent for a lease (frozen, cut off): it gets
    # nothing until it is heard from again; then the point comes back as attempt 2 (to w1
    # here, as the only worker), and the LOST attempt is in the run's events.
    assert run.attempt == 1 and run.state is RunState.PENDING
    d.heartbeat(w1, {}, draining=False)
    assert run.attempt == 2 and run.state is RunState.ASSIGNED
    events = d.store.run_events(run.id)
    assert any("lost" in e.reason for e in events), events


def test_heartbeats_renew_the_lease(tmp_path: Path) -> None:
    clock = Clock()
    d = make(tmp_path, clock)
    w1 = attach(d, "w1")
    d.create_sweep(GRID)
    [order] = assigned(drain(w1))
    for _ in range(20):  # 20 heartbeat intervals, far past one lease
        clock.now += HEARTBEAT_S
        d.heartbeat(w1, {order.run_id: order.attempt}, draining=False)
        assert d.expire_leases() == 0
    assert d.runs[order.run_id].attempt == 1


def test_heartbeat_with_a_stale_attempt_does_not_renew(tmp_path: Path) -> None:
    clock = Clock()
    d = make(tmp_path, clock)
    w1 = attach(d, "w1")
    d.create_sweep(GRID)
    [order] = assigned(drain(w1))
    for _ in range(LEASE_HEARTBEATS + 1):
        clock.now += HEARTBEAT_S
        d.heartbeat(w1, {order.run_id: order.attempt + 5}, draining=False)
    assert d.expire_leases() == 1


def test_retries_stop_at_the_limit_and_the_run_stays_lost(tmp_path: Path) -> None:
    clock = Clock()
    d = make(tmp_path, clock, max_retries=2)
    w1 = attach(d, "w1")
    d.create_sweep("method: grid\nprogram: t.py\nparameters:\n  a: {values: [1]}\n")
    [order] = assigned(drain(w1))
    run = d.runs[order.run_id]
    for attempt in (1, 2, 3):
        assert run.attempt == attempt and run.state is RunState.ASSIGNED
        clock.now += LEASE_S + 1
        assert d.expire_leases() == 1
        d.heartbeat(w1, {}, draining=False)  # w1 is back (without the run): it takes the retry
    assert run.state is RunState.LOST and run.attempt == 3  # 1 try + 2 retries
    assert d.sweeps[run.sweep_id].sweep.state.value == "FINISHED"


def test_per_sweep_max_retries_from_the_config(tmp_path: Path) -> None:
    clock = Clock()
    d = make(tmp_path, clock, max_retries=5)
    w1 = attach(d, "w1")
    view = d.create_sweep("method: grid\nprogram: t.py\nparameters:\n  a: {values: [1]}\n",
                          max_retries=0)
    [order] = assigned(drain(w1))
    clock.now += LEASE_S + 1
    d.expire_leases()
    assert d.runs[order.run_id].state is RunState.LOST
    assert view.sweep.max_retries == 0
    with pytest.raises(InvalidArgument, match="max_retries"):
        d.create_sweep(GRID, max_retries=-1)


def test_stale_attempt_is_refused_and_its_worker_told_to_stop(tmp_path: Path) -> None:
    clock = Clock()
    d = make(tmp_path, clock)
    w1 = attach(d, "w1")
    d.create_sweep("method: grid\nprogram: t.py\nparameters:\n  a: {values: [1]}\n")
    [order] = assigned(drain(w1))
    d.detach_worker(w1)  # partitioned: no heartbeats arrive
    clock.now += LEASE_S + 1
    d.expire_leases()
    w2 = attach(d, "w2")
    [again] = assigned(drain(w2))
    assert (again.run_id, again.attempt) == (order.run_id, 2)

    # w1 comes back still holding attempt 1: the welcome tells it to stop that run...
    w1 = attach(d, "w1", held={order.run_id: 1})
    # ...and anything it reports for attempt 1 is refused, with a stop order.
    d.worker_message(w1, 1, MetricsEvent(order.run_id, 1, records(0)))
    out = drain(w1)
    acks = [o for o in out if isinstance(o, AckOrder)]
    assert acks and acks[-1].seq == 1 and "stale" in acks[-1].refused
    assert any(isinstance(o, StopOrder) and o.run_id == order.run_id for o in out)
    d.worker_message(w1, 2, RunFinishedEvent(order.run_id, 1, RunState.FINISHED, 0, "", 5.0))
    run = d.runs[order.run_id]
    assert run.state is RunState.ASSIGNED and run.worker_id == "w2"
    assert d.history(run) == []


def test_a_worker_cannot_report_on_another_workers_run(tmp_path: Path) -> None:
    clock = Clock()
    d = make(tmp_path, clock)
    w1 = attach(d, "w1")
    d.create_sweep(GRID)
    [order] = assigned(drain(w1))
    w2 = attach(d, "w2")
    drain(w2)
    d.worker_message(w2, 1, MetricsEvent(order.run_id, order.attempt, records(0)))
    [ack] = [o for o in drain(w2) if isinstance(o, AckOrder)]
    assert "not held by w2" in ack.refused
    assert d.history(d.runs[order.run_id]) == []


def test_sequenced_messages_apply_exactly_once(tmp_path: Path) -> None:
    clock = Clock()
    d = make(tmp_path, clock)
    w1 = attach(d, "w1")
    d.create_sweep(GRID)
    [order] = assigned(drain(w1))
    event = MetricsEvent(order.run_id, order.attempt, records(0, 1))
    d.worker_message(w1, 1, event)
    d.worker_message(w1, 1, event)  # resent after a reconnect
    d.worker_message(w1, 2, MetricsEvent(order.run_id, order.attempt, records(1, 2)))
    assert [r.index for r in d.history(d.runs[order.run_id])] == [0, 1, 2]


def test_restart_keeps_runs_under_the_same_lease_when_the_worker_reconnects(
    tmp_path: Path,
) -> None:
    clock = Clock()
    d = make(tmp_path, clock)
    w1 = attach(d, "w1")
    d.create_sweep(GRID)
    [order] = assigned(drain(w1))
    d.worker_message(w1, 1, MetricsEvent(order.run_id, order.attempt, records(0)))
    d.store.close()

    clock.now += 2.0
    d2 = make(tmp_path, clock)
    run = d2.runs[order.run_id]
    # Workers get the reconnect grace, whatever the lease length.
    assert run.lease_expires_at == pytest.approx(clock.now + max(LEASE_S, RECONNECT_GRACE_S))
    clock.now += 1.0
    w1b = attach(d2, "w1", held={order.run_id: order.attempt})
    assert w1b.info.applied_seq == 1  # the resend of seq 1 will be acknowledged, not applied
    d2.worker_message(w1b, 1, MetricsEvent(order.run_id, order.attempt, records(0)))
    d2.worker_message(w1b, 2, RunFinishedEvent(order.run_id, order.attempt, RunState.FINISHED,
                                               0, "", 1234.5))
    assert run.state is RunState.FINISHED and run.attempt == 1
    assert run.ended_at == 1234.5 and run.exit_code == 0  # the run's own end, not ours
    assert [r.index for r in d2.history(run)] == [0]


def test_restart_without_the_worker_loses_the_run_after_the_grace(tmp_path: Path) -> None:
    clock = Clock()
    d = make(tmp_path, clock)
    w1 = attach(d, "w1")
    d.create_sweep(GRID)
    [order] = assigned(drain(w1))
    d.store.close()
    d2 = make(tmp_path, clock)
    clock.now += max(LEASE_S, RECONNECT_GRACE_S) - 0.5
    assert d2.expire_leases() == 0
    clock.now += 1.0
    assert d2.expire_leases() == 1
    assert d2.runs[order.run_id].state is RunState.PENDING
