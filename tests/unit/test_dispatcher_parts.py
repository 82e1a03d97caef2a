"""The dispatcher in parts (issue 17): one commit that sends its orders, the run's own
transitions, the goal compared in one place, and the queries servicers read through."""

from __future__ import annotations

import ast
import sqlite3
from pathlib import Path

import pytest
from sweepd.coordinator.dispatcher import Dispatcher, Hello, WorkerSession
from sweepd.coordinator.domain import (
    AssignOrder,
    DrainOrder,
    Order,
    Run,
    RunState,
    StopDecision,
    StopOrder,
    SweepState,
    beats,
    best_of,
    reaches,
)
from sweepd.coordinator.errors import Unavailable
from sweepd.coordinator.store import Store

GRID = "method: grid\nprogram: train.py\nparameters:\n  a: {values: [1, 2]}\n"
COORDINATOR = Path(__file__).resolve().parents[2] / "coordinator"
# A newcomer reads one module in one sitting: the old dispatcher.py had 1487 lines.
MAX_MODULE_LINES = 300


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def attach(d: Dispatcher, worker_id: str, slots: int = 1, sweep_id: str = "") -> WorkerSession:
    session, _ = d.attach_worker(Hello(
        worker_id=worker_id, incarnation="i1", host="h", slots=slots, labels={},
        held_runs={}, sweep_id=sweep_id, heartbeat_interval_s=1.0, max_runs=0, runs_assigned=0,
    ))
    return session


def drain(session: WorkerSession) -> list[Order]:
    out = []
    while not session.outbox.empty():
        order = session.outbox.get_nowait()
        if order is not None:
            out.append(order)
    return out


def test_orders_sent_in_a_commit_go_out_only_once_it_commits(tmp_path: Path) -> None:
    d = Dispatcher(Store(tmp_path / "db.sqlite3"), clock=Clock())
    w1 = attach(d, "w1")
    with d.state.commit():
        d.state.send("w1", DrainOrder("first"))
        with d.state.commit():  # a nested use joins the outer one
            d.state.send("w1", DrainOrder("second"))
        assert drain(w1) == []
        d.create_sweep(GRID)  # its write joins too; the assignment waits with the rest
        assert drain(w1) == []
    orders = drain(w1)
    assert orders[:2] == [DrainOrder("first"), DrainOrder("second")]
    assert [type(o) for o in orders[2:]] == [AssignOrder]


def test_orders_of_a_failed_commit_never_go_out(tmp_path: Path) -> None:
    d = Dispatcher(Store(tmp_path / "db.sqlite3"), clock=Clock())
    w1 = attach(d, "w1")
    with pytest.raises(RuntimeError), d.state.commit():
        d.state.send("w1", DrainOrder("never"))
        raise RuntimeError("boom")
    assert drain(w1) == []
    d.state.send("w1", DrainOrder("now"))  # outside a transaction: at once
    assert drain(w1) == [DrainOrder("now")]


class FailingStore(Store):
    """Fails its next commit when ``fail_next`` is set, as a full disk does."""

    fail_next = False

    def _commit(self) -> None:
        if self.fail_next:
            self.fail_next = False
            exc = sqlite3.OperationalError("database or disk is full")
            exc.sqlite_errorcode = 13  # type: ignore[attr-defined]
            raise exc
        super()._commit()


def test_a_failed_commit_sends_nothing_and_memory_is_as_stored(tmp_path: Path) -> None:
    store = FailingStore(tmp_path / "db.sqlite3")
    d = Dispatcher(store, clock=Clock())
    view = d.create_sweep(GRID)
    w1 = attach(d, "w1", sweep_id=view.sweep.id)  # bound to the sweep: drained when it ends
    [order] = drain(w1)
    assert isinstance(order, AssignOrder)
    store.fail_next = True
    with pytest.raises(Unavailable):
        d.cancel(view.sweep.id)  # would stop the run and drain: neither may happen
    assert drain(w1) == [] and not w1.draining
    run = d.runs[order.run_id]
    assert (run.state, run.stop, view.sweep.state) == (RunState.ASSIGNED, None,
                                                       SweepState.RUNNING)
    d.cancel(view.sweep.id)  # sent again, it is applied as new
    assert [type(o) for o in drain(w1)] == [StopOrder, DrainOrder]


def _run(**kw: object) -> Run:
    run = Run(id="s-1", sweep_id="s", number=1, state=RunState.PENDING, point={},
              created_at=0.0)
    for k, v in kw.items():
        setattr(run, k, v)
    return run


def test_a_run_moves_through_its_states_by_its_own_methods() -> None:
    run = _run()
    run.assign("w1", lease_expires_at=50.0)
    assert (run.state, run.attempt, run.worker_id, run.lease_expires_at) == (
        RunState.ASSIGNED, 1, "w1", 50.0)
    run.hand_back()  # never started: the attempt is not spent
    assert (run.state, run.attempt, run.worker_id, run.lease_expires_at) == (
        RunState.PENDING, 0, "", None)
    run.assign("w2", lease_expires_at=60.0)
    run.start(["python", "train.py"], when=10.0)
    assert (run.state, run.started_at, run.argv) == (RunState.RUNNING, 10.0,
                                                     ["python", "train.py"])
    run.request_stop(StopDecision(run.id, "below the band", "hyperband"))
    assert run.reason == "below the band" and run.state is RunState.RUNNING
    run.end(RunState.STOPPED, run.reason, when=20.0)
    assert (run.state, run.ended_at, run.lease_expires_at) == (RunState.STOPPED, 20.0, None)


def test_requeue_is_one_reset_for_a_lost_run_and_a_user_retry() -> None:
    run = _run(state=RunState.FAILED, attempt=2, worker_id="w1", reason="exit 1", exit_code=1,
               started_at=1.0, ended_at=2.0, lease_expires_at=3.0,
               stop=StopDecision("s-1", "x", "x"), summary={"loss": 0.5}, next_record_index=7,
               log_tail="Traceback", argv=["python", "t.py"])
    run.requeue()
    assert run == _run(attempt=2)  # everything of the last attempt gone, the count kept
    lost = _run(state=RunState.RUNNING, attempt=1, worker_id="w1", started_at=1.0,
                lease_expires_at=3.0, summary={"loss": 0.5}, next_record_index=3)
    lost.lose("no heartbeat")
    assert (lost.state, lost.reason) == (RunState.LOST, "no heartbeat")
    lost.requeue(reason="no heartbeat")
    assert lost == _run(attempt=1, reason="no heartbeat")


def test_the_goal_is_compared_in_one_place() -> None:
    assert beats("maximize", 2.0, 1.0) and not beats("maximize", 1.0, 1.0)
    assert beats("minimize", 1.0, 2.0) and not beats("minimize", 1.0, 1.0)
    assert reaches("maximize", 0.9, 0.9) and not reaches("maximize", 0.8, 0.9)
    assert reaches("minimize", 0.1, 0.1) and not reaches("minimize", 0.2, 0.1)
    assert best_of("maximize", [1.0, 3.0, 2.0]) == 3.0
    assert best_of("minimize", [1.0, 3.0, -2.0]) == -2.0


def test_list_workers_answers_without_reading_the_dispatcher_fields(tmp_path: Path) -> None:
    clock = Clock()
    d = Dispatcher(Store(tmp_path / "db.sqlite3"), clock=clock)
    d.create_sweep(GRID)
    w2 = attach(d, "w2")
    w1 = attach(d, "w1")
    d.detach_worker(w1)
    [order] = [o for o in drain(w2) if isinstance(o, AssignOrder)]
    listing = d.list_workers()
    assert [(info.id, info.connected, run_ids) for info, run_ids in listing] == [
        ("w2", True, [order.run_id]), ("w1", False, [])]
    assert d.now() == clock.now


def _dispatcher_attributes(path: Path) -> set[str]:
    """Every ``self.d.NAME`` a servicer module reads."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Attribute)
                and node.value.attr == "d" and isinstance(node.value.value, ast.Name)
                and node.value.value.id == "self"):
            names.add(node.attr)
    return names


def test_servicers_use_commands_and_queries_not_the_dispatcher_fields() -> None:
    fields = {"state", "store", "sweeps", "runs", "workers", "sessions", "clock"}
    for path in sorted((COORDINATOR / "servicers").glob("*.py")):
        used = _dispatcher_attributes(path)
        assert not used & fields, f"{path.name} reads {sorted(used & fields)}"
        assert all(not name.startswith("_") for name in used), path.name
        assert all(hasattr(Dispatcher, name) for name in used), (path.name, used)


def test_every_dispatcher_module_reads_in_one_sitting() -> None:
    modules = sorted((COORDINATOR / "dispatcher").glob("*.py"))
    assert len(modules) > 5
    for path in modules:
        lines = len(path.read_text().splitlines())
        assert lines <= MAX_MODULE_LINES, f"{path.name}: {lines} lines"
