"""A version-1 database (one argv_json for the command and for what was started, the point
stored twice) is upgraded in place when opened: every run keeps its point, gets its params
from it, its command rendered as version 1 rendered it on each assignment, and its argv only
where a worker started something (issue #17)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from sweepd.coordinator.config import RenderedArgv
from sweepd.coordinator.dispatcher import Dispatcher, Hello, WorkerSession
from sweepd.coordinator.domain import AssignOrder, Order, Run, RunState
from sweepd.coordinator.store import SCHEMA_VERSION, Store

from .v1_database import write_v1_database

# A template macro the worker resolves (--home=${envvar:HOME}) and a value that only looks
# like one (tag): the upgrade must mark the value's item literal, as version 1's assignment did.
MACROS = """\
program: train.py
method: grid
command: ["${env}", "${interpreter}", "${program}", "--home=${envvar:HOME}", "${args}"]
parameters:
  a: {values: [1, 2, 3, 4]}
  tag: {value: "${envvar:HOME}"}
"""
# No program and no command: only ask/tell clients and agent functions take its runs.
ASK_ONLY = """\
method: grid
parameters:
  opt: {parameters: {lr: {values: [0.1, 0.2]}}}
"""
REFUSED = "method: nope\nprogram: t.py\nparameters:\n  a: {values: [1]}\n"

TEMPLATE = ["${env}", "${interpreter}", "train.py", "--home=${envvar:HOME}"]
STARTED = ["/usr/bin/env", "/venv/bin/python", "train.py", "--home=/home/u", "--a=1",
           "--tag=${envvar:HOME}"]


def rendered(a: int) -> list[str]:
    return [*TEMPLATE, f"--a={a}", "--tag=${envvar:HOME}"]


def write_fixture(path: Path) -> None:
    point = {("a",): 1, ("tag",): "${envvar:HOME}"}
    write_v1_database(path, sweeps=[
        {"id": "macros01", "config_text": MACROS, "run_count": 4},
        {"id": "asktell1", "config_text": ASK_ONLY, "run_count": 1},
        {"id": "refused1", "config_text": REFUSED, "run_count": 2},
    ], runs=[
        # Started by a worker and finished: argv_json is what the worker started.
        {"sweep_id": "macros01", "number": 1, "point": point, "state": "FINISHED",
         "attempt": 1, "worker_id": "w1", "argv": STARTED, "started_at": 3.0,
         "ended_at": 4.0, "exit_code": 0, "summary": {"loss": 0.5}},
        # Lost and requeued: version 1 kept the lost attempt's argv; nothing is started now.
        {"sweep_id": "macros01", "number": 2, "point": {**point, ("a",): 2}, "attempt": 1,
         "argv": STARTED},
        # Assigned, never started: argv_json was the command rendered at create.
        {"sweep_id": "macros01", "number": 3, "point": {**point, ("a",): 3},
         "state": "ASSIGNED", "attempt": 1, "worker_id": "w1", "argv": rendered(3),
         "lease_expires_at": 10.0},
        # Held by an ask/tell client: version 1 copied the rendered command into argv_json
        # when the client's first report started it; no worker ever started anything.
        {"sweep_id": "macros01", "number": 4, "point": {**point, ("a",): 4},
         "state": "RUNNING", "attempt": 1, "worker_id": "client:c1", "argv": rendered(4),
         "started_at": 3.0, "lease_expires_at": 10.0},
        {"sweep_id": "asktell1", "number": 1, "point": {("opt", "lr"): 0.1},
         "state": "FINISHED", "attempt": 1, "worker_id": "client:c1",
         "argv": ["${env}", "${interpreter}", "--opt={'lr': 0.1}"], "started_at": 3.0,
         "ended_at": 4.0},
        {"sweep_id": "refused1", "number": 1, "point": {("a",): 1}, "attempt": 0,
         "argv": ["t.py", "--a=1"]},
        {"sweep_id": "refused1", "number": 2, "point": {("a",): 1}, "state": "FAILED",
         "attempt": 1, "worker_id": "w2", "argv": ["/usr/bin/python", "t.py", "--a=1"],
         "started_at": 3.0, "ended_at": 4.0},
    ])


def columns(path: Path) -> list[str]:
    db = sqlite3.connect(str(path))
    try:
        return [r[1] for r in db.execute("PRAGMA table_info(runs)")]
    finally:
        db.close()


def version(path: Path) -> str:
    db = sqlite3.connect(str(path))
    try:
        return str(db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()[0])
    finally:
        db.close()


def test_every_run_of_a_version_1_database_gets_its_command_and_keeps_what_was_started(
        tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite3"
    write_fixture(path)
    store = Store(path)
    runs = {r.id: r for r in store.load_runs()}
    store.close()
    assert SCHEMA_VERSION == 2 and version(path) == "2"
    assert "params_json" not in columns(path) and "command_json" in columns(path)

    literal = (4, 5)  # --a=N and --tag=${envvar:HOME}: values, never macros
    expected: dict[str, tuple[list[str], tuple[int, ...], list[str]]] = {
        "macros01-1": (rendered(1), literal, STARTED),
        "macros01-2": (rendered(2), literal, []),
        "macros01-3": (rendered(3), literal, []),
        "macros01-4": (rendered(4), literal, []),
        "asktell1-1": ([], (), []),
        # Its config is refused today: the command stored before the start is kept unmarked,
        # what a worker started stays what it started.
        "refused1-1": (["t.py", "--a=1"], (), []),
        "refused1-2": ([], (), ["/usr/bin/python", "t.py", "--a=1"]),
    }
    assert sorted(runs) == sorted(expected)
    for run_id, (command, marks, argv) in expected.items():
        run = runs[run_id]
        assert run.command == RenderedArgv(command, marks), run_id
        assert run.argv == argv, run_id
    for n in range(1, 5):
        run = runs[f"macros01-{n}"]
        assert run.point == {("a",): n, ("tag",): "${envvar:HOME}"}
        assert run.params == {"a": n, "tag": "${envvar:HOME}"}
        assert list(run.params) == ["a", "tag"]  # W&B's order, as stored
    assert runs["asktell1-1"].params == {"opt": {"lr": 0.1}}
    # Everything else of a run is as it was.
    first = runs["macros01-1"]
    assert (first.state, first.attempt, first.worker_id, first.exit_code, first.summary,
            first.started_at) == (RunState.FINISHED, 1, "w1", 0, {"loss": 0.5}, 3.0)


def test_the_upgrade_runs_once(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite3"
    write_fixture(path)
    Store(path).close()
    before = {r.id: (r.command, r.argv) for r in _load(path)}
    store = Store(path)  # a second open finds version 2 and changes nothing
    store.close()
    assert {r.id: (r.command, r.argv) for r in _load(path)} == before
    assert version(path) == "2"


def test_an_upgrade_that_fails_leaves_the_version_1_database_as_it_was(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite3"
    write_fixture(path)
    db = sqlite3.connect(str(path), isolation_level=None)
    db.execute("UPDATE runs SET point_json='garbled' WHERE id='macros01-3'")
    db.close()
    with pytest.raises(ValueError):
        Store(path)
    # One transaction: the column added before the failure is gone with it.
    assert version(path) == "1"
    assert "params_json" in columns(path) and "command_json" not in columns(path)


def _load(path: Path) -> list[Run]:
    store = Store(path)
    try:
        return store.load_runs()
    finally:
        store.close()


def _hello(worker_id: str) -> Hello:
    return Hello(worker_id=worker_id, incarnation="i1", host="h", slots=1, labels={},
                 held_runs={}, sweep_id="", heartbeat_interval_s=2.0, max_runs=0,
                 runs_assigned=0)


def _orders(session: WorkerSession) -> list[Order]:
    out = []
    while not session.outbox.empty():
        order = session.outbox.get_nowait()
        if order is not None:
            out.append(order)
    return out


def test_an_upgraded_run_is_assigned_with_its_stored_command(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite3"
    write_fixture(path)
    d = Dispatcher(Store(path))
    assert "refused1" not in d.sweeps  # left out, with its runs, as before
    session, _ = d.attach_worker(_hello("w9"))
    [order] = [o for o in _orders(session) if isinstance(o, AssignOrder)]
    # The requeued run 2, with the marks version 1 never stored.
    assert (order.run_id, order.attempt) == ("macros01-2", 2)
    assert (order.argv, order.literal_argv) == (rendered(2), (4, 5))
    assert order.params == {"a": 2, "tag": "${envvar:HOME}"}


@pytest.mark.parametrize("point_json", ["null", '[[[], 1]]', '{"lr": 0.1}', '[["lr", 1]]'])
def test_a_garbled_version_1_point_is_damage_and_the_file_stays_at_version_1(
        tmp_path: Path, point_json: str, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "db.sqlite3"
    write_fixture(path)
    db = sqlite3.connect(path)
    db.execute("UPDATE runs SET point_json=? WHERE rowid=1", (point_json,))
    db.commit()
    db.close()
    # ValueError: what start-up reports as a damaged database (exit 3, the file named).
    with pytest.raises(ValueError, match=r"stored point .* is not a list of"):
        Store(path)
    assert version(path) == "1" and "params_json" in columns(path)
    assert "upgrading the database from schema version 1 to 2" in caplog.text
