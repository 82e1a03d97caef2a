"""A run's command is rendered once, when the run is created, and kept apart from what its
worker started: ``Run.command`` (worker-side macros left, values marked) and ``Run.argv``
(empty until started). The point is stored once; the nested params come from it (issue #17).
"""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest
from sweepd.coordinator.config import Point, RenderedArgv, SweepConfig
from sweepd.coordinator.config import command as command_module
from sweepd.coordinator.dispatcher import Dispatcher, Hello, RunStartedEvent, WorkerSession
from sweepd.coordinator.domain import AssignOrder, MetricRecord, Order, RunState
from sweepd.coordinator.servicers.convert import run_to_proto
from sweepd.coordinator.store import Store

LEASE_S = 3.0
CONFIG = """\
program: train.py
method: grid
command: ["${env}", "${interpreter}", "${program}", "--home=${envvar:HOME}", "${args}"]
parameters:
  opt: {parameters: {lr: {values: [0.1]}}}
  tag: {value: "${envvar:HOME}"}
"""
COMMAND = ["${env}", "${interpreter}", "train.py", "--home=${envvar:HOME}",
           "--opt={'lr': 0.1}", "--tag=${envvar:HOME}"]
STARTED = ["/usr/bin/env", "/venv/bin/python", "train.py", "--home=/home/u",
           "--opt={'lr': 0.1}", "--tag=${envvar:HOME}"]
NO_PROGRAM = "method: grid\nparameters:\n  a: {values: [1]}\n"


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def attach(d: Dispatcher, worker_id: str) -> WorkerSession:
    session, _ = d.attach_worker(Hello(
        worker_id=worker_id, incarnation="i1", host="h", slots=1, labels={}, held_runs={},
        sweep_id="", heartbeat_interval_s=0.5, max_runs=0, runs_assigned=0))
    return session


def assigned(session: WorkerSession) -> list[AssignOrder]:
    out: list[Order] = []
    while not session.outbox.empty():
        order = session.outbox.get_nowait()
        if order is not None:
            out.append(order)
    return [o for o in out if isinstance(o, AssignOrder)]


def test_the_command_is_rendered_once_and_every_attempt_is_assigned_from_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    renders: list[Point] = []
    render = command_module.render_argv

    def counted(config: SweepConfig, params: Point) -> RenderedArgv:
        renders.append(params)
        return render(config, params)

    monkeypatch.setattr(command_module, "render_argv", counted)
    clock = Clock()
    d = Dispatcher(Store(tmp_path / "db.sqlite3"), clock=clock, lease_s=LEASE_S)
    w1 = attach(d, "w1")
    d.create_sweep(CONFIG)
    [first] = assigned(w1)
    run = d.runs[first.run_id]
    assert run.command == RenderedArgv(COMMAND, (4, 5))
    assert run.argv == []  # nothing started yet
    assert (first.argv, first.literal_argv) == (COMMAND, (4, 5))
    assert first.params == {"opt": {"lr": 0.1}, "tag": "${envvar:HOME}"}

    d.worker_message(w1, 1, RunStartedEvent(run.id, 1, STARTED, clock.now))
    assert (run.state, run.command.argv, run.argv) == (RunState.RUNNING, COMMAND, STARTED)
    message = run_to_proto(run)
    assert (list(message.command), list(message.argv)) == (COMMAND, STARTED)

    clock.now += LEASE_S + 1
    assert d.expire_leases() == 1
    assert (run.state, run.argv) == (RunState.PENDING, [])  # the lost attempt's argv is gone
    w2 = attach(d, "w2")
    [second] = assigned(w2)
    assert (second.run_id, second.attempt) == (run.id, 2)
    assert (second.argv, second.literal_argv) == (COMMAND, (4, 5))
    assert len(renders) == 1


def test_the_store_keeps_the_command_and_the_point_once(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite3"
    d = Dispatcher(Store(path))
    w1 = attach(d, "w1")
    d.create_sweep(CONFIG)
    [order] = assigned(w1)
    d.store.close()
    db = sqlite3.connect(str(path))
    db.row_factory = sqlite3.Row
    row = db.execute("SELECT * FROM runs WHERE id=?", (order.run_id,)).fetchone()
    db.close()
    stored_columns = row.keys()
    assert "params_json" not in stored_columns
    assert row["argv_json"] == "[]"
    reopened = Store(path)
    [run] = reopened.load_runs()
    assert run.command == RenderedArgv(COMMAND, (4, 5))
    assert run.params == {"opt": {"lr": 0.1}, "tag": "${envvar:HOME}"}


def test_an_ask_tell_run_has_the_command_and_starts_nothing(tmp_path: Path) -> None:
    d = Dispatcher(Store(tmp_path / "db.sqlite3"), lease_s=LEASE_S)
    with_program = d.create_sweep(CONFIG)
    without = d.create_sweep(NO_PROGRAM)
    run, _ = asyncio.run(d.suggest_for_client(with_program.sweep.id, "c1"))
    assert run is not None
    d.report_from_client(run.id, run.attempt,
                         [MetricRecord(index=0, step=0, time=1.0, values={"k": 1.0})], "c1")
    # Its first report starts it; the command is what a worker would run, nothing was started.
    assert (run.state, run.command.argv, run.argv) == (RunState.RUNNING, COMMAND, [])
    other, _ = asyncio.run(d.suggest_for_client(without.sweep.id, "c1"))
    assert other is not None
    # No program, no command: a worker never runs it, and the template renders to nobody's
    # command (a bare interpreter with arguments).
    assert (other.command, other.argv) == (RenderedArgv([], ()), [])
