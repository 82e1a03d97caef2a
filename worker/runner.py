"""Runs one assigned run as a subprocess and follows the metrics it logs.

Each run gets its own directory (``<workdir>/.sweepd/runs/<run-id>.<attempt>/``) holding:

- ``config.json``   the run's parameters, nested, as ``run.config`` reads them;
- ``metrics.jsonl`` where the program appends one JSON object per line (``run.log`` does,
  and so can any language): ``{"loss": 0.3, "epoch": 2}``; an optional ``_step`` key gives
  the step; non-numeric values are ignored; a line that cannot be used (see
  ``read_metric_line``) is skipped, counted and reported in ``output.log`` and the run's end
  reason;
- ``output.log``    the program's stdout and stderr;
- ``stop``          created when the coordinator asks the run to stop, so that the program
  can notice (``run.should_stop()``) before the SIGTERM arrives.

The program runs in its own process group so that a stop reaches every process it started,
under a small supervisor that takes the whole group down if the worker dies (``die_with_parent``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import os
import re
import shutil
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger("sweepd.worker")

# How often the metrics file is read: often enough that early stopping acts within a fraction
# of a second, rarely enough that an idle run costs nothing measurable.
METRICS_POLL_S = 0.05
# At most this many records travel in one message; a fast logger is sent in several.
MAX_RECORDS_PER_BATCH = 500
# W&B's agent waits this long between SIGTERM and SIGKILL (WANDB_AGENT_KILL_DELAY).
DEFAULT_STOP_GRACE_S = 30.0
# The end of a run's output that travels to the coordinator when the run ends: enough for a
# traceback with context, small enough to keep in the database for every run.
LOG_TAIL_BYTES = 64 * 1024
# Live output sent at most this often, and at most this much at a time (a run printing
# faster than that has its middle skipped: the file on the worker keeps everything).
OUTPUT_POLL_S = 0.5
MAX_OUTPUT_CHUNK_BYTES = 64 * 1024
# Unusable metrics lines named in a run's output; the rest are only counted (a program that
# writes nothing but garbage would otherwise fill its output, and the disk, with our notes).
MAX_BAD_LINES_NOTED = 100

ENV_RUN_ID = "SWEEPD_RUN_ID"
ENV_SWEEP_ID = "SWEEPD_SWEEP_ID"
ENV_ATTEMPT = "SWEEPD_ATTEMPT"
ENV_RUN_DIR = "SWEEPD_RUN_DIR"
ENV_CONFIG_FILE = "SWEEPD_CONFIG_FILE"
ENV_METRICS_FILE = "SWEEPD_METRICS_FILE"
ENV_STOP_FILE = "SWEEPD_STOP_FILE"


@dataclass(frozen=True)
class Record:
    index: int
    step: int
    time: float
    values: dict[str, float]


@dataclass
class Outcome:
    state: str  # "FINISHED" | "FAILED" | "STOPPED"
    exit_code: int | None
    reason: str
    time: float


# What one line may hold. A record the coordinator would refuse costs the whole batch it
# travels in (up to MAX_RECORDS_PER_BATCH records), so a line over these is refused here, alone.
# They match coordinator/limits.py (MAX_METRIC_VALUES, MAX_NAME_LENGTH).
MAX_METRIC_VALUES = 1000
MAX_METRIC_NAME_LENGTH = 256
# Protobuf's int64 (a step) and Timestamp (0001-01-01 .. 9999-12-31) ranges: a value outside
# them cannot be put on the wire at all. Steps are counted from 0; a timestamp is seconds since
# the epoch (a milliseconds one is past year 9999 and is refused with a hint).
MAX_STEP = 2**63 - 1
MAX_TIMESTAMP_S = 253_402_300_799.0
MIN_TIMESTAMP_S = -62_135_596_800.0
# How much of a refused line is quoted back in the run's output.
QUOTE_CHARS = 120


class UnusableLine(ValueError):
    """A metrics line that cannot be used; ``str()`` says why, for the user to read."""


def _quote(text: str) -> str:
    return text if len(text) <= QUOTE_CHARS else text[:QUOTE_CHARS] + "..."


def _describe(value: Any) -> str:
    if isinstance(value, int) and len(str(abs(value))) > 30:
        return f"a {len(str(abs(value)))}-digit integer"
    return _quote(repr(value))


def read_metric_line(line: str) -> tuple[dict[str, float], int | None, float | None]:
    """(values, step, time) of one metrics line; raises ``UnusableLine`` saying why not.

    Non-numeric values (strings, lists, media) are skipped, as W&B's sweeps skip them; a line
    is refused only when what it says cannot be stored as it says it.
    """
    try:
        obj = json.loads(line)
    except ValueError as exc:
        raise UnusableLine(f"not JSON ({exc})") from None
    except RecursionError:
        raise UnusableLine("not JSON (nested too deeply)") from None
    if not isinstance(obj, dict):
        raise UnusableLine(f"a JSON {type(obj).__name__}, not an object of metric values")
    step = obj.pop("_step", None)
    stamp = obj.pop("_timestamp", None)
    step_int: int | None = None
    if step is not None:
        if isinstance(step, float) and math.isfinite(step) and step.is_integer():
            step = int(step)
        if isinstance(step, bool) or not isinstance(step, int):
            raise UnusableLine(f"_step is {_describe(step)}; write a whole number")
        if not 0 <= step <= MAX_STEP:
            raise UnusableLine(f"_step is {_describe(step)}, outside 0 .. 2**63-1")
        step_int = step
    time_f: float | None = None
    if stamp is not None:
        if isinstance(stamp, bool) or not isinstance(stamp, (int, float)):
            raise UnusableLine(f"_timestamp is {_describe(stamp)}; write seconds since the"
                               " epoch")
        try:
            time_f = float(stamp)
        except OverflowError:
            time_f = math.inf
        if not (math.isfinite(time_f) and MIN_TIMESTAMP_S <= time_f <= MAX_TIMESTAMP_S):
            hint = (" (milliseconds? write seconds since the epoch)"
                    if math.isfinite(time_f) and time_f > MAX_TIMESTAMP_S else "")
            raise UnusableLine(f"_timestamp is {_describe(stamp)}, not a time{hint}")
    values: dict[str, float] = {}
    for key, value in obj.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            continue  # strings, lists, media: not metrics the coordinator can compare
        if len(key) > MAX_METRIC_NAME_LENGTH:
            raise UnusableLine(f"metric name {_quote(key)!r} is {len(key)} characters, over"
                               f" the limit of {MAX_METRIC_NAME_LENGTH}")
        try:
            key.encode("utf-8")
        except UnicodeEncodeError:  # JSON can escape a lone surrogate; protobuf cannot carry it
            raise UnusableLine(f"metric name {_quote(key)!r} is not valid Unicode (a lone"
                               " surrogate)") from None
        try:
            values[key] = float(value)
        except OverflowError:
            raise UnusableLine(f"{_quote(key)!r} is {_describe(value)}, too large for a"
                               " double") from None
    if len(values) > MAX_METRIC_VALUES:
        raise UnusableLine(f"{len(values)} metric values, over the limit of"
                           f" {MAX_METRIC_VALUES} per line")
    return values, step_int, time_f


def parse_metric_line(line: str) -> tuple[dict[str, float], int | None, float | None] | None:
    """(values, step, time) of one metrics line, or None if it cannot be used."""
    try:
        return read_metric_line(line)
    except UnusableLine:
        return None


@dataclass(frozen=True)
class BadLine:
    number: int  # 1-based line number in the metrics file
    why: str


class MetricsFollower:
    """Reads complete lines appended to a metrics file since the last read.

    A line that cannot be used is skipped and counted (``bad_lines``); ``take_bad()`` hands
    over the ones not yet reported, so that the run's output and events can say which and why.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._offset = 0
        self._partial = b""
        self._line_number = 0
        self.next_index = 0
        self.bad_lines = 0
        self.first_bad: BadLine | None = None
        self._new_bad: list[BadLine] = []

    def take_bad(self) -> list[BadLine]:
        bad, self._new_bad = self._new_bad, []
        return bad

    def read_new(self, final: bool = False) -> list[Record]:
        try:
            with open(self.path, "rb") as f:
                f.seek(self._offset)
                chunk = f.read()
        except FileNotFoundError:
            return []
        self._offset += len(chunk)
        data = self._partial + chunk
        lines = data.split(b"\n")
        # The last piece has no newline yet: the program is mid-write. Keep it for next time,
        # unless the program has exited and will write no more.
        self._partial = b"" if final else lines.pop()
        records = []
        now = time.time()
        for raw in lines:
            self._line_number += 1
            text = raw.decode("utf-8", errors="replace").strip()
            if not text:
                continue
            try:
                values, step, stamp = read_metric_line(text)
            except UnusableLine as exc:
                self._note_bad(BadLine(self._line_number, str(exc)))
                continue
            except Exception as exc:  # a line must never end the follower
                self._note_bad(BadLine(self._line_number, f"{type(exc).__name__}: {exc}"))
                continue
            index = self.next_index
            self.next_index += 1
            records.append(Record(index=index, step=index if step is None else step,
                                  time=now if stamp is None else stamp, values=values))
        return records

    def _note_bad(self, bad: BadLine) -> None:
        self.bad_lines += 1
        if self.first_bad is None:
            self.first_bad = bad
        if self.bad_lines <= MAX_BAD_LINES_NOTED:
            self._new_bad.append(bad)
        elif self.bad_lines == MAX_BAD_LINES_NOTED + 1:
            self._new_bad.append(BadLine(bad.number, (
                f"{bad.why}; this and further unusable lines are counted, not listed (the"
                " count is in the run's end reason)")))


class OutputFollower:
    """Reads what was appended to a run's output file since the last read, bounded."""

    def __init__(self, path: Path, limit: int = MAX_OUTPUT_CHUNK_BYTES) -> None:
        self.path = path
        self.limit = limit
        self._offset = 0

    def read_new(self) -> bytes:
        try:
            with open(self.path, "rb") as f:
                size = f.seek(0, os.SEEK_END)
                if size - self._offset > self.limit:
                    self._offset = size - self.limit
                f.seek(self._offset)
                chunk = f.read(size - self._offset)
        except FileNotFoundError:
            return b""
        self._offset += len(chunk)
        return chunk


def read_tail(path: Path, limit: int = LOG_TAIL_BYTES) -> bytes:
    """The last ``limit`` bytes of a file (empty if there is none)."""
    try:
        with open(path, "rb") as f:
            size = f.seek(0, os.SEEK_END)
            f.seek(max(size - limit, 0))
            return f.read()
    except FileNotFoundError:
        return b""


# Ids from the coordinator become directory names (``<run-id>.<attempt>``) and environment
# values: letters, digits, '-' and '_' only (no '/', no '.', so no path can climb out of the
# workdir and the attempt suffix stays unambiguous), bounded in length.
_SAFE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*")
MAX_ID_LENGTH = 200
# Attempts count from 1; far more than any retry limit, far less than a path can be hurt by.
MAX_ATTEMPT = 10**6


def check_wire_ids(run_id: str, sweep_id: str, attempt: int, where: str = "assign") -> str:
    """Why a run's ids from the coordinator cannot be used as given ("" if they can);
    ``where`` names the message they came in."""
    for name, value in (("run_id", run_id), ("sweep_id", sweep_id)):
        if not value:
            return f"{where}.{name}: empty"
        if len(value) > MAX_ID_LENGTH or not _SAFE_ID.fullmatch(value):
            return (f"{where}.{name}: {_quote(value)!r} is not a valid id (letters, digits,"
                    f" '-' and '_', at most {MAX_ID_LENGTH}); refused, as it would be used"
                    " as a path")
    if not 1 <= attempt <= MAX_ATTEMPT:
        return f"{where}.attempt: {attempt} is outside 1 .. {MAX_ATTEMPT}"
    return ""


@dataclass
class RunSpec:
    run_id: str
    sweep_id: str
    attempt: int
    params: dict[str, Any]
    argv: list[str]
    # Indexes of the argv items that carry parameter values: no macro is resolved in them.
    literal_argv: tuple[int, ...] = ()


@dataclass
class RunningRun:
    spec: RunSpec
    run_dir: Path
    process: asyncio.subprocess.Process | None = None
    # Set once anyone sent the run SIGTERM (a stop order, the worker's own shutdown): it then
    # ends STOPPED with this reason however it exits, and is no FINISHED result of its point.
    stop_reason: str = ""
    # Set when the worker SIGKILLed it outright (a third Ctrl+C): it ends FAILED, "killed".
    kill_reason: str = ""
    argv: list[str] = field(default_factory=list)
    started_at: float = 0.0
    killer: asyncio.Task[None] | None = None

    @property
    def pid(self) -> int:
        return self.process.pid if self.process is not None else 0


class Runner:
    """Starts, follows, stops and reaps the runs of one worker."""

    def __init__(
        self,
        workdir: Path,
        *,
        resolve_argv: Callable[[list[str], RunSpec, Path], list[str]],
        stop_grace_s: float = DEFAULT_STOP_GRACE_S,
    ) -> None:
        self.workdir = workdir
        self.resolve_argv = resolve_argv
        self.stop_grace_s = stop_grace_s

    def run_dir(self, spec: RunSpec) -> Path:
        return self.workdir / ".sweepd" / "runs" / f"{spec.run_id}.{spec.attempt}"

    async def start(self, spec: RunSpec, extra_env: dict[str, str] | None = None
                    ) -> RunningRun:
        """Prepares the run's directory and starts its program (``process`` stays None if
        the program could not start; ``stop_reason`` then says why)."""
        run_dir = self.run_dir(spec)
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "config.json").write_text(json.dumps(spec.params, indent=2))
        (run_dir / "metrics.jsonl").touch()
        stop_file = run_dir / "stop"
        with contextlib.suppress(FileNotFoundError):
            stop_file.unlink()
        running = RunningRun(spec=spec, run_dir=run_dir)
        env = dict(os.environ)
        env.update({
            ENV_RUN_ID: spec.run_id,
            ENV_SWEEP_ID: spec.sweep_id,
            ENV_ATTEMPT: str(spec.attempt),
            ENV_RUN_DIR: str(run_dir),
            ENV_CONFIG_FILE: str(run_dir / "config.json"),
            ENV_METRICS_FILE: str(run_dir / "metrics.jsonl"),
            ENV_STOP_FILE: str(stop_file),
        })
        env.update(extra_env or {})
        running.argv = self.resolve_argv(spec.argv, spec, run_dir)
        running.started_at = time.time()
        output = open(run_dir / "output.log", "ab")  # noqa: SIM115 - handed to the child
        try:
            running.process = await asyncio.create_subprocess_exec(
                *die_with_parent(running.argv, self.workdir, env.get("PATH")),
                cwd=str(self.workdir), env=env, stdin=asyncio.subprocess.DEVNULL,
                stdout=output, stderr=asyncio.subprocess.STDOUT, start_new_session=True,
            )
        except (OSError, ValueError) as exc:
            running.stop_reason = f"cannot start {running.argv[:1]}: {exc}"
            # Into the output too, so that `sweep logs` says why there is nothing else.
            output.write(f"sweepd: {running.stop_reason}\n".encode())
        finally:
            output.close()
        return running

    def request_stop(self, running: RunningRun, reason: str) -> None:
        """Asks the run to stop: the stop file, SIGTERM to its process group, and SIGKILL if
        it is still there after the grace period."""
        if (running.process is None or running.process.returncode is not None
                or running.killer is not None):
            return
        running.stop_reason = reason or running.stop_reason or "stop requested"
        with contextlib.suppress(OSError):  # the signal below matters; the file is a courtesy
            (running.run_dir / "stop").write_text(running.stop_reason + "\n")
        self.signal(running, signal.SIGTERM)
        running.killer = asyncio.get_running_loop().create_task(self._kill_later(running))

    async def _kill_later(self, running: RunningRun) -> None:
        await asyncio.sleep(self.stop_grace_s)
        if running.process is not None and running.process.returncode is None:
            log.warning("run %s ignored SIGTERM for %.0f s: sending SIGKILL",
                        running.spec.run_id, self.stop_grace_s)
            self.signal(running, signal.SIGKILL)

    def terminate(self, running: RunningRun, reason: str) -> None:
        """SIGTERM to the run's process group for a reason of the worker's own (it is shutting
        down); unlike ``request_stop`` no SIGKILL follows: the operator decides that."""
        if running.process is None or running.process.returncode is not None:
            return
        if not running.stop_reason:
            running.stop_reason = reason
            with contextlib.suppress(OSError):
                (running.run_dir / "stop").write_text(reason + "\n")
        self.signal(running, signal.SIGTERM)

    def kill(self, running: RunningRun, reason: str) -> None:
        if running.process is None or running.process.returncode is not None:
            return
        running.kill_reason = running.kill_reason or reason
        self.signal(running, signal.SIGKILL)

    @staticmethod
    def signal(running: RunningRun, sig: signal.Signals) -> None:
        if running.process is None or running.process.returncode is not None:
            return
        # The whole group: a shell wrapper or a data-loader child must not survive its run.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(running.process.pid, sig)

    async def wait(self, running: RunningRun) -> Outcome:
        if running.process is None:
            return Outcome("FAILED", None, running.stop_reason, time.time())
        code = await running.process.wait()
        ended = time.time()
        if running.killer is not None:
            running.killer.cancel()
        # Children left in the group after the leader exited are the run's too.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(running.process.pid, signal.SIGKILL)
        if running.kill_reason and code == -signal.SIGKILL:
            return Outcome("FAILED", code, f"killed by SIGKILL ({running.kill_reason})", ended)
        if running.stop_reason:
            return Outcome("STOPPED", code, running.stop_reason, ended)
        if code == 0:
            return Outcome("FINISHED", 0, "", ended)
        if code < 0:
            name = signal.Signals(-code).name if -code in signal.valid_signals() else str(-code)
            return Outcome("FAILED", code, f"killed by {name}", ended)
        return Outcome("FAILED", code, f"exited with code {code}", ended)


# Linux: the run's program is started under this supervisor, so that the whole run dies with
# the worker however the worker dies (kill -9, OOM killer): no orphaned training process, nor
# a DataLoader child of it, keeps a GPU for nobody. PR_SET_PDEATHSIG alone reaches only the
# process that asked for it, and a subreaper would only adopt the orphans, not kill them. So:
# the supervisor leads the run's process group (the run's own session), asks the kernel for
# SIGUSR2 when the worker dies, forks the program into the same group, waits for it and exits
# as it did (same code, or the same signal), which keeps the worker's view of the exit exact.
# On SIGUSR2 it SIGKILLs its whole group, itself included. SIGTERM/SIGINT sent to the group by
# the worker reach the program; the supervisor ignores them (a handler, not SIG_IGN, so the
# program's exec starts from the default disposition) and keeps waiting to report the exit.
# The program itself gets PR_SET_PDEATHSIG SIGKILL too, in case the supervisor is killed.
# A script rather than a preexec_fn because a fork that runs Python code in the worker aborts
# in gRPC's fork handlers; it costs one small interpreter (-S -I: some 20 ms, ~8 MB) per run.
_SUPERVISOR = """\
import ctypes, os, signal, sys
PR_SET_PDEATHSIG = 1
libc = ctypes.CDLL(None)
def worker_died(signum, frame):
    os.killpg(0, signal.SIGKILL)
signal.signal(signal.SIGUSR2, worker_died)
libc.prctl(PR_SET_PDEATHSIG, int(signal.SIGUSR2), 0, 0, 0)
if os.getppid() != int(sys.argv[1]):
    worker_died(0, None)
for sig in (signal.SIGTERM, signal.SIGINT):
    signal.signal(sig, lambda signum, frame: None)
me = os.getpid()
pid = os.fork()
if pid == 0:
    try:
        signal.signal(signal.SIGUSR2, signal.SIG_DFL)
        libc.prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
        if os.getppid() != me:
            os._exit(137)
        os.execvp(sys.argv[2], sys.argv[2:])
    except BaseException as exc:
        os.write(2, f"sweepd: cannot start {sys.argv[2]!r}: {exc}\\n".encode())
    os._exit(127)
_, status = os.waitpid(pid, 0)
code = os.waitstatus_to_exitcode(status)
if code < 0:
    signal.signal(-code, signal.SIG_DFL)
    os.kill(me, -code)
os._exit(code & 0xFF)
"""


def die_with_parent(argv: list[str], cwd: Path, path: str | None) -> list[str]:
    """``argv`` wrapped so that the run and every process of its group die with this process
    (Linux; else unchanged). A program that cannot be started is left unwrapped, for the spawn
    itself to fail with why."""
    if sys.platform != "linux" or not argv:
        return argv
    program = argv[0]
    if "/" in program:
        if not os.access(cwd / program, os.X_OK):
            return argv
    elif shutil.which(program, path=path) is None:
        return argv
    return [sys.executable, "-S", "-I", "-c", _SUPERVISOR, str(os.getpid()), *argv]
