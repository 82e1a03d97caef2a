"""The coordinator's SQLite connection and its transactions, below the tables of ``store.py``.

One coordinator process owns the database (one writer), in WAL mode so that readers such as
``sqlite3`` or a backup never block it. ``transaction()`` groups writes into one atomic commit;
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

import logging
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from .errors import StorageFull, SweepdError, Unavailable

log = logging.getLogger("sweepd.coordinator")

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


class Database:
    """One SQLite connection with its transactions; see the module text."""

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
        self._checkpointer = _Checkpointer(path)
        self._commits_unchecked = 0

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
        self.will_write(sweep=sweep, run=run)
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
