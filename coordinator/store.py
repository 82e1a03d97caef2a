"""SQLite persistence for sweeps, runs, metric histories and workers.

The store is the source of truth: the dispatcher commits every state change here before it
acts on it or acknowledges it, and rebuilds its in-memory view from here at start-up.
One coordinator process owns the database (one writer), in WAL mode so that readers such as
``sqlite3`` or a backup never block it.

All methods are synchronous and cheap (single-row writes, indexed reads); the dispatcher calls
them on its event loop. Group several writes into one atomic commit with ``transaction()``.

A write that fails (disk full, I/O error) fails its whole transaction: nothing of it is
committed, even if a caller swallows the error, and every ``TransactionListener`` hears of it
so that an in-memory view changed alongside can be restored from what is stored.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from .config.model import ParamPath, Value
from .domain import MetricRecord, Run, RunState, Sweep, SweepState, WorkerInfo
from .errors import StorageFull, SweepdError, Unavailable

log = logging.getLogger("sweepd.coordinator")

DB_FILENAME = "sweepd.sqlite3"
SCHEMA_VERSION = 1
# Every table of _SCHEMA: a database with tables but not these is not one sweepd wrote
# (statedir.py refuses it rather than write sweepd's schema into it).
SCHEMA_TABLES = frozenset({"meta", "sweeps", "runs", "run_events", "metrics", "workers"})
# NORMAL keeps every committed transaction across a crash of the coordinator process
# (kill -9); only an OS crash or power loss can drop the last few. FULL would fsync on every
# commit and cost a disk flush per metric batch.
SYNCHRONOUS = "NORMAL"
# How long a second process (a backup, `sqlite3` by hand) may hold a lock before we give up.
BUSY_TIMEOUT_MS = 5000
# The write-ahead log is copied into the database every this many pages (SQLite's default is
# 1000, 4 MiB) and cut back to WAL_SIZE_LIMIT_BYTES afterwards. On a small disk (a 2 MiB
# tmpfs) a 4 MiB log filled the disk by itself, and a checkpoint, which must grow the
# database, could then never run: the coordinator stayed unable to write after the space that
# filled the disk was freed. A checkpoint per 1 MiB of changes costs one fsync each.
WAL_CHECKPOINT_PAGES = 256
WAL_SIZE_LIMIT_BYTES = 1024 * 1024
# SQLite's result code for a full disk (sqlite3.SQLITE_FULL, which typeshed does not know).
_SQLITE_FULL = 13

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


@dataclass(frozen=True)
class Touched:
    """The sweeps and runs a failed transaction wrote or tried to write."""

    sweep_ids: frozenset[str]
    run_ids: frozenset[str]


class TransactionListener(Protocol):
    """Told when a transaction begins and when one is rolled back after it changed something
    (a write was attempted, or an unexpected exception left it), so that what was changed in
    memory alongside it can be put back."""

    def transaction_began(self) -> None: ...

    def transaction_failed(self, touched: Touched | None) -> None:
        """``touched``: what the transaction wrote; None when that is not known (an
        exception that was not a write's), and anything may have changed."""


def _store_error(path: Path, exc: sqlite3.Error) -> Unavailable:
    code = getattr(exc, "sqlite_errorcode", None)
    error: Unavailable
    if code == _SQLITE_FULL:
        error = StorageFull(
            f"the coordinator's database {path} is on a full disk ({exc}); nothing of this"
            " request was kept: free space there, then send it again"
        )
    else:
        error = Unavailable(
            f"the coordinator could not write its database {path} ({exc}); nothing of this"
            " request was kept: send it again"
        )
    log.warning("%s", error)
    return error


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
        self._db.execute(f"PRAGMA wal_autocheckpoint={WAL_CHECKPOINT_PAGES}")
        self._db.execute(f"PRAGMA journal_size_limit={WAL_SIZE_LIMIT_BYTES}")
        self._db.execute("PRAGMA foreign_keys=ON")
        self._depth = 0
        # Within the current transaction: whether a write was attempted, and the first write
        # that failed (after which nothing more is executed and nothing is committed).
        self._wrote = False
        self._failure: Unavailable | None = None
        self._touched_sweeps: set[str] = set()
        self._touched_runs: set[str] = set()
        self._listeners: list[TransactionListener] = []
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

    def add_listener(self, listener: TransactionListener) -> None:
        self._listeners.append(listener)

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """One atomic commit; nested uses join the outermost transaction.

        Raises ``Unavailable`` (``StorageFull`` on a full disk) when a write or the commit
        failed; the database then holds nothing of the transaction, and listeners were told.
        An exception that is a ``SweepdError`` raised before any write (a refusal) rolls back
        without telling them: by convention nothing was changed yet.
        """
        if self._depth:
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
            return
        try:
            self._db.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:  # locked past BUSY_TIMEOUT_MS, or the file is unusable
            raise _store_error(self.path, exc) from exc
        self._depth = 1
        self._wrote = False
        self._failure = None
        self._touched_sweeps.clear()
        self._touched_runs.clear()
        for listener in self._listeners:
            listener.transaction_began()
        try:
            yield
            if self._failure is not None:  # a failed write whose error a caller swallowed
                raise self._failure
            self._commit()
        except BaseException as exc:
            self._rollback()
            if isinstance(exc, StorageFull) or (
                    isinstance(exc, sqlite3.Error)
                    and getattr(exc, "sqlite_errorcode", None) == _SQLITE_FULL):
                self._reclaim_wal()
            if self._wrote or not isinstance(exc, SweepdError):
                touched = Touched(frozenset(self._touched_sweeps),
                                  frozenset(self._touched_runs)) if self._wrote else None
                for listener in self._listeners:
                    listener.transaction_failed(touched)
            if isinstance(exc, sqlite3.Error):
                raise _store_error(self.path, exc) from exc
            raise
        finally:
            self._depth = 0
            self._wrote = False
            self._failure = None

    def _commit(self) -> None:
        self._db.execute("COMMIT")

    def _reclaim_wal(self) -> None:
        """On a full disk, copies the write-ahead log into the database and truncates it, so
        that its space is free for the next write; fails (harmlessly) while the database
        itself cannot grow."""
        try:
            self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        except sqlite3.Error as exc:
            log.info("could not checkpoint the write-ahead log of %s yet: %s", self.path, exc)

    def _rollback(self) -> None:
        # SQLite rolls back by itself after some failures (SQLITE_FULL among them).
        if self._db.in_transaction:
            try:
                self._db.execute("ROLLBACK")
            except sqlite3.Error:
                # The connection drops the transaction anyway; what matters is not committing.
                pass

    def _exec(self, sql: str, params: Sequence[Any] = ()) -> sqlite3.Cursor:
        """A read (writes go through ``_write``)."""
        return self._db.execute(sql, params)

    def _write(self, sql: str, params: Sequence[Any] = (), *, many: bool = False,
               sweep: str = "", run: str = "") -> None:
        """A write of (rows of) ``sweep`` or ``run``; outside ``transaction()`` it is a
        transaction of its own."""
        if not self._depth:
            with self.transaction():
                self._write(sql, params, many=many, sweep=sweep, run=run)
            return
        self._wrote = True
        if sweep:
            self._touched_sweeps.add(sweep)
        if run:
            self._touched_runs.add(run)
        if self._failure is not None:
            raise self._failure
        if not self._db.in_transaction:
            # SQLite already rolled this transaction back after a failure we did not see;
            # a statement now would commit on its own, outside it.
            self._failure = Unavailable(f"the coordinator's database {self.path} lost the"
                                        " current transaction; nothing of it was kept")
            raise self._failure
        try:
            if many:
                self._db.executemany(sql, params)
            else:
                self._db.execute(sql, params)
        except sqlite3.Error as exc:
            self._failure = _store_error(self.path, exc)
            raise self._failure from exc

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
                run.next_record_index, run.lease_expires_at, _json_or_none(run.stop),
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

    def run_events(self, run_id: str) -> list[dict[str, Any]]:
        rows = self._exec(
            "SELECT attempt, time, state, reason, worker_id FROM run_events WHERE run_id=?"
            " ORDER BY rowid", (run_id,)
        ).fetchall()
        return [dict(r) for r in rows]

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
