"""The worker daemon: its session with the coordinator and the runs it holds.

One stream to the coordinator, reopened with backoff whenever it breaks. Every message that
changes state gets a sequence number and stays in ``_unacked`` until the coordinator
acknowledges it, so reports made while the coordinator was away are delivered after it comes
back, exactly once. Runs keep going while the coordinator is away.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import signal
import socket
import sys
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
from google.protobuf.timestamp_pb2 import Timestamp
from sweepd.client.macros import resolve_worker_macros
from sweepd.client.params import params_from_proto
from sweepd.client.transport import Security, auth_metadata, open_aio_channel
from sweepd.v1 import common_pb2, workers_pb2, workers_pb2_grpc

from .gpus import ENV_VISIBLE, GpuAllocator
from .runner import (
    DEFAULT_STOP_GRACE_S,
    LOG_TAIL_BYTES,
    MAX_RECORDS_PER_BATCH,
    METRICS_POLL_S,
    OUTPUT_POLL_S,
    MetricsFollower,
    Outcome,
    OutputFollower,
    Runner,
    RunningRun,
    RunSpec,
    check_wire_ids,
    read_tail,
)

log = logging.getLogger("sweepd.worker")

# Reconnect backoff: exponential with full jitter so that many workers do not reconnect in
# lockstep after a coordinator restart; capped low because a restart is usually seconds.
BACKOFF_INITIAL_S = 0.2
BACKOFF_MAX_S = 5.0
# The heartbeat interval this worker proposes; the coordinator may clamp it.
PROPOSED_HEARTBEAT_S = 2.0
# After its runs ended, a worker that is leaving waits at most this long for the coordinator
# to acknowledge their reports before it exits anyway (reports are then lost to it).
FLUSH_TIMEOUT_S = 30.0
# Flapping guard (as W&B's agent has): this many failures in a row, each within
# QUICK_FAILURE_S of its run's start, mean the node or the program is broken, not the
# parameters; the worker then takes no runs for a while rather than burn through the sweep.
QUICK_FAILURE_S = 60.0
QUICK_FAILURES_TO_PAUSE = 3
# The first pause; it doubles with every further pause, up to the cap, and a run that
# succeeds (or fails later than QUICK_FAILURE_S) resets it.
DEFAULT_FAILURE_BACKOFF_S = 30.0
FAILURE_BACKOFF_MAX_S = 15 * 60.0

# The queue a worker serves without --queue (the coordinator's default for sweeps too).
DEFAULT_QUEUE = "default"

EXIT_OK = 0
EXIT_INTERRUPTED = 130
# A reason the worker sends stays well under the coordinator's text limit (4096): a report
# refused for its size would leave the run without an end.
MAX_REASON_CHARS = 1000

# Runs are kept by (run id, attempt): after a lease expired while this worker lived, the same
# run can come back to it as a new attempt while the old one is still being stopped.
RunKey = tuple[str, int]


def _ts(t: float) -> Timestamp:
    ts = Timestamp()
    ts.FromNanoseconds(int(t * 1e9))
    return ts


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


@dataclass
class _Held:
    running: RunningRun
    follower: MetricsFollower
    output: OutputFollower
    done: bool = False  # its RunFinished is queued; kept until acknowledged


class Worker:
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
        self.held: dict[RunKey, _Held] = {}
        # Assignments accepted but not yet in ``held`` (their program is being started): they
        # count as alive, or a worker that drained on taking its last run (--count) would see
        # nothing alive and leave, cancelling the run it just took.
        self._starting: set[RunKey] = set()
        self._seq = 0
        self._acked_seq = 0
        self._unacked: OrderedDict[int, workers_pb2.WorkerMessage] = OrderedDict()
        self._send_queue: asyncio.Queue[workers_pb2.WorkerMessage] | None = None
        self._heartbeat_s = PROPOSED_HEARTBEAT_S
        self.runs_assigned = 0
        self.draining = False
        self.drain_reason = ""
        self._interrupts = 0
        self._idle_since = 0.0  # loop time since which no run was alive
        self._quick_failures = 0
        self._backoff_s = opts.failure_backoff_s
        self.paused = False
        self._changed = asyncio.Event()
        # Whether the coordinator refused our id (another live process holds it) since the
        # last session: the user is told once, not at every retry.
        self._id_refused = False
        self._tasks: set[asyncio.Task[Any]] = set()

    # -- lifecycle ------------------------------------------------------------------------

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError):
                loop.add_signal_handler(sig, self._on_signal, sig)
        connection = asyncio.create_task(self._connection_loop())
        try:
            await self._until_done()
        finally:
            connection.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await connection
            for task in list(self._tasks):
                task.cancel()
        return EXIT_INTERRUPTED if self._interrupts else EXIT_OK

    async def _until_done(self) -> None:
        flush_deadline: float | None = None
        loop = asyncio.get_running_loop()
        self._idle_since = loop.time()
        while True:
            self._changed.clear()
            alive = [h for h in self.held.values() if not h.done] or self._starting
            if alive:
                self._idle_since = loop.time()
            elif (self.opts.exit_when_idle_s and not self.draining
                  and loop.time() - self._idle_since >= self.opts.exit_when_idle_s):
                self._drain(f"no run for {self.opts.exit_when_idle_s:g} s (--exit-when-idle)")
            if self.draining and not alive:
                if not self._unacked:
                    log.info("worker %s exiting: %s", self.worker_id, self.drain_reason)
                    return
                if flush_deadline is None:
                    flush_deadline = loop.time() + FLUSH_TIMEOUT_S
                elif loop.time() > flush_deadline:
                    log.error("coordinator did not acknowledge %d report(s) within %.0f s;"
                              " exiting without them", len(self._unacked), FLUSH_TIMEOUT_S)
                    return
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._changed.wait(), timeout=1.0)

    def _drain(self, reason: str) -> None:
        if not self.draining:
            self.draining = True
            self.drain_reason = reason
            log.info("worker %s takes no new runs: %s", self.worker_id, reason)
            self._send_heartbeat()
        self._changed.set()

    def _on_signal(self, sig: signal.Signals) -> None:
        """First Ctrl+C / SIGTERM: take no new runs and wait for the runs; SIGTERM also goes
        to the runs so they can checkpoint. Second: SIGTERM the runs. Third: SIGKILL them."""
        self._interrupts += 1
        alive = [h.running for h in self.held.values() if not h.done]
        # A run the worker sends SIGTERM ends STOPPED with this reason even if it then exits 0:
        # it did not run to its end, so it is no result for the best run or the search.
        why = f"worker {self.worker_id} received {sig.name}; the run was sent SIGTERM"
        if self._interrupts == 1:
            self._drain(f"received {sig.name}")
            if sig is signal.SIGTERM:
                for r in alive:
                    self.runner.terminate(r, why)
            if alive:
                print(f"worker: waiting for {len(alive)} run(s) to finish; press Ctrl+C again"
                      " to stop them", file=sys.stderr, flush=True)
        elif self._interrupts == 2:
            print("worker: sending SIGTERM to the runs; Ctrl+C again kills them",
                  file=sys.stderr, flush=True)
            for r in alive:
                self.runner.terminate(r, f"worker {self.worker_id} was interrupted twice;"
                                         " the run was sent SIGTERM")
        else:
            print("worker: killing the runs", file=sys.stderr, flush=True)
            for r in alive:
                self.runner.kill(r, f"worker {self.worker_id} was interrupted three times")
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

    # -- connection -----------------------------------------------------------------------

    async def _connection_loop(self) -> None:
        backoff = BACKOFF_INITIAL_S
        while True:
            connected = False
            try:
                security = self.opts.security or Security.resolve()
                async with open_aio_channel(self.opts.coordinator, security) as channel:
                    stub = workers_pb2_grpc.WorkerServiceStub(channel)
                    call = stub.Connect(wait_for_ready=False,
                                        metadata=auth_metadata(security))
                    connected = await self._session(call)
            except grpc.aio.AioRpcError as exc:
                if exc.code() == grpc.StatusCode.ALREADY_EXISTS:
                    self._on_id_in_use(exc.details() or "")
                elif exc.code() in (grpc.StatusCode.UNAUTHENTICATED,
                                  grpc.StatusCode.PERMISSION_DENIED):
                    log.error("coordinator %s refused this worker: %s; retrying",
                              self.opts.coordinator, exc.details())
                else:
                    log.info("coordinator %s unavailable (%s); retrying",
                             self.opts.coordinator, exc.code().name)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("worker session failed; reconnecting")
            finally:
                self._send_queue = None
            if connected:
                backoff = BACKOFF_INITIAL_S
            await asyncio.sleep(random.uniform(0, backoff))
            backoff = min(backoff * 2, BACKOFF_MAX_S)

    def _on_id_in_use(self, details: str) -> None:
        """Another live process holds this worker id. Said once, plainly, with the
        coordinator's words (they name the host holding it); then retried quietly, since the
        holder may leave. Until then no run comes, so --exit-when-idle still applies."""
        if self._id_refused:
            log.debug("worker id %s still in use elsewhere; retrying", self.worker_id)
            return
        self._id_refused = True
        print(f"worker: the coordinator {self.opts.coordinator} refused worker id"
              f" {self.worker_id!r} (ALREADY_EXISTS): {details}\n"
              "worker: retrying quietly until that id is free", file=sys.stderr, flush=True)

    async def _session(self, call: Any) -> bool:
        """One stream's life. Returns whether it got as far as the coordinator's welcome."""
        hello = workers_pb2.Hello(
            worker_id=self.worker_id, incarnation=self.incarnation, host=self.host,
            slots=self.slots, labels=self.opts.labels, sweep_id=self.opts.sweep_id,
            gpus=self.opts.gpus, queues=self.opts.queues,
            heartbeat_interval_s=PROPOSED_HEARTBEAT_S, max_runs=self.opts.count,
            last_acked_seq=self._acked_seq, runs_assigned=self.runs_assigned,
            held_runs=[workers_pb2.HeldRun(run_id=run_id, attempt=attempt)
                       for run_id, attempt in sorted(self.held, key=lambda k: k[1])],
        )
        await call.write(workers_pb2.WorkerMessage(hello=hello))
        first = await call.read()
        if first is grpc.aio.EOF or first.WhichOneof("body") != "welcome":
            return False
        welcome = first.welcome
        self._heartbeat_s = welcome.heartbeat_interval_s or PROPOSED_HEARTBEAT_S
        self._ack_up_to(welcome.applied_seq)
        log.info("connected to %s as %s", self.opts.coordinator, self.worker_id)
        if self._id_refused:
            self._id_refused = False
            print(f"worker: connected as {self.worker_id}: the id is free again",
                  file=sys.stderr, flush=True)
        self._stop_on_welcome(welcome)
        queue: asyncio.Queue[workers_pb2.WorkerMessage] = asyncio.Queue()
        for msg in self._unacked.values():  # resend, in order, what was not acknowledged
            queue.put_nowait(msg)
        self._send_queue = queue
        if self.draining:
            self._send_heartbeat()
        writer = asyncio.create_task(self._write(call, queue))
        heartbeat = asyncio.create_task(self._heartbeats())
        try:
            while True:
                msg = await call.read()
                if msg is grpc.aio.EOF:
                    break
                self._on_coordinator_message(msg)
        finally:
            self._send_queue = None
            writer.cancel()
            heartbeat.cancel()
            call.cancel()
        return True

    def _stop_on_welcome(self, welcome: workers_pb2.Welcome) -> None:
        """Stops the held runs the coordinator no longer counts as this worker's. ``stop_runs``
        names each attempt: a newer attempt of the same run (handed back to this worker after
        a lease expired) runs on. An older coordinator sends only ids: every attempt goes."""
        reason = "the coordinator no longer holds this run"
        if welcome.stop_runs:
            for named in welcome.stop_runs:
                self._stop(workers_pb2.StopRun(run_id=named.run_id, attempt=named.attempt,
                                               reason=reason))
            return
        for run_id in dict.fromkeys(welcome.stop_run_ids):
            self._stop(workers_pb2.StopRun(run_id=run_id, reason=reason))

    async def _write(self, call: Any, queue: asyncio.Queue[workers_pb2.WorkerMessage]) -> None:
        with contextlib.suppress(grpc.aio.AioRpcError, asyncio.InvalidStateError):
            while True:
                msg = await queue.get()
                try:
                    await call.write(msg)
                except (ValueError, TypeError, UnicodeError) as exc:
                    # A message that cannot be serialized must not end the writer (the stream
                    # would go silent and every run would be LOST); nor be resent for ever.
                    log.error("dropping a %s message that cannot be sent: %s",
                              msg.WhichOneof("body"), exc)
                    self._unacked.pop(msg.seq, None)

    async def _heartbeats(self) -> None:
        while True:
            await asyncio.sleep(self._heartbeat_s)
            self._send_heartbeat()

    def _send_heartbeat(self) -> None:
        alive = [h for h in self.held.values() if not h.done]
        msg = workers_pb2.WorkerMessage(heartbeat=workers_pb2.Heartbeat(
            runs=[workers_pb2.HeldRun(run_id=h.running.spec.run_id,
                                      attempt=h.running.spec.attempt) for h in alive],
            free_slots=0 if self.draining or self.paused else max(self.slots - len(alive), 0),
            draining=self.draining, paused=self.paused,
        ))
        if self._send_queue is not None:
            self._send_queue.put_nowait(msg)

    def _send(self, **body: Any) -> None:
        """Queues a state-changing message; it is kept until acknowledged."""
        self._seq += 1
        msg = workers_pb2.WorkerMessage(seq=self._seq, **body)
        self._unacked[self._seq] = msg
        if self._send_queue is not None:
            self._send_queue.put_nowait(msg)

    def _ack_up_to(self, seq: int) -> None:
        while self._unacked and next(iter(self._unacked)) <= seq:
            _, msg = self._unacked.popitem(last=False)
            self._forget_if_finished(msg)
        self._acked_seq = max(self._acked_seq, seq)
        self._changed.set()

    def _forget_if_finished(self, msg: workers_pb2.WorkerMessage) -> None:
        if msg.WhichOneof("body") == "run_finished":
            self.held.pop((msg.run_finished.run_id, msg.run_finished.attempt), None)

    def _on_coordinator_message(self, msg: workers_pb2.CoordinatorMessage) -> None:
        kind = msg.WhichOneof("body")
        if kind == "ack":
            if msg.ack.refused:
                refused = self._unacked.get(msg.ack.seq)
                log.warning("coordinator refused message %d: %s", msg.ack.seq, msg.ack.refused)
                if refused is not None:
                    self._forget_if_finished(refused)
            self._ack_up_to(msg.ack.seq)
        elif kind == "assign":
            key = (msg.assign.run_id, msg.assign.attempt)
            if key in self.held or key in self._starting:
                log.warning("ignoring a repeated assignment of run %s attempt %d", *key)
                return
            # Counted as alive from now on, before the task first runs (see ``_starting``).
            self._starting.add(key)
            self._spawn(self._run(msg.assign))
        elif kind == "stop_run":
            self._stop(msg.stop_run)
        elif kind == "drain":
            self._drain(msg.drain.reason)

    def _stop(self, order: workers_pb2.StopRun) -> None:
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
            import json

            path = run_dir / "args.json"
            path.write_text(json.dumps(spec.params))
            return str(path)

        return resolve_worker_macros(argv, interpreter=self.opts.interpreter,
                                     env=os.environ, args_json_file=args_json_file,
                                     literal=spec.literal_argv)

    async def _run(self, assign: workers_pb2.Assign) -> None:
        """One assignment, from its arrival to its RunFinished. Whatever fails in here ends
        the run FAILED with the reason (its processes killed): a run is never left RUNNING
        with nobody watching it."""
        key = (assign.run_id, assign.attempt)
        try:
            refused = check_wire_ids(assign.run_id, assign.sweep_id, assign.attempt)
            if refused:
                log.error("refusing an assignment: %s", refused)
                self._send_finished(key, common_pb2.RUN_STATE_FAILED, refused)
                return
            spec = RunSpec(run_id=assign.run_id, sweep_id=assign.sweep_id,
                           attempt=assign.attempt, params=params_from_proto(assign.params),
                           argv=list(assign.argv), literal_argv=tuple(assign.literal_argv))
            if self.draining:
                # Arrived as we began to leave: hand it back untouched for another worker.
                self._send_finished(key, common_pb2.RUN_STATE_PENDING,
                                    f"worker {self.worker_id} was leaving ({self.drain_reason})")
                return
            if self.paused:
                self._send_finished(key, common_pb2.RUN_STATE_PENDING,
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
            extra_env[ENV_VISIBLE] = ",".join(self.gpus.acquire(gpu_holder))
        try:
            await self._run_started(spec, extra_env)
        finally:
            if self.gpus is not None:
                self.gpus.release(gpu_holder)

    def _send_finished(self, key: RunKey, state: int, reason: str) -> None:
        self._send(run_finished=workers_pb2.RunFinished(
            run_id=key[0], attempt=key[1], state=state,
            reason=_clip(reason), time=_ts(time.time())))

    def _abandon(self, key: RunKey, reason: str) -> None:
        """Ends a run whose supervision failed: its processes go, FAILED goes out (once)."""
        held = self.held.get(key)
        if held is not None:
            if held.done:
                return  # its RunFinished is already on its way
            held.done = True
            self.runner.kill(held.running, reason)
            with contextlib.suppress(Exception):
                _append_output(held.running.run_dir, f"sweepd: {reason}")
        self._send_finished(key, common_pb2.RUN_STATE_FAILED, reason)

    async def _run_started(self, spec: RunSpec, extra_env: dict[str, str]) -> None:
        key = (spec.run_id, spec.attempt)
        running = await self.runner.start(spec, extra_env)
        follower = MetricsFollower(running.run_dir / "metrics.jsonl")
        held = _Held(running=running, follower=follower,
                     output=OutputFollower(running.run_dir / "output.log"))
        self.held[key] = held
        self._starting.discard(key)
        self._changed.set()
        if running.process is not None:
            log.info("run %s started: %s", spec.run_id, " ".join(running.argv))
            self._send(run_started=workers_pb2.RunStarted(
                run_id=spec.run_id, attempt=spec.attempt, argv=running.argv,
                pid=running.pid, time=_ts(running.started_at)))
        waiter = asyncio.ensure_future(self.runner.wait(running))
        try:
            loop = asyncio.get_running_loop()
            next_output = loop.time() + OUTPUT_POLL_S
            while not waiter.done():
                await asyncio.wait({waiter}, timeout=METRICS_POLL_S)
                self._report_metrics(held, final=False)
                if loop.time() >= next_output:
                    self._report_output(held)
                    next_output = loop.time() + OUTPUT_POLL_S
        except BaseException:
            waiter.cancel()
            raise
        self._report_metrics(held, final=True)
        self._report_output(held)
        outcome: Outcome = waiter.result()
        reason = outcome.reason
        if follower.bad_lines and follower.first_bad is not None:
            first = follower.first_bad
            note = (f"{follower.bad_lines} metrics line(s) could not be used (first: line"
                    f" {first.number}: {first.why})")
            reason = f"{reason}; {note}" if reason else note
        log.info("run %s %s%s", spec.run_id, outcome.state.lower(),
                 f" ({reason})" if reason else "")
        held.done = True
        finished = workers_pb2.RunFinished(
            run_id=spec.run_id, attempt=spec.attempt,
            state=common_pb2.RunState.Value(f"RUN_STATE_{outcome.state}"),
            reason=_clip(reason), time=_ts(outcome.time),
            log_tail=read_tail(running.run_dir / "output.log", LOG_TAIL_BYTES))
        if outcome.exit_code is not None:
            finished.exit_code = outcome.exit_code
        self._note_outcome(outcome, running.started_at)
        self._send(run_finished=finished)
        self._changed.set()

    def _note_outcome(self, outcome: Outcome, started_at: float) -> None:
        """The flapping guard: pauses after QUICK_FAILURES_TO_PAUSE quick failures in a row."""
        quick = outcome.state == "FAILED" and outcome.time - started_at < QUICK_FAILURE_S
        if not quick:
            if outcome.state != "STOPPED":
                self._quick_failures = 0
                self._backoff_s = self.opts.failure_backoff_s
            return
        self._quick_failures += 1
        if self._quick_failures < QUICK_FAILURES_TO_PAUSE or self.paused or self.draining:
            return
        pause = self._backoff_s
        self._backoff_s = min(self._backoff_s * 2, FAILURE_BACKOFF_MAX_S)
        self._quick_failures = 0
        self.paused = True
        message = (f"worker: {QUICK_FAILURES_TO_PAUSE} runs in a row failed within"
                   f" {QUICK_FAILURE_S:.0f} s of starting; pausing for {pause:g} s before"
                   " taking runs again")
        log.warning("%s", message.removeprefix("worker: "))
        print(message, file=sys.stderr, flush=True)
        self._send_heartbeat()
        asyncio.get_running_loop().call_later(pause, self._resume)

    def _resume(self) -> None:
        if not self.paused:
            return
        self.paused = False
        log.info("resuming: taking runs again after the failure backoff")
        self._send_heartbeat()
        self._changed.set()

    def _report_output(self, held: _Held) -> None:
        """New output for `sweep logs --follow`: best effort, so not kept for a resend (the
        final tail travels with RunFinished)."""
        data = held.output.read_new()
        if data and self._send_queue is not None:
            self._send_queue.put_nowait(workers_pb2.WorkerMessage(output=workers_pb2.RunOutput(
                run_id=held.running.spec.run_id, attempt=held.running.spec.attempt, data=data)))

    def _report_metrics(self, held: _Held, *, final: bool) -> None:
        records = held.follower.read_new(final=final)
        spec = held.running.spec
        bad = held.follower.take_bad()
        if bad:
            # Into the run's own output (so `sweep logs` shows it beside the program's lines)
            # and the worker's log; the count and the first one also go in its end reason.
            notes = [f"sweepd: {held.follower.path.name} line {b.number} ignored: {b.why}"
                     for b in bad]
            for note in notes:
                log.warning("run %s: %s", spec.run_id, note.removeprefix("sweepd: "))
            with contextlib.suppress(OSError):  # a courtesy: never worth ending the run for
                _append_output(held.running.run_dir, "\n".join(notes))
        for start in range(0, len(records), MAX_RECORDS_PER_BATCH):
            batch = records[start:start + MAX_RECORDS_PER_BATCH]
            self._send(metrics=workers_pb2.MetricBatch(
                run_id=spec.run_id, attempt=spec.attempt,
                records=[common_pb2.MetricRecord(index=r.index, step=r.step, values=r.values,
                                                 time=_ts(r.time)) for r in batch]))


def _clip(text: str, limit: int = MAX_REASON_CHARS) -> str:
    text = text.encode("utf-8", errors="replace").decode("utf-8")  # no lone surrogates
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _append_output(run_dir: Path, text: str) -> None:
    # Appending beside the program is safe: both write with O_APPEND, a line at a time.
    with open(run_dir / "output.log", "a", encoding="utf-8", errors="replace") as f:
        f.write(text + "\n")
