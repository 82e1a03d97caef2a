"""The dispatcher: the one owner of the coordinator's mutable state.

It holds the in-memory view of every sweep, run and connected worker, applies every state
transition (committing it to the store first), matches free worker slots to runnable sweeps,
and emits orders (assign, stop, drain, ack) for the worker sessions to send.

Concurrency: every method runs on the coordinator's asyncio event loop, so no two
transitions interleave and no locks are needed. The only work that leaves the loop is search
for model-based methods, which runs in an executor and comes back through ``_on_prepared``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import math
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from . import limits, names
from .config import SweepConfig, nest, parse_config, render_argv, render_command
from .domain import (
    DEFAULT_QUEUE,
    AckOrder,
    AssignOrder,
    DrainOrder,
    MetricRecord,
    Order,
    Run,
    RunState,
    StopOrder,
    Sweep,
    SweepState,
    WorkerInfo,
)
from .errors import (
    AlreadyExists,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    ResourceExhausted,
    SweepdError,
    Unavailable,
)
from .restore import restore_from_store
from .search import rng_for, suggest
from .search.base import Suggestion, Trial, TrialState
from .store import Store, Touched

log = logging.getLogger("sweepd.coordinator")

# Heartbeats: the worker proposes an interval and the coordinator clamps it. Below 0.2 s the
# heartbeats themselves become load; above 60 s a dead worker would hold its runs too long.
MIN_HEARTBEAT_INTERVAL_S = 0.2
MAX_HEARTBEAT_INTERVAL_S = 60.0
DEFAULT_HEARTBEAT_INTERVAL_S = 5.0
# A lease survives this many missed heartbeats: one lost packet or a GC pause must not make a
# run LOST, but a dead node should give its runs back within about half a minute. The lease is
# --lease-seconds exactly; the heartbeat interval is shortened to fit this many into it.
LEASE_HEARTBEATS = 6
DEFAULT_LEASE_S = DEFAULT_HEARTBEAT_INTERVAL_S * LEASE_HEARTBEATS
# The shortest lease that still fits LEASE_HEARTBEATS heartbeats at the fastest rate
# (MIN_HEARTBEAT_INTERVAL_S * LEASE_HEARTBEATS, written out: the product is not exact).
MIN_LEASE_S = 1.2
# A worker session heard from within this many heartbeat intervals is live: another process
# claiming its worker id is refused. Three missed beats: a process that died with its stream
# half open (a rebooted node) frees its id within seconds, a busy live one keeps it.
LIVE_SESSION_HEARTBEATS = 3
# How often leases are checked: well under a heartbeat interval, cheap (an in-memory scan).
LEASE_CHECK_INTERVAL_S = 0.5
# A LOST run is tried again this many times before it stays LOST.
DEFAULT_MAX_RETRIES = 2
# After a restart, workers get at least this long to reconnect and claim their runs before a
# lease can expire: their reconnect backoff is capped at 5 s (worker/daemon.py), so two full
# backoffs fit, whatever --lease-seconds is.
RECONNECT_GRACE_S = 10.0
# Methods cheap enough (microseconds to a few ms) to run on the event loop. Model-based
# methods run in the executor and are prepared ahead of the next free slot.
INLINE_METHODS = frozenset({"grid", "random"})
# How often an ask/report client waiting on a suggestion being prepared checks for it.
PREPARE_POLL_S = 0.005
# Live output kept per running run for `sweep logs --follow`: enough for a screenful of
# context and then some, bounded so that a chatty run cannot grow the coordinator's memory.
LIVE_LOG_MAX_BYTES = 256 * 1024
# The stored tail of an ended run's output; the worker sends no more than this either.
LOG_TAIL_MAX_BYTES = 64 * 1024


@dataclass(frozen=True)
class RunStartedEvent:
    run_id: str
    attempt: int
    argv: list[str]
    time: float


@dataclass(frozen=True)
class MetricsEvent:
    run_id: str
    attempt: int
    records: list[MetricRecord]


@dataclass(frozen=True)
class RunFinishedEvent:
    run_id: str
    attempt: int
    state: RunState
    exit_code: int | None
    reason: str
    time: float
    log_tail: str = ""


@dataclass
class LiveLog:
    """The recent output of a live run: bytes from absolute offset ``start`` on."""

    attempt: int = 0
    data: bytearray = field(default_factory=bytearray)
    start: int = 0
    ended: bool = False

    @property
    def end(self) -> int:
        return self.start + len(self.data)

    def append(self, chunk: bytes) -> None:
        self.data += chunk
        excess = len(self.data) - LIVE_LOG_MAX_BYTES
        if excess > 0:
            del self.data[:excess]
            self.start += excess

    def since(self, offset: int) -> tuple[bytes, int]:
        """The bytes from ``offset`` on (from the oldest kept, if older) and the new offset."""
        offset = max(offset, self.start)
        return bytes(self.data[offset - self.start:]), self.end


WorkerEvent = RunStartedEvent | MetricsEvent | RunFinishedEvent


@dataclass(frozen=True)
class Hello:
    worker_id: str
    incarnation: str
    host: str
    slots: int
    labels: dict[str, str]
    held_runs: dict[str, int]  # run id -> attempt
    sweep_id: str
    heartbeat_interval_s: float
    max_runs: int
    runs_assigned: int
    gpus: list[str] = field(default_factory=list)
    queues: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Welcome:
    heartbeat_interval_s: float
    lease_s: float
    stop_run_ids: list[str]
    applied_seq: int
    # The same runs as stop_run_ids, each with the attempt to stop.
    stop_runs: dict[str, int] = field(default_factory=dict)


@dataclass
class WorkerSession:
    """A connected worker: its stream's outbox and what it is doing now."""

    info: WorkerInfo
    outbox: asyncio.Queue[Order | None]
    heartbeat_interval_s: float
    max_runs: int
    runs_assigned: int
    active_runs: set[str] = field(default_factory=set)
    draining: bool = False
    # (run, attempt) pairs this session was told to stop because it holds a stale attempt:
    # each is told once, not on every heartbeat.
    stale_stops: set[tuple[str, int]] = field(default_factory=set)
    # Backing off after runs that kept failing at start; unlike draining, it ends.
    paused: bool = False

    @property
    def free_slots(self) -> int:
        if self.draining or self.paused:
            return 0
        free = self.info.slots - len(self.active_runs)
        if self.max_runs:
            free = min(free, self.max_runs - self.runs_assigned)
        return max(free, 0)


@dataclass
class _Asking:
    """Serialises one client id's SuggestRun calls on one sweep: a call that waits for a
    suggestion being prepared must not let a concurrent call of the same client take a second
    run."""

    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    callers: int = 0


@dataclass
class _Prepared:
    suggestion: Suggestion | None
    version: int


@dataclass(eq=False)
class SweepWatch:
    """One WatchSweep stream's news: the runs saved since it last looked, in order."""

    runs: dict[str, None] = field(default_factory=dict)
    wake: asyncio.Event = field(default_factory=asyncio.Event)

    def note(self, run_id: str) -> None:
        self.runs[run_id] = None
        self.wake.set()

    def take(self) -> list[str]:
        self.wake.clear()
        run_ids, self.runs = list(self.runs), {}
        return run_ids


@dataclass
class SweepView:
    """The in-memory view of one sweep, rebuilt from the store at start-up."""

    sweep: Sweep
    config: SweepConfig
    runs: dict[str, Run] = field(default_factory=dict)
    # Every logged value of the sweep metric per run (current attempt), for stopping rules.
    histories: dict[str, list[float]] = field(default_factory=dict)
    # Bumped whenever anything search reads changes; a prepared suggestion from an older
    # version is discarded rather than risk repeating a point.
    version: int = 0
    prepared: _Prepared | None = None
    preparing: bool = False

    # Kept current by run_saved() so that scheduling and search cost no pass over every run
    # of a long sweep: the active and pending runs, and search's view of each run (rebuilt
    # only for the runs saved since the last suggestion), in creation order.
    active: set[str] = field(default_factory=set)
    pending: set[str] = field(default_factory=set)
    trials: dict[str, Trial] = field(default_factory=dict)
    stale_trials: set[str] = field(default_factory=set)
    watches: list[SweepWatch] = field(default_factory=list)

    @property
    def metric_name(self) -> str:
        return self.config.metric.name if self.config.metric else ""

    def run_saved(self, run: Run) -> None:
        """Called with every run of the sweep whenever it is stored (created or changed)."""
        self.stale_trials.add(run.id)
        for watch in self.watches:
            watch.note(run.id)
        if run.state.is_active:
            self.active.add(run.id)
        else:
            self.active.discard(run.id)
        if run.state is RunState.PENDING:
            self.pending.add(run.id)
        else:
            self.pending.discard(run.id)

    def active_count(self) -> int:
        return len(self.active)

    def pending_runs(self) -> list[Run]:
        return sorted((self.runs[run_id] for run_id in self.pending), key=lambda r: r.number)


_TRIAL_STATE: dict[RunState, TrialState] = {
    RunState.PENDING: "pending",
    RunState.ASSIGNED: "pending",
    RunState.RUNNING: "running",
    RunState.FINISHED: "finished",
    RunState.FAILED: "failed",
    RunState.STOPPED: "stopped",
    RunState.LOST: "failed",
    RunState.CANCELED: "failed",
}


def is_better(goal: str, a: float, b: float) -> bool:
    return a > b if goal == "maximize" else a < b


def _check_text(field: str, value: str, limit: int = limits.MAX_TEXT_LENGTH) -> None:
    if len(value) > limit:
        name = "MAX_NAME_LENGTH" if limit == limits.MAX_NAME_LENGTH else "MAX_TEXT_LENGTH"
        raise InvalidArgument(f"{field}: {len(value)} characters, over the limit of {limit}"
                              f" ({name})")


def check_record_order(run: Run, records: Sequence[MetricRecord]) -> list[MetricRecord]:
    """The records of a batch not stored yet, in index order; refuses a batch that would
    leave a hole in the run's history or that holds one index twice.

    A run's history is the records 0, 1, 2 ... with no gaps, so every index below
    ``next_record_index`` is stored: a record below it is a resend and is skipped (it was
    stored before, it is not dropped). A record beyond the next expected index is refused,
    with the whole batch, naming the index to send first: storing it would make the missing
    ones look like resends later.
    """
    seen: dict[int, int] = {}
    for i, rec in enumerate(records):
        if rec.index in seen:
            raise InvalidArgument(
                f"records[{i}].index: {rec.index} appears twice in this batch (also at"
                f" records[{seen[rec.index]}]); give each record its own index"
            )
        seen[rec.index] = i
    fresh = sorted((r for r in records if r.index >= run.next_record_index),
                   key=lambda r: r.index)
    expected = run.next_record_index
    for rec in fresh:
        if rec.index != expected:
            raise InvalidArgument(
                f"records[{seen[rec.index]}].index: {rec.index} skips ahead; run {run.id}"
                f" (attempt {run.attempt}) has records 0..{run.next_record_index - 1} and the"
                f" next it accepts is {expected}: send the records from {expected} on first"
                " (nothing of this batch was stored)"
            )
        expected += 1
    return fresh


def check_records(records: Sequence[MetricRecord]) -> None:
    """Refuses a metric batch over the limits, naming the limit."""
    if len(records) > limits.MAX_METRIC_BATCH:
        raise ResourceExhausted(f"records: {len(records)} in one batch, over the limit of"
                                f" {limits.MAX_METRIC_BATCH} (MAX_METRIC_BATCH)")
    for i, rec in enumerate(records):
        if len(rec.values) > limits.MAX_METRIC_VALUES:
            raise ResourceExhausted(f"records[{i}].values: {len(rec.values)}, over the limit"
                                    f" of {limits.MAX_METRIC_VALUES} (MAX_METRIC_VALUES)")
        for key in rec.values:
            if len(key) > limits.MAX_NAME_LENGTH:
                raise InvalidArgument(f"records[{i}].values: a name of {len(key)} characters,"
                                      f" over the limit of {limits.MAX_NAME_LENGTH}"
                                      " (MAX_NAME_LENGTH)")


def _finite(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def read_config(config_text: str, source_name: str = "") -> SweepConfig:
    """A sweep's configuration text, checked against the limits and parsed.

    Pure and thread-safe: CPU-bound on a large config, so the servicer runs it in an executor
    and a config cannot stall the event loop (heartbeats, every other call).
    """
    size = len(config_text.encode("utf-8", "surrogatepass"))
    if size > limits.MAX_CONFIG_BYTES:
        raise ResourceExhausted(f"config_text: {size} bytes, over the limit of"
                                f" {limits.MAX_CONFIG_BYTES} (MAX_CONFIG_BYTES)")
    _check_text("source_name", source_name)
    try:
        config = parse_config(config_text, filename=source_name or None)
    except SweepdError:
        raise
    except Exception as exc:
        # The parser should report every problem itself; this keeps one it missed (a YAML
        # reader error on control characters, say) a refusal rather than a server fault.
        log.warning("config parser raised %s; refused as invalid", type(exc).__name__)
        raise InvalidArgument(f"config_text: cannot be read: {exc}") from None
    if len(config.parameters) > limits.MAX_PARAMETERS:
        raise InvalidArgument(f"parameters: {len(config.parameters)}, over the limit of"
                              f" {limits.MAX_PARAMETERS} (MAX_PARAMETERS)")
    return config


class Dispatcher:
    def __init__(
        self,
        store: Store,
        *,
        clock: Callable[[], float] = time.time,
        executor: Executor | None = None,
        lease_s: float = DEFAULT_LEASE_S,
        max_retries: int = DEFAULT_MAX_RETRIES,
    ) -> None:
        self.store = store
        self.clock = clock
        self.executor = executor
        self.lease_s = lease_s
        self.max_retries = max_retries
        self.sweeps: dict[str, SweepView] = {}
        self.runs: dict[str, Run] = {}
        self.workers: dict[str, WorkerInfo] = {}
        self.sessions: dict[str, WorkerSession] = {}
        self._outgoing: list[tuple[str, Order]] = []
        self._asking: dict[tuple[str, str], _Asking] = {}
        # The worker that last lost each run awaiting retry: another free worker gets it first
        # (a worker that froze past its lease may freeze again).
        self._lost_by: dict[str, str] = {}
        # Output of live runs, for `sweep logs --follow`; in memory only (the final tail is
        # stored when the run ends).
        self.live_logs: dict[str, LiveLog] = {}
        # Where the current transaction's orders begin in _outgoing: a rolled-back transaction
        # takes its orders with it.
        self._outgoing_mark = 0
        self._draining_mark: dict[str, bool] = {}
        # A scheduling pass was cut short by a failed write: the lease check runs another.
        self._reschedule = False
        self._load()
        store.add_listener(self)

    # -- start-up -------------------------------------------------------------------------

    def _load(self) -> None:
        now = self.clock()
        for sweep in self.store.load_sweeps():
            try:
                config = parse_config(sweep.config_text)
            except SweepdError as exc:  # a config this version refuses: keep it visible
                log.error("sweep %s has a config this version refuses: %s", sweep.id, exc)
                continue
            self.sweeps[sweep.id] = SweepView(sweep=sweep, config=config)
        for run in self.store.load_runs():
            view = self.sweeps.get(run.sweep_id)
            if view is None:
                continue
            view.runs[run.id] = run
            self.runs[run.id] = run
            view.run_saved(run)
            if run.state.is_active:
                # Workers and ask/tell clients get one lease length from our start to come
                # back and renew; their clocks and ours may differ, so no lease survives a
                # restart as is.
                run.lease_expires_at = now + max(self.lease_s, RECONNECT_GRACE_S)
            if view.metric_name and not run.state.is_ended:
                view.histories[run.id] = [
                    rec.values[view.metric_name]
                    for rec in self.store.metric_history(run.id, run.attempt)
                    if view.metric_name in rec.values
                ]
        for w in self.store.load_workers():
            self.workers[w.id] = w

    # -- failed commits (store.TransactionListener) ---------------------------------------

    def transaction_began(self) -> None:
        self._outgoing_mark = len(self._outgoing)
        # Ending a sweep drains its workers inside the transaction (memory only).
        self._draining_mark = {w: s.draining for w, s in self.sessions.items()}

    def transaction_failed(self, touched: Touched | None) -> None:
        """A transaction was rolled back: nothing it changed may stay in memory or go out."""
        del self._outgoing[self._outgoing_mark:]
        for worker_id, draining in self._draining_mark.items():
            session = self.sessions.get(worker_id)
            if session is not None:
                session.draining = draining
        restore_from_store(self, max(self.lease_s, RECONNECT_GRACE_S), touched)

    # -- sweeps ---------------------------------------------------------------------------

    def create_sweep(self, config_text: str, source_name: str = "", *, queue: str = "",
                     max_concurrent: int = 0, max_retries: int | None = None,
                     config: SweepConfig | None = None) -> SweepView:
        """``config``: ``config_text`` already read by :func:`read_config` (the servicer does
        that off the event loop); read here when not given."""
        if max_concurrent < 0:
            raise InvalidArgument(f"max_concurrent: {max_concurrent} is negative; 0 for no limit")
        _check_text("queue", queue, limits.MAX_NAME_LENGTH)
        if config is None:
            config = read_config(config_text, source_name)
        if max_retries is None:
            max_retries = config.max_retries
        elif not 0 <= max_retries <= limits.MAX_RETRIES_LIMIT:
            raise InvalidArgument(f"max_retries: {max_retries} is not between 0 and"
                                  f" {limits.MAX_RETRIES_LIMIT} (MAX_RETRIES_LIMIT)")
        now = self.clock()
        sweep_id = names.new_sweep_id()
        while sweep_id in self.sweeps:
            sweep_id = names.new_sweep_id()
        sweep = Sweep(
            id=sweep_id, config_text=config_text, state=SweepState.RUNNING, created_at=now,
            updated_at=now, name=config.name or "", state_reason="created",
            queue=queue or DEFAULT_QUEUE, max_concurrent=max_concurrent,
            max_retries=max_retries,
        )
        self.store.insert_sweep(sweep)
        view = SweepView(sweep=sweep, config=config)
        self.sweeps[sweep_id] = view
        log.info("sweep %s created (%s, %d parameters)", sweep_id, config.method,
                 len(config.parameters))
        self._schedule()
        return view

    def get_sweep(self, sweep_id: str) -> SweepView:
        view = self.sweeps.get(sweep_id)
        if view is None:
            raise NotFound(f"no sweep {sweep_id!r}; `sweep list` shows the sweeps there are")
        return view

    def pause(self, sweep_id: str) -> SweepView:
        view = self.get_sweep(sweep_id)
        if view.sweep.state is SweepState.PAUSED:
            return view
        if view.sweep.state is not SweepState.RUNNING:
            raise FailedPrecondition(
                f"sweep {sweep_id} is {view.sweep.state.value}; only a RUNNING sweep can pause"
            )
        self._set_sweep_state(view, SweepState.PAUSED, "paused by user")
        return view

    def resume(self, sweep_id: str) -> SweepView:
        view = self.get_sweep(sweep_id)
        state = view.sweep.state
        if state is SweepState.RUNNING:
            return view
        if state is SweepState.CANCELED:
            raise FailedPrecondition(
                f"sweep {sweep_id} was canceled and cannot resume; create a new sweep from its"
                " config instead"
            )
        # A finished or stopped sweep may resume: it goes on if it has points left, and
        # finishes again at once if not.
        view.sweep.exhausted_reason = ""
        self._set_sweep_state(view, SweepState.RUNNING, "resumed by user")
        self._schedule()
        self._maybe_finish(view)
        self._flush()
        return view

    def stop(self, sweep_id: str) -> SweepView:
        view = self.get_sweep(sweep_id)
        if view.sweep.state.is_ended:
            raise FailedPrecondition(
                f"sweep {sweep_id} is already {view.sweep.state.value}"
            )
        with self.store.transaction():
            for run in view.pending_runs():
                self._end_run(run, RunState.CANCELED, "sweep stopped before the run started")
            self._set_sweep_state(view, SweepState.STOPPED, "stopped by user")
        self._drain_sweep_workers(view)
        self._flush()
        return view

    def cancel(self, sweep_id: str) -> SweepView:
        view = self.get_sweep(sweep_id)
        if view.sweep.state.is_ended and view.sweep.state is not SweepState.STOPPED:
            raise FailedPrecondition(f"sweep {sweep_id} is already {view.sweep.state.value}")
        with self.store.transaction():
            for run in view.pending_runs():
                self._end_run(run, RunState.CANCELED, "sweep canceled before the run started")
            for run in view.runs.values():
                if run.state.is_active and run.stop is None:
                    self._request_stop(run, {"rule": "cancel", "reason": "sweep canceled"})
            self._set_sweep_state(view, SweepState.CANCELED, "canceled by user")
        self._drain_sweep_workers(view)
        self._flush()
        return view

    def retry_runs(self, sweep_id: str, *, failed: bool, lost: bool) -> list[Run]:
        """Puts the sweep's FAILED and/or LOST runs back in the queue (PENDING, attempt kept:
        the next assignment counts it on); a FINISHED or STOPPED sweep runs again."""
        if not (failed or lost):
            raise InvalidArgument("say which runs to retry: failed and/or lost")
        view = self.get_sweep(sweep_id)
        if view.sweep.state is SweepState.CANCELED:
            raise FailedPrecondition(f"sweep {sweep_id} was canceled; its runs cannot be retried")
        wanted = {s for s, on in ((RunState.FAILED, failed), (RunState.LOST, lost)) if on}
        runs = [r for r in view.runs.values() if r.state in wanted]
        if not runs:
            return []
        now = self.clock()
        with self.store.transaction():
            for run in runs:
                was = run.state.value
                run.state = RunState.PENDING
                run.worker_id = ""
                run.reason = ""
                run.exit_code = None
                run.started_at = None
                run.ended_at = None
                run.lease_expires_at = None
                run.stop = None
                run.summary = {}
                run.next_record_index = 0
                run.log_tail = ""
                view.histories.pop(run.id, None)
                self._save_run(run)
                self.store.record_event(run, now, f"queued for retry by user (was {was})")
            if view.sweep.state is not SweepState.RUNNING:
                self._set_sweep_state(view, SweepState.RUNNING,
                                      f"{len(runs)} run(s) retried by user")
            view.version += 1
        self._schedule()
        return runs

    def events(self, run: Run) -> list[dict[str, Any]]:
        return self.store.run_events(run.id)

    def watch(self, sweep_id: str) -> tuple[SweepView, SweepWatch]:
        """Starts following a sweep's changes; end with unwatch()."""
        view = self.get_sweep(sweep_id)
        watch = SweepWatch()
        view.watches.append(watch)
        return view, watch

    def unwatch(self, view: SweepView, watch: SweepWatch) -> None:
        if watch in view.watches:
            view.watches.remove(watch)

    def watch_is_over(self, view: SweepView) -> bool:
        """Nothing more will happen to the sweep unless a user revives it."""
        return view.sweep.state.is_ended and view.active_count() == 0

    def _set_sweep_state(self, view: SweepView, state: SweepState, reason: str) -> None:
        view.sweep.state = state
        view.sweep.state_reason = reason
        view.sweep.updated_at = self.clock()
        self.store.update_sweep(view.sweep)
        for watch in view.watches:
            watch.wake.set()
        log.info("sweep %s -> %s (%s)", view.sweep.id, state.value, reason)

    def _maybe_finish(self, view: SweepView) -> None:
        """A sweep with nothing left to create finishes when its last run ends."""
        sweep = view.sweep
        if sweep.state.is_ended:
            return
        if not sweep.exhausted_reason:
            cap = view.config.run_cap
            if cap is not None and sweep.run_count >= cap:
                sweep.exhausted_reason = f"run_cap {cap} reached"
            else:
                return
        if view.active_count() or view.pending_runs():
            return
        self._set_sweep_state(view, SweepState.FINISHED, sweep.exhausted_reason)
        self._drain_sweep_workers(view)

    def _drain_sweep_workers(self, view: SweepView) -> None:
        """Workers bound to a sweep that ended finish their runs and exit."""
        for session in self.sessions.values():
            if session.info.sweep_id == view.sweep.id and not session.draining:
                session.draining = True
                self._send(session.info.id, DrainOrder(
                    f"sweep {view.sweep.id} is {view.sweep.state.value}"
                    f" ({view.sweep.state_reason})"
                ))

    # -- runs: queries --------------------------------------------------------------------

    def get_run(self, run_id: str) -> Run:
        run = self.runs.get(run_id)
        if run is None:
            raise NotFound(f"no run {run_id!r}; `sweep runs SWEEP_ID` lists a sweep's runs")
        return run

    def best_run(self, view: SweepView) -> Run | None:
        metric = view.config.metric
        if metric is None:
            return None
        best: Run | None = None
        for run in view.runs.values():
            # Only a run that ran to its end is a result: a STOPPED one (sent SIGTERM, stopped
            # early) or one still going may hold a value it would not have ended with.
            if run.state is not RunState.FINISHED:
                continue
            value = run.summary.get(metric.name)
            if value is None or not math.isfinite(value):
                continue
            if best is None or is_better(metric.goal, value, best.summary[metric.name]):
                best = run
        return best

    # -- workers --------------------------------------------------------------------------

    def attach_worker(self, hello: Hello) -> tuple[WorkerSession, Welcome]:
        if not hello.worker_id:
            raise InvalidArgument("hello.worker_id: must not be empty")
        _check_text("hello.worker_id", hello.worker_id, limits.MAX_NAME_LENGTH)
        _check_text("hello.host", hello.host, limits.MAX_NAME_LENGTH)
        if hello.slots > limits.MAX_WORKER_SLOTS:
            raise InvalidArgument(f"hello.slots: {hello.slots}, over the limit of"
                                  f" {limits.MAX_WORKER_SLOTS} (MAX_WORKER_SLOTS)")
        if len(hello.labels) > limits.MAX_LABELS:
            raise InvalidArgument(f"hello.labels: {len(hello.labels)}, over the limit of"
                                  f" {limits.MAX_LABELS} (MAX_LABELS)")
        for key, value in hello.labels.items():
            _check_text("hello.labels", key + value)
        now = self.clock()
        old = self.sessions.get(hello.worker_id)
        if (old is not None and old.info.incarnation != hello.incarnation
                and self._heard_recently(old, LIVE_SESSION_HEARTBEATS * old.heartbeat_interval_s)):
            # Two processes with one id would take turns replacing each other's session and
            # lose every run; the one already working keeps the id.
            raise AlreadyExists(
                f"hello.worker_id: {hello.worker_id!r} is in use by a live worker on host"
                f" {old.info.host!r} (connected {now - old.info.connected_at:.0f} s ago, last"
                f" heard {now - old.info.last_heartbeat:.1f} s ago); give each worker its own"
                " --worker-id, or stop the other one"
            )
        known = self.workers.get(hello.worker_id)
        same_incarnation = known is not None and known.incarnation == hello.incarnation
        info = WorkerInfo(
            id=hello.worker_id, incarnation=hello.incarnation, host=hello.host,
            slots=max(hello.slots, 0), labels=dict(hello.labels), sweep_id=hello.sweep_id,
            applied_seq=known.applied_seq if known is not None and same_incarnation else 0,
            connected_at=now, last_heartbeat=now, gpus=list(hello.gpus),
            queues=list(hello.queues) or [DEFAULT_QUEUE],
        )
        old = self.sessions.pop(hello.worker_id, None)
        if old is not None:
            old.outbox.put_nowait(None)  # a stale stream of the same worker: close it
        interval = self._heartbeat_interval(hello.heartbeat_interval_s)
        session = WorkerSession(
            info=info, outbox=asyncio.Queue(), heartbeat_interval_s=interval,
            max_runs=max(hello.max_runs, 0), runs_assigned=max(hello.runs_assigned, 0),
        )
        stop_runs: dict[str, int] = {}
        with self.store.transaction():
            self.store.upsert_worker(info)
            for run_id, attempt in hello.held_runs.items():
                run = self.runs.get(run_id)
                if (run is not None and run.worker_id == info.id and run.attempt == attempt
                        and run.state.is_active):
                    run.lease_expires_at = self._lease_deadline()
                    session.active_runs.add(run_id)
                elif (run is None or not run.state.is_ended or run.worker_id != info.id
                      or run.attempt != attempt):
                    # Not (or no longer) this worker's: ended and retried elsewhere, or
                    # canceled. An ended run of its own is fine: its report is being resent.
                    stop_runs[run_id] = attempt
            for run in list(self.runs.values()):
                if run.worker_id != info.id or not run.state.is_active:
                    continue
                if hello.held_runs.get(run.id) == run.attempt:
                    continue
                # The worker does not know this run: either its previous process died with
                # it, or the assignment never reached it. Either way, nobody runs it.
                why = ("its worker restarted" if not same_incarnation
                       else "the assignment never reached its worker")
                self._lose_run(run, why)
        self.workers[info.id] = info
        self.sessions[info.id] = session
        log.info("worker %s connected from %s (%d slots%s)", info.id, info.host, info.slots,
                 f", sweep {info.sweep_id}" if info.sweep_id else "")
        welcome = Welcome(
            heartbeat_interval_s=interval, lease_s=self.lease_s,
            stop_run_ids=list(stop_runs), applied_seq=info.applied_seq, stop_runs=stop_runs,
        )
        if info.sweep_id:
            view = self.sweeps.get(info.sweep_id)
            if view is None or view.sweep.state.is_ended:
                session.draining = True
                state = "does not exist" if view is None else f"is {view.sweep.state.value}"
                self._send(info.id, DrainOrder(f"sweep {info.sweep_id} {state}"))
        self._schedule()
        return session, welcome

    def detach_worker(self, session: WorkerSession) -> None:
        if self.sessions.get(session.info.id) is session:
            del self.sessions[session.info.id]
            session.info.connected = False
            log.info("worker %s disconnected; its runs keep their leases", session.info.id)

    def run_output(self, session: WorkerSession, run_id: str, attempt: int, data: bytes) -> None:
        """New output of a live run held by the session's worker (best effort, unacknowledged)."""
        run = self.runs.get(run_id)
        if (run is None or run.worker_id != session.info.id or run.attempt != attempt
                or not run.state.is_active):
            return
        live = self.live_logs.get(run_id)
        if live is None or live.attempt != attempt:  # a retried run starts a fresh log
            live = self.live_logs[run_id] = LiveLog(attempt=attempt)
        live.append(data)

    def live_log(self, run_id: str) -> LiveLog | None:
        return self.live_logs.get(run_id)

    def heartbeat(self, session: WorkerSession, held: dict[str, int], draining: bool,
                  paused: bool = False) -> None:
        back = not self._heard_recently(session)
        session.info.last_heartbeat = self.clock()
        session.draining = session.draining or draining
        resumed = session.paused and not paused
        session.paused = paused
        deadline = self._lease_deadline()
        for run_id, attempt in held.items():
            run = self.runs.get(run_id)
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
                self._send(session.info.id, StopOrder(
                    run_id, f"attempt {attempt} is no longer this worker's (its lease expired;"
                    f" the run is now attempt {run.attempt}, {run.state.value})", attempt))
        self._flush()
        if back:
            log.info("worker %s is heard from again", session.info.id)
        elif resumed:
            log.info("worker %s takes runs again", session.info.id)
        if resumed or back:
            self._schedule()

    def worker_message(self, session: WorkerSession, seq: int, event: WorkerEvent) -> None:
        """Applies one state-changing message exactly once and acknowledges it.

        Sequenced messages (seq > 0) are applied in order, each seq right after the last one
        applied: an ack is cumulative, so a message after a gap is refused (FailedPrecondition,
        the stream ends) rather than acknowledged with the missing ones. A write that fails
        raises Unavailable with nothing applied or acknowledged: the worker resends it.
        """
        worker_id = session.info.id
        if seq and seq <= session.info.applied_seq:
            self._send(worker_id, AckOrder(seq))  # a resend of something already applied
            self._flush()
            return
        self._check_next_seq(session, seq)
        refused = ""
        with self.store.transaction():
            try:
                self._apply_worker_event(session, event)
            except Unavailable:
                raise  # not a refusal: nothing is kept, the worker sends it again
            except (FailedPrecondition, PermissionDenied, NotFound) as exc:
                refused = str(exc)
                log.warning("worker %s: refused %s: %s", worker_id, type(event).__name__, exc)
                self._send(worker_id, StopOrder(event.run_id, refused, event.attempt))
            except SweepdError as exc:  # over a limit: refused, the run itself may go on
                refused = str(exc)
                log.warning("worker %s: refused %s: %s", worker_id, type(event).__name__, exc)
            if seq:
                session.info.applied_seq = seq
                self.store.set_applied_seq(worker_id, seq)
        if seq:
            self._send(worker_id, AckOrder(seq, refused))
        self._flush()
        self._schedule()

    def _check_next_seq(self, session: WorkerSession, seq: int) -> None:
        expected = session.info.applied_seq + 1
        if seq and seq != expected:
            raise FailedPrecondition(
                f"seq: {seq} skips ahead of {expected}, the next message this coordinator"
                f" expects from worker {session.info.id}; reconnect and resend every"
                " unacknowledged message in order from the welcome's applied_seq"
            )

    def refuse_worker_message(self, session: WorkerSession, seq: int, reason: str) -> None:
        """A malformed sequenced message: acknowledged as refused, and counted as applied so
        that the worker's next message is not taken for one after a gap."""
        if not seq:
            return
        if seq > session.info.applied_seq:
            self._check_next_seq(session, seq)
            with self.store.transaction():
                session.info.applied_seq = seq
                self.store.set_applied_seq(session.info.id, seq)
        self._send(session.info.id, AckOrder(seq, reason))
        self._flush()

    def _apply_worker_event(self, session: WorkerSession, event: WorkerEvent) -> None:
        run = self._held_run(event.run_id, event.attempt, session.info.id)
        if isinstance(event, RunStartedEvent):
            self._mark_started(run, event.argv, event.time)
        elif isinstance(event, MetricsEvent):
            self._record_metrics(run, event.records)
        elif event.state is RunState.PENDING:
            session.active_runs.discard(run.id)
            self._release(run, event.reason or f"handed back by {session.info.id}")
        else:
            session.active_runs.discard(run.id)
            run.log_tail = event.log_tail[-LOG_TAIL_MAX_BYTES:]
            self._finish(run, event.state, event.exit_code, event.reason, event.time)

    def _held_run(self, run_id: str, attempt: int, worker_id: str) -> Run:
        """The run, if ``worker_id`` holds its current attempt; else a precise refusal."""
        run = self.runs.get(run_id)
        if run is None:
            raise NotFound(f"no run {run_id!r}")
        if 0 < attempt < run.attempt:
            # Checked before the holder: a worker whose lease expired learns why it lost the
            # run (which has since moved on, possibly to another worker).
            raise FailedPrecondition(
                f"run {run_id}: attempt {attempt} is stale, the current attempt is"
                f" {run.attempt} (its lease expired and the run was handed out again)"
            )
        if run.worker_id != worker_id:
            raise PermissionDenied(
                f"run {run_id} is not held by {worker_id}"
                + (f" (it is held by {run.worker_id})" if run.worker_id else "")
            )
        if attempt != run.attempt:
            raise FailedPrecondition(
                f"run {run_id}: attempt {attempt} is stale, the current attempt is"
                f" {run.attempt} (its lease expired and the run was handed out again)"
            )
        if run.state.is_ended:
            raise FailedPrecondition(f"run {run_id} already ended {run.state.value}")
        if not run.state.is_active:
            raise FailedPrecondition(f"run {run_id} is {run.state.value}, not running")
        return run

    # -- run transitions ------------------------------------------------------------------

    def _mark_started(self, run: Run, argv: list[str], when: float) -> None:
        if run.state is RunState.RUNNING:
            return
        run.state = RunState.RUNNING
        run.started_at = when
        run.argv = list(argv)
        self._save_run(run)
        self.store.record_event(run, when, "started")

    def _record_metrics(self, run: Run, records: Sequence[MetricRecord]) -> None:
        check_records(records)
        fresh = check_record_order(run, records)
        if run.state is RunState.ASSIGNED:
            self._mark_started(run, run.argv, self.clock())
        if not fresh:
            return
        self.store.insert_metrics(run.id, run.attempt, fresh)
        view = self.sweeps[run.sweep_id]
        metric = view.config.metric
        history = view.histories.setdefault(run.id, [])
        for rec in fresh:
            for key, value in rec.values.items():
                if not math.isfinite(value) and math.isfinite(run.summary.get(key, 0.0)):
                    # Stored as sent (a diverged loss is a result); said once per change.
                    self.store.record_event(
                        run, self.clock(), f"notice: {key} = {value} at record {rec.index};"
                        " stored, but a value that is not finite never counts for the best"
                        " run, the search or metric.target")
                run.summary[key] = value
            if metric is not None and metric.name in rec.values:
                value = rec.values[metric.name]
                history.append(value)
                self._check_target(view, run, value)
        run.next_record_index = fresh[-1].index + 1
        self._save_run(run)
        if metric is not None and metric.impute_while_running:
            view.version += 1  # running runs' values feed the model only in this mode
        arrived = sum(1 for rec in fresh if metric is not None and metric.name in rec.values)
        if arrived:
            self._evaluate_stopping(view, run, arrived)

    def _check_target(self, view: SweepView, run: Run, value: float) -> None:
        metric = view.config.metric
        if metric is None or metric.target is None or view.sweep.exhausted_reason:
            return
        if not math.isfinite(value):  # -inf "beats" every minimize target
            return
        reached = value >= metric.target if metric.goal == "maximize" else value <= metric.target
        if reached:
            view.sweep.exhausted_reason = (
                f"metric.target {metric.target} reached by run {run.id} ({metric.name}={value})"
            )
            self.store.update_sweep(view.sweep)
            log.info("sweep %s: %s", view.sweep.id, view.sweep.exhausted_reason)

    def _evaluate_stopping(self, view: SweepView, run: Run, arrived: int) -> None:
        """Judges the run that just reported, on every report (not on a timer)."""
        rule = view.config.early_terminate
        metric = view.config.metric
        if rule is None or run.stop is not None or metric is None:
            return
        decision = rule.should_stop_run(run.id, view.histories, metric.goal, arrived=arrived,
                                        metric=metric.name)
        if decision is not None:
            self._request_stop(run, {
                "rule": decision.rule, "reason": decision.reason, "band": decision.band,
                "threshold": decision.threshold, "value": decision.value,
            })

    def _request_stop(self, run: Run, stop: dict[str, Any]) -> None:
        """Stores the decision with the run, then (after commit) sends the stop order."""
        run.stop = stop
        run.reason = str(stop.get("reason", ""))
        self._save_run(run)
        self.store.record_event(run, self.clock(), f"stop requested: {run.reason}")
        if run.worker_id in self.sessions:
            self._send(run.worker_id, StopOrder(run.id, run.reason, run.attempt))

    def _finish(
        self, run: Run, state: RunState, exit_code: int | None, reason: str, when: float
    ) -> None:
        if run.stop is not None:
            # A run we asked to stop ends STOPPED however it exited (a clean exit after
            # checkpointing included); its reason is our decision.
            state, reason = RunState.STOPPED, run.reason
        run.exit_code = exit_code
        self._end_run(run, state, reason, when=when)
        view = self.sweeps[run.sweep_id]
        view.version += 1
        self._maybe_finish(view)

    def _end_run(self, run: Run, state: RunState, reason: str, when: float | None = None) -> None:
        live = self.live_logs.pop(run.id, None)
        if live is not None:
            live.ended = True  # followers holding it read what is left, then stop
        run.state = state
        run.reason = reason
        run.ended_at = self.clock() if when is None else when
        run.lease_expires_at = None
        self._save_run(run)
        self.store.record_event(run, run.ended_at, reason or state.value.lower())
        log.info("run %s -> %s%s", run.id, state.value, f" ({reason})" if reason else "")

    def _release(self, run: Run, why: str) -> None:
        """A worker handed back a run it never started: queue it again, attempt unspent."""
        if run.state is not RunState.ASSIGNED:
            raise FailedPrecondition(f"run {run.id} is {run.state.value}; only an ASSIGNED run"
                                     " can be handed back")
        run.state = RunState.PENDING
        run.worker_id = ""
        run.attempt -= 1  # the next assignment counts it again
        run.lease_expires_at = None
        self._save_run(run)
        self.store.record_event(run, self.clock(), why)
        self.sweeps[run.sweep_id].version += 1

    def _lose_run(self, run: Run, why: str) -> None:
        """The run's worker is gone: record LOST, then retry the point if retries remain."""
        session = self.sessions.get(run.worker_id)
        if session is not None:
            session.active_runs.discard(run.id)
        now = self.clock()
        run.state = RunState.LOST
        run.reason = why
        self.store.record_event(run, now, f"lost: {why}")
        view = self.sweeps[run.sweep_id]
        view.histories.pop(run.id, None)
        if run.attempt <= self.retries_of(view) and not view.sweep.state.is_ended:
            self._lost_by[run.id] = run.worker_id
            run.state = RunState.PENDING
            run.worker_id = ""
            run.lease_expires_at = None
            run.stop = None
            run.summary = {}
            run.next_record_index = 0
            run.started_at = None
            self._save_run(run)
            self.store.record_event(run, now, "queued for retry")
            log.warning("run %s lost (%s); retrying (attempt %d of %d)", run.id, why,
                        run.attempt + 1, self.retries_of(view) + 1)
        else:
            self._end_run(run, RunState.LOST, f"lost: {why}")
            self._maybe_finish(view)
        view.version += 1

    def retries_of(self, view: SweepView) -> int:
        """The sweep's retry limit: its own if it set one, else the coordinator's."""
        own = view.sweep.max_retries
        return self.max_retries if own is None else own

    def expire_leases(self) -> int:
        """Makes every run whose lease ran out LOST. Returns how many."""
        if self._reschedule:
            self._reschedule = False
            self._schedule()
        now = self.clock()
        expired = [
            r for r in self.runs.values()
            if r.state.is_active and r.lease_expires_at is not None and r.lease_expires_at < now
        ]
        if not expired:
            return 0
        with self.store.transaction():
            for run in expired:
                if names.is_client_worker(run.worker_id):
                    why = (f"no SuggestRun or ReportMetrics from {run.worker_id} within the"
                           f" lease ({self.lease_s:g} s)")
                else:
                    why = f"no heartbeat from {run.worker_id} within the lease ({self.lease_s:g} s)"
                self._lose_run(run, why)
        self._flush()
        self._schedule()
        return len(expired)

    def _heartbeat_interval(self, proposed: float) -> float:
        """The worker's proposal, clamped, and short enough that LEASE_HEARTBEATS fit in the
        lease: the lease is what --lease-seconds says, whatever the worker proposes."""
        if not math.isfinite(proposed) or proposed <= 0:
            proposed = DEFAULT_HEARTBEAT_INTERVAL_S
        interval = min(proposed, MAX_HEARTBEAT_INTERVAL_S, self.lease_s / LEASE_HEARTBEATS)
        return max(interval, MIN_HEARTBEAT_INTERVAL_S)

    def _lease_deadline(self) -> float:
        return self.clock() + self.lease_s

    def _heard_recently(self, session: WorkerSession, within: float | None = None) -> bool:
        """Whether the session's worker sent a heartbeat within ``within`` seconds (default:
        a lease). One that did not is frozen or cut off: it gets no new runs until it does."""
        within = self.lease_s if within is None else within
        return self.clock() - session.info.last_heartbeat <= within

    # -- ask / report / finish (programs without a worker daemon) -------------------------

    async def suggest_for_client(
        self, sweep_id: str, client_id: str
    ) -> tuple[Run | None, bool]:
        """(run, sweep_done). Idempotent per client id while the client's run is active, also
        for concurrent calls; each call renews the lease of the run it returns."""
        if not client_id:
            raise InvalidArgument("client_id: must not be empty (use any stable string)")
        if len(client_id) > names.MAX_CLIENT_ID_LENGTH:
            raise InvalidArgument(
                f"client_id: {len(client_id)} characters, at most {names.MAX_CLIENT_ID_LENGTH}"
            )
        view = self.get_sweep(sweep_id)
        key = (sweep_id, client_id)
        asking = self._asking.setdefault(key, _Asking())
        asking.callers += 1
        try:
            async with asking.lock:
                return await self._suggest_for_client(view, names.client_worker_id(client_id))
        finally:
            asking.callers -= 1
            if not asking.callers:
                del self._asking[key]

    async def _suggest_for_client(self, view: SweepView, worker_id: str
                                  ) -> tuple[Run | None, bool]:
        for run_id in view.active:
            run = view.runs[run_id]
            if run.worker_id == worker_id:
                run.lease_expires_at = self._lease_deadline()
                return run, False
        if view.sweep.state.is_ended:
            return None, True
        if not view.sweep.state.creates_runs:
            return None, False
        if view.sweep.max_concurrent and view.active_count() >= view.sweep.max_concurrent:
            return None, False  # ask again later, as when paused
        while True:
            pending = view.pending_runs()
            if pending:
                with self.store.transaction():
                    run = self._assign_existing(view, pending[0], worker_id)
                break
            suggestion = self._next_suggestion(view)
            if suggestion is not None:
                with self.store.transaction():
                    run = self._create_run(view, suggestion, worker_id)
                break
            if view.sweep.exhausted_reason:
                self._maybe_finish(view)
                self._flush()
                # Done only once the sweep ended: until then a run still going may be lost
                # and come back for retry, and this client may be the one to take it.
                return None, view.sweep.state.is_ended
            # Being prepared off the loop: wait for it, then take it if still current.
            await self._prepare_now(view)
            if not view.sweep.state.creates_runs:
                return None, view.sweep.state.is_ended
        self._flush()
        return run, False

    def report_from_client(
        self, run_id: str, attempt: int, records: Sequence[MetricRecord], client_id: str = ""
    ) -> Run:
        """Stores a client's records (indexes already stored are skipped) and renews the run's
        lease. A resend of records already stored is accepted even once the run ended."""
        run = self.get_run(run_id)
        if (records and run.state.is_ended and self._taken_by(run, client_id)
                and run.attempt == attempt
                and all(r.index < run.next_record_index for r in records)):
            return run  # a retry of a report whose answer was lost
        run = self._client_run(run_id, attempt, client_id)
        with self.store.transaction():
            self._record_metrics(run, records)
        if run.state.is_active:
            run.lease_expires_at = self._lease_deadline()
        self._flush()
        return run

    def finish_from_client(
        self, run_id: str, attempt: int, state: RunState, exit_code: int | None, reason: str,
        client_id: str = "",
    ) -> Run:
        if state not in (RunState.FINISHED, RunState.FAILED, RunState.STOPPED):
            raise InvalidArgument("state: must be FINISHED, FAILED or STOPPED")
        run = self.get_run(run_id)
        if run.state.is_ended and self._taken_by(run, client_id) and run.attempt == attempt:
            # A retried FinishRun whose first answer was lost: the same outcome is answered
            # again (a run we asked to stop ended STOPPED whatever it said).
            expected = RunState.STOPPED if run.stop is not None else state
            if run.state is expected and run.exit_code == exit_code:
                return run
        run = self._client_run(run_id, attempt, client_id)
        with self.store.transaction():
            self._finish(run, state, exit_code, reason, self.clock())
        self._flush()
        self._schedule()
        return run

    @staticmethod
    def _taken_by(run: Run, client_id: str) -> bool:
        return bool(client_id) and run.worker_id == names.client_worker_id(client_id)

    def _client_run(self, run_id: str, attempt: int, client_id: str) -> Run:
        """The run, if ``client_id`` took its current attempt through SuggestRun."""
        run = self.get_run(run_id)
        if run.worker_id and not names.is_client_worker(run.worker_id):
            raise PermissionDenied(
                f"run {run_id} is held by worker {run.worker_id}; only runs from SuggestRun"
                " can be reported through ReportMetrics/FinishRun"
            )
        if not client_id:
            raise InvalidArgument(
                "client_id: must not be empty; send the client_id the run was taken with"
                " (SuggestRunRequest.client_id)"
            )
        if run.state in (RunState.PENDING, RunState.LOST) and attempt == run.attempt:
            # Nobody holds it: the holder's lease ran out (the run waits for a retry or
            # stays LOST). Tell the old holder why, whoever asks.
            raise FailedPrecondition(
                f"run {run_id} is {run.state.value}: the lease of attempt {attempt} expired"
                f" (no SuggestRun or ReportMetrics from its client within {self.lease_s:g} s);"
                " abandon this trial and ask for a new run"
            )
        return self._held_run(run_id, attempt, names.client_worker_id(client_id))

    # -- scheduling -----------------------------------------------------------------------

    def _schedule(self) -> None:
        """Fills free worker slots with runs, fairly across sweeps."""
        # One pass over every session; later rounds only over those that took a run in the
        # previous one (a fleet of busy workers costs one cheap check each).
        hungry = [s for s in self.sessions.values()
                  if s.free_slots > 0 and self._heard_recently(s)]
        try:
            while hungry:
                fed = []
                for session in hungry:
                    if session.free_slots <= 0:
                        continue
                    for view in self._runnable_sweeps(session):
                        if self._assign_one(view, session):
                            fed.append(session)
                            break
                hungry = fed
        except Unavailable as exc:
            # What was committed stands; the lease check tries the rest again. The request
            # that led here was applied, so it must not fail for this.
            log.warning("scheduling interrupted, will retry: %s", exc)
            self._reschedule = True
        self._flush()

    def _runnable_sweeps(self, session: WorkerSession) -> list[SweepView]:
        views = [
            v for v in self.sweeps.values()
            if v.sweep.state.creates_runs
            and (not session.info.sweep_id or v.sweep.id == session.info.sweep_id)
            and v.sweep.queue in session.info.queues
            and not (v.sweep.max_concurrent and v.active_count() >= v.sweep.max_concurrent)
        ]
        # Fair share: the sweep with the fewest runs going gets the slot; ties go to the oldest.
        views.sort(key=lambda v: (v.active_count(), v.sweep.created_at))
        return views

    def _assign_one(self, view: SweepView, session: WorkerSession) -> bool:
        pending = view.pending_runs()
        if pending and self._lost_by:
            others = [r for r in pending if self._lost_by.get(r.id) != session.info.id]
            if len(others) < len(pending) and self._other_taker(view, session):
                pending = others  # the one that lost them gets something else, or nothing
        with self.store.transaction():
            if pending:
                run = self._assign_existing(view, pending[0], session.info.id)
            else:
                suggestion = self._next_suggestion(view)
                if suggestion is None:
                    self._maybe_finish(view)
                    return False
                run = self._create_run(view, suggestion, session.info.id)
        session.active_runs.add(run.id)
        session.runs_assigned += 1
        self._send(session.info.id, self._assign_order(view, run))
        return True

    def _other_taker(self, view: SweepView, session: WorkerSession) -> bool:
        """Whether a live worker other than ``session`` has a slot free for ``view``."""
        for other in self.sessions.values():
            if (other is not session and other.free_slots > 0 and self._heard_recently(other)
                    and (not other.info.sweep_id or other.info.sweep_id == view.sweep.id)
                    and view.sweep.queue in other.info.queues):
                return True
        return False

    def _assign_order(self, view: SweepView, run: Run) -> AssignOrder:
        rendered = render_argv(view.config, run.point)
        return AssignOrder(
            run_id=run.id, sweep_id=run.sweep_id, attempt=run.attempt, params=run.params,
            argv=rendered.argv, metric_name=view.metric_name, literal_argv=rendered.literal,
        )

    def _create_run(self, view: SweepView, suggestion: Suggestion, worker_id: str) -> Run:
        sweep = view.sweep
        if sweep.run_count + 1 >= limits.MAX_RUNS_PER_SWEEP and not sweep.exhausted_reason:
            # This run is the last one: the in-memory view and the database stay bounded.
            sweep.exhausted_reason = (f"{limits.MAX_RUNS_PER_SWEEP} runs created"
                                      " (MAX_RUNS_PER_SWEEP)")
        sweep.run_count += 1
        now = self.clock()
        # W&B's canonical order (sorted names): the order ${args} renders and run.config shows.
        order = {p.path: i for i, p in enumerate(view.config.parameters)}
        point = dict(sorted(suggestion.params.items(),
                            key=lambda kv: order.get(kv[0], len(order))))
        run = Run(
            id=names.run_id(sweep.id, sweep.run_count), sweep_id=sweep.id,
            number=sweep.run_count, state=RunState.ASSIGNED, point=point,
            params=nest(point), created_at=now, attempt=1, worker_id=worker_id,
            predicted_mean=suggestion.predicted_mean, predicted_std=suggestion.predicted_std,
            lease_expires_at=self._lease_deadline(),
        )
        run.argv = render_command(view.config, point)
        self.store.insert_run(run)
        self.store.update_sweep(sweep)
        self.store.record_event(run, now, f"assigned to {worker_id}")
        view.runs[run.id] = run
        self.runs[run.id] = run
        view.run_saved(run)
        view.version += 1
        cap = view.config.run_cap
        if cap is not None and sweep.run_count >= cap and not sweep.exhausted_reason:
            sweep.exhausted_reason = f"run_cap {cap} reached"
            self.store.update_sweep(sweep)
        return run

    def _assign_existing(self, view: SweepView, run: Run, worker_id: str) -> Run:
        self._lost_by.pop(run.id, None)
        run.state = RunState.ASSIGNED
        run.attempt += 1
        run.worker_id = worker_id
        run.lease_expires_at = self._lease_deadline()
        self._save_run(run)
        self.store.record_event(run, self.clock(), f"assigned to {worker_id}")
        view.version += 1
        return run

    # -- search ---------------------------------------------------------------------------

    def _save_run(self, run: Run) -> None:
        self.store.update_run(run)
        self.sweeps[run.sweep_id].run_saved(run)

    def _trials(self, view: SweepView) -> list[Trial]:
        """Search's view of every run, in creation order; only runs saved since the last
        call are rebuilt."""
        stale, view.stale_trials = view.stale_trials, set()
        new = sorted((view.runs[run_id] for run_id in stale if run_id not in view.trials),
                     key=lambda r: r.number)
        for run_id in stale:
            if run_id in view.trials:
                view.trials[run_id] = self._trial(view, view.runs[run_id])
        for run in new:  # created after every run already there: appending keeps the order
            view.trials[run.id] = self._trial(view, run)
        return list(view.trials.values())

    def _trial(self, view: SweepView, run: Run) -> Trial:
        metric = view.config.metric
        value = run.summary.get(metric.name) if metric else None
        history = view.histories.get(run.id)
        best = None
        if history and metric is not None:
            finite = [v for v in history if math.isfinite(v)]
            if finite:
                best = max(finite) if metric.goal == "maximize" else min(finite)
        return Trial(params=run.point, state=_TRIAL_STATE[run.state], value=value,
                     best_value=best)

    def _rng(self, view: SweepView) -> np.random.Generator:
        # Seeded by the config's seed (else the sweep id) and the run count: reproducible, and
        # continues the same way after a coordinator restart.
        return rng_for(view.config, view.sweep.id, view.sweep.run_count)

    def _next_suggestion(self, view: SweepView) -> Suggestion | None:
        """The next point, or None if there is none now (exhausted, or still being prepared:
        ``exhausted_reason`` tells which)."""
        if view.sweep.exhausted_reason:
            return None
        if view.config.method in INLINE_METHODS or self.executor is None:
            suggestion = suggest(view.config, self._trials(view), self._rng(view))
            if suggestion is None:
                self._mark_exhausted(view)
            else:
                self._show_search_notice(view, suggestion)
            return suggestion
        prepared = view.prepared
        if prepared is not None and prepared.version == view.version:
            view.prepared = None
            if prepared.suggestion is None:
                self._mark_exhausted(view)
            else:
                self._show_search_notice(view, prepared.suggestion)
            return prepared.suggestion
        self._prepare(view)
        return None

    def _show_search_notice(self, view: SweepView, suggestion: Suggestion) -> None:
        """A notice from search (its method failed and the point is random) joins the sweep's
        notices, once per distinct text: ``sweep show`` and WatchSweep carry them."""
        if suggestion.notice and suggestion.notice not in view.config.notices:
            view.config = dataclasses.replace(
                view.config, notices=(*view.config.notices, suggestion.notice))

    def _mark_exhausted(self, view: SweepView) -> None:
        view.sweep.exhausted_reason = "search space exhausted"
        self.store.update_sweep(view.sweep)

    async def _prepare_now(self, view: SweepView) -> None:
        """Waits until the sweep's next suggestion is prepared (for ask/report clients)."""
        self._prepare(view)
        while view.preparing:
            await asyncio.sleep(PREPARE_POLL_S)

    def _prepare(self, view: SweepView) -> None:
        """Computes the sweep's next suggestion off the event loop."""
        if view.preparing or self.executor is None:
            return
        view.preparing = True
        version = view.version
        loop = asyncio.get_running_loop()
        future = loop.run_in_executor(
            self.executor, suggest, view.config, self._trials(view), self._rng(view)
        )

        def done(fut: asyncio.Future[Suggestion | None]) -> None:
            view.preparing = False
            try:
                suggestion = fut.result()
            except Exception as exc:
                # Search falls back to random when a method fails; this is random failing too.
                # Preparing again would fail again, and an ask/tell client would wait in that
                # loop until its deadline: the sweep ends with the reason instead.
                log.exception("search failed for sweep %s", view.sweep.id)
                view.sweep.exhausted_reason = f"search failed: {type(exc).__name__}: {exc}"
                self.store.update_sweep(view.sweep)
                self._schedule()
                return
            if version == view.version:
                view.prepared = _Prepared(suggestion, version)
            self._schedule()

        future.add_done_callback(done)

    # -- orders ---------------------------------------------------------------------------

    def _send(self, worker_id: str, order: Order) -> None:
        # Held until the current transaction commits: nothing leaves before it is stored.
        self._outgoing.append((worker_id, order))

    def _flush(self) -> None:
        outgoing, self._outgoing = self._outgoing, []
        for worker_id, order in outgoing:
            session = self.sessions.get(worker_id)
            if session is not None:
                session.outbox.put_nowait(order)

    def assign_order_for(self, run: Run) -> AssignOrder:
        return self._assign_order(self.sweeps[run.sweep_id], run)

    def history(self, run: Run) -> list[MetricRecord]:
        return self.store.metric_history(run.id, run.attempt)

    def list_sweeps(self) -> Iterable[SweepView]:
        return sorted(self.sweeps.values(), key=lambda v: v.sweep.created_at, reverse=True)
