"""The in-memory records the dispatcher keeps beside the store's rows.

A ``SweepView`` is a sweep with its runs and what is derived from them (rebuilt from the
store at start-up); a ``WorkerSession`` is a connected worker's stream; a ``SweepWatch`` is
one WatchSweep stream's news; a ``LiveLog`` is a running run's recent output. All of them
belong to the dispatcher's ``State`` and change only on the event loop.
"""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass, field

from ..config import SweepConfig
from ..domain import Order, Run, RunState, Sweep, WorkerInfo
from ..search.base import Suggestion, Trial

# Live output kept per running run for `sweep logs --follow`: enough for a screenful of
# context and then some, bounded so that a chatty run cannot grow the coordinator's memory.
LIVE_LOG_MAX_BYTES = 256 * 1024


@dataclass
class Prepared:
    """Points computed off the event loop and not handed out yet, in order; good while fewer
    than ``tolerance`` results arrived since ``stamp`` (see ``suggestions._stamp``)."""

    suggestions: deque[Suggestion]
    stamp: int
    tolerance: int


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
    # Bumped whenever anything search reads changes (see suggestions._stamp).
    version: int = 0
    # Search off the loop (suggestions.py): points kept for the next takers, whether a fit is
    # under way, the ask/tell clients waiting in line for one (first come first served), the
    # points handed to them and not run yet, and what the last fit leaves to the next (warm).
    prepared: Prepared | None = None
    preparing: bool = False
    waiters: deque[asyncio.Future[Suggestion | None]] = field(default_factory=deque)
    in_hand: list[Suggestion] = field(default_factory=list)
    warm: object | None = None

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

    def is_full(self) -> bool:
        """Whether the sweep runs as many runs at once as its max_concurrent allows."""
        return bool(self.sweep.max_concurrent) and self.active_count() >= self.sweep.max_concurrent


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

    def takes_from(self, view: SweepView) -> bool:
        """Whether this worker may run ``view``'s runs: its sweep (if bound) and its queues."""
        return ((not self.info.sweep_id or self.info.sweep_id == view.sweep.id)
                and view.sweep.queue in self.info.queues)


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
