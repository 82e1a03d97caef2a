"""A coordinator on this machine, started on demand: the notebook path needs no set-up.

When nothing names a coordinator (no ``coordinator=``, no ``--coordinator``, no
``$SWEEPD_COORDINATOR``) and none answers on the default address, ``sweep()``, ``agent()`` and
``sweep create`` start ``coordinator serve`` in the background: loopback, the default state
dir (its own token there, its log in ``coordinator.log`` beside it), in its own session so that
it outlives the notebook kernel or the shell that started it. Later calls find it answering
and reuse it. Two starts at once are safe: the coordinator takes an exclusive lock on its state
dir, so the second one exits and its starter waits for the first. ``coordinator stop`` ends it
(see :func:`stop_local`).

Here in ``common`` because both sides use it: the client starts the coordinator, and
``coordinator stop`` stops it.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from sweepd.common.transport import ADDRESS_ENV, DEFAULT_ADDRESS, default_state_dir

try:
    import fcntl
except ImportError:  # Windows: no flock; the lock file's pid is trusted as it is
    fcntl = None  # type: ignore[assignment]

# The coordinator's own names (coordinator/statedir.py); repeated, not imported, because
# common imports nothing of the coordinator (it pulls in numpy, scipy and the store).
LOCK_FILENAME = "coordinator.lock"
LOG_FILENAME = "coordinator.log"
# A cold start imports numpy/scipy/sklearn and opens the database: seconds on a loaded laptop,
# so the wait is generous; a coordinator that fails exits, and that ends the wait at once.
START_TIMEOUT_S = 60.0
# A connect to loopback is answered in microseconds; anything slower is not a live listener.
PROBE_TIMEOUT_S = 0.5
START_POLL_S = 0.1
# SIGTERM lets the coordinator commit and close the database; it exits within a second or two.
STOP_TIMEOUT_S = 30.0
# `coordinator serve` exits with this code when another coordinator holds the state dir.
EXIT_STATE_DIR_IN_USE = 3
_PID = re.compile(r"pid (\d+)")


class LocalCoordinatorError(RuntimeError):
    """The local coordinator could not be started or stopped; the message says why."""


@dataclass(frozen=True)
class Started:
    address: str
    pid: int
    state_dir: Path
    log: Path


def configured(explicit: str | None) -> bool:
    """True when the user named a coordinator (the keyword, the flag or the environment)."""
    return bool(explicit or os.environ.get(ADDRESS_ENV))


def answers(address: str = DEFAULT_ADDRESS) -> bool:
    """Whether something accepts connections at ``address`` (HOST:PORT)."""
    host, _, port = address.rpartition(":")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), PROBE_TIMEOUT_S):
            return True
    except (OSError, ValueError):
        return False


def ensure_local(explicit: str | None, *, say: Callable[[str], None] | None = None
                 ) -> Started | None:
    """Starts a local coordinator when none is configured and none answers; returns what it
    started (None: nothing was needed). ``say`` gets the one line that tells the user."""
    if configured(explicit) or answers(DEFAULT_ADDRESS):
        return None
    started = start_local()
    (say or _stderr)(
        f"sweepd: no coordinator was running, so one was started in the background on"
        f" {started.address} (pid {started.pid}, state and log in {started.state_dir});"
        " `coordinator stop` ends it")
    return started


def _stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def start_local(state_dir: Path | None = None, address: str = DEFAULT_ADDRESS,
                timeout: float = START_TIMEOUT_S) -> Started:
    """Starts ``coordinator serve`` detached on ``address`` (a loopback HOST:PORT) and waits
    until it accepts connections."""
    state_dir = state_dir or default_state_dir()
    state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    host, _, port = address.rpartition(":")
    log_path = state_dir / LOG_FILENAME
    argv = [sys.executable, "-m", "sweepd.coordinator", "serve", "--host", host,
            "--port", port, "--state-dir", str(state_dir)]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    with open(log_path, "ab") as log:
        # Its own session: a Ctrl+C in the notebook or the shell never reaches it, and it
        # outlives whoever started it.
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log,
                                stderr=subprocess.STDOUT, env=env, start_new_session=True,
                                close_fds=True)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if answers(address):
            return Started(address, _lock_pid(state_dir) or proc.pid, state_dir, log_path)
        code = proc.poll()
        # Exit 3 with the lock held: another process started one on this state dir a moment
        # ago, and that one is worth waiting for. Any other exit is a failure to report.
        if code is not None and (code != EXIT_STATE_DIR_IN_USE or not lock_held(state_dir)):
            raise LocalCoordinatorError(
                f"the local coordinator exited with code {code} at start-up:\n"
                f"{_tail(log_path)}\n(full log: {log_path}). Start one yourself with"
                " `coordinator serve`, or name one with coordinator= / --coordinator /"
                " SWEEPD_COORDINATOR")
        time.sleep(START_POLL_S)
    with contextlib.suppress(ProcessLookupError):
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
    raise LocalCoordinatorError(
        f"the local coordinator did not listen on {address} within {timeout:.0f} s; its log"
        f" ({log_path}):\n{_tail(log_path)}")


def _tail(path: Path, lines: int = 10) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _lock_pid(state_dir: Path) -> int | None:
    try:
        match = _PID.search((state_dir / LOCK_FILENAME).read_text())
    except OSError:
        return None
    return int(match.group(1)) if match else None


def lock_held(state_dir: Path) -> bool:
    """Whether a live coordinator holds ``state_dir`` (its flock; the kernel drops it when the
    process dies, so a stale lock file reads as free)."""
    path = state_dir / LOCK_FILENAME
    if not path.exists():
        return False
    if fcntl is None:
        return _lock_pid(state_dir) is not None
    with open(path, "r+") as f:
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(f.fileno(), fcntl.LOCK_UN)
        return False


def stop_local(state_dir: Path | None = None, timeout: float = STOP_TIMEOUT_S) -> int | None:
    """SIGTERM to the coordinator that holds ``state_dir`` (default: the default state dir),
    then waits until it let go. Returns its pid, or None when none was running."""
    state_dir = state_dir or default_state_dir()
    if not lock_held(state_dir):
        return None
    pid = _lock_pid(state_dir)
    if pid is None:
        raise LocalCoordinatorError(
            f"a coordinator holds {state_dir / LOCK_FILENAME} but the file names no pid;"
            " stop it by hand (`ps`, `kill`)")
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return None
    except PermissionError:
        raise LocalCoordinatorError(
            f"the coordinator on {state_dir} (pid {pid}) belongs to another user") from None
    deadline = time.monotonic() + timeout
    while lock_held(state_dir):
        if time.monotonic() > deadline:
            raise LocalCoordinatorError(
                f"the coordinator (pid {pid}) still runs {timeout:.0f} s after SIGTERM;"
                f" `kill -9 {pid}` ends it at once")
        time.sleep(START_POLL_S)
    return pid
