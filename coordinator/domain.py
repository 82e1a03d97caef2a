"""The coordinator's domain objects: sweeps, runs, workers and their states.

Plain dataclasses, converted to and from protobuf once, at the servicer edge
(``servicers/convert.py``), and to and from rows once, in ``store.py``.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

from .config.model import ParamPath, Value

# The queue of a sweep created without `--queue`, and of a worker started without `--queue`.
DEFAULT_QUEUE = "default"


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


@dataclass
class Run:
    id: str
    sweep_id: str
    number: int
    state: RunState
    # The point as search sees it (flattened paths) and as the program sees it (nested).
    point: dict[ParamPath, Value]
    params: dict[str, Any]
    created_at: float
    attempt: int = 0
    worker_id: str = ""
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
    stop: dict[str, Any] | None = None
    # The last bytes of the run's output, sent by its worker when the run ended.
    log_tail: str = ""


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
