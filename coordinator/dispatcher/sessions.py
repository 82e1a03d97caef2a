"""Worker sessions: the handshake, heartbeats, live output, and each state-changing message
applied exactly once.

A worker's stream is one session. ``attach`` answers its hello (which runs it still holds
are its own, which to stop), ``heartbeat`` renews the leases of the runs it holds and stops
attempts it holds but no longer owns, ``worker_message`` applies a sequenced message
(started, metrics, finished) once, in order, and acknowledges it.
"""

from __future__ import annotations

import asyncio
import logging

from .. import limits, names
from ..domain import DEFAULT_QUEUE, AckOrder, DrainOrder, Run, RunState, StopOrder, WorkerInfo
from ..errors import (
    AlreadyExists,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    SweepdError,
    Unavailable,
)
from .checks import refuse_taken_over
from .leases import LIVE_SESSION_HEARTBEATS, heartbeat_interval
from .messages import Hello, MetricsEvent, RunStartedEvent, Welcome, WorkerEvent
from .scheduling import Scheduler, runs_on_workers
from .state import State
from .transitions import Transitions
from .views import LiveLog, WorkerSession

log = logging.getLogger("sweepd.coordinator")

# The stored tail of an ended run's output; the worker sends no more than this either.
LOG_TAIL_MAX_BYTES = 64 * 1024


def held_run(state: State, run_id: str, attempt: int, worker_id: str) -> Run:
    """The run, if ``worker_id`` holds its current attempt; else a precise refusal."""
    run = state.runs.get(run_id)
    if run is None:
        raise NotFound(f"no run {run_id!r}")
    stale = (f"run {run_id}: attempt {attempt} is stale, the current attempt is"
             f" {run.attempt} (its lease expired and the run was handed out again)")
    if 0 < attempt < run.attempt:
        # Checked before the holder: a worker whose lease expired learns why it lost the
        # run (which has since moved on, possibly to another worker).
        raise FailedPrecondition(stale)
    if attempt > run.attempt:
        # No attempt past the current one was ever handed out: a caller's bug, not a lease.
        raise InvalidArgument(
            f"attempt: {attempt} is out of range for run {run_id}, which has had attempts"
            f" 1..{run.attempt}; send the attempt its assignment (or SuggestRun) gave")
    if run.worker_id != worker_id:
        raise PermissionDenied(
            f"run {run_id} is not held by {worker_id}"
            + (f" (it is held by {run.worker_id})" if run.worker_id else "")
        )
    if attempt != run.attempt:
        raise FailedPrecondition(stale)
    if run.state.is_ended:
        raise FailedPrecondition(
            f"run {run_id} already ended {run.state.value}: nothing more is stored for it"
            f" (records belong before its end, in ReportMetrics or in the FinishRun that ends"
            f" it; a repeated FinishRun is answered again only with the same state, exit code"
            f" and records already stored)")
    if not run.state.is_active:
        raise FailedPrecondition(f"run {run_id} is {run.state.value}, not running")
    return run


class WorkerSessions:
    def __init__(self, state: State, transitions: Transitions, scheduler: Scheduler) -> None:
        self.s = state
        self.t = transitions
        self.scheduler = scheduler

    def attach(self, hello: Hello) -> tuple[WorkerSession, Welcome]:
        _check_hello(hello)
        now = self.s.clock()
        known = self.s.workers.get(hello.worker_id)
        same_incarnation = known is not None and known.incarnation == hello.incarnation
        if known is not None and not same_incarnation and hello.last_acked_seq > 0:
            refuse_taken_over(hello, known)
        old = self.s.sessions.get(hello.worker_id)
        if (old is not None and old.info.incarnation != hello.incarnation
                and self.s.heard_recently(old,
                                          LIVE_SESSION_HEARTBEATS * old.heartbeat_interval_s)):
            # Two processes with one id would take turns replacing each other's session and
            # lose every run; the one already working keeps the id.
            raise AlreadyExists(
                f"hello.worker_id: {hello.worker_id!r} is in use by a live worker on host"
                f" {old.info.host!r} (connected {now - old.info.connected_at:.0f} s ago, last"
                f" heard {now - old.info.last_heartbeat:.1f} s ago); give each worker its own"
                " --worker-id, or stop the other one"
            )
        # Sequence numbers belong to an incarnation: a new one starts from 0. One this
        # coordinator never knew (its database is new) resumes from what it saw acknowledged.
        applied = (known.applied_seq if known is not None and same_incarnation
                   else hello.last_acked_seq if known is None else 0)
        info = WorkerInfo(
            id=hello.worker_id, incarnation=hello.incarnation, host=hello.host,
            slots=max(hello.slots, 0), labels=dict(hello.labels), sweep_id=hello.sweep_id,
            applied_seq=applied,
            connected_at=now, last_heartbeat=now, gpus=list(hello.gpus),
            queues=list(hello.queues) or [DEFAULT_QUEUE],
        )
        old = self.s.sessions.pop(hello.worker_id, None)
        if old is not None:
            old.outbox.put_nowait(None)  # a stale stream of the same worker: close it
        interval = heartbeat_interval(hello.heartbeat_interval_s, self.s.lease_s)
        session = WorkerSession(
            info=info, outbox=asyncio.Queue(), heartbeat_interval_s=interval,
            max_runs=max(hello.max_runs, 0), runs_assigned=max(hello.runs_assigned, 0),
        )
        stop_runs: dict[str, int] = {}
        with self.s.commit():
            self.s.store.upsert_worker(info)
            for run_id, attempt in hello.held_runs.items():
                run = self.s.runs.get(run_id)
                if (run is not None and run.worker_id == info.id and run.attempt == attempt
                        and run.state.is_active):
                    run.lease_expires_at = self.s.lease_deadline()
                    session.active_runs.add(run_id)
                elif (run is None or not run.state.is_ended or run.worker_id != info.id
                      or run.attempt != attempt):
                    # Not (or no longer) this worker's: ended and retried elsewhere, or
                    # canceled. An ended run of its own is fine: its report is being resent.
                    stop_runs[run_id] = attempt
            for run in list(self.s.runs.values()):
                if run.worker_id != info.id or not run.state.is_active:
                    continue
                if hello.held_runs.get(run.id) == run.attempt:
                    continue
                # The worker does not know this run: either its previous process died with
                # it, or the assignment never reached it. Either way, nobody runs it.
                why = ("its worker restarted" if not same_incarnation
                       else "the assignment never reached its worker")
                self.t.lose_run(run, why)
        self.s.workers[info.id] = info
        self.s.sessions[info.id] = session
        log.info("worker %s connected from %s (%d slots%s)", info.id, info.host, info.slots,
                 f", sweep {info.sweep_id}" if info.sweep_id else "")
        welcome = Welcome(
            heartbeat_interval_s=interval, lease_s=self.s.lease_s,
            applied_seq=info.applied_seq, stop_runs=stop_runs,
        )
        if info.sweep_id:
            view = self.s.sweeps.get(info.sweep_id)
            if view is None or view.sweep.state.is_ended:
                session.draining = True
                state = "does not exist" if view is None else f"is {view.sweep.state.value}"
                self.s.send(info.id, DrainOrder(f"sweep {info.sweep_id} {state}"))
            elif not runs_on_workers(view):
                session.draining = True
                self.s.send(info.id, DrainOrder(
                    f"sweep {info.sweep_id} has no program (nor a command): it is run by"
                    " agent(sweep_id, function=...) or an ask/tell client, never by"
                    " `worker join`; add `program:` to its config for workers"))
        self.scheduler.schedule()
        return session, welcome

    def detach(self, session: WorkerSession) -> None:
        if self.s.sessions.get(session.info.id) is session:
            del self.s.sessions[session.info.id]
            session.info.connected = False
            log.info("worker %s disconnected; its runs keep their leases", session.info.id)

    def run_output(self, session: WorkerSession, run_id: str, attempt: int, data: bytes) -> None:
        """New output of a live run held by the session's worker (best effort, unacknowledged)."""
        run = self.s.runs.get(run_id)
        if (run is None or run.worker_id != session.info.id or run.attempt != attempt
                or not run.state.is_active):
            return
        live = self.s.live_logs.get(run_id)
        if live is None or live.attempt != attempt:  # a retried run starts a fresh log
            live = self.s.live_logs[run_id] = LiveLog(attempt=attempt)
        live.append(data)

    def heartbeat(self, session: WorkerSession, held: dict[str, int], draining: bool,
                  paused: bool = False) -> None:
        back = not self.s.heard_recently(session)
        session.info.last_heartbeat = self.s.clock()
        session.draining = session.draining or draining
        resumed = session.paused and not paused
        session.paused = paused
        deadline = self.s.lease_deadline()
        for run_id, attempt in held.items():
            run = self.s.runs.get(run_id)
            if run is None:
                continue
            if run.worker_id == session.info.id and run.attempt == attempt \
                    and run.state.is_active:
                run.lease_expires_at = deadline
            elif (run_id, attempt) not in session.stale_stops and (
                    run.worker_id != session.info.id or run.attempt != attempt
                    or run.state.is_ended):
                # The worker runs an attempt we no longer count on (its lease expired while it
                # was frozen or cut off): stop that process, and only that one.
                session.stale_stops.add((run_id, attempt))
                self.s.send(session.info.id, StopOrder(
                    run_id, f"attempt {attempt} is no longer this worker's (its lease expired;"
                    f" the run is now attempt {run.attempt}, {run.state.value})", attempt))
        if back:
            log.info("worker %s is heard from again", session.info.id)
        elif resumed:
            log.info("worker %s takes runs again", session.info.id)
        if resumed or back:
            self.scheduler.schedule()

    def worker_message(self, session: WorkerSession, seq: int, event: WorkerEvent) -> None:
        """Applies one state-changing message exactly once and acknowledges it.

        Sequenced messages (seq > 0) are applied in order, each seq right after the last one
        applied: an ack is cumulative, so a message after a gap is refused (FailedPrecondition,
        the stream ends) rather than acknowledged with the missing ones. A write that fails
        raises Unavailable with nothing applied or acknowledged: the worker resends it.
        """
        worker_id = session.info.id
        if seq and seq <= session.info.applied_seq:
            self.s.send(worker_id, AckOrder(seq))  # a resend of something already applied
            return
        _check_next_seq(session, seq)
        refused = ""
        with self.s.commit():
            try:
                self._apply(session, event)
            except Unavailable:
                raise  # not a refusal: nothing is kept, the worker sends it again
            except (FailedPrecondition, PermissionDenied, NotFound) as exc:
                refused = str(exc)
                log.warning("worker %s: refused %s: %s", worker_id, type(event).__name__, exc)
                self.s.send(worker_id, StopOrder(event.run_id, refused, event.attempt))
            except SweepdError as exc:  # over a limit: refused, the run itself may go on
                refused = str(exc)
                log.warning("worker %s: refused %s: %s", worker_id, type(event).__name__, exc)
            if seq:
                session.info.applied_seq = seq
                self.s.store.set_applied_seq(worker_id, seq)
        if seq:
            self.s.send(worker_id, AckOrder(seq, refused))
        self.scheduler.schedule()

    def refuse_message(self, session: WorkerSession, seq: int, reason: str) -> None:
        """A malformed sequenced message: acknowledged as refused, and counted as applied so
        that the worker's next message is not taken for one after a gap."""
        if not seq:
            return
        if seq > session.info.applied_seq:
            _check_next_seq(session, seq)
            with self.s.commit():
                session.info.applied_seq = seq
                self.s.store.set_applied_seq(session.info.id, seq)
        self.s.send(session.info.id, AckOrder(seq, reason))

    def _apply(self, session: WorkerSession, event: WorkerEvent) -> None:
        run = held_run(self.s, event.run_id, event.attempt, session.info.id)
        if isinstance(event, RunStartedEvent):
            self.t.mark_started(run, event.argv, event.time)
        elif isinstance(event, MetricsEvent):
            self.t.record_metrics(run, event.records)
        elif event.state is RunState.PENDING:
            session.active_runs.discard(run.id)
            self.t.release(run, event.reason or f"handed back by {session.info.id}")
        else:
            session.active_runs.discard(run.id)
            run.log_tail = event.log_tail[-LOG_TAIL_MAX_BYTES:]
            self.t.finish(run, event.state, event.exit_code, event.reason, event.time)


def _check_hello(hello: Hello) -> None:
    names.check_holder_id("hello.worker_id", hello.worker_id, worker=True)
    limits.check_text("hello.host", hello.host, "MAX_NAME_LENGTH")
    if hello.slots > limits.MAX_WORKER_SLOTS:
        raise InvalidArgument(f"hello.slots: {hello.slots}, over the limit of"
                              f" {limits.MAX_WORKER_SLOTS} (MAX_WORKER_SLOTS)")
    if len(hello.labels) > limits.MAX_LABELS:
        raise InvalidArgument(f"hello.labels: {len(hello.labels)}, over the limit of"
                              f" {limits.MAX_LABELS} (MAX_LABELS)")
    for key, value in hello.labels.items():
        limits.check_text("hello.labels", key + value)


def _check_next_seq(session: WorkerSession, seq: int) -> None:
    expected = session.info.applied_seq + 1
    if seq and seq != expected:
        raise FailedPrecondition(
            f"seq: {seq} skips ahead of {expected}, the next message this coordinator"
            f" expects from worker {session.info.id}; reconnect and resend every"
            " unacknowledged message in order from the welcome's applied_seq"
        )
