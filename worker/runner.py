"""Runs one assigned run as a subprocess and follows the metrics it logs.

Each run gets its own directory, laid out as ``sweepd.common.rundir`` says (the agent's runs
share it): ``config.json``, ``metrics.jsonl`` (a line that cannot be used, see
``read_metric_line``, is skipped, counted and reported in ``output.log`` and the run's end
reason), ``output.log`` (the program's stdout and stderr) and ``stop``. How its end becomes
FINISHED, FAILED or STOPPED is ``sweepd.common.outcome``'s rule, the agent's too.

The program runs in its own process group so that a stop reaches every process it started,
under a small supervisor that takes every process of the run down if the worker dies, also
those that left the group (``die_with_parent``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sweepd.common.outcome import outcome
from sweepd.common.rundir import RunFiles

log = logging.getLogger("sweepd.worker")

# How often the metrics file is read: half of it is, on average, the wait between a logged
# metric and the stop it triggers (bench/early_stop.py: 50 ms gave a p50 of 44 ms); a read of
# an unchanged file costs some 20 us, so 50 reads a second per run stay unmeasurable.
METRICS_POLL_S = 0.02
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

@dataclass
class Outcome:
    state: str  # "FINISHED" | "FAILED" | "STOPPED"
    exit_code: int | None
    reason: str
    time: float


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
    # Indexes of the argv items that carry parameter values: no macro is resolved in them.
    literal_argv: tuple[int, ...] = ()
    metric_name: str = ""


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

    @property
    def files(self) -> RunFiles:
        return RunFiles(self.run_dir)


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
        return RunFiles.at(self.workdir, spec.run_id, spec.attempt).dir

    async def start(self, spec: RunSpec, extra_env: dict[str, str] | None = None
                    ) -> RunningRun:
        """Prepares the run's directory and starts its program (``process`` stays None if
        the program could not start; ``stop_reason`` then says why)."""
        files = RunFiles.at(self.workdir, spec.run_id, spec.attempt)
        files.prepare(spec.params)
        running = RunningRun(spec=spec, run_dir=files.dir)
        env = dict(os.environ)
        env.update(files.env(spec.run_id, spec.sweep_id, spec.attempt))
        env.update(extra_env or {})
        running.argv = self.resolve_argv(spec.argv, spec, files.dir)
        running.started_at = time.time()
        output = open(files.output, "ab")  # noqa: SIM115 - handed to the child
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
            running.files.write_stop(running.stop_reason)
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
                running.files.write_stop(reason)
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
        # A SIGKILL takes the supervisor down before it could kill the descendants that left
        # the group (setsid): found here first, while the supervisor still holds them.
        escaped = (descendants(running.process.pid) if sig == signal.SIGKILL else [])
        # The whole group: a shell wrapper or a data-loader child must not survive its run.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(running.process.pid, sig)
        for pid in escaped:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, sig)

    async def wait(self, running: RunningRun) -> Outcome:
        if running.process is None:
            state, reason = outcome(None, start_error=running.stop_reason or "did not start")
            return Outcome(state, None, reason, time.time())
        code = await running.process.wait()
        ended = time.time()
        if running.killer is not None:
            running.killer.cancel()
        # Children left in the group after the leader exited are the run's too.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(running.process.pid, signal.SIGKILL)
        state, reason = outcome(code, stop_reason=running.stop_reason,
                                kill_reason=running.kill_reason)
        return Outcome(state, code, reason, ended)


# Linux: the run's program is started under this supervisor, so that the whole run dies with
# the worker however the worker dies (kill -9, OOM killer): no orphaned training process, nor
# a DataLoader child of it, keeps a GPU for nobody. PR_SET_PDEATHSIG alone reaches only the
# process that asked for it, and a process group only the processes that stay in it (a
# `setsid` or `setpgid(0, 0)` child leaves it). So: the supervisor leads the run's process
# group (the run's own session) and is a child subreaper (PR_SET_CHILD_SUBREAPER), so that
# every descendant orphaned on the way is re-parented to it rather than to init and stays
# findable by walking /proc from it. It asks the kernel for SIGUSR2 when the worker dies, forks
# the program into its group, waits for it (reaping adopted orphans meanwhile) and exits as it
# did (same code, or the same signal), which keeps the worker's view of the exit exact. When
# the program has ended, and on SIGUSR2, it SIGKILLs every descendant it finds (a process that
# forks while being killed leaves its child to the subreaper: the walk repeats until none is
# left), then, on SIGUSR2, its whole group, itself included. SIGTERM/SIGINT sent to the group
# by the worker reach the program; the supervisor passes them on to descendants outside the
# group and otherwise ignores them (a handler, not SIG_IGN, so the program's exec starts from
# the default disposition) and keeps waiting to report the exit. The program itself gets
# PR_SET_PDEATHSIG SIGKILL too, in case the supervisor is killed.
# A script rather than a preexec_fn because a fork that runs Python code in the worker aborts
# in gRPC's fork handlers; it costs one small interpreter (-S -I: some 20 ms, ~8 MB) per run.
_SUPERVISOR = """\
import ctypes, os, signal, sys, time
PR_SET_PDEATHSIG = 1
PR_SET_CHILD_SUBREAPER = 36
libc = ctypes.CDLL(None)
me = os.getpid()
def descendants():
    children = {}
    for name in os.listdir('/proc'):
        if not name.isdigit():
            continue
        try:
            with open('/proc/' + name + '/stat', 'rb') as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat[stat.rindex(b')') + 2:].split()
        if fields[0] != b'Z':
            children.setdefault(int(fields[1]), []).append((int(name), int(fields[2])))
    found, todo = [], [me]
    while todo:
        for pid, pgid in children.get(todo.pop(), ()):
            found.append((pid, pgid))
            todo.append(pid)
    return found
def reap():
    try:
        while os.waitpid(-1, os.WNOHANG)[0] > 0:
            pass
    except ChildProcessError:
        pass
def kill_descendants():
    give_up = time.monotonic() + 5
    while time.monotonic() < give_up:
        found = descendants()
        if not found:
            return
        for pid, _ in found:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        time.sleep(0.01)
        reap()
def worker_died(signum, frame):
    kill_descendants()
    os.killpg(0, signal.SIGKILL)
def pass_on(signum, frame):
    for pid, pgid in descendants():
        if pgid != me:
            try:
                os.kill(pid, signum)
            except OSError:
                pass
signal.signal(signal.SIGUSR2, worker_died)
libc.prctl(PR_SET_PDEATHSIG, int(signal.SIGUSR2), 0, 0, 0)
libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
if os.getppid() != int(sys.argv[1]):
    worker_died(0, None)
for sig in (signal.SIGTERM, signal.SIGINT):
    signal.signal(sig, pass_on)
pid = os.fork()
if pid == 0:
    try:
        for sig in (signal.SIGUSR2, signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, signal.SIG_DFL)
        libc.prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
        if os.getppid() != me:
            os._exit(137)
        os.execvp(sys.argv[2], sys.argv[2:])
    except BaseException as exc:
        os.write(2, f"sweepd: cannot start {sys.argv[2]!r}: {exc}\\n".encode())
    os._exit(127)
while True:
    done, status = os.waitpid(-1, 0)
    if done == pid:
        break
code = os.waitstatus_to_exitcode(status)
kill_descendants()
if code < 0:
    # SIGKILL and SIGSTOP keep their default action and cannot be given another.
    if -code not in (signal.SIGKILL, signal.SIGSTOP):
        signal.signal(-code, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, [-code])
    os.kill(me, -code)
    # A signal whose default is to be ignored or to stop (SIGCHLD, SIGTSTP) leaves us here.
    os._exit(128 - code)
os._exit(code & 0xFF)
"""


def descendants(root: int) -> list[int]:
    """The live (not zombie) descendants of ``root``, read from /proc (Linux; else none)."""
    children: dict[int, list[int]] = {}
    try:
        names = os.listdir("/proc")
    except OSError:
        return []
    for name in names:
        if not name.isdigit():
            continue
        try:
            stat = Path("/proc", name, "stat").read_bytes()
        except OSError:  # ended meanwhile
            continue
        # The command name may hold spaces and parentheses: the fields follow the last ')'.
        fields = stat[stat.rindex(b")") + 2:].split()
        if fields[0] != b"Z":
            children.setdefault(int(fields[1]), []).append(int(name))
    found: list[int] = []
    todo = [root]
    while todo:
        for pid in children.get(todo.pop(), ()):
            found.append(pid)
            todo.append(pid)
    return found


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
