"""The coordinator's state directory before anything is served from it: its permissions, the
lock that keeps a second coordinator off it, and the checks that its database may be used.

Everything here runs once at start-up, in this order: :func:`prepare` (the directory, 0700),
:func:`lock` (one coordinator per directory), :func:`check_database` (present where it should be,
not damaged, 0600). A refusal raises :class:`StateDirError`, which ``coordinator serve`` turns
into one line on stderr and exit code 3.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import sqlite3
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import IO

try:
    import fcntl
except ImportError:  # Windows: no advisory locks; one coordinator per directory is on the user
    fcntl = None  # type: ignore[assignment]

from sweepd.common.transport import TOKEN_FILENAME

from .store import DB_FILENAME, SCHEMA_TABLES

log = logging.getLogger("sweepd.coordinator")

# Owner only: the directory holds the token (a password to every worker) and every sweep.
DIR_MODE = 0o700
# The database and SQLite's companions beside it (created by SQLite with the database's mode).
DB_FILE_MODE = 0o600
DB_COMPANIONS = ("", "-wal", "-shm")
LOCK_FILENAME = "coordinator.lock"
# How many problems `PRAGMA quick_check` lists before it stops: the first few say enough.
QUICK_CHECK_PROBLEMS = 5


class StateDirError(RuntimeError):
    """The state directory cannot be used; the message says why and what to do."""


# SQLite's primary result codes for a failing disk (the extended codes keep them in the low
# byte): SQLITE_IOERR, SQLITE_FULL. Neither says anything about the database's content.
_SQLITE_IOERR = 10
_SQLITE_FULL = 13
# errno values that mean the disk, not the file, is the problem.
_DISK_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EIO, errno.EROFS)


def _free_bytes(state_dir: Path) -> int | None:
    try:
        st = os.statvfs(state_dir)
    except OSError:
        return None
    return st.f_bavail * st.f_frsize


def disk_problem(state_dir: Path, what: str, detail: str) -> str:
    """The refusal for a start-up that could not read or write the state dir's filesystem
    (full, over quota, read-only, failing). It must not read as damage: an operator told that
    the database is damaged may move it aside and lose every sweep, when freeing space was
    all it needed."""
    free = _free_bytes(state_dir)
    unchanged = "Nothing was changed" + (" and the database is not known to be damaged"
                                         if (state_dir / DB_FILENAME).exists() else "")
    if free is not None and free < FULL_BELOW_BYTES:
        return (f"cannot {what} ({detail}): no space left on the filesystem of the state dir"
                f" {state_dir} ({free} bytes free). {unchanged}: free space there (`df`,"
                " `du`), then start again")
    return (f"cannot {what} ({detail}): the filesystem of the state dir {state_dir} failed the"
            f" read or write (an I/O error, a quota, a read-only mount). {unchanged}: fix the"
            " disk (see `dmesg`, `df`), then start again")


def is_disk_error(exc: BaseException) -> bool:
    """Whether ``exc`` (an OSError or a sqlite3.Error) says the disk failed, not the data."""
    if isinstance(exc, OSError):
        return exc.errno in _DISK_ERRNOS
    code = getattr(exc, "sqlite_errorcode", None)
    return isinstance(code, int) and code & 0xFF in (_SQLITE_IOERR, _SQLITE_FULL)


def database_error(db: Path, exc: BaseException) -> str:
    """The refusal for a database that failed to open or load: a disk problem when the error
    says so, damage otherwise."""
    detail = f"{type(exc).__name__}: {exc}" if not isinstance(exc, sqlite3.Error) else str(exc)
    if is_disk_error(exc):
        return disk_problem(db.parent, f"open the database {db}", detail)
    return damaged(db, detail)


# Below this many free bytes the filesystem counts as full: SQLite needs a few pages (and
# its -shm file 32 KiB) to open a database at all.
FULL_BELOW_BYTES = 64 * 1024


def os_refusal(state_dir: Path, what: str, exc: OSError) -> StateDirError:
    if exc.errno in _DISK_ERRNOS:
        return StateDirError(disk_problem(state_dir, what, exc.strerror or str(exc)))
    return StateDirError(f"cannot {what}: {exc}")


def prepare(state_dir: Path) -> None:
    """Creates the directory 0700, or narrows an existing one of ours to 0700."""
    try:
        state_dir.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
        _narrow(state_dir, DIR_MODE, "state dir")
    except OSError as exc:
        raise os_refusal(state_dir, f"use state dir {state_dir}", exc) from None


def _narrow(path: Path, mode: int, what: str) -> None:
    """chmod ``path`` to ``mode`` when it allows more than that; a path of another user is left
    alone (chmod would fail, and the owner chose its mode)."""
    st = path.stat()
    current = stat.S_IMODE(st.st_mode)
    if current & ~mode and st.st_uid == os.geteuid():
        path.chmod(mode)
        log.warning("%s %s was mode %04o, readable by others; set to %04o", what, path,
                    current, mode)


@dataclass
class StateDirLock:
    """Held for the coordinator's lifetime; the kernel releases it when the process dies, even
    by ``kill -9``, so a stale lock file never blocks a restart."""

    path: Path
    file: IO[str]

    def describe(self, status: str) -> None:
        """Writes who holds the lock and what it is doing, for the message a second
        coordinator prints. Best effort: on a full disk the lock still holds, the message only
        names no process."""
        try:
            self._write(status)
        except OSError as exc:
            log.warning("cannot write %s: %s", self.path, exc)

    def _write(self, status: str) -> None:
        self.file.seek(0)
        self.file.truncate()
        self.file.write(f"pid {os.getpid()}, {status}\n")
        self.file.flush()

    def release(self) -> None:
        with contextlib.suppress(OSError):  # a full disk: closing unlocks all the same
            self.file.close()


def lock(state_dir: Path) -> StateDirLock:
    """Takes the state directory for this process, or raises naming the process that has it.

    Two coordinators on one database would each keep their own in-memory view of it and
    overwrite each other's state; with the port shared too, clients would land on either.
    """
    path = state_dir / LOCK_FILENAME
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, DB_FILE_MODE)
    except OSError as exc:
        raise os_refusal(state_dir, f"use state dir {state_dir}", exc) from None
    file = os.fdopen(fd, "r+")
    if fcntl is not None:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = file.read().strip() or "pid unknown"
            file.close()
            raise StateDirError(
                f"state dir {state_dir} is in use by another coordinator ({holder}): stop that"
                " one first, or pass another --state-dir") from None
    held = StateDirLock(path, file)
    try:
        # Not best effort here: a disk that cannot take these few bytes cannot take a sweep
        # either, and a coordinator started on it would fail every request instead.
        held._write("starting")
    except OSError as exc:
        held.release()
        raise os_refusal(state_dir, f"write the lock file {path}", exc) from None
    return held


def check_database(state_dir: Path, *, new_database: bool) -> None:
    """Refuses a database that is missing or empty beside an existing token (unless
    ``new_database``), or damaged; creates a missing one 0600 and narrows the modes of existing
    files to 0600.

    A token without a database means this directory served sweeps before and its database was
    deleted or replaced: starting afresh would silently forget every sweep while clients with
    the old token carry on.
    """
    db = state_dir / DB_FILENAME
    token = state_dir / TOKEN_FILENAME
    exists = db.exists()
    empty = not exists or db.stat().st_size == 0
    if empty and token.exists() and not new_database:
        what = "empty" if exists else "missing"
        raise StateDirError(
            f"the database {db} is {what}, but the token {token} beside it says this state dir"
            " has served a coordinator before: its sweeps would be lost without a word. Restore"
            " the database from a backup, or pass --new-database to start with an empty one")
    try:
        if not exists:
            os.close(os.open(db, os.O_RDWR | os.O_CREAT | os.O_EXCL, DB_FILE_MODE))
            return
        for suffix in DB_COMPANIONS:
            companion = db.with_name(db.name + suffix)
            if companion.exists():
                _narrow(companion, DB_FILE_MODE, "database file")
    except OSError as exc:
        raise os_refusal(state_dir, f"use the database {db}", exc) from None
    if not empty:
        _quick_check(db)
        tables = _tables(db)
        if not tables and token.exists() and not new_database:
            # A valid SQLite file without a table: as empty as a file of 0 bytes.
            raise StateDirError(
                f"the database {db} holds no tables, but the token {token} beside it says this"
                " state dir has served a coordinator before: its sweeps would be lost without"
                " a word. Restore the database from a backup, or pass --new-database to start"
                " with an empty one")
        _check_ours(db, tables)


def _tables(db: Path) -> set[str]:
    try:
        connection = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
        try:
            return {str(r[0]) for r in connection.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table'")}
        finally:
            connection.close()
    except sqlite3.Error as exc:
        raise StateDirError(database_error(db, exc)) from None


def _check_ours(db: Path, tables: set[str]) -> None:
    """Refuses a database with tables that is not a whole sweepd database. Opening it would
    write sweepd's tables into another application's file, or carry on with a sweepd database
    that lost some (every table has existed since the first version, so none is ever missing
    from a database sweepd wrote)."""
    if not tables:
        return
    missing = sorted(SCHEMA_TABLES - tables)
    if not missing:
        return
    if len(missing) == len(SCHEMA_TABLES):
        shown = ", ".join(sorted(tables)[:10]) + (", ..." if len(tables) > 10 else "")
        raise StateDirError(
            f"the database {db} is not a sweepd database (its tables: {shown}); nothing was"
            " changed. Pass a --state-dir of its own to the coordinator, or move the file"
            " aside if it does not belong there")
    raise StateDirError(
        f"the database {db} lacks sweepd's tables {', '.join(missing)}: it was changed by"
        " something else and its sweeps are incomplete; nothing was changed. Restore it from a"
        " backup, or move it aside and pass --new-database to start with an empty one")


def _quick_check(db: Path) -> None:
    """``PRAGMA quick_check``: the b-trees and records are well formed. Linear in the file's
    size (measured 0.8 s for 240 MB of metric rows, page cache warm); ``integrity_check`` would
    also compare every index with its table and cost more. A garbled value inside a record
    (text still valid as text) is beyond what either can see."""
    try:
        connection = sqlite3.connect(f"file:{db}?mode=rw", uri=True)
        try:
            rows = [str(r[0]) for r in
                    connection.execute(f"PRAGMA quick_check({QUICK_CHECK_PROBLEMS})")]
        finally:
            connection.close()
    except sqlite3.Error as exc:
        raise StateDirError(database_error(db, exc)) from None
    if rows != ["ok"]:
        raise StateDirError(damaged(db, "; ".join(rows)))


# How much of SQLite's own account of the damage the message quotes: enough to recognise it.
DAMAGE_DETAIL_CHARS = 300


def damaged(db: Path, detail: str) -> str:
    """The one-line refusal for a damaged database; ``detail`` is SQLite's word for it."""
    detail = " ".join(detail.split())
    if len(detail) > DAMAGE_DETAIL_CHARS:
        detail = detail[:DAMAGE_DETAIL_CHARS] + "..."
    return (f"the database {db} is damaged ({detail}); nothing was changed. Restore it from a"
            " backup, or move it aside and pass --new-database to start with an empty one"
            " (try `sqlite3 DB .recover` to save what is left)")
