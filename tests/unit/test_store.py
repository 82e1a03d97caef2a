from __future__ import annotations

from pathlib import Path

import pytest
from sweepd.coordinator.config import RenderedArgv
from sweepd.coordinator.domain import (
    MetricRecord,
    Run,
    RunState,
    StopDecision,
    Sweep,
    SweepState,
    WorkerInfo,
)
from sweepd.coordinator.store import SchemaMismatch, Store


def make_sweep(sweep_id: str = "abcdefgh") -> Sweep:
    return Sweep(id=sweep_id, config_text="method: grid\n", state=SweepState.RUNNING,
                 created_at=1.0, updated_at=1.0)


def make_run(sweep_id: str = "abcdefgh", number: int = 1) -> Run:
    return Run(id=f"{sweep_id}-{number}", sweep_id=sweep_id, number=number,
               state=RunState.ASSIGNED, point={("opt", "lr"): 0.1, ("bs",): 32},
               created_at=2.0, attempt=1, worker_id="w1",
               command=RenderedArgv(["${interpreter}", "t.py", "--bs=32"], (2,)))


def test_round_trip_survives_reopen(tmp_path: Path) -> None:
    store = Store(tmp_path / "db.sqlite3")
    store.insert_sweep(make_sweep())
    run = make_run()
    store.insert_run(run)
    run.state = RunState.FINISHED
    run.summary = {"loss": 0.5}
    run.exit_code = 0
    run.stop = StopDecision(run.id, "hyperband: worse", "hyperband", threshold=0.4)
    store.update_run(run)
    store.record_event(run, 3.0, "finished")
    store.close()

    store = Store(tmp_path / "db.sqlite3")
    [loaded] = store.load_runs()
    assert loaded.point == {("opt", "lr"): 0.1, ("bs",): 32}
    assert isinstance(loaded.point[("bs",)], int)
    assert loaded.params == {"opt": {"lr": 0.1}, "bs": 32}
    assert loaded.command == RenderedArgv(["${interpreter}", "t.py", "--bs=32"], (2,))
    assert loaded.argv == []
    assert loaded.state is RunState.FINISHED
    assert loaded.summary == {"loss": 0.5}
    assert loaded.stop == StopDecision(run.id, "hyperband: worse", "hyperband", threshold=0.4)
    assert [e.reason for e in store.run_events(run.id)] == ["finished"]
    assert store.load_sweeps()[0].state is SweepState.RUNNING


def test_metrics_are_idempotent_per_index(tmp_path: Path) -> None:
    store = Store(tmp_path / "db.sqlite3")
    store.insert_sweep(make_sweep())
    store.insert_run(make_run())
    records = [MetricRecord(index=i, step=i, time=1.0, values={"loss": float(i)})
               for i in range(3)]
    store.insert_metrics("abcdefgh-1", 1, records)
    store.insert_metrics("abcdefgh-1", 1, records[1:])  # a resend
    history = store.metric_history("abcdefgh-1", 1)
    assert [r.values["loss"] for r in history] == [0.0, 1.0, 2.0]
    assert store.metric_history("abcdefgh-1", 2) == []


def test_transaction_rolls_back_everything_on_error(tmp_path: Path) -> None:
    store = Store(tmp_path / "db.sqlite3")
    store.insert_sweep(make_sweep())
    with pytest.raises(RuntimeError), store.transaction():
        store.insert_run(make_run(number=1))
        raise RuntimeError("boom")
    assert store.load_runs() == []


def test_worker_applied_seq_persists(tmp_path: Path) -> None:
    store = Store(tmp_path / "db.sqlite3")
    store.upsert_worker(WorkerInfo(id="w1", incarnation="i1", host="h", slots=2, labels={"a": "b"},
                                   sweep_id="", applied_seq=0, connected_at=1.0,
                                   last_heartbeat=1.0))
    store.set_applied_seq("w1", 41)
    [w] = store.load_workers()
    assert (w.applied_seq, w.labels, w.connected) == (41, {"a": "b"}, False)


def test_refuses_a_database_from_another_schema_version(tmp_path: Path) -> None:
    store = Store(tmp_path / "db.sqlite3")
    store._db.execute("UPDATE meta SET value='999' WHERE key='schema_version'")
    store.close()
    with pytest.raises(SchemaMismatch, match="schema version 999"):
        Store(tmp_path / "db.sqlite3")
