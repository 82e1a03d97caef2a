"""Failed commits: a store whose Nth commit fails, for every N a worker's whole sweep makes.

After each failure the dispatcher's memory must equal the store again (no record counter,
applied seq or run state moved forward), nothing of the failed transaction may be sent or
acknowledged, and the worker, resending what was not acknowledged after a reconnect as the
real one does, ends with every record stored exactly once.
"""

from __future__ import annotations

import sqlite3
from collections import OrderedDict
from pathlib import Path

import pytest
from sweepd.coordinator.database import Touched
from sweepd.coordinator.dispatcher import (
    Dispatcher,
    Hello,
    MetricsEvent,
    RunFinishedEvent,
    RunStartedEvent,
    WorkerEvent,
    WorkerSession,
)
from sweepd.coordinator.domain import AckOrder, AssignOrder, MetricRecord, RunState, SweepState
from sweepd.coordinator.errors import InvalidArgument, StorageFull, Unavailable
from sweepd.coordinator.store import Store

SWEEP = ("method: grid\nprogram: train.py\nmetric: {name: loss, goal: minimize}\n"
         "parameters:\n  a: {values: [1, 2, 3]}\n")
BATCHES = 5
PER_BATCH = 3


class FlakyStore(Store):
    """Fails the commits whose number (counted from 1) is in ``fail``, as a full disk does."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.commits = 0
        self.fail: set[int] = set()
        self.failed = 0

    def _commit(self) -> None:
        self.commits += 1
        if self.commits in self.fail:
            self.failed += 1
            exc = sqlite3.OperationalError("database or disk is full")
            exc.sqlite_errorcode = 13  # type: ignore[attr-defined]
            raise exc
        super()._commit()


def loss(run_id: str, index: int) -> float:
    return float(int(run_id.rsplit("-", 1)[1]) * 1000 + index)


class SimWorker:
    """The worker daemon's delivery rules: every state-changing message keeps its seq until
    acknowledged; when the stream fails, reconnect and resend everything unacknowledged."""

    def __init__(self, d: Dispatcher) -> None:
        self.d = d
        self.seq = 0
        self.unacked: OrderedDict[int, WorkerEvent] = OrderedDict()
        self.held: dict[str, int] = {}
        self.todo: list[AssignOrder] = []
        self.session: WorkerSession | None = None
        self.reconnects = 0

    def connect(self) -> WorkerSession:
        for _ in range(20):
            if self.session is not None:
                return self.session
            try:
                session, welcome = self.d.attach_worker(Hello(
                    worker_id="w1", incarnation="i1", host="h", slots=1, labels={},
                    held_runs=dict(self.held), sweep_id="", heartbeat_interval_s=1.0,
                    max_runs=0, runs_assigned=0))
            except Unavailable:
                continue
            self.reconnects += 1
            self.session = session
            self._acked(welcome.applied_seq)
            self.read()
        raise AssertionError("could not reconnect")

    def read(self) -> None:
        assert self.session is not None
        while not self.session.outbox.empty():
            order = self.session.outbox.get_nowait()
            if isinstance(order, AckOrder):
                assert not order.refused, order.refused
                self._acked(order.seq)
            elif isinstance(order, AssignOrder):
                self.held[order.run_id] = order.attempt
                self.todo.append(order)

    def _acked(self, seq: int) -> None:
        while self.unacked and next(iter(self.unacked)) <= seq:
            _, event = self.unacked.popitem(last=False)
            if isinstance(event, RunFinishedEvent):
                self.held.pop(event.run_id, None)

    def send(self, event: WorkerEvent) -> None:
        self.seq += 1
        self.unacked[self.seq] = event
        self.pump()

    def pump(self) -> None:
        for _ in range(100):
            if not self.unacked:
                return
            session = self.connect()
            seq, event = next(iter(self.unacked.items()))
            try:
                self.d.worker_message(session, seq, event)
            except Unavailable:
                # The servicer ends the stream with UNAVAILABLE; the worker reconnects.
                self.d.detach_worker(session)
                self.session = None
                continue
            self.read()
        raise AssertionError("messages never delivered")


def run_sweep(tmp_path: Path, fail: set[int]) -> tuple[FlakyStore, Dispatcher, SimWorker]:
    store = FlakyStore(tmp_path / "db.sqlite3")
    d = Dispatcher(store, clock=lambda: 1_000_000.0, lease_s=30.0)
    view = d.create_sweep(SWEEP)
    store.commits = 0
    store.fail = fail
    w = SimWorker(d)
    w.connect()
    for _ in range(50):
        if view.sweep.state is SweepState.FINISHED:
            break
        w.connect()
        if not w.todo:
            # A scheduling pass cut short by a failure is retried by the lease check.
            d.expire_leases()
            w.read()
            continue
        order = w.todo.pop(0)
        w.send(RunStartedEvent(order.run_id, order.attempt, ["python", "train.py"], 1.0))
        for b in range(BATCHES):
            w.send(MetricsEvent(order.run_id, order.attempt, [
                MetricRecord(index=i, step=i, time=2.0, values={"loss": loss(order.run_id, i)})
                for i in range(b * PER_BATCH, (b + 1) * PER_BATCH)]))
        w.send(RunFinishedEvent(order.run_id, order.attempt, RunState.FINISHED, 0, "", 3.0))
    assert view.sweep.state is SweepState.FINISHED, view.sweep.state
    return store, d, w


def check_every_record_once(tmp_path: Path, store: FlakyStore, d: Dispatcher) -> None:
    n = BATCHES * PER_BATCH
    assert len(d.runs) == 3
    for run in d.runs.values():
        assert run.state is RunState.FINISHED and run.attempt == 1, (run.id, run.state)
        history = d.history(run)
        assert [r.index for r in history] == list(range(n))
        assert [r.values["loss"] for r in history] == [loss(run.id, i) for i in range(n)]
        assert run.next_record_index == n
        assert run.summary["loss"] == loss(run.id, n - 1)
    # Memory agrees with what a restarted coordinator would read.
    fresh = Dispatcher(Store(store.path), clock=lambda: 1_000_000.0)
    for run in d.runs.values():
        again = fresh.runs[run.id]
        assert (again.state, again.attempt, again.next_record_index, again.summary) == (
            run.state, run.attempt, run.next_record_index, run.summary)
    assert fresh.workers["w1"].applied_seq == d.workers["w1"].applied_seq
    fresh.store.close()


def test_a_clean_sweep_for_reference(tmp_path: Path) -> None:
    store, d, w = run_sweep(tmp_path, set())
    check_every_record_once(tmp_path, store, d)
    assert w.reconnects == 1


def test_every_record_is_stored_once_whichever_commit_fails(tmp_path: Path) -> None:
    clean, _, _ = run_sweep(tmp_path / "clean", set())
    total = clean.commits
    assert total > 20
    for n in range(1, total + 1):
        for fail in ({n}, {n, n + 1, n + 2}):  # one failure; a disk full for a while
            where = tmp_path / f"fail-{n}-{len(fail)}"
            store, d, _ = run_sweep(where, fail)
            assert store.failed >= 1, n
            check_every_record_once(where, store, d)
            store.close()


def test_a_failed_write_answers_storage_full_and_keeps_nothing(tmp_path: Path) -> None:
    store = FlakyStore(tmp_path / "db.sqlite3")
    d = Dispatcher(store, clock=lambda: 1_000_000.0)
    view = d.create_sweep(SWEEP)
    w = SimWorker(d)
    session = w.connect()
    [order] = w.todo
    run = d.runs[order.run_id]
    d.worker_message(session, 1, MetricsEvent(run.id, 1, [
        MetricRecord(index=0, step=0, time=1.0, values={"loss": 5.0})]))
    store.fail = {store.commits + 1}
    with pytest.raises(StorageFull, match="full disk"):
        d.worker_message(session, 2, MetricsEvent(run.id, 1, [
            MetricRecord(index=1, step=1, time=1.0, values={"loss": 4.0})]))
    assert run.next_record_index == 1 and run.summary == {"loss": 5.0}
    assert session.info.applied_seq == 1
    assert [o for o in w.session.outbox._queue  # type: ignore[union-attr]
            if isinstance(o, AckOrder) and o.seq == 2] == []
    assert view.histories[run.id] == [5.0]
    # The same message, resent, is applied as new.
    d.worker_message(session, 2, MetricsEvent(run.id, 1, [
        MetricRecord(index=1, step=1, time=1.0, values={"loss": 4.0})]))
    assert [r.index for r in d.history(run)] == [0, 1] and run.summary == {"loss": 4.0}


def test_a_swallowed_write_failure_is_never_committed(tmp_path: Path) -> None:
    store = FlakyStore(tmp_path / "db.sqlite3")
    d = Dispatcher(store, clock=lambda: 1_000_000.0)
    view = d.create_sweep(SWEEP)
    store.close()
    store = FlakyStore(tmp_path / "db.sqlite3")
    sweep = store.load_sweeps()[0]
    with pytest.raises(Unavailable), store.transaction():
        sweep.state_reason = "changed"
        store.update_sweep(sweep)
        store._db.execute("DROP TABLE metrics")  # the next insert fails
        try:
            store.insert_metrics("x", 1, [MetricRecord(0, 0, 0.0, {})])
        except Unavailable:
            pass  # a caller that swallows the error must not get a partial commit
        with pytest.raises(Unavailable):
            store.update_sweep(sweep)  # nor run more statements in the broken one
    # Nothing happened at all (the DROP itself is rolled back with the rest).
    assert store.load_sweeps()[0].state_reason == view.sweep.state_reason
    store.close()


def test_listeners_hear_what_a_failed_transaction_touched(tmp_path: Path) -> None:
    calls: list[object] = []

    class Listener:
        def transaction_began(self) -> None:
            calls.append("began")

        def transaction_failed(self, touched: Touched | None) -> None:
            calls.append(touched)

    store = FlakyStore(tmp_path / "db.sqlite3")
    d = Dispatcher(store, clock=lambda: 1_000_000.0)
    view = d.create_sweep(SWEEP)
    store.add_listener(Listener())
    # A refusal before any write changed nothing: no restore.
    with pytest.raises(InvalidArgument), store.transaction():
        raise InvalidArgument("x: refused")
    # An unexpected exception: anything may have changed.
    with pytest.raises(KeyError), store.transaction():
        raise KeyError("a bug")
    store.fail = {store.commits + 1}
    with pytest.raises(StorageFull), store.transaction():
        store.update_sweep(view.sweep)
        store.insert_metrics("some-run", 1, [])
    assert calls == ["began", "began", None, "began",
                     Touched(frozenset({view.sweep.id}), frozenset({"some-run"}))]


def test_a_failed_state_change_leaves_the_sweep_as_stored(tmp_path: Path) -> None:
    store = FlakyStore(tmp_path / "db.sqlite3")
    d = Dispatcher(store, clock=lambda: 1_000_000.0)
    view = d.create_sweep(SWEEP)
    store.fail = {store.commits + 1}
    with pytest.raises(StorageFull):
        d.pause(view.sweep.id)
    assert view.sweep.state is SweepState.RUNNING and view.sweep.state_reason == "created"
    d.pause(view.sweep.id)
    assert view.sweep.state is SweepState.PAUSED
