"""Protobuf <-> domain conversion for the coordinator's API: sweeps, runs, records, workers.

The worker stream's own messages (hello, run events, orders) are converted beside their
servicer, in ``workers.py``.
"""

from __future__ import annotations

import base64
import binascii
import math
import re
from collections.abc import Iterable
from typing import Any

from google.protobuf.timestamp_pb2 import Timestamp
from sweepd.common.params import params_to_proto
from sweepd.v1 import common_pb2, sweeps_pb2

from .. import limits, names
from ..dispatcher import Dispatcher, SweepView
from ..domain import MetricRecord, Run, RunEvent, RunState, StopDecision, WorkerInfo
from ..errors import InvalidArgument


def timestamp(t: float | None) -> Timestamp | None:
    if t is None:
        return None
    ts = Timestamp()
    ts.FromNanoseconds(int(t * 1e9))
    return ts


def seconds(ts: Timestamp, default: float, field: str = "time") -> float:
    if not (ts.seconds or ts.nanos):
        return default
    try:
        return ts.ToNanoseconds() / 1e9
    except ValueError as exc:  # outside 0001-01-01 .. 9999-12-31: could never be shown again
        raise InvalidArgument(f"{field}: {exc}") from None


def check_int(field: str, value: int, low: int = 0, high: int = limits.MAX_WIRE_INT) -> int:
    """An integer from the wire, refused unless within [low, high] (naming the field)."""
    if not low <= value <= high:
        raise InvalidArgument(f"{field}: {value} is outside {low}..{high}"
                              + (" (MAX_WIRE_INT)" if high == limits.MAX_WIRE_INT else ""))
    return value


def check_seq(seq: int) -> int:
    """A worker message's seq: 0 (unsequenced) or counting up from 1, stored as an int64."""
    return check_int("seq", seq)


def check_interval(field: str, value: float) -> float:
    """A duration in seconds from the wire: finite and not negative (0: the default)."""
    if not math.isfinite(value) or value < 0:
        raise InvalidArgument(f"{field}: {value} is not a number of seconds; send a positive"
                              " number, or 0 for the coordinator's default")
    return value


def run_to_proto(run: Run, *, log_tail: bool = False) -> common_pb2.Run:
    msg = common_pb2.Run(
        id=run.id, sweep_id=run.sweep_id, number=run.number,
        state=common_pb2.RunState.Value(f"RUN_STATE_{run.state.value}"),
        params=params_to_proto(run.params),
        summary={k: v for k, v in run.summary.items() if isinstance(v, (int, float))},
        worker_id=run.worker_id, attempt=run.attempt, reason=run.reason, argv=run.argv,
        command=run.command.argv,
        created_at=timestamp(run.created_at), started_at=timestamp(run.started_at),
        ended_at=timestamp(run.ended_at),
    )
    if log_tail:
        msg.log_tail = run.log_tail
    if run.exit_code is not None:
        msg.exit_code = run.exit_code
    if run.predicted_mean is not None:
        msg.predicted_mean = run.predicted_mean
    if run.predicted_std is not None:
        msg.predicted_std = run.predicted_std
    if run.stop is not None:
        msg.stop.CopyFrom(stop_to_proto(run.stop))
    return msg


def sweep_to_proto(view: SweepView, dispatcher: Dispatcher) -> common_pb2.Sweep:
    sweep = view.sweep
    counts: dict[str, int] = {}
    for run in view.runs.values():
        counts[run.state.value] = counts.get(run.state.value, 0) + 1
    metric = view.config.metric
    msg = common_pb2.Sweep(
        id=sweep.id, name=sweep.name,
        state=common_pb2.SweepState.Value(f"SWEEP_STATE_{sweep.state.value}"),
        config_text=sweep.config_text, method=view.config.method,
        metric_name=metric.name if metric else "", metric_goal=metric.goal if metric else "",
        run_counts=counts, notices=list(view.config.notices),
        created_at=timestamp(sweep.created_at), updated_at=timestamp(sweep.updated_at),
        state_reason=sweep.state_reason, run_cap=view.config.run_cap or 0,
        queue=sweep.queue, max_concurrent=sweep.max_concurrent,
    )
    best = dispatcher.best_run(view)
    if best is not None:
        msg.best_run.CopyFrom(run_to_proto(best))
    return msg


def worker_to_proto(info: WorkerInfo, run_ids: list[str]) -> sweeps_pb2.Worker:
    return sweeps_pb2.Worker(
        id=info.id, host=info.host, slots=info.slots, labels=info.labels,
        connected=info.connected, run_ids=sorted(run_ids),
        last_heartbeat=timestamp(info.last_heartbeat), connected_at=timestamp(info.connected_at),
        sweep_id=info.sweep_id, gpus=info.gpus, queues=info.queues,
    )


def record_to_proto(rec: MetricRecord) -> common_pb2.MetricRecord:
    return common_pb2.MetricRecord(
        index=rec.index, step=rec.step, values=rec.values, time=timestamp(rec.time)
    )


def records_from_proto(
    records: Any, now: float, field: str = "records"
) -> list[MetricRecord]:
    out = []
    for i, rec in enumerate(records):
        if rec.index < 0:
            raise InvalidArgument(f"{field}[{i}].index: {rec.index} is negative; count from 0")
        check_int(f"{field}[{i}].index", rec.index)
        if rec.step < 0:
            raise InvalidArgument(f"{field}[{i}].step: {rec.step} is negative; a step counts"
                                  " from 0 (leave it out to use the record's index)")
        if "" in rec.values:
            raise InvalidArgument(f"{field}[{i}].values: a metric with an empty name; name"
                                  " every metric")
        out.append(MetricRecord(
            index=rec.index, step=rec.step, time=seconds(rec.time, now, f"{field}[{i}].time"),
            values=dict(rec.values),
        ))
    return out


def run_state_from_proto(value: int, field: str = "state") -> RunState:
    name = common_pb2.RunState.Name(value) if value in common_pb2.RunState.values() else ""
    if not name or value == common_pb2.RUN_STATE_UNSPECIFIED:
        raise InvalidArgument(f"{field}: must be set (FINISHED, FAILED or STOPPED)")
    return RunState(name.removeprefix("RUN_STATE_"))


def stop_to_proto(stop: StopDecision) -> common_pb2.StopDecision:
    # Unset figures stay unset (the fields are optional), so a cancel shows no band.
    return common_pb2.StopDecision(rule=stop.rule, reason=stop.reason, band=stop.band,
                                   threshold=stop.threshold, value=stop.value)


def event_to_proto(event: RunEvent) -> sweeps_pb2.RunEvent:
    return sweeps_pb2.RunEvent(
        attempt=event.attempt, time=timestamp(event.time),
        state=common_pb2.RunState.Value(f"RUN_STATE_{event.state.value}"),
        reason=event.reason, worker_id=event.worker_id,
    )


def argv_from_proto(field: str, argv: Iterable[str]) -> list[str]:
    """A run's argv as a worker reports it, refused if no exec() could have started it."""
    items = list(argv)
    limits.check_count(field, len(items), "MAX_ARGV_ITEMS")
    total = 0
    for i, item in enumerate(items):
        size = len(item.encode("utf-8", "surrogatepass"))
        total += size
        if size > limits.MAX_ARGV_ITEM_BYTES:
            raise InvalidArgument(f"{field}[{i}]: {size} bytes, over the limit of"
                                  f" {limits.MAX_ARGV_ITEM_BYTES} (MAX_ARGV_ITEM_BYTES)")
    if total > limits.MAX_ARGV_BYTES:
        raise InvalidArgument(f"{field}: {total} bytes in all, over the limit of"
                              f" {limits.MAX_ARGV_BYTES} (MAX_ARGV_BYTES)")
    return items


def names_from_proto(field: str, values: Iterable[str],
                     limit: limits.CountLimit) -> list[str]:
    """A worker's list of names (GPUs, queues): at most ``limit`` of them, each a name."""
    items = list(values)
    limits.check_count(field, len(items), limit)
    for i, item in enumerate(items):
        limits.check_text(f"{field}[{i}]", item, "MAX_NAME_LENGTH")
    return items


# -- ListRuns pages -----------------------------------------------------------------------

_TOKEN_PREFIX = "runs1:"
# A run number in a token: ASCII digits, no leading zero, no more digits than the largest
# sweep needs (MAX_RUNS_PER_SWEEP), so a forged one is refused before int() parses it.
_TOKEN_NUMBER = re.compile(
    "0|[1-9][0-9]{0,%s}" % (len(str(limits.MAX_RUNS_PER_SWEEP)) - 1), re.ASCII)
# What a run adds to a page beyond its own bytes: its field's tag and length prefix (a bound:
# one byte of tag, at most five of length, rounded up).
_RUN_ENTRY_OVERHEAD_BYTES = 8


def _page_token(sweep_id: str, after_number: int) -> str:
    raw = f"{_TOKEN_PREFIX}{sweep_id}:{after_number}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _page_start(sweep_id: str, run_count: int, token: str) -> int:
    """The run number a page token continues after (0 for no token)."""
    if not token:
        return 0
    bad = InvalidArgument(
        "page_token: not a token ListRuns gave for this sweep; pass the next_page_token of"
        " the previous answer unchanged, or none for the first page")
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise bad from None
    prefix, _, number = raw.rpartition(":")
    # Only the exact form _page_token writes: str.isdigit() would take Arabic digits, a
    # leading zero and (int() of) 5000 digits, none of which a real token holds.
    if (prefix != f"{_TOKEN_PREFIX}{sweep_id}" or not _TOKEN_NUMBER.fullmatch(number)
            or _page_token(sweep_id, int(number)) != token):
        raise bad
    after = int(number)
    if after > run_count:
        raise bad  # run numbers only grow: no answer ever named one past the last run
    return after


def runs_page(view: SweepView, page_size: int, page_token: str) -> sweeps_pb2.ListRunsResponse:
    """One page of a sweep's runs in creation order: at most ``page_size`` runs (0: the
    default; above the maximum: the maximum), fewer if MAX_PAGE_BYTES is reached first.

    The token names the last run number sent, so a page is found without a pass over the
    runs before it, and runs created between two calls show up in a later page.
    """
    if page_size < 0:
        raise InvalidArgument(f"page_size: {page_size} is negative; 0 for the default"
                              f" ({limits.DEFAULT_PAGE_SIZE})")
    size = min(page_size or limits.DEFAULT_PAGE_SIZE, limits.MAX_PAGE_SIZE)
    sweep = view.sweep
    number = _page_start(sweep.id, sweep.run_count, page_token)
    response = sweeps_pb2.ListRunsResponse()
    used = 0
    while number < sweep.run_count and len(response.runs) < size:
        run = view.runs.get(names.run_id(sweep.id, number + 1))
        if run is not None:
            msg = run_to_proto(run)
            cost = msg.ByteSize() + _RUN_ENTRY_OVERHEAD_BYTES
            if response.runs and used + cost > limits.MAX_PAGE_BYTES:
                break
            used += cost
            response.runs.append(msg)
        number += 1
    if number < sweep.run_count:
        response.next_page_token = _page_token(sweep.id, number)
    return response
