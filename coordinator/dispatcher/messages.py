"""What a worker session tells the dispatcher, and what the dispatcher answers at hello.

Plain data, converted from and to protobuf once, by the WorkerService servicer.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..domain import MetricRecord, RunState


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
    # The highest seq this incarnation saw acknowledged (by any coordinator).
    last_acked_seq: int = 0


@dataclass(frozen=True)
class Welcome:
    heartbeat_interval_s: float
    lease_s: float
    applied_seq: int
    # Runs the worker holds that are no longer its own, each with the attempt to stop.
    stop_runs: dict[str, int] = field(default_factory=dict)

    @property
    def stop_run_ids(self) -> list[str]:
        """``stop_runs`` without attempts, for workers that predate the attempt field."""
        return list(self.stop_runs)


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


# A worker's sequenced, state-changing messages: each is applied once and acknowledged.
WorkerEvent = RunStartedEvent | MetricsEvent | RunFinishedEvent
