"""Stop decisions and run events are typed records (issue 17): stopping rules return the
record the run keeps, the store reads the stop_json rows written before the change unchanged,
and the servicers and the dashboard convert the records once."""

from __future__ import annotations

import json
import math
import sqlite3
from pathlib import Path

from sweepd.coordinator import stopping
from sweepd.coordinator.dashboard.data import event_row, run_row
from sweepd.coordinator.dispatcher import Dispatcher, Hello
from sweepd.coordinator.domain import (
    CANCEL_RULE,
    Run,
    RunEvent,
    RunState,
    StopDecision,
    Sweep,
    SweepState,
)
from sweepd.coordinator.servicers.convert import event_to_proto, stop_to_proto
from sweepd.coordinator.store import Store
from sweepd.v1 import common_pb2

GRID = "method: grid\nprogram: train.py\nparameters:\n  a: {values: [1, 2]}\n"
# Exactly as the dispatcher wrote stop_json before the records were typed: json.dumps of the
# dicts it built (an early stop with its figures, a NaN value included; a cancel with two keys).
OLD_EARLY_STOP = json.dumps({"rule": "hyperband", "reason": "hyperband: loss=nan at iteration 3"
                             " is worse than the band threshold 0.5 (top 1/3 of 4 runs)",
                             "band": 3, "threshold": 0.5, "value": float("nan")})
OLD_CANCEL = json.dumps({"rule": "cancel", "reason": "sweep canceled"})


def _store_with_runs(path: Path, n: int) -> Store:
    store = Store(path)
    store.insert_sweep(Sweep(id="abcdefgh", config_text=GRID, state=SweepState.RUNNING,
                             created_at=1.0, updated_at=1.0))
    for number in range(1, n + 1):
        store.insert_run(Run(id=f"abcdefgh-{number}", sweep_id="abcdefgh", number=number,
                             state=RunState.RUNNING, point={("a",): 1},
                             created_at=2.0, attempt=1, worker_id="w1"))
    return store


def test_stop_json_rows_in_the_old_format_load_unchanged(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite3"
    _store_with_runs(path, 3).close()
    with sqlite3.connect(path) as db:
        db.execute("UPDATE runs SET stop_json=? WHERE id='abcdefgh-1'", (OLD_EARLY_STOP,))
        db.execute("UPDATE runs SET stop_json=? WHERE id='abcdefgh-2'", (OLD_CANCEL,))
    db.close()

    store = Store(path)
    early, cancel, none = store.load_runs()
    assert early.stop is not None and math.isnan(early.stop.value or 0.0)
    assert early.stop == StopDecision(
        "abcdefgh-1", json.loads(OLD_EARLY_STOP)["reason"], "hyperband", band=3,
        threshold=0.5, value=early.stop.value)
    assert cancel.stop == StopDecision("abcdefgh-2", "sweep canceled", CANCEL_RULE)
    assert none.stop is None
    # Written back, the row keeps the same keys and values as before.
    store.update_run(early)
    store.update_run(cancel)
    store.close()
    with sqlite3.connect(path) as db:
        rows = dict(db.execute("SELECT id, stop_json FROM runs").fetchall())
    db.close()
    assert json.loads(rows["abcdefgh-1"]).keys() == json.loads(OLD_EARLY_STOP).keys()
    assert json.loads(rows["abcdefgh-2"]) == {**json.loads(OLD_CANCEL), "band": None,
                                              "threshold": None, "value": None}


def test_rules_return_the_record_the_run_keeps() -> None:
    assert stopping.StopDecision is StopDecision
    rule = stopping.MedianRule(n_startup_runs=1)
    decision = rule.should_stop_run("b", {"a": [0.1], "b": [0.9]}, "minimize", metric="loss")
    assert isinstance(decision, StopDecision) and decision.rule == "median"


def test_a_cancel_is_a_typed_stop_stored_with_the_run(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite3"
    d = Dispatcher(Store(path), clock=lambda: 1_000_000.0)
    view = d.create_sweep(GRID)
    d.attach_worker(Hello(worker_id="w1", incarnation="i1", host="h", slots=1, labels={},
                          held_runs={}, sweep_id="", heartbeat_interval_s=1.0, max_runs=0,
                          runs_assigned=0))
    [run] = [r for r in view.runs.values() if r.state.is_active]
    d.cancel(view.sweep.id)
    expected = StopDecision(run.id, "sweep canceled", CANCEL_RULE)
    assert run.stop == expected and run.reason == "sweep canceled"
    [stored] = [r for r in Store(path).load_runs() if r.id == run.id]
    assert stored.stop == expected
    events = d.events(run)
    assert all(isinstance(e, RunEvent) for e in events)
    assert events[-1].reason == "stop requested: sweep canceled"
    assert events[-1].state is RunState.ASSIGNED and events[-1].worker_id == "w1"


def test_the_records_convert_once_at_the_edges() -> None:
    cancel = stop_to_proto(StopDecision("r", "sweep canceled", CANCEL_RULE))
    assert (cancel.rule, cancel.reason) == ("cancel", "sweep canceled")
    assert not any(cancel.HasField(f) for f in ("band", "threshold", "value"))
    early = stop_to_proto(StopDecision("r", "asha: ...", "asha", 3, 0.5, 0.9))
    assert (early.band, early.threshold, early.value) == (3, 0.5, 0.9)

    event = RunEvent(attempt=2, time=5.5, state=RunState.LOST, reason="lost: gone",
                     worker_id="w1")
    msg = event_to_proto(event)
    assert (msg.attempt, msg.state, msg.reason, msg.worker_id) == (
        2, common_pb2.RUN_STATE_LOST, "lost: gone", "w1")
    assert msg.time.ToNanoseconds() == 5_500_000_000
    assert event_row(event) == {"attempt": 2, "time": 5.5, "state": "LOST",
                                "reason": "lost: gone", "worker_id": "w1"}

    run = Run(id="r", sweep_id="s", number=1, state=RunState.STOPPED, point={},
              created_at=0.0, stop=StopDecision("r", "x", "hyperband", 3, math.inf, 0.9))
    # JSON has no infinity: the dashboard sends null, as it did for the dict.
    assert run_row(run)["stop"] == {"rule": "hyperband", "reason": "x", "band": 3,
                                    "threshold": None, "value": 0.9}
