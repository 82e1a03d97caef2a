"""Worker sessions, stop orders by attempt, and ask/tell leases on the Dispatcher, with a
controllable clock and a real Store (issue #11 items 2, 7, 8, 9, 19, 21). No test sleeps."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from sweepd.coordinator.dispatcher import (
    LEASE_HEARTBEATS,
    LIVE_SESSION_HEARTBEATS,
    MIN_HEARTBEAT_INTERVAL_S,
    MIN_LEASE_S,
    RECONNECT_GRACE_S,
    Dispatcher,
    Hello,
    MetricsEvent,
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
from sweepd.coordinator.errors import (
    AlreadyExists,
    FailedPrecondition,
    InvalidArgument,
    PermissionDenied,
)
from sweepd.coordinator.store import Store

LEASE_S = 3.0
ONE = "method: grid\nprogram: t.py\nparameters:\n  a: {values: [1]}\n"
GRID = "method: grid\nprogram: t.py\nparameters:\n  a: {values: [1, 2, 3]}\n"


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def make(tmp_path: Path, clock: Clock, **kwargs: Any) -> Dispatcher:
    return Dispatcher(Store(tmp_path / "db.sqlite3"), clock=clock, lease_s=LEASE_S, **kwargs)


def hello(worker_id: str, incarnation: str = "i1", host: str = "h", proposed: float = 2.0,
          held: dict[str, int] | None = None) -> Hello:
    return Hello(worker_id=worker_id, incarnation=incarnation, host=host, slots=1, labels={},
                 held_runs=held or {}, sweep_id="", heartbeat_interval_s=proposed, max_runs=0,
                 runs_assigned=0)


def attach(d: Dispatcher, worker_id: str, **kwargs: object) -> WorkerSession:
    session, _ = d.attach_worker(hello(worker_id, **kwargs))  # type: ignore[arg-type]
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


def stops(orders: list[Order]) -> list[StopOrder]:
    return [o for o in orders if isinstance(o, StopOrder)]


def records(*indices: int) -> list[MetricRecord]:
    return [MetricRecord(index=i, step=i, time=1.0, values={"k": float(i)}) for i in indices]


# -- item 19: --lease-seconds means what it says ----------------------------------------------


def test_the_lease_is_the_configured_length_whatever_the_worker_proposes(tmp_path: Path) -> None:
    clock = Clock()
    d = make(tmp_path, clock)
    session, welcome = d.attach_worker(hello("w1", proposed=2.0))
    # Before: max(3, 2 * 6) = 12 s. Now 3 s, with the heartbeat shortened to fit six.
    assert welcome.lease_s == LEASE_S
    assert welcome.heartbeat_interval_s == pytest.approx(LEASE_S / LEASE_HEARTBEATS)
    d.create_sweep(ONE)
    [order] = assigned(drain(session))
    run = d.runs[order.run_id]
    assert run.lease_expires_at == pytest.approx(clock.now + LEASE_S)
    clock.now += LEASE_S + 0.1
    assert d.expire_leases() == 1


def test_heartbeat_interval_is_clamped_and_never_nan(tmp_path: Path) -> None:
    d = Dispatcher(Store(tmp_path / "db.sqlite3"), clock=Clock(), lease_s=600.0)
    for proposed, expected in ((float("nan"), 5.0), (0.0, 5.0), (-1.0, 5.0),
                               (float("inf"), 5.0), (0.01, MIN_HEARTBEAT_INTERVAL_S),
                               (1000.0, 60.0), (2.0, 2.0)):
        _, welcome = d.attach_worker(hello(f"w{proposed}", proposed=proposed))
        assert welcome.heartbeat_interval_s == expected, proposed
        assert welcome.lease_s == 600.0
    assert pytest.approx(MIN_HEARTBEAT_INTERVAL_S * LEASE_HEARTBEATS) == MIN_LEASE_S


# -- item 7: one live session per worker id ----------------------------------------------------


def test_a_second_live_process_with_the_same_worker_id_is_refused(tmp_path: Path) -> None:
    clock = Clock()
    d = make(tmp_path, clock)
    first = attach(d, "gpu-1", incarnation="a", host="node-a")
    d.create_sweep(GRID)
    [order] = assigned(drain(first))
    with pytest.raises(AlreadyExists, match="node-a") as err:
        d.attach_worker(hello("gpu-1", incarnation="b", host="node-b"))
    assert "--worker-id" in str(err.value)
    # The first keeps its session and its run, and goes on working.
    assert d.sessions["gpu-1"] is first and first.outbox.empty()
    d.worker_message(first, 1, MetricsEvent(order.run_id, order.attempt, records(0)))
    assert [r.index for r in d.history(d.runs[order.run_id])] == [0]
    assert d.runs[order.run_id].state is RunState.RUNNING


def test_the_same_process_reconnecting_replaces_its_old_stream(tmp_path: Path) -> None:
    clock = Clock()
    d = make(tmp_path, clock)
    first = attach(d, "w1", incarnation="a")
    second = attach(d, "w1", incarnation="a")
    assert d.sessions["w1"] is second
    assert first.outbox.get_nowait() is None  # the old stream is told to close


def test_a_silent_or_gone_session_frees_its_worker_id(tmp_path: Path) -> None:
    clock = Clock()
    d = make(tmp_path, clock)
    first = attach(d, "w1", incarnation="a")
    # Silent (its node rebooted with the stream half open) for a few heartbeats: free.
    clock.now += LIVE_SESSION_HEARTBEATS * first.heartbeat_interval_s + 0.1
    second = attach(d, "w1", incarnation="b")
    assert d.sessions["w1"] is second
    d.detach_worker(second)
    third = attach(d, "w1", incarnation="c")  # disconnected: free at once
    assert d.sessions["w1"] is third


# -- item 2: stop orders name the attempt; a lost run goes to another worker -------------------


def test_a_lost_run_goes_to_another_free_worker_and_the_stale_attempt_is_stopped(
    tmp_path: Path,
) -> None:
    clock = Clock()
    d = make(tmp_path, clock)
    w1 = attach(d, "w1")
    d.create_sweep(ONE)
    [order] = assigned(drain(w1))
    w2 = attach(d, "w2")
    assert drain(w2) == []
    # w1 freezes (SIGSTOP) past its lease while w2 keeps beating.
    for _ in range(LEASE_HEARTBEATS + 1):
        clock.now += w2.heartbeat_interval_s
        d.heartbeat(w2, {}, draining=False)
        d.expire_leases()
    [again] = assigned(drain(w2))
    assert (again.run_id, again.attempt) == (order.run_id, 2)
    assert assigned(drain(w1)) == []
    # w1 continues (SIGCONT): its heartbeat still lists attempt 1, which is told to stop,
    # naming attempt 1 (once, not on every heartbeat).
    d.heartbeat(w1, {order.run_id: 1}, draining=False)
    d.heartbeat(w1, {order.run_id: 1}, draining=False)
    [stop] = stops(drain(w1))
    assert (stop.run_id, stop.attempt) == (order.run_id, 1)
    # A report of attempt 1 is refused with a stop order for attempt 1, never attempt 2.
    d.worker_message(w1, 1, MetricsEvent(order.run_id, 1, records(0)))
    out = drain(w1)
    assert [(s.run_id, s.attempt) for s in stops(out)] == [(order.run_id, 1)]
    assert "stale" in next(o for o in out if isinstance(o, AckOrder)).refused
    run = d.runs[order.run_id]
    assert run.worker_id == "w2" and run.attempt == 2 and d.history(run) == []


def test_a_lost_run_comes_back_to_its_worker_when_no_other_is_free(tmp_path: Path) -> None:
    clock = Clock()
    d = make(tmp_path, clock)
    w1 = attach(d, "w1")
    d.create_sweep(ONE)
    [order] = assigned(drain(w1))
    clock.now += LEASE_S + 0.1
    assert d.expire_leases() == 1
    assert assigned(drain(w1)) == []  # silent for a lease: nothing new for it
    d.heartbeat(w1, {order.run_id: 1}, draining=False)  # back, still running attempt 1
    out = drain(w1)
    # The stop for attempt 1 comes before the assignment of attempt 2, and names attempt 1.
    assert [type(o).__name__ for o in out] == ["StopOrder", "AssignOrder"]
    stop, again = out
    assert isinstance(stop, StopOrder) and isinstance(again, AssignOrder)
    assert (stop.run_id, stop.attempt) == (order.run_id, 1)
    assert (again.run_id, again.attempt) == (order.run_id, 2)


def test_early_stop_and_welcome_name_the_attempt(tmp_path: Path) -> None:
    clock = Clock()
    d = make(tmp_path, clock)
    w1 = attach(d, "w1")
    view = d.create_sweep(ONE)
    [order] = assigned(drain(w1))
    d.detach_worker(w1)
    clock.now += LEASE_S + 0.1
    d.expire_leases()
    w2 = attach(d, "w2")
    [again] = assigned(drain(w2))
    d.cancel(view.sweep.id)
    [stop] = stops(drain(w2))
    assert (stop.run_id, stop.attempt) == (order.run_id, again.attempt)
    # w1 comes back holding attempt 1: the welcome names the run and that attempt.
    _, welcome = d.attach_worker(hello("w1", held={order.run_id: 1}))
    assert welcome.stop_runs == {order.run_id: 1} and welcome.stop_run_ids == [order.run_id]


# -- item 9: ask/tell runs have leases and owners ----------------------------------------------


def test_an_ask_tell_run_expires_and_is_retried_for_the_next_asker(tmp_path: Path) -> None:
    clock = Clock()
    d = make(tmp_path, clock)
    view = d.create_sweep(ONE)
    run, _ = asyncio.run(d.suggest_for_client(view.sweep.id, "a"))
    assert run is not None and run.lease_expires_at == pytest.approx(clock.now + LEASE_S)
    # Reports and asking again renew the lease.
    for _ in range(3):
        clock.now += LEASE_S * 0.6
        d.report_from_client(run.id, 1, [], "a")
        assert d.expire_leases() == 0
    clock.now += LEASE_S * 0.6
    assert asyncio.run(d.suggest_for_client(view.sweep.id, "a"))[0] is run
    clock.now += LEASE_S * 0.6
    assert d.expire_leases() == 0
    # Then the client dies: the run is LOST and the point retried for the next asker.
    clock.now += LEASE_S
    assert d.expire_leases() == 1
    assert run.state is RunState.PENDING
    events = d.store.run_events(run.id)
    assert any("no SuggestRun or ReportMetrics from client:a" in e.reason for e in events)
    with pytest.raises(FailedPrecondition, match="lease of attempt 1 expired"):
        d.report_from_client(run.id, 1, records(0), "a")
    again, done = asyncio.run(d.suggest_for_client(view.sweep.id, "b"))
    assert again is run and run.attempt == 2 and not done
    with pytest.raises(FailedPrecondition, match="stale"):
        d.finish_from_client(run.id, 1, RunState.FINISHED, 0, "", "a")
    d.finish_from_client(run.id, 2, RunState.FINISHED, 0, "", "b")
    assert asyncio.run(d.suggest_for_client(view.sweep.id, "b")) == (None, True)
    assert view.sweep.state.value == "FINISHED"


def test_only_the_client_that_took_a_run_may_report_or_finish_it(tmp_path: Path) -> None:
    clock = Clock()
    d = make(tmp_path, clock)
    view = d.create_sweep(GRID)
    run, _ = asyncio.run(d.suggest_for_client(view.sweep.id, "a"))
    assert run is not None
    with pytest.raises(PermissionDenied, match="not held by client:b"):
        d.report_from_client(run.id, 1, records(0), "b")
    with pytest.raises(PermissionDenied, match="not held by client:b"):
        d.finish_from_client(run.id, 1, RunState.FINISHED, 0, "", "b")
    with pytest.raises(InvalidArgument, match="client_id: must not be empty"):
        d.finish_from_client(run.id, 1, RunState.FINISHED, 0, "", "")
    assert run.state is RunState.ASSIGNED and d.history(run) == []
    # A worker's run cannot be reported through the client calls at all.
    w1 = attach(d, "w1")
    [order] = assigned(drain(w1))
    with pytest.raises(PermissionDenied, match="held by worker w1"):
        d.report_from_client(order.run_id, 1, records(0), "a")


# -- item 21: retried calls are safe -----------------------------------------------------------


def test_retried_report_finish_and_suggest_are_answered_the_same(tmp_path: Path) -> None:
    clock = Clock()
    d = make(tmp_path, clock)
    view = d.create_sweep(GRID)
    run, _ = asyncio.run(d.suggest_for_client(view.sweep.id, "a"))
    assert run is not None
    assert asyncio.run(d.suggest_for_client(view.sweep.id, "a"))[0] is run
    d.report_from_client(run.id, 1, records(0, 1), "a")
    d.report_from_client(run.id, 1, records(0, 1), "a")  # resent: stored once
    first = d.finish_from_client(run.id, 1, RunState.FINISHED, 0, "", "a")
    # The answer was lost and the client retries both: accepted, nothing stored twice.
    d.report_from_client(run.id, 1, records(1), "a")
    assert d.finish_from_client(run.id, 1, RunState.FINISHED, 0, "", "a") is first
    assert [r.index for r in d.history(run)] == [0, 1]
    assert run.state is RunState.FINISHED
    # A different outcome is not a retry, and another client's repeat is no retry either.
    with pytest.raises(FailedPrecondition, match="already ended"):
        d.finish_from_client(run.id, 1, RunState.FAILED, 1, "", "a")
    with pytest.raises(PermissionDenied):
        d.finish_from_client(run.id, 1, RunState.FINISHED, 0, "", "b")
    with pytest.raises(FailedPrecondition, match="already ended"):
        d.report_from_client(run.id, 1, records(2), "a")  # new records on an ended run


# -- item 8: one run per client id, whatever the concurrency ----------------------------------


@pytest.mark.parametrize("method", ["bayes", "sobol"])
def test_concurrent_asks_of_one_client_get_one_run(tmp_path: Path, method: str) -> None:
    clock = Clock()
    config = (f"method: {method}\nprogram: t.py\nrun_cap: 3\n"
              "metric: {name: loss, goal: minimize}\nparameters:\n  x: {min: 0.0, max: 1.0}\n")

    async def ask_many() -> list[tuple[str | None, bool]]:
        with ThreadPoolExecutor(2) as pool:
            d = make(tmp_path, clock, executor=pool)
            view = d.create_sweep(config)
            answers = await asyncio.gather(*(d.suggest_for_client(view.sweep.id, "same")
                                             for _ in range(20)))
            assert len(view.runs) == 1 and not d._asking
            return [(r.id if r else None, done) for r, done in answers]

    answers = asyncio.run(ask_many())
    assert len({run_id for run_id, _ in answers}) == 1 and None not in dict(answers)
    assert not any(done for _, done in answers)


def test_an_ask_tell_run_gets_the_reconnect_grace_after_a_restart(tmp_path: Path) -> None:
    clock = Clock()
    d = make(tmp_path, clock)
    view = d.create_sweep(ONE)
    run, _ = asyncio.run(d.suggest_for_client(view.sweep.id, "a"))
    assert run is not None
    d.store.close()
    d2 = make(tmp_path, clock)  # before: no lease at all, the run was ASSIGNED for ever
    clock.now += RECONNECT_GRACE_S - 0.5
    assert d2.expire_leases() == 0
    d2.report_from_client(run.id, 1, records(0), "a")  # the client is back: renewed
    clock.now += LEASE_S - 0.5
    assert d2.expire_leases() == 0
    clock.now += 1.0
    assert d2.expire_leases() == 1 and d2.runs[run.id].state is RunState.PENDING
