"""What a worker and its coordinator say to each other, as plain dataclasses.

The wire form (protobuf) is ``protocol.py``'s business alone; everything else in the worker
speaks these. Each run is named by (run id, attempt): after a lease expired while this worker
lived, the same run can come back to it as a new attempt while the old one is still stopping.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sweepd.common.runfile import Record

RunKey = tuple[str, int]

# Attempt 0 in a stop order: any attempt (an older coordinator names none).
ANY_ATTEMPT = 0


# -- worker -> coordinator: the greeting and the unsequenced, best-effort reports -------------

@dataclass(frozen=True)
class Hello:
    worker_id: str
    incarnation: str
    host: str
    slots: int
    labels: dict[str, str]
    sweep_id: str
    gpus: list[str]
    queues: list[str]
    heartbeat_s: float
    max_runs: int
    last_acked_seq: int
    runs_assigned: int
    held_runs: list[RunKey]


@dataclass(frozen=True)
class Heartbeat:
    runs: list[RunKey]
    free_slots: int
    draining: bool
    paused: bool


@dataclass(frozen=True)
class RunOutput:
    """New output for ``sweep logs --follow``; lost if the stream breaks (the final tail
    travels with RunFinished)."""

    run_id: str
    attempt: int
    data: bytes


# -- worker -> coordinator: events, numbered and kept until acknowledged ---------------------

@dataclass(frozen=True)
class RunStarted:
    run_id: str
    attempt: int
    argv: list[str]
    pid: int
    time: float


@dataclass(frozen=True)
class MetricBatch:
    run_id: str
    attempt: int
    records: list[Record]


@dataclass(frozen=True)
class RunFinished:
    run_id: str
    attempt: int
    # "FINISHED" | "FAILED" | "STOPPED", or "PENDING" for a run handed back unstarted.
    state: str
    reason: str
    time: float
    exit_code: int | None = None
    log_tail: bytes = b""


Event = RunStarted | MetricBatch | RunFinished
Outgoing = Hello | Heartbeat | RunOutput | Event


# -- coordinator -> worker --------------------------------------------------------------------

@dataclass(frozen=True)
class Welcome:
    heartbeat_s: float  # 0: the coordinator proposes none
    applied_seq: int
    # The runs this worker holds that the coordinator no longer counts as its own; an attempt
    # of ANY_ATTEMPT means every attempt of that run.
    stop_runs: list[RunKey] = field(default_factory=list)


@dataclass(frozen=True)
class Ack:
    seq: int
    refused: str = ""  # why the coordinator would not apply it; it is acknowledged all the same


@dataclass(frozen=True)
class Assignment:
    run_id: str
    sweep_id: str
    attempt: int
    params: dict[str, Any]
    argv: list[str]
    # Indexes of the argv items that carry parameter values: no macro is resolved in them.
    literal_argv: tuple[int, ...] = ()
    # The sweep's metric ("" for none): a run that never logs it gets a notice in the log.
    metric_name: str = ""


@dataclass(frozen=True)
class StopOrder:
    run_id: str
    reason: str
    attempt: int = ANY_ATTEMPT


@dataclass(frozen=True)
class DrainOrder:
    reason: str


Order = Ack | Assignment | StopOrder | DrainOrder
