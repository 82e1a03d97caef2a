"""The notebook agent: run a sweep's trials by calling a Python function.

    from sweepd.client import agent, run

    def train():
        for epoch in range(10):
            run.log({"loss": 1 / (epoch + run.config.lr)})

    agent(sweep_id, function=train, count=5)

Design: the agent is an ask/report/finish client of the coordinator (SuggestRun,
ReportMetrics, FinishRun), not an in-process worker daemon. The parent process holds the only
gRPC channel and does all talking; each trial runs in a fresh child process that sees its
parameters and logs metrics exactly as a program started by ``worker join`` does (the
``SWEEPD_*`` files of a run directory), and the parent follows the child's metrics file. This
keeps gRPC out of the child entirely (a gRPC channel does not survive ``fork``), needs no
event loop in a notebook kernel that already runs one, and reuses the worker's run-directory
contract, so ``run.config``/``run.log``/``run.should_stop()`` behave the same everywhere.

Child processes are started with ``fork`` where the platform has it (Linux, macOS): functions
defined in ``__main__`` or in a notebook cell cannot be pickled for ``spawn``, so fork is the
only way they can run in a child. Where fork is missing (Windows) ``spawn`` is used and the
function must be importable from a module. ``isolate=False`` calls the function in the agent's
own process instead (no fresh process per trial; a crash takes the agent with it).

Ctrl+C: the first lets the current trial finish and then returns; the second stops the trial
(SIGTERM to its process group, then SIGKILL after the grace period); the third kills it.
"""

from __future__ import annotations

import contextlib
import json
import logging
import multiprocessing
import os
import signal
import socket
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any

import grpc
from sweepd.common.outcome import FAILED, outcome, with_bad_lines
from sweepd.common.rundir import RunFiles
from sweepd.common.runfile import ENV_RUN_DIR

from .agent_report import NotebookProgress, Tally
from .api import Client, SweepdClientError
from .run import Run, run

log = logging.getLogger("sweepd.agent")

# How often the parent reads the trial's new metrics: often enough that early stopping acts
# within a fraction of a second, as the worker daemon does.
METRICS_POLL_S = 0.1
# When the sweep has nothing to hand out now (paused, at max-concurrent, a model fitting)
# but is not over, ask again after this long.
IDLE_POLL_S = 1.0
# Between SIGTERM and SIGKILL for a trial told to stop; shorter than the worker's default
# because a notebook user is waiting at the keyboard.
DEFAULT_STOP_GRACE_S = 10.0
# A trial that logs nothing for a while still renews its run's lease: an empty report every
# this fraction of the lease (three chances before the run would be LOST).
LEASE_RENEW_FRACTION = 1 / 3
EXIT_CODE_EXCEPTION = 1
# W&B's agent gives up when its first trials all fail (a typo in the function fails every
# trial, and running the whole sweep to find out wastes it): the same default, and its
# variable, so that a W&B user's setting carries over; ours is read first.
DEFAULT_MAX_INITIAL_FAILURES = 5
MAX_INITIAL_FAILURES_ENVS = ("SWEEPD_AGENT_MAX_INITIAL_FAILURES",
                             "WANDB_AGENT_MAX_INITIAL_FAILURES")
# Where an isolated trial leaves the traceback of the exception that ended it, for the agent
# to print (a forked child's stderr does not always reach a notebook's cell output).
TRACEBACK_FILENAME = "traceback.txt"


class AgentFailedError(RuntimeError):
    """The agent gave up: its first trials all failed."""


class _TrialDropped(Exception):
    """The coordinator no longer counts the trial as this agent's (its lease expired while the
    agent was silent, and the run may already be another's attempt): its results have nowhere
    to go, so the agent drops it and asks for another run."""


def _for_this_trial(call: Callable[[], Any]) -> Any:
    """Runs a report or finish of the current trial. FAILED_PRECONDITION is the coordinator
    saying the run is no longer ours (lease expired, a newer attempt, or it already ended):
    that ends this trial only, not the agent."""
    try:
        return call()
    except SweepdClientError as exc:
        if exc.code == grpc.StatusCode.FAILED_PRECONDITION:
            raise _TrialDropped(exc.message) from None
        raise


def _prepare(workdir: Path, r: dict[str, Any]) -> RunFiles:
    """The trial's run directory, laid out as a worker lays out a run's."""
    files = RunFiles.at(workdir, r["id"], r["attempt"])
    files.prepare(r["params"])
    return files


def _env(files: RunFiles, r: dict[str, Any]) -> dict[str, str]:
    return files.env(r["id"], r["sweep_id"], r["attempt"])


def _child(function: Callable[[], Any], env: dict[str, str]) -> None:
    """The trial's process: its own session (so a terminal Ctrl+C reaches only the agent, which
    decides), the run's environment, a fresh ``sweepd.client.run``, then the function."""
    with contextlib.suppress(OSError):
        os.setsid()
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    os.environ.update(env)
    run._reset()
    try:
        function()
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    except BaseException as exc:
        text = traceback.format_exc()
        try:
            (Path(env[ENV_RUN_DIR]) / TRACEBACK_FILENAME).write_text(
                f"{type(exc).__name__}: {exc}\n{text}")
        except OSError:  # the agent then says only "exited with code 1": print it here
            sys.stderr.write(text)
        sys.stderr.flush()
        os._exit(EXIT_CODE_EXCEPTION)
    sys.stdout.flush()
    sys.stderr.flush()


class _Interrupts:
    """Counts Ctrl+C while installed (main thread only; elsewhere Ctrl+C is left alone)."""

    def __init__(self) -> None:
        self.count = 0
        self.on_interrupt: Callable[[int], None] = lambda n: None
        self._previous: Any = None

    def __enter__(self) -> _Interrupts:
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        self.count += 1
        if self.count == 1:
            print("agent: finishing the current trial, then stopping; Ctrl+C again stops it",
                  file=sys.stderr, flush=True)
        self.on_interrupt(self.count)


class _Reporter:
    """Sends the trial's new metric lines to the coordinator; remembers a stop verdict."""

    def __init__(self, client: Client, r: dict[str, Any], paths: RunFiles) -> None:
        from sweepd.common.runfile import MetricsFollower  # the worker's exact line parser

        self.client = client
        self.run = r
        self.follower = MetricsFollower(paths.metrics)
        self.stop_reason = ""
        # Set (in-process trials) when the coordinator said the run is no longer ours.
        self.dropped = ""
        self.renew_s = float(r.get("lease_seconds") or 30.0) * LEASE_RENEW_FRACTION
        self.reported_at = time.monotonic()

    def poll(self, final: bool = False) -> None:
        records = self.follower.read_new(final=final)
        for bad in self.follower.take_bad():
            log.warning("trial %s: %s line %d ignored: %s", self.run["id"],
                        self.follower.path.name, bad.number, bad.why)
        if not records and (final or time.monotonic() - self.reported_at < self.renew_s):
            return
        first = records[0].index if records else 0
        self.reported_at = time.monotonic()
        should_stop, reason = _for_this_trial(lambda: self.client.report_metrics(
            self.run["id"], self.run["attempt"],
            [{**rec.values, "_step": rec.step} for rec in records], first_index=first,
            client_id=self.run["client_id"]))
        if should_stop and not self.stop_reason:
            self.stop_reason = reason or "stopped by the coordinator"



def _kill_group(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


def _start_method() -> str:
    # fork: the only start method that can run a function defined in a notebook cell.
    return "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"


def _run_isolated(function: Callable[[], Any], r: dict[str, Any], paths: RunFiles,
                  client: Client, interrupts: _Interrupts, stop_grace_s: float
                  ) -> dict[str, Any]:
    ctx: Any = multiprocessing.get_context(_start_method())
    child = ctx.Process(target=_child, args=(function, _env(paths, r)), daemon=False,
                        name=f"sweepd-{r['id']}")
    reporter = _Reporter(client, r, paths)
    kill_at: float | None = None
    user_stop = ""

    def on_interrupt(n: int) -> None:
        nonlocal kill_at, user_stop
        if n == 2 and child.pid:
            print("agent: stopping the trial (SIGTERM); Ctrl+C again kills it", file=sys.stderr,
                  flush=True)
            user_stop = "interrupted (Ctrl+C)"
            paths.write_stop(user_stop)
            _kill_group(child.pid, signal.SIGTERM)
            kill_at = time.monotonic() + stop_grace_s
        elif n >= 3 and child.pid:
            print("agent: killing the trial", file=sys.stderr, flush=True)
            _kill_group(child.pid, signal.SIGKILL)

    interrupts.on_interrupt = on_interrupt
    child.start()
    (paths.dir / "pid").write_text(str(child.pid))
    try:
        while child.is_alive():
            child.join(METRICS_POLL_S)
            reporter.poll()
            if reporter.stop_reason and kill_at is None and child.pid:
                paths.write_stop(reporter.stop_reason)
                _kill_group(child.pid, signal.SIGTERM)
                kill_at = time.monotonic() + stop_grace_s
            if kill_at is not None and time.monotonic() > kill_at and child.pid:
                _kill_group(child.pid, signal.SIGKILL)
    finally:
        interrupts.on_interrupt = lambda n: None
        if child.is_alive() and child.pid:  # the agent is failing or dropped the trial
            _kill_group(child.pid, signal.SIGKILL)
            child.join()
        if child.pid:  # whatever the trial started and left behind goes with it
            _kill_group(child.pid, signal.SIGKILL)
    reporter.poll(final=True)
    state, reason = outcome(child.exitcode, stop_reason=reporter.stop_reason or user_stop)
    raised = _raised(paths)
    if state == FAILED and raised:
        reason = f"raised {raised.splitlines()[0]}"
    reason = with_bad_lines(reason, reporter.follower)
    finished: dict[str, Any] = _for_this_trial(lambda: client.finish_run(
        r["id"], r["attempt"], state, child.exitcode, reason, client_id=r["client_id"]))
    if raised:
        finished["traceback"] = raised.partition("\n")[2]
    return finished


def _raised(paths: RunFiles) -> str:
    """'<Exception>: <message>' and the traceback an isolated trial left, or ''."""
    try:
        return (paths.dir / TRACEBACK_FILENAME).read_text(errors="replace")
    except OSError:
        return ""


def _run_in_process(function: Callable[[], Any], r: dict[str, Any], paths: RunFiles,
                    client: Client, interrupts: _Interrupts) -> dict[str, Any]:
    reporter = _Reporter(client, r, paths)
    done = threading.Event()
    lock = threading.Lock()  # the client is shared with the reporting thread

    def report_loop() -> None:
        while not done.wait(METRICS_POLL_S):
            with lock:
                try:
                    reporter.poll()
                except _TrialDropped as exc:
                    # The function cannot be killed in this process: ask it to stop
                    # (run.should_stop()) and report nothing more.
                    reporter.dropped = str(exc)
                    paths.write_stop(f"dropped: {exc}")
                    return
                except Exception:
                    pass  # e.g. the coordinator restarting: the next poll resends
                if reporter.stop_reason:
                    paths.write_stop(reporter.stop_reason)

    def on_interrupt(n: int) -> None:
        if n >= 2:
            raise KeyboardInterrupt

    interrupts.on_interrupt = on_interrupt
    thread = threading.Thread(target=report_loop, name=f"sweepd-report-{r['id']}", daemon=True)
    previous = run._run
    env = _env(paths, r)
    saved_env = {k: os.environ.get(k) for k in env}
    os.environ.update(env)  # as a worker-started program sees them, for code that reads them
    run._run = Run(environ=env)
    code: int | None = 0
    reason_extra = ""
    trace = ""
    interrupted = False
    thread.start()
    try:
        function()
    except KeyboardInterrupt:
        code, interrupted = None, True
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except Exception as exc:  # the trial failed; the agent goes on (and prints the trace)
        trace = traceback.format_exc()
        code, reason_extra = EXIT_CODE_EXCEPTION, f"{type(exc).__name__}: {exc}"
    finally:
        interrupts.on_interrupt = lambda n: None
        done.set()
        thread.join()
        run._run = previous
        for key, value in saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    if interrupted and reporter.dropped:
        raise KeyboardInterrupt
    if reporter.dropped:
        raise _TrialDropped(reporter.dropped)
    with lock:
        reporter.poll(final=True)
    state, reason = outcome(code, stop_reason=reporter.stop_reason
                            or ("interrupted (Ctrl+C)" if interrupted else ""))
    if state == FAILED and reason_extra:
        reason = f"raised {reason_extra}"
    reason = with_bad_lines(reason, reporter.follower)
    finished: dict[str, Any] = _for_this_trial(lambda: client.finish_run(
        r["id"], r["attempt"], state, code, reason, client_id=r["client_id"]))
    if interrupted:
        raise KeyboardInterrupt
    if trace:
        finished["traceback"] = trace
    return finished


def agent(
    sweep_id: str,
    function: Callable[[], Any],
    count: int | None = None,
    coordinator: str | None = None,
    *,
    isolate: bool = True,
    workdir: str | Path | None = None,
    stop_grace_s: float = DEFAULT_STOP_GRACE_S,
    max_initial_failures: int | None = None,
    quiet: bool = False,
) -> int:
    """Runs trials of ``sweep_id`` by calling ``function()`` until the sweep ends, ``count``
    trials ran, or Ctrl+C. Inside the function ``run.config`` holds the trial's parameters and
    ``run.log`` reports metrics. Returns how many trials ran.

    ``isolate`` (default) runs each trial in a fresh child process (fork where available:
    see the module docs); ``isolate=False`` calls the function in this process. Run files go
    to ``<workdir>/.sweepd/runs/`` (default: the current directory).

    A trial whose run the coordinator no longer counts as this agent's (its lease expired:
    no report for the coordinator's ``--lease-seconds``) is dropped with a warning, its
    process killed, and is not counted; the agent asks for another run.

    Prints a line per trial (run id, parameters, outcome and the sweep's metric), the
    traceback of a trial that raised, and a summary at the end (``quiet=True``: none of it).
    When the first ``max_initial_failures`` trials all fail (default
    ``$SWEEPD_AGENT_MAX_INITIAL_FAILURES``, else ``$WANDB_AGENT_MAX_INITIAL_FAILURES``, else
    5; 0: never give up) the agent stops and raises ``AgentFailedError``.

    With no ``coordinator`` (nor ``$SWEEPD_COORDINATOR``) and none answering on this machine's
    default address, a local one is started in the background (``coordinator stop`` ends it).
    """
    limit = _max_initial_failures(max_initial_failures)
    from sweepd.common.local import ensure_local

    ensure_local(coordinator)
    base = Path(workdir) if workdir is not None else Path.cwd()
    client_id = f"agent-{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
    ran = 0
    tally = Tally(quiet)
    with Client(coordinator) as client, _Interrupts() as interrupts:
        info = client.get_sweep(sweep_id)
        metric = info["metric"] or {}
        tally.metric, tally.maximize = metric.get("name", ""), metric.get("goal") == "maximize"
        if not quiet:
            tally.bar = NotebookProgress.start(sweep_id, count or info.get("run_cap") or None)
        while count is None or ran < count:
            if interrupts.count:
                break
            r, sweep_done = client.suggest_run(sweep_id, client_id)
            if r is None:
                if sweep_done:
                    break
                time.sleep(IDLE_POLL_S)
                continue
            r["client_id"] = client_id  # reports and the finish must name who took the run
            from sweepd.common.names import check_wire_ids  # the worker's rule for paths

            refused = check_wire_ids(r["id"], r["sweep_id"], r["attempt"], "suggest_run.run")
            if refused:  # its id would be a path outside the workdir: never run it
                log.error("refusing trial %r: %s", r["id"], refused)
                client.finish_run(r["id"], r["attempt"], "FAILED", None, refused,
                                  client_id=client_id)
                continue
            paths = _prepare(base, r)
            log.info("trial %s: %s", r["id"], json.dumps(r["params"]))
            started = time.monotonic()
            try:
                if isolate:
                    finished = _run_isolated(function, r, paths, client, interrupts,
                                             stop_grace_s)
                else:
                    finished = _run_in_process(function, r, paths, client, interrupts)
            except _TrialDropped as exc:
                # Not counted: the point goes back to the sweep (retried or ended LOST by the
                # coordinator), and this agent asks for the next run.
                log.warning("trial %s (attempt %d) dropped, its results not reported: %s;"
                            " asking for another run", r["id"], r["attempt"], exc)
                continue
            ran += 1
            tally.add(finished, time.monotonic() - started)
            if limit and tally.failed == tally.count == limit:
                tally.summary(sweep_id)
                raise AgentFailedError(
                    f"the first {limit} trials of sweep {sweep_id} all failed (last:"
                    f" {finished['reason'] or finished['state']}); the agent stopped. Fix the"
                    " function (the tracebacks are above), or allow more with"
                    " max_initial_failures= or $WANDB_AGENT_MAX_INITIAL_FAILURES (0: never"
                    " stop)")
    tally.summary(sweep_id)
    return ran


def _max_initial_failures(explicit: int | None) -> int:
    if explicit is not None:
        if explicit < 0:
            raise ValueError(f"max_initial_failures must be 0 or more, not {explicit}")
        return explicit
    for name in MAX_INITIAL_FAILURES_ENVS:
        text = os.environ.get(name, "").strip()
        if not text:
            continue
        try:
            value = int(text)
        except ValueError:
            value = -1
        if value < 0:
            raise ValueError(f"${name}={text!r}: expected a whole number of trials, 0 or"
                             " more (0: never stop)")
        return value
    return DEFAULT_MAX_INITIAL_FAILURES
