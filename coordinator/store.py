"""SQLite persistence for sweeps, runs, metric histories and workers: the tables.

The store is the source of truth: the dispatcher commits every state change here before it
acts on it or acknowledges it, and rebuilds its in-memory view from here at start-up.
All methods are synchronous and cheap (single-row writes, indexed reads); the dispatcher calls
them on its event loop, inside the transactions of ``database.Database`` (atomic commits,
group commit, failures, checkpoints).
"""

from __future__ import annotations

import json
import logging
import sqlite3
from collections.abc import Iterable, Sequence
from pathlib import Path

from .config.command import RenderedArgv
from .config.model import ParamPath, Value
from .database import Database
from .domain import (
    MetricRecord,
    Run,
    RunEvent,
    RunState,
    StopDecision,
    Sweep,
    SweepState,
    WorkerInfo,
)

log = logging.getLogger("sweepd.coordinator")

DB_FILENAME = "sweepd.sqlite3"
# 2: a run's command stored (command_json), its nested params no longer (params_json); a
# version-1 database is upgraded in place when opened (migrations.py).
SCHEMA_VERSION = 2
# Every table of _SCHEMA: a database with tables but not these is not one sweepd wrote
# (statedir.py refuses it rather than write sweepd's schema into it).
SCHEMA_TABLES = frozenset({"meta", "sweeps", "runs", "run_events", "metrics", "workers"})
_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS sweeps (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    state TEXT NOT NULL,
    state_reason TEXT NOT NULL DEFAULT '',
    config_text TEXT NOT NULL,
    run_count INTEGER NOT NULL DEFAULT 0,
    exhausted_reason TEXT NOT NULL DEFAULT '',
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    queue TEXT NOT NULL DEFAULT 'default',
    max_concurrent INTEGER NOT NULL DEFAULT 0,
    max_retries INTEGER
);
CREATE TABLE IF NOT EXISTS runs (
    id TEXT PRIMARY KEY,
    sweep_id TEXT NOT NULL REFERENCES sweeps(id),
    number INTEGER NOT NULL,
    state TEXT NOT NULL,
    point_json TEXT NOT NULL,
    attempt INTEGER NOT NULL DEFAULT 0,
    worker_id TEXT NOT NULL DEFAULT '',
    -- What its worker started for the current attempt; '[]' until then.
    argv_json TEXT NOT NULL DEFAULT '[]',
    exit_code INTEGER,
    reason TEXT NOT NULL DEFAULT '',
    created_at REAL NOT NULL,
    started_at REAL,
    ended_at REAL,
    summary_json TEXT NOT NULL DEFAULT '{}',
    next_record_index INTEGER NOT NULL DEFAULT 0,
    predicted_mean REAL,
    predicted_std REAL,
    lease_expires_at REAL,
    -- An early-stop or cancel decision, stored before the stop order goes out (JSON).
    stop_json TEXT,
    -- The last 64 KiB of the run's output, as its worker sent it when the run ended.
    log_tail TEXT NOT NULL DEFAULT '',
    -- What to run, rendered once when the run was created (command_to_json).
    command_json TEXT NOT NULL DEFAULT '{"argv": [], "literal": []}',
    UNIQUE (sweep_id, number)
);
CREATE INDEX IF NOT EXISTS runs_by_state ON runs(state);
-- Every transition of a run, with its reason: the audit trail (LOST attempts included).
CREATE TABLE IF NOT EXISTS run_events (
    run_id TEXT NOT NULL,
    attempt INTEGER NOT NULL,
    time REAL NOT NULL,
    state TEXT NOT NULL,
    reason TEXT NOT NULL,
    worker_id TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS run_events_by_run ON run_events(run_id);
CREATE TABLE IF NOT EXISTS metrics (
    run_id TEXT NOT NULL,
    attempt INTEGER NOT NULL,
    idx INTEGER NOT NULL,
    step INTEGER NOT NULL,
    time REAL NOT NULL,
    values_json TEXT NOT NULL,
    PRIMARY KEY (run_id, attempt, idx)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS workers (
    id TEXT PRIMARY KEY,
    incarnation TEXT NOT NULL,
    host TEXT NOT NULL,
    slots INTEGER NOT NULL,
    labels_json TEXT NOT NULL,
    sweep_id TEXT NOT NULL,
    applied_seq INTEGER NOT NULL,
    connected_at REAL NOT NULL,
    last_heartbeat REAL NOT NULL,
    gpus_json TEXT NOT NULL DEFAULT '[]',
    queues_json TEXT NOT NULL DEFAULT '["default"]'
);
"""


def point_to_json(point: dict[ParamPath, Value]) -> str:
    return json.dumps([[list(path), value] for path, value in point.items()])


def point_from_json(text: str) -> dict[ParamPath, Value]:
    return {tuple(path): value for path, value in json.loads(text)}


def command_to_json(command: RenderedArgv) -> str:
    """The ``command_json`` column: the argv items and which of them carry values."""
    return json.dumps({"argv": list(command.argv), "literal": list(command.literal)})


def command_from_json(text: str) -> RenderedArgv:
    data = json.loads(text)
    return RenderedArgv([str(item) for item in data["argv"]],
                        tuple(int(i) for i in data["literal"]))


def stop_to_json(stop: StopDecision | None) -> str | None:
    """The ``stop_json`` column: the decision's fields but ``run_id`` (the row's own id), the
    figures null when the decision has none (a cancel)."""
    if stop is None:
        return None
    return json.dumps({"rule": stop.rule, "reason": stop.reason, "band": stop.band,
                       "threshold": stop.threshold, "value": stop.value})


def stop_from_json(run_id: str, text: str | None) -> StopDecision | None:
    """Reads a ``stop_json`` column. Tolerant of missing keys: a cancel was stored with only
    ``rule`` and ``reason``, and rows from older versions may lack others."""
    if not text:
        return None
    data = json.loads(text)
    band, threshold, value = data.get("band"), data.get("threshold"), data.get("value")
    return StopDecision(
        run_id=run_id, reason=str(data.get("reason", "")), rule=str(data.get("rule", "")),
        band=None if band is None else int(band),
        threshold=None if threshold is None else float(threshold),
        value=None if value is None else float(value),
    )


class SchemaMismatch(RuntimeError):
    """The database was written by an incompatible sweepd version."""


class Store(Database):
    """The coordinator's tables, on a ``Database`` (its connection and transactions)."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self._db.executescript("BEGIN;" + _SCHEMA + "COMMIT;")
        self._add_missing_columns()
        self._check_version()

    def _add_missing_columns(self) -> None:
        """Columns added within schema version 1 (nullable, so old rows read as defaults)."""
        have = {r["name"] for r in self._db.execute("PRAGMA table_info(sweeps)")}
        if "max_retries" not in have:
            self._db.execute("ALTER TABLE sweeps ADD COLUMN max_retries INTEGER")

    def _check_version(self) -> None:
        row = self._db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
        if row is None:
            self._db.execute(
                "INSERT INTO meta(key, value) VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),)
            )
        elif int(row["value"]) == 1:
            # Imported here: the upgrade reads configs, and runs once per old database.
            from .migrations import upgrade_1_to_2
            upgrade_1_to_2(self._db)
        elif int(row["value"]) != SCHEMA_VERSION:
            raise SchemaMismatch(
                f"{self.path} has schema version {row['value']}, this sweepd expects "
                f"{SCHEMA_VERSION}; use the sweepd version that wrote it or a new --state-dir"
            )

    # -- sweeps ---------------------------------------------------------------------------

    def insert_sweep(self, sweep: Sweep) -> None:
        self._write(
            "INSERT INTO sweeps(id, name, state, state_reason, config_text, run_count,"
            " exhausted_reason, created_at, updated_at, queue, max_concurrent, max_retries)"
            " VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
            (
                sweep.id, sweep.name, sweep.state.value, sweep.state_reason, sweep.config_text,
                sweep.run_count, sweep.exhausted_reason, sweep.created_at, sweep.updated_at,
                sweep.queue, sweep.max_concurrent, sweep.max_retries,
            ),
            sweep=sweep.id,
        )

    def update_sweep(self, sweep: Sweep) -> None:
        self._write(
            "UPDATE sweeps SET state=?, state_reason=?, run_count=?, exhausted_reason=?,"
            " updated_at=?, max_retries=? WHERE id=?",
            (
                sweep.state.value, sweep.state_reason, sweep.run_count, sweep.exhausted_reason,
                sweep.updated_at, sweep.max_retries, sweep.id,
            ),
            sweep=sweep.id,
        )

    def load_sweeps(self) -> list[Sweep]:
        rows = self._exec("SELECT * FROM sweeps ORDER BY created_at").fetchall()
        return [
            Sweep(
                id=r["id"], name=r["name"], state=SweepState(r["state"]),
                state_reason=r["state_reason"], config_text=r["config_text"],
                run_count=r["run_count"], exhausted_reason=r["exhausted_reason"],
                created_at=r["created_at"], updated_at=r["updated_at"],
                queue=r["queue"], max_concurrent=r["max_concurrent"],
                max_retries=r["max_retries"],
            )
            for r in rows
        ]

    # -- runs -----------------------------------------------------------------------------

    def insert_run(self, run: Run) -> None:
        self._write(
            "INSERT INTO runs(id, sweep_id, number, state, point_json, command_json, attempt,"
            " worker_id, argv_json, exit_code, reason, created_at, started_at, ended_at,"
            " summary_json, next_record_index, predicted_mean, predicted_std, lease_expires_at,"
            " stop_json) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (
                run.id, run.sweep_id, run.number, run.state.value, point_to_json(run.point),
                command_to_json(run.command), run.attempt, run.worker_id, json.dumps(run.argv),
                run.exit_code, run.reason, run.created_at, run.started_at, run.ended_at,
                json.dumps(run.summary), run.next_record_index, run.predicted_mean,
                run.predicted_std, run.lease_expires_at, stop_to_json(run.stop),
            ),
            sweep=run.sweep_id, run=run.id,
        )

    def update_run(self, run: Run) -> None:
        """Writes every mutable field of ``run``; the row's identity fields never change."""
        self._write(
            "UPDATE runs SET state=?, attempt=?, worker_id=?, argv_json=?, exit_code=?,"
            " reason=?, started_at=?, ended_at=?, summary_json=?, next_record_index=?,"
            " lease_expires_at=?, stop_json=?, log_tail=? WHERE id=?",
            (
                run.state.value, run.attempt, run.worker_id, json.dumps(run.argv), run.exit_code,
                run.reason, run.started_at, run.ended_at, json.dumps(run.summary),
                run.next_record_index, run.lease_expires_at, stop_to_json(run.stop),
                run.log_tail, run.id,
            ),
            sweep=run.sweep_id, run=run.id,
        )

    def record_event(
        self, run: Run, time: float, reason: str, *, worker_id: str | None = None
    ) -> None:
        self._write(
            "INSERT INTO run_events(run_id, attempt, time, state, reason, worker_id)"
            " VALUES (?,?,?,?,?,?)",
            (run.id, run.attempt, time, run.state.value, reason,
             run.worker_id if worker_id is None else worker_id),
            sweep=run.sweep_id, run=run.id,
        )

    def run_events(self, run_id: str) -> list[RunEvent]:
        rows = self._exec(
            "SELECT attempt, time, state, reason, worker_id FROM run_events WHERE run_id=?"
            " ORDER BY rowid", (run_id,)
        ).fetchall()
        return [RunEvent(attempt=r["attempt"], time=r["time"], state=RunState(r["state"]),
                         reason=r["reason"], worker_id=r["worker_id"] or "") for r in rows]

    def load_runs(self) -> list[Run]:
        rows = self._exec("SELECT * FROM runs ORDER BY sweep_id, number").fetchall()
        return [self._run_from_row(r) for r in rows]

    def load_runs_by_id(self, run_ids: Sequence[str]) -> list[Run]:
        rows = [r for run_id in run_ids
                for r in self._exec("SELECT * FROM runs WHERE id=?", (run_id,)).fetchall()]
        return [self._run_from_row(r) for r in rows]

    @staticmethod
    def _run_from_row(r: sqlite3.Row) -> Run:
        return Run(
            id=r["id"], sweep_id=r["sweep_id"], number=r["number"], state=RunState(r["state"]),
            point=point_from_json(r["point_json"]), command=command_from_json(r["command_json"]),
            attempt=r["attempt"], worker_id=r["worker_id"], argv=json.loads(r["argv_json"]),
            exit_code=r["exit_code"], reason=r["reason"], created_at=r["created_at"],
            started_at=r["started_at"], ended_at=r["ended_at"],
            summary=json.loads(r["summary_json"]), next_record_index=r["next_record_index"],
            predicted_mean=r["predicted_mean"], predicted_std=r["predicted_std"],
            lease_expires_at=r["lease_expires_at"],
            stop=stop_from_json(r["id"], r["stop_json"]),
            log_tail=r["log_tail"],
        )

    # -- metrics --------------------------------------------------------------------------

    def insert_metrics(self, run_id: str, attempt: int, records: Iterable[MetricRecord]) -> None:
        """Idempotent: a record already stored for (run, attempt, index) is left as it is."""
        self._write(
            "INSERT OR IGNORE INTO metrics(run_id, attempt, idx, step, time, values_json)"
            " VALUES (?,?,?,?,?,?)",
            [(run_id, attempt, r.index, r.step, r.time, json.dumps(r.values)) for r in records],
            many=True, run=run_id,
        )

    def metric_history(self, run_id: str, attempt: int) -> list[MetricRecord]:
        rows = self._exec(
            "SELECT idx, step, time, values_json FROM metrics WHERE run_id=? AND attempt=?"
            " ORDER BY idx",
            (run_id, attempt),
        ).fetchall()
        return [
            MetricRecord(index=r["idx"], step=r["step"], time=r["time"],
                         values=json.loads(r["values_json"]))
            for r in rows
        ]

    # -- workers --------------------------------------------------------------------------

    def upsert_worker(self, w: WorkerInfo) -> None:
        self._write(
            "INSERT INTO workers(id, incarnation, host, slots, labels_json, sweep_id,"
            " applied_seq, connected_at, last_heartbeat, gpus_json, queues_json)"
            " VALUES (?,?,?,?,?,?,?,?,?,?,?)"
            " ON CONFLICT(id) DO UPDATE SET incarnation=excluded.incarnation,"
            " host=excluded.host, slots=excluded.slots, labels_json=excluded.labels_json,"
            " sweep_id=excluded.sweep_id, applied_seq=excluded.applied_seq,"
            " connected_at=excluded.connected_at, last_heartbeat=excluded.last_heartbeat,"
            " gpus_json=excluded.gpus_json, queues_json=excluded.queues_json",
            (
                w.id, w.incarnation, w.host, w.slots, json.dumps(w.labels), w.sweep_id,
                w.applied_seq, w.connected_at, w.last_heartbeat, json.dumps(w.gpus),
                json.dumps(w.queues),
            ),
        )

    def set_applied_seq(self, worker_id: str, seq: int) -> None:
        self._write("UPDATE workers SET applied_seq=? WHERE id=?", (seq, worker_id))

    def load_workers(self) -> list[WorkerInfo]:
        rows = self._exec("SELECT * FROM workers").fetchall()
        return [
            WorkerInfo(
                id=r["id"], incarnation=r["incarnation"], host=r["host"], slots=r["slots"],
                labels=json.loads(r["labels_json"]), sweep_id=r["sweep_id"],
                applied_seq=r["applied_seq"], connected_at=r["connected_at"],
                last_heartbeat=r["last_heartbeat"], connected=False,
                gpus=json.loads(r["gpus_json"]), queues=json.loads(r["queues_json"]),
            )
            for r in rows
        ]
