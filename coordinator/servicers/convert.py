"""Protobuf <-> domain conversion for the coordinator: the only place that knows both."""

from __future__ import annotations

from typing import Any

from google.protobuf.timestamp_pb2 import Timestamp
from sweepd.client.params import params_to_proto
from sweepd.v1 import common_pb2, sweeps_pb2

from ..dispatcher import Dispatcher, SweepView
from ..domain import MetricRecord, Run, RunState, SweepState, WorkerInfo
from ..errors import InvalidArgument


def timestamp(t: float | None) -> Timestamp | None:
    if t is None:
        return None
    ts = Timestamp()
    ts.FromNanoseconds(int(t * 1e9))
    return ts


def seconds(ts: Timestamp, default: float) -> float:
    return ts.ToNanoseconds() / 1e9 if (ts.seconds or ts.nanos) else default


def run_to_proto(run: Run, *, log_tail: bool = False) -> common_pb2.Run:
    msg = common_pb2.Run(
        id=run.id, sweep_id=run.sweep_id, number=run.number,
        state=common_pb2.RunState.Value(f"RUN_STATE_{run.state.value}"),
        params=params_to_proto(run.params),
        summary={k: v for k, v in run.summary.items() if isinstance(v, (int, float))},
        worker_id=run.worker_id, attempt=run.attempt, reason=run.reason, argv=run.argv,
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
        stop = msg.stop
        stop.rule = str(run.stop.get("rule", ""))
        stop.reason = str(run.stop.get("reason", ""))
        if run.stop.get("band") is not None:
            stop.band = int(run.stop["band"])
        if run.stop.get("threshold") is not None:
            stop.threshold = float(run.stop["threshold"])
        if run.stop.get("value") is not None:
            stop.value = float(run.stop["value"])
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
        out.append(MetricRecord(
            index=rec.index, step=rec.step, time=seconds(rec.time, now), values=dict(rec.values)
        ))
    return out


def run_state_from_proto(value: int, field: str = "state") -> RunState:
    name = common_pb2.RunState.Name(value) if value in common_pb2.RunState.values() else ""
    if not name or value == common_pb2.RUN_STATE_UNSPECIFIED:
        raise InvalidArgument(f"{field}: must be set (FINISHED, FAILED or STOPPED)")
    return RunState(name.removeprefix("RUN_STATE_"))


def sweep_state_name(state: SweepState) -> str:
    return state.value


def event_to_proto(event: dict[str, Any]) -> sweeps_pb2.RunEvent:
    return sweeps_pb2.RunEvent(
        attempt=event["attempt"], time=timestamp(event["time"]),
        state=common_pb2.RunState.Value(f"RUN_STATE_{event['state']}"),
        reason=event["reason"], worker_id=event["worker_id"] or "",
    )
