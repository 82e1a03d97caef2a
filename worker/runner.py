"""Runs one assigned run as a subprocess and follows the metrics it logs.

Each run gets its own directory (``<workdir>/.sweepd/runs/<run-id>.<attempt>/``) holding:

- ``config.json``   the run's parameters, nested, as ``run.config`` reads them;
- ``metrics.jsonl`` where the program appends one JSON object per line (``run.log`` does,
  and so can any language): ``{"loss": 0.3, "epoch": 2}``; an optional ``_step`` key gives
  the step; non-numeric values are ignored;
- ``output.log``    the program's stdout and stderr;
- ``stop``          created when the coordinator asks the run to stop, so that the program
  can notice (``run.should_stop()``) before the SIGTERM arrives.

The program runs in its own process group so that a stop reaches every process it started.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import os
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


def parse_metric_line(line: str) -> tuple[dict[str, float], int | None, float | None] | None:
    """(values, step, time) of one metrics line, or None if it is not a JSON object."""
    try:
        obj = json.loads(line)
    except ValueError:
        return None
    if not isinstance(obj, dict):
        return None
    step = obj.pop("_step", None)
    stamp = obj.pop("_timestamp", None)
    values: dict[str, float] = {}
    for key, value in obj.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            continue  # strings, lists, media: not metrics the coordinator can compare
        if isinstance(value, int) and abs(value) > 2**53:
            value = float(value)
        values[str(key)] = float(value)
    step_int = step if isinstance(step, int) and not isinstance(step, bool) else None
    time_f = float(stamp) if isinstance(stamp, (int, float)) and math.isfinite(stamp) else None
    return values, step_int, time_f


class MetricsFollower:
    """Reads complete lines appended to a metrics file since the last read."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._offset = 0
        self._partial = b""
        self.next_index = 0
        self.bad_lines = 0

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
            text = raw.decode("utf-8", errors="replace").strip()
            if not text:
                continue
            parsed = parse_metric_line(text)
            if parsed is None:
                self.bad_lines += 1
                continue
            values, step, stamp = parsed
            index = self.next_index
            self.next_index += 1
            records.append(Record(index=index, step=index if step is None else step,
                                  time=stamp or now, values=values))
        return records


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


@dataclass
class RunSpec:
    run_id: str
    sweep_id: str
    attempt: int
    params: dict[str, Any]
    argv: list[str]


@dataclass
class RunningRun:
    spec: RunSpec
    run_dir: Path
    process: asyncio.subprocess.Process | None = None
    stop_reason: str = ""
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
        if running.stop_reason or running.process is None:
            return
        running.stop_reason = reason or "stop requested"
        (running.run_dir / "stop").write_text(running.stop_reason + "\n")
        self.signal(running, signal.SIGTERM)
        running.killer = asyncio.get_running_loop().create_task(self._kill_later(running))

    async def _kill_later(self, running: RunningRun) -> None:
        await asyncio.sleep(self.stop_grace_s)
        if running.process is not None and running.process.returncode is None:
            log.warning("run %s ignored SIGTERM for %.0f s: sending SIGKILL",
                        running.spec.run_id, self.stop_grace_s)
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
        if running.stop_reason:
            return Outcome("STOPPED", code, running.stop_reason, ended)
        if code == 0:
            return Outcome("FINISHED", 0, "", ended)
        if code < 0:
            name = signal.Signals(-code).name if -code in signal.valid_signals() else str(-code)
            return Outcome("FAILED", code, f"killed by {name}", ended)
        return Outcome("FAILED", code, f"exited with code {code}", ended)


# Linux: the run's program is started through this shim, which asks the kernel for SIGKILL
# when the worker dies (however it dies: no orphaned training process keeps a GPU), then
# execs the program under the same pid. A shim rather than a preexec_fn because a fork that
# runs Python code in the child aborts in gRPC's fork handlers; the exec'd interpreter costs
# some 20 ms per run. The run is in its own session, so only its leader gets the signal;
# ``request_stop`` and the group kill cover the rest while the worker is alive to send them.
_PDEATHSIG_SHIM = (
    "import ctypes,os,signal,sys\n"
    "ctypes.CDLL(None).prctl(1, int(signal.SIGKILL), 0, 0, 0)\n"  # 1: PR_SET_PDEATHSIG
    "os.getppid() == int(sys.argv[1]) or os.kill(os.getpid(), signal.SIGKILL)\n"
    "os.execvp(sys.argv[2], sys.argv[2:])\n"
)


def die_with_parent(argv: list[str], cwd: Path, path: str | None) -> list[str]:
    """``argv`` wrapped so that the run dies with this process (Linux; else unchanged). A
    program that cannot be started is left unwrapped, for the spawn itself to fail with why."""
    if sys.platform != "linux" or not argv:
        return argv
    program = argv[0]
    if "/" in program:
        if not os.access(cwd / program, os.X_OK):
            return argv
    elif shutil.which(program, path=path) is None:
        return argv
    return [sys.executable, "-S", "-I", "-c", _PDEATHSIG_SHIM, str(os.getpid()), *argv]
