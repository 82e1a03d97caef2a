"""SQLite persistence for sweeps, runs, metric histories and workers.

The store is the source of truth: the dispatcher commits every state change here before it
acts on it or acknowledges it, and rebuilds its in-memory view from here at start-up.
One coordinator process owns the database (one writer), in WAL mode so that readers such as
``sqlite3`` or a backup never block it.

All methods are synchronous and cheap (single-row writes, indexed reads); the dispatcher calls
them on its event loop. Group several writes into one atomic commit with ``transaction()``.
``transaction(defer_commit=True)`` leaves its writes in a group transaction that stays open
until ``commit_group()`` (or the next ordinary transaction) commits it: the writes of
concurrent requests share one commit, each acknowledged only after it (group commit).

Copying the write-ahead log into the database (a checkpoint, the one step that syncs the disk)
runs on a thread of its own with its own connection, off the committing thread.

A write that fails (disk full, I/O error) fails its whole transaction: nothing of it is
committed, even if a caller swallows the error, and every ``TransactionListener`` hears of it
so that an in-memory view changed alongside can be restored from what is stored.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from .config.command import RenderedArgv
from .config.model import ParamPath, Value
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
from .errors import StorageFull, SweepdError, Unavailable

log = logging.getLogger("sweepd.coordinator")

DB_FILENAME = "sweepd.sqlite3"
# 2: a run's command stored (command_json), its nested params no longer (params_json); a
# version-1 database is upgraded in place when opened (migrations.py).
SCHEMA_VERSION = 2
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
# The background checkpointer is woken every this many commits, so that the log is copied
# well before WAL_CHECKPOINT_PAGES (then a backstop only: the committing thread checkpoints
# itself if the background one falls behind). A checkpoint syncs the disk and took half the
# time of a commit when it ran inline.
CHECKPOINT_EVERY_COMMITS = 8
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


@dataclass(frozen=True)
class Touched:
    """The sweeps and runs a failed transaction wrote or tried to write."""

    sweep_ids: frozenset[str]
    run_ids: frozenset[str]


class TransactionListener(Protocol):
    """Told when a transaction begins and when one is rolled back after it changed something
    (a write was attempted, or an unexpected exception left it), so that what was changed in
    memory alongside it can be put back; and when a group transaction committed."""

    def transaction_began(self) -> None: ...

    def transaction_failed(self, touched: Touched | None) -> None:
        """``touched``: what the transaction wrote; None when that is not known (an
        exception that was not a write's), and anything may have changed. A failed group
        transaction loses every part of the group."""

    def group_committed(self) -> None:
        """The open group transaction committed: its parts are durable."""


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


class _Checkpointer:
    """Copies the write-ahead log into the database on a thread of its own, when woken.

    Its own connection: SQLite lets a checkpoint run beside a writer (PASSIVE mode never
    waits for it), and the disk sync it ends with then costs the event loop nothing. A failed
    checkpoint (a full disk) is tried again at the next wake; the committing connection's
    own auto-checkpoint and the full-disk reclaim stay as they were.
    """

    def __init__(self, path: Path) -> None:
        self._path = path
        self._wake = threading.Event()
        self._stopping = False
        # Started at the first wake: a store that commits little never needs it.
        self._thread: threading.Thread | None = None

    def wake(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="sweepd-checkpoint",
                                            daemon=True)
            self._thread.start()
        self._wake.set()

    def stop(self) -> None:
        if self._thread is None:
            return
        self._stopping = True
        self._wake.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        try:
            db = sqlite3.connect(str(self._path), isolation_level=None,
                                 timeout=BUSY_TIMEOUT_MS / 1000)
        except sqlite3.Error as exc:
            log.warning("no background checkpoints for %s: %s", self._path, exc)
            return
        try:
            while True:
                self._wake.wait()
                self._wake.clear()
                if self._stopping:
                    return
                try:
                    db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                except sqlite3.Error as exc:
                    log.info("background checkpoint of %s failed: %s", self._path, exc)
        finally:
            db.close()


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
        # A group transaction is open: parts were applied but not committed (commit_group()).
        self._group = False
        # Within the current transaction: whether a write was attempted, and the first write
        # that failed (after which nothing more is executed and nothing is committed).
        self._wrote = False
        # Whether the current part of a group wrote (a refusal before any write leaves the
        # other parts of the group as they are).
        self._part_wrote = False
        self.last_error: Unavailable | None = None
        self._failure: Unavailable | None = None
        self._touched_sweeps: set[str] = set()
        self._touched_runs: set[str] = set()
        self._listeners: list[TransactionListener] = []
        self._db.executescript("BEGIN;" + _SCHEMA + "COMMIT;")
        self._add_missing_columns()
        self._check_version()
        self._checkpointer = _Checkpointer(path)
        self._commits_unchecked = 0

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

    def close(self) -> None:
        if self._group:
            self.commit_group()
        self._checkpointer.stop()
        self._db.close()

    def add_listener(self, listener: TransactionListener) -> None:
        self._listeners.append(listener)

    @property
    def group_open(self) -> bool:
        """Whether writes wait in an open group transaction for ``commit_group()``."""
        return self._group

    @contextmanager
    def transaction(self, *, defer_commit: bool = False) -> Iterator[None]:
        """One atomic commit; nested uses join the outermost transaction.

        Raises ``Unavailable`` (``StorageFull`` on a full disk) when a write or the commit
        failed; the database then holds nothing of the transaction, and listeners were told.
        An exception that is a ``SweepdError`` raised before any write (a refusal) rolls back
        without telling them: by convention nothing was changed yet.

        ``defer_commit``: a part of the open group transaction (one is begun if none is open);
        its writes are committed with the group's by ``commit_group()``. A part that fails
        after it wrote fails the whole group (every part's writes are rolled back, listeners
        told of all they touched). An ordinary transaction commits an open group first.
        """
        if self._depth:
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
            return
        if self._group and not defer_commit:
            self.commit_group()
        if not self._group:
            try:
                self._db.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as exc:  # locked past BUSY_TIMEOUT_MS, or unusable
                raise _store_error(self.path, exc) from exc
            self._wrote = False
            self._failure = None
            self._touched_sweeps.clear()
            self._touched_runs.clear()
            for listener in self._listeners:
                listener.transaction_began()
            self._group = defer_commit
        self._depth = 1
        self._part_wrote = False
        try:
            yield
            if self._failure is not None:  # a failed write whose error a caller swallowed
                raise self._failure
            if not defer_commit:
                self._commit()
        except BaseException as exc:
            if (defer_commit and not self._part_wrote and isinstance(exc, SweepdError)
                    and not isinstance(exc, Unavailable)):
                raise  # a refusal before this part wrote: the group's other parts stand
            self._fail(exc)
            if isinstance(exc, sqlite3.Error) and self.last_error is not None:
                raise self.last_error from exc
            raise
        finally:
            self._depth = 0
            self._part_wrote = False

    def commit_group(self) -> None:
        """Commits the open group transaction (nothing if none is open); listeners hear
        ``group_committed``, or ``transaction_failed`` if the commit failed (then raised)."""
        if not self._group:
            return
        try:
            if self._failure is not None:
                raise self._failure
            self._commit()
        except BaseException as exc:
            self._fail(exc)
            if isinstance(exc, sqlite3.Error) and self.last_error is not None:
                raise self.last_error from exc
            raise
        self._group = False
        for listener in self._listeners:
            listener.group_committed()

    def _fail(self, exc: BaseException) -> None:
        """Rolls the whole transaction (every part of a group) back and tells listeners."""
        self._rollback()
        self._group = False
        if isinstance(exc, StorageFull) or (
                isinstance(exc, sqlite3.Error)
                and getattr(exc, "sqlite_errorcode", None) == _SQLITE_FULL):
            self._reclaim_wal()
        if isinstance(exc, Unavailable):
            self.last_error = exc
        elif isinstance(exc, sqlite3.Error):
            self.last_error = _store_error(self.path, exc)
        else:
            self.last_error = Unavailable(
                f"the coordinator's transaction failed ({type(exc).__name__}: {exc}); nothing"
                " of this request was kept: send it again")
        if self._wrote or not isinstance(exc, SweepdError):
            touched = Touched(frozenset(self._touched_sweeps),
                              frozenset(self._touched_runs)) if self._wrote else None
            for listener in self._listeners:
                listener.transaction_failed(touched)
        self._wrote = False
        self._failure = None

    def _commit(self) -> None:
        self._db.execute("COMMIT")
        self._commits_unchecked += 1
        if self._commits_unchecked >= CHECKPOINT_EVERY_COMMITS:
            self._commits_unchecked = 0
            self._checkpointer.wake()

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

    def will_write(self, *, sweep: str = "", run: str = "") -> None:
        """A write of ``sweep`` or ``run`` that the caller makes later in this transaction:
        from now on a failure of the transaction counts them as touched."""
        if not self._depth:
            raise RuntimeError("will_write outside a transaction")
        self._wrote = True
        self._part_wrote = True
        if sweep:
            self._touched_sweeps.add(sweep)
        if run:
            self._touched_runs.add(run)

    def _write(self, sql: str, params: Sequence[Any] = (), *, many: bool = False,
               sweep: str = "", run: str = "") -> None:
        """A write of (rows of) ``sweep`` or ``run``; outside ``transaction()`` it is a
        transaction of its own."""
        if not self._depth:
            with self.transaction():
                self._write(sql, params, many=many, sweep=sweep, run=run)
            return
        self._wrote = True
        self._part_wrote = True
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
