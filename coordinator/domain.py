"""The coordinator's domain objects: sweeps, runs, workers and their states.

Plain dataclasses, converted to and from protobuf once, at the servicer edge
(``servicers/convert.py``), and to and from rows once, in ``store.py``.
"""

from __future__ import annotations

import enum
import functools
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from sweepd.common.names import DEFAULT_QUEUE

from .config.command import RenderedArgv
from .config.model import ParamPath, Value
from .config.points import nest

# A metric's goal as the sweep configuration spells it; the other one is "minimize".
MAXIMIZE = "maximize"


class RunState(enum.Enum):
    PENDING = "PENDING"
    ASSIGNED = "ASSIGNED"
    RUNNING = "RUNNING"
    FINISHED = "FINISHED"
    FAILED = "FAILED"
    STOPPED = "STOPPED"
    LOST = "LOST"
    CANCELED = "CANCELED"

    @property
    def is_active(self) -> bool:
        """Holds (or is about to hold) a worker slot."""
        return self in (RunState.ASSIGNED, RunState.RUNNING)

    @property
    def is_ended(self) -> bool:
        return self in ENDED_RUN_STATES


# LOST is terminal only once its retries are used up: a lost run with retries left goes
# straight back to PENDING (the LOST attempt stays in the run's event log).
ENDED_RUN_STATES = frozenset(
    {RunState.FINISHED, RunState.FAILED, RunState.STOPPED, RunState.CANCELED, RunState.LOST}
)


class SweepState(enum.Enum):
    RUNNING = "RUNNING"
    PAUSED = "PAUSED"
    FINISHED = "FINISHED"
    STOPPED = "STOPPED"
    CANCELED = "CANCELED"

    @property
    def creates_runs(self) -> bool:
        return self is SweepState.RUNNING

    @property
    def is_ended(self) -> bool:
        return self in (SweepState.FINISHED, SweepState.STOPPED, SweepState.CANCELED)


@dataclass
class Sweep:
    id: str
    config_text: str
    state: SweepState
    created_at: float
    updated_at: float
    name: str = ""
    state_reason: str = ""
    # How many runs were created so far; the next run is number ``run_count + 1``.
    run_count: int = 0
    # Set once the search space is exhausted, run_cap is reached or metric.target is hit:
    # the sweep finishes when its last active run ends.
    exhausted_reason: str = ""
    # The worker queue that runs it, and how many of its runs may run at once (0: no cap).
    queue: str = DEFAULT_QUEUE
    max_concurrent: int = 0
    # How many times a LOST run of this sweep is tried again; None: the coordinator's default.
    max_retries: int | None = None


# The rule of a stop that is no early-stopping verdict: the user canceled the sweep.
CANCEL_RULE = "cancel"


@dataclass(frozen=True)
class StopDecision:
    """Why the coordinator stops a run: a stopping rule's verdict with the figures it compared,
    or a cancel. Stopping rules return it, the run keeps it (``Run.stop``), the store keeps it
    as JSON without ``run_id`` (the row says whose it is)."""

    run_id: str
    reason: str  # one human sentence: "hyperband: loss=0.9 at iteration 3 is worse than ..."
    rule: str  # "hyperband" | "asha" | "median" | CANCEL_RULE
    band: int | None = None  # the iteration (band / rung) at which the comparison was made
    threshold: float | None = None  # in the metric's own units (not sign-flipped)
    value: float | None = None  # the run's value that was compared, as logged


@dataclass(frozen=True)
class RunEvent:
    """One entry of a run's history: the state it entered (or was in) and why, and when."""

    attempt: int
    time: float
    state: RunState
    reason: str
    worker_id: str


@dataclass
class Run:
    id: str
    sweep_id: str
    number: int
    state: RunState
    # The point as search sees it (flattened paths, in W&B's canonical order): the one stored.
    point: dict[ParamPath, Value]
    created_at: float
    attempt: int = 0
    worker_id: str = ""
    # What to run: rendered once, when the run is created, with the worker-side macros left
    # for its worker and the items that carry values marked (every attempt runs the same).
    # Empty for a sweep no worker runs (config.command.run_command).
    command: RenderedArgv = field(default_factory=lambda: RenderedArgv([], ()))
    # What its worker started for the current attempt (macros resolved, as it reported);
    # empty until then, and for runs of ask/tell clients, which start nothing of ours.
    argv: list[str] = field(default_factory=list)
    exit_code: int | None = None
    reason: str = ""
    started_at: float | None = None
    ended_at: float | None = None
    summary: dict[str, float] = field(default_factory=dict)
    # Index of the next metric record expected; records below it are already stored.
    next_record_index: int = 0
    predicted_mean: float | None = None
    predicted_std: float | None = None
    # Coordinator-clock time after which an ASSIGNED/RUNNING run without a heartbeat is LOST.
    lease_expires_at: float | None = None
    # Why the coordinator asked the run to stop (early-stopping verdict with its figures, or
    # the sweep was canceled); set, and committed, before the stop order goes out.
    stop: StopDecision | None = None
    # The last bytes of the run's output, sent by its worker when the run ended.
    log_tail: str = ""
    # The point as the program sees it (run.config): derived from ``point``, never stored.
    params: dict[str, Any] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self.params = nest(self.point)

    # -- transitions: each sets every field the new state implies, and nothing else. The
    # caller stores the run and records the event (the reason the user reads).

    def assign(self, worker_id: str, lease_expires_at: float) -> None:
        """PENDING -> ASSIGNED: a new attempt, held by ``worker_id`` under a lease."""
        self.state = RunState.ASSIGNED
        self.attempt += 1
        self.worker_id = worker_id
        self.lease_expires_at = lease_expires_at

    def start(self, argv: list[str], when: float) -> None:
        """ASSIGNED -> RUNNING, with the command its worker started."""
        self.state = RunState.RUNNING
        self.started_at = when
        self.argv = list(argv)

    def request_stop(self, stop: StopDecision) -> None:
        """Records why the coordinator asks the run to stop; it stays active until it ends."""
        self.stop = stop
        self.reason = stop.reason

    def end(self, state: RunState, reason: str, when: float) -> None:
        """Into an ended state (FINISHED, FAILED, STOPPED, LOST, CANCELED): no lease left."""
        self.state = state
        self.reason = reason
        self.ended_at = when
        self.lease_expires_at = None

    def lose(self, why: str) -> None:
        """Its holder vanished past the lease: LOST, for now (``requeue()`` follows when
        retries remain, ``end()`` when none do)."""
        self.state = RunState.LOST
        self.reason = why

    def hand_back(self) -> None:
        """ASSIGNED -> PENDING, never started: the attempt is not spent (the next assign()
        counts it again)."""
        self.state = RunState.PENDING
        self.worker_id = ""
        self.attempt -= 1
        self.lease_expires_at = None

    def requeue(self, reason: str = "") -> None:
        """Back to PENDING for another attempt, as if it had never run (the attempt number
        is kept: the next assign() counts it on). The one reset for a lost run with retries
        left and for a run a user retries."""
        self.state = RunState.PENDING
        self.worker_id = ""
        self.reason = reason
        self.exit_code = None
        self.started_at = None
        self.ended_at = None
        self.lease_expires_at = None
        self.argv = []
        self.stop = None
        self.summary = {}
        self.next_record_index = 0
        self.log_tail = ""


def beats(goal: str, a: float, b: float) -> bool:
    """Whether metric value ``a`` is strictly better than ``b`` for ``goal``: the one place
    the coordinator's own code compares by a goal (stopping rules work on a sign-flipped
    copy, ``stopping/_common.py``)."""
    return a > b if goal == MAXIMIZE else a < b


def reaches(goal: str, value: float, target: float) -> bool:
    """Whether ``value`` meets ``target`` (equal counts) for ``goal``; both finite (NaN
    would meet every target)."""
    return not beats(goal, target, value)


def best_of(goal: str, values: Iterable[float]) -> float:
    """The best of ``values`` for ``goal`` (the first of equals); ``values`` not empty."""
    return functools.reduce(lambda best, v: v if beats(goal, v, best) else best, values)


@dataclass(frozen=True)
class MetricRecord:
    index: int
    step: int
    time: float
    values: dict[str, float]


@dataclass
class WorkerInfo:
    """What the coordinator keeps of a worker between connections (and across restarts)."""

    id: str
    incarnation: str
    host: str
    slots: int
    labels: dict[str, str]
    sweep_id: str
    applied_seq: int
    connected_at: float
    last_heartbeat: float
    connected: bool = True
    gpus: list[str] = field(default_factory=list)
    queues: list[str] = field(default_factory=lambda: [DEFAULT_QUEUE])


# -- What the dispatcher tells a worker session to send. Converted to protobuf at the edge. --


@dataclass(frozen=True)
class AssignOrder:
    run_id: str
    sweep_id: str
    attempt: int
    params: dict[str, Any]
    argv: list[str]
    metric_name: str
    # Indexes of the argv items that carry parameter values: passed to the program unchanged.
    literal_argv: tuple[int, ...] = ()


@dataclass(frozen=True)
class StopOrder:
    run_id: str
    reason: str
    # The attempt to stop: an order must never kill a newer attempt of the same run.
    attempt: int = 0


@dataclass(frozen=True)
class DrainOrder:
    reason: str


@dataclass(frozen=True)
class AckOrder:
    seq: int
    refused: str = ""


Order = AssignOrder | StopOrder | DrainOrder | AckOrder
