"""The worker daemon: the runs it holds and what it tells the coordinator about them.

The map of ``worker/``: this module owns the worker's state (the runs it holds, whether it is
leaving or paused) and applies the coordinator's orders; ``connection`` carries the stream and
reconnects; ``protocol`` is the only one that knows protobuf; ``outbox`` keeps the events the
coordinator must get exactly once; ``supervision`` follows a started run; ``runner`` starts,
stops and reaps its process; ``flapping`` and ``signals`` are the rules for quick failures and
for Ctrl+C / SIGTERM, applied here. Runs keep going while the coordinator is away.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import socket
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sweepd.common.macros import resolve_worker_macros
from sweepd.common.names import DEFAULT_QUEUE, check_wire_ids
from sweepd.common.transport import Security

from . import flapping, signals, supervision
from .connection import PROPOSED_HEARTBEAT_S, Connection, Refused
from .flapping import DEFAULT_FAILURE_BACKOFF_S, FailureStreak
from .gpus import GpuAllocator, gpu_env
from .messages import (
    Ack,
    Assignment,
    DrainOrder,
    Event,
    Heartbeat,
    Hello,
    Order,
    RunFinished,
    RunKey,
    RunStarted,
    StopOrder,
    Welcome,
)
from .outbox import Outbox
from .runner import DEFAULT_STOP_GRACE_S, Runner, RunSpec
from .supervision import HeldRun, Reporter

log = logging.getLogger("sweepd.worker")

# After its runs ended, a worker that is leaving waits at most this long for the coordinator
# to acknowledge their reports before it exits anyway (reports are then lost to it).
FLUSH_TIMEOUT_S = 30.0
# How often the main loop looks again without being woken (for --exit-when-idle and the
# flush deadline, which nothing else wakes it for).
IDLE_CHECK_S = 1.0


EXIT_OK = 0
# The coordinator refused this worker before it ever worked: a wrong token, or no such sweep.
EXIT_REFUSED = 3
EXIT_INTERRUPTED = 130


@dataclass
class WorkerOptions:
    coordinator: str
    slots: int = 1
    sweep_id: str = ""
    count: int = 0
    workdir: Path = field(default_factory=Path.cwd)
    interpreter: str = sys.executable
    worker_id: str = ""
    labels: dict[str, str] = field(default_factory=dict)
    stop_grace_s: float = DEFAULT_STOP_GRACE_S
    # GPU ids to hand out, ``gpus_per_run`` to a run; with GPUs, slots = len(gpus) // per run.
    gpus: list[str] = field(default_factory=list)
    gpus_per_run: int = 1
    queues: list[str] = field(default_factory=lambda: [DEFAULT_QUEUE])
    # Leave after this many seconds without any run (0: never).
    exit_when_idle_s: float = 0.0
    failure_backoff_s: float = DEFAULT_FAILURE_BACKOFF_S
    # Token and TLS material; None: from the environment / the default state dir.
    security: Security | None = None


class Worker:
    """One worker process: the single owner of its state, on one event loop."""

    def __init__(self, opts: WorkerOptions) -> None:
        self.opts = opts
        host = socket.gethostname()
        self.worker_id = opts.worker_id or f"{host}-{os.getpid()}-{uuid.uuid4().hex[:4]}"
        self.host = host
        self.incarnation = uuid.uuid4().hex
        self.gpus = GpuAllocator(opts.gpus, opts.gpus_per_run) if opts.gpus else None
        self.slots = self.gpus.slots if self.gpus is not None else opts.slots
        self.runner = Runner(opts.workdir, resolve_argv=self._resolve_argv,
                             stop_grace_s=opts.stop_grace_s)
        self.connection = Connection(self, coordinator=opts.coordinator,
                                     worker_id=self.worker_id, security=opts.security)
        self.outbox = Outbox()
        self.reporter = Reporter(send_event=self._send, send_output=self.connection.send)
        self.held: dict[RunKey, HeldRun] = {}
        # Assignments accepted but not yet in ``held`` (their program is being started): they
        # count as alive, or a worker that drained on taking its last run (--count) would see
        # nothing alive and leave, cancelling the run it just took.
        self._starting: set[RunKey] = set()
        self.runs_assigned = 0
        self.draining = False
        self.drain_reason = ""
        self._interrupts = 0
        self._idle_since = 0.0  # loop time since which no run was alive
        self._failures = FailureStreak(next_pause_s=opts.failure_backoff_s)
        self.paused = False
        self._changed = asyncio.Event()
        self._tasks: set[asyncio.Task[Any]] = set()

    # -- lifecycle ------------------------------------------------------------------------

    async def run(self) -> int:
        signals.install(asyncio.get_running_loop(), self._on_signal)
        connection = asyncio.create_task(self.connection.run_forever())
        connection.add_done_callback(lambda task: self._changed.set())
        try:
            await self._until_done(connection)
        finally:
            connection.cancel()
            with contextlib.suppress(asyncio.CancelledError, Refused):
                await connection
            for task in list(self._tasks):
                task.cancel()
        refused = (connection.exception() if connection.done() and not connection.cancelled()
                   else None)
        if isinstance(refused, Refused):
            print(f"worker: {refused}", file=sys.stderr, flush=True)
            return EXIT_REFUSED
        return EXIT_INTERRUPTED if self._interrupts else EXIT_OK

    def _alive(self) -> list[HeldRun]:
        """Held runs whose RunFinished is not queued yet."""
        return [h for h in self.held.values() if not h.done]

    async def _until_done(self, connection: asyncio.Task[None] | None = None) -> None:
        flush_deadline: float | None = None
        loop = asyncio.get_running_loop()
        self._idle_since = loop.time()
        while True:
            self._changed.clear()
            if connection is not None and connection.done():
                return  # refused for good (the only way the connection loop ends)
            alive = self._alive() or self._starting
            if alive:
                self._idle_since = loop.time()
            elif (self.opts.exit_when_idle_s and not self.draining
                  and loop.time() - self._idle_since >= self.opts.exit_when_idle_s):
                self._drain(f"no run for {self.opts.exit_when_idle_s:g} s (--exit-when-idle)")
            if self.draining and not alive:
                if not self.outbox:
                    log.info("worker %s exiting: %s", self.worker_id, self.drain_reason)
                    return
                if flush_deadline is None:
                    flush_deadline = loop.time() + FLUSH_TIMEOUT_S
                elif loop.time() > flush_deadline:
                    log.error("coordinator did not acknowledge %d report(s) within %.0f s;"
                              " exiting without them", len(self.outbox), FLUSH_TIMEOUT_S)
                    return
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._changed.wait(), timeout=IDLE_CHECK_S)

    def _drain(self, reason: str) -> None:
        if not self.draining:
            self.draining = True
            self.drain_reason = reason
            log.info("worker %s takes no new runs: %s", self.worker_id, reason)
            self._send_heartbeat()
        self._changed.set()

    def _on_signal(self, sig: signal.Signals) -> None:
        """Takes the next step of the ladder in ``signals.py``."""
        self._interrupts += 1
        alive = [h.running for h in self._alive()]
        step = signals.step(self._interrupts, sig, worker_id=self.worker_id, running=len(alive))
        if step.drain_reason:
            self._drain(step.drain_reason)
        for running in alive:
            if step.terminate_reason:
                self.runner.terminate(running, step.terminate_reason)
            if step.kill_reason:
                self.runner.kill(running, step.kill_reason)
        if step.say:
            print(step.say, file=sys.stderr, flush=True)
        self._changed.set()

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            # Unreachable by design (``_run`` ends its run on any error), logged if not.
            log.error("worker task failed", exc_info=task.exception())

    # -- the session: what the connection asks of the worker (connection.SessionOwner) -----

    def hello(self) -> Hello:
        return Hello(
            worker_id=self.worker_id, incarnation=self.incarnation, host=self.host,
            slots=self.slots, labels=self.opts.labels, sweep_id=self.opts.sweep_id,
            gpus=self.opts.gpus, queues=self.opts.queues, heartbeat_s=PROPOSED_HEARTBEAT_S,
            max_runs=self.opts.count, last_acked_seq=self.outbox.acked_seq,
            runs_assigned=self.runs_assigned,
            held_runs=sorted(self.held, key=lambda key: key[1]))

    def heartbeat(self) -> Heartbeat:
        alive = self._alive()
        return Heartbeat(
            runs=[h.key for h in alive],
            free_slots=0 if self.draining or self.paused else max(self.slots - len(alive), 0),
            draining=self.draining, paused=self.paused)

    def unacked(self) -> list[tuple[int, Event]]:
        return self.outbox.unacked()

    def on_welcome(self, welcome: Welcome) -> None:
        """Takes the welcome's acknowledgement, and stops the held runs the coordinator no
        longer counts as this worker's (only the attempts it names: a newer attempt of the
        same run, handed back to this worker after a lease expired, runs on)."""
        self._ack_up_to(welcome.applied_seq)
        for run_id, attempt in welcome.stop_runs:
            self._stop(StopOrder(run_id=run_id, attempt=attempt,
                                 reason="the coordinator no longer holds this run"))

    def on_connected(self) -> None:
        if self.draining:  # the hello cannot say so; the coordinator must not assign more
            self._send_heartbeat()

    def on_order(self, order: Order) -> None:
        if isinstance(order, Ack):
            if order.refused:
                log.warning("coordinator refused message %d: %s", order.seq, order.refused)
            self._ack_up_to(order.seq)
        elif isinstance(order, Assignment):
            key = (order.run_id, order.attempt)
            if key in self.held or key in self._starting:
                log.warning("ignoring a repeated assignment of run %s attempt %d", *key)
                return
            # Counted as alive from now on, before the task first runs (see ``_starting``).
            self._starting.add(key)
            self._spawn(self._run(order))
        elif isinstance(order, StopOrder):
            self._stop(order)
        elif isinstance(order, DrainOrder):
            self._drain(order.reason)

    def on_unsendable(self, seq: int) -> None:
        self.outbox.drop(seq)

    def _send_heartbeat(self) -> None:
        self.connection.send(self.heartbeat())

    def _send(self, event: Event) -> None:
        """Queues a state-changing event; the outbox keeps it until acknowledged."""
        self.connection.send(event, self.outbox.add(event))

    def _ack_up_to(self, seq: int) -> None:
        for event in self.outbox.ack_up_to(seq):
            self._forget_if_finished(event)
        self._changed.set()

    def _forget_if_finished(self, event: Event) -> None:
        # A refused end is forgotten too: the coordinator will never take it.
        if isinstance(event, RunFinished):
            self.held.pop((event.run_id, event.attempt), None)

    def _stop(self, order: StopOrder) -> None:
        """Stops the attempt the order names (0: any, from a coordinator that names none).
        An order for an older attempt never touches a newer one of the same run."""
        for (run_id, attempt), held in list(self.held.items()):
            if run_id != order.run_id or held.done:
                continue
            if order.attempt and attempt != order.attempt:
                log.info("ignoring a stop order for run %s attempt %d: this worker runs"
                         " attempt %d", run_id, order.attempt, attempt)
                continue
            log.info("stopping run %s (attempt %d): %s", run_id, attempt, order.reason)
            self.runner.request_stop(held.running, order.reason)

    # -- runs -----------------------------------------------------------------------------

    def _resolve_argv(self, argv: list[str], spec: RunSpec, run_dir: Path) -> list[str]:
        def args_json_file() -> str:
            path = run_dir / "args.json"
            path.write_text(json.dumps(spec.params))
            return str(path)

        return resolve_worker_macros(argv, interpreter=self.opts.interpreter,
                                     env=os.environ, args_json_file=args_json_file,
                                     literal=spec.literal_argv)

    async def _run(self, assign: Assignment) -> None:
        """One assignment, from its arrival to its RunFinished. Whatever fails in here ends
        the run FAILED with the reason (its processes killed): a run is never left RUNNING
        with nobody watching it."""
        key = (assign.run_id, assign.attempt)
        try:
            refused = check_wire_ids(assign.run_id, assign.sweep_id, assign.attempt)
            if refused:
                log.error("refusing an assignment: %s", refused)
                self._send_finished(key, "FAILED", refused)
                return
            spec = RunSpec(run_id=assign.run_id, sweep_id=assign.sweep_id,
                           attempt=assign.attempt, params=assign.params,
                           argv=list(assign.argv), literal_argv=assign.literal_argv,
                           metric_name=assign.metric_name)
            if self.draining:
                # Arrived as we began to leave: hand it back untouched for another worker.
                self._send_finished(key, "PENDING",
                                    f"worker {self.worker_id} was leaving ({self.drain_reason})")
                return
            if self.paused:
                self._send_finished(key, "PENDING",
                                    f"worker {self.worker_id} is backing off after failing runs")
                return
            self.runs_assigned += 1
            if self.opts.count and self.runs_assigned >= self.opts.count:
                self._drain(f"--count {self.opts.count} reached")
            await self._supervise(spec)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.exception("supervising run %s (attempt %d) failed", *key)
            self._abandon(key, f"the worker failed while supervising the run:"
                               f" {type(exc).__name__}: {exc}")
        finally:
            self._starting.discard(key)
            self._changed.set()

    async def _supervise(self, spec: RunSpec) -> None:
        gpu_holder = f"{spec.run_id}.{spec.attempt}"
        extra_env: dict[str, str] = {}
        if self.gpus is not None:
            # The coordinator never assigns more runs than slots, so a group is free.
            extra_env.update(gpu_env(self.gpus.acquire(gpu_holder)))
        try:
            await self._run_started(spec, extra_env)
        finally:
            if self.gpus is not None:
                self.gpus.release(gpu_holder)

    def _send_finished(self, key: RunKey, state: str, reason: str) -> None:
        self._send(RunFinished(run_id=key[0], attempt=key[1], state=state,
                               reason=supervision.clip(reason), time=time.time()))

    def _abandon(self, key: RunKey, reason: str) -> None:
        """Ends a run whose supervision failed: its processes go, FAILED goes out (once)."""
        held = self.held.get(key)
        if held is not None:
            if held.done:
                return  # its RunFinished is already on its way
            held.done = True
            self.runner.kill(held.running, reason)
            with contextlib.suppress(Exception):
                supervision.append_output(held.running.run_dir, f"sweepd: {reason}")
        self._send_finished(key, "FAILED", reason)

    async def _run_started(self, spec: RunSpec, extra_env: dict[str, str]) -> None:
        key = (spec.run_id, spec.attempt)
        running = await self.runner.start(spec, extra_env)
        held = HeldRun.following(running)
        self.held[key] = held
        self._starting.discard(key)
        self._changed.set()
        if running.process is not None:
            log.info("run %s started: %s", spec.run_id, " ".join(running.argv))
            self._send(RunStarted(run_id=spec.run_id, attempt=spec.attempt, argv=running.argv,
                                  pid=running.pid, time=running.started_at))
        outcome = await self.reporter.follow(held, self.runner.wait(running))
        reason = supervision.end_reason(held, outcome)
        log.info("run %s %s%s", spec.run_id, outcome.state.lower(),
                 f" ({reason})" if reason else "")
        if outcome.state == "FINISHED":
            supervision.check_metric_logged(held)
        held.done = True
        self._apply_flapping_guard(outcome.state, running.started_at, outcome.time)
        self._send(supervision.finished(held, outcome, reason))
        self._changed.set()

    def _apply_flapping_guard(self, state: str, started_at: float, ended_at: float) -> None:
        loop = asyncio.get_running_loop()
        self._failures, pause = flapping.after_run(
            self._failures, state=state, started_at=started_at, ended_at=ended_at,
            now=loop.time(), first_pause_s=self.opts.failure_backoff_s,
            may_pause=not (self.paused or self.draining))
        if pause is None:
            return
        self.paused = True
        log.warning("%s", pause.message())
        print(f"worker: {pause.message()}", file=sys.stderr, flush=True)
        self._send_heartbeat()
        loop.call_at(pause.until, self._resume)

    def _resume(self) -> None:
        if not self.paused:
            return
        self.paused = False
        log.info("resuming: taking runs again after the failure backoff")
        self._send_heartbeat()
        self._changed.set()
