"""SQLite persistence for sweeps, runs, metric histories and workers.

The store is the source of truth: the dispatcher commits every state change here before it
acts on it or acknowledges it, and rebuilds its in-memory view from here at start-up.
One coordinator process owns the database (one writer), in WAL mode so that readers such as
``sqlite3`` or a backup never block it.

All methods are synchronous and cheap (single-row writes, indexed reads); the dispatcher calls
them on its event loop. Group several writes into one atomic commit with ``transaction()``.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .config.model import ParamPath, Value
from .domain import MetricRecord, Run, RunState, Sweep, SweepState, WorkerInfo

DB_FILENAME = "sweepd.sqlite3"
SCHEMA_VERSION = 1
# NORMAL keeps every committed transaction across a crash of the coordinator process
# (kill -9); only an OS crash or power loss can drop the last few. FULL would fsync on every
# commit and cost a disk flush per metric batch.
SYNCHRONOUS = "NORMAL"
# How long a second process (a backup, `sqlite3` by hand) may hold a lock before we give up.
BUSY_TIMEOUT_MS = 5000

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
    params_json TEXT NOT NULL,
    attempt INTEGER NOT NULL DEFAULT 0,
    worker_id TEXT NOT NULL DEFAULT '',
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


def _json_or_none(value: Any) -> str | None:
    return None if value is None else json.dumps(value)


class SchemaMismatch(RuntimeError):
    """The database was written by an incompatible sweepd version."""


class Store:
    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        # isolation_level=None: we issue BEGIN/COMMIT ourselves, so one ``transaction()`` is
        # one atomic commit however many statements it holds.
        self._db = sqlite3.connect(
            str(path), isolation_level=None, check_same_thread=False, timeout=BUSY_TIMEOUT_MS / 1000
        )
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(f"PRAGMA synchronous={SYNCHRONOUS}")
        self._db.execute("PRAGMA foreign_keys=ON")
        self._depth = 0
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
        elif int(row["value"]) != SCHEMA_VERSION:
            raise SchemaMismatch(
                f"{self.path} has schema version {row['value']}, this sweepd expects "
                f"{SCHEMA_VERSION}; use the sweepd version that wrote it or a new --state-dir"
            )

    def close(self) -> None:
        self._db.close()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """One atomic commit; nested uses join the outermost transaction."""
        if self._depth:
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
            return
        self._db.execute("BEGIN IMMEDIATE")
        self._depth = 1
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        else:
            self._db.execute("COMMIT")
        finally:
            self._depth = 0

    def _exec(self, sql: str, params: Sequence[Any] = ()) -> sqlite3.Cursor:
        # Outside an explicit transaction each statement is its own commit (autocommit).
        return self._db.execute(sql, params)

    # -- sweeps ---------------------------------------------------------------------------

    def insert_sweep(self, sweep: Sweep) -> None:
        self._exec(
            "INSERT INTO sweeps(id, name, state, state_reason, config_text, run_count,"
            " exhausted_reason, created_at, updated_at, queue, max_concurrent, max_retries)"
            " VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
            (
                sweep.id, sweep.name, sweep.state.value, sweep.state_reason, sweep.config_text,
                sweep.run_count, sweep.exhausted_reason, sweep.created_at, sweep.updated_at,
                sweep.queue, sweep.max_concurrent, sweep.max_retries,
            ),
        )

    def update_sweep(self, sweep: Sweep) -> None:
        self._exec(
            "UPDATE sweeps SET state=?, state_reason=?, run_count=?, exhausted_reason=?,"
            " updated_at=?, max_retries=? WHERE id=?",
            (
                sweep.state.value, sweep.state_reason, sweep.run_count, sweep.exhausted_reason,
                sweep.updated_at, sweep.max_retries, sweep.id,
            ),
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
        self._exec(
            "INSERT INTO runs(id, sweep_id, number, state, point_json, params_json, attempt,"
            " worker_id, argv_json, exit_code, reason, created_at, started_at, ended_at,"
            " summary_json, next_record_index, predicted_mean, predicted_std, lease_expires_at,"
            " stop_json) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (
                run.id, run.sweep_id, run.number, run.state.value, point_to_json(run.point),
                json.dumps(run.params), run.attempt, run.worker_id, json.dumps(run.argv),
                run.exit_code, run.reason, run.created_at, run.started_at, run.ended_at,
                json.dumps(run.summary), run.next_record_index, run.predicted_mean,
                run.predicted_std, run.lease_expires_at, _json_or_none(run.stop),
            ),
        )

    def update_run(self, run: Run) -> None:
        """Writes every mutable field of ``run``; the row's identity fields never change."""
        self._exec(
            "UPDATE runs SET state=?, attempt=?, worker_id=?, argv_json=?, exit_code=?,"
            " reason=?, started_at=?, ended_at=?, summary_json=?, next_record_index=?,"
            " lease_expires_at=?, stop_json=?, log_tail=? WHERE id=?",
            (
                run.state.value, run.attempt, run.worker_id, json.dumps(run.argv), run.exit_code,
                run.reason, run.started_at, run.ended_at, json.dumps(run.summary),
                run.next_record_index, run.lease_expires_at, _json_or_none(run.stop),
                run.log_tail, run.id,
            ),
        )

    def record_event(
        self, run: Run, time: float, reason: str, *, worker_id: str | None = None
    ) -> None:
        self._exec(
            "INSERT INTO run_events(run_id, attempt, time, state, reason, worker_id)"
            " VALUES (?,?,?,?,?,?)",
            (run.id, run.attempt, time, run.state.value, reason,
             run.worker_id if worker_id is None else worker_id),
        )

    def run_events(self, run_id: str) -> list[dict[str, Any]]:
        rows = self._exec(
            "SELECT attempt, time, state, reason, worker_id FROM run_events WHERE run_id=?"
            " ORDER BY rowid", (run_id,)
        ).fetchall()
        return [dict(r) for r in rows]

    def load_runs(self) -> list[Run]:
        rows = self._exec("SELECT * FROM runs ORDER BY sweep_id, number").fetchall()
        return [self._run_from_row(r) for r in rows]

    @staticmethod
    def _run_from_row(r: sqlite3.Row) -> Run:
        return Run(
            id=r["id"], sweep_id=r["sweep_id"], number=r["number"], state=RunState(r["state"]),
            point=point_from_json(r["point_json"]), params=json.loads(r["params_json"]),
            attempt=r["attempt"], worker_id=r["worker_id"], argv=json.loads(r["argv_json"]),
            exit_code=r["exit_code"], reason=r["reason"], created_at=r["created_at"],
            started_at=r["started_at"], ended_at=r["ended_at"],
            summary=json.loads(r["summary_json"]), next_record_index=r["next_record_index"],
            predicted_mean=r["predicted_mean"], predicted_std=r["predicted_std"],
            lease_expires_at=r["lease_expires_at"],
            stop=json.loads(r["stop_json"]) if r["stop_json"] else None,
            log_tail=r["log_tail"],
        )

    # -- metrics --------------------------------------------------------------------------

    def insert_metrics(self, run_id: str, attempt: int, records: Iterable[MetricRecord]) -> None:
        """Idempotent: a record already stored for (run, attempt, index) is left as it is."""
        self._db.executemany(
            "INSERT OR IGNORE INTO metrics(run_id, attempt, idx, step, time, values_json)"
            " VALUES (?,?,?,?,?,?)",
            [(run_id, attempt, r.index, r.step, r.time, json.dumps(r.values)) for r in records],
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
        self._exec(
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
        self._exec("UPDATE workers SET applied_seq=? WHERE id=?", (seq, worker_id))

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
