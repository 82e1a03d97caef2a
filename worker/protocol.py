"""The worker's wire protocol: the only module of the worker that touches protobuf.

Messages from the coordinator become the dataclasses of ``messages.py`` on arrival, and the
worker's messages become protobuf only as they are written, so the rest of the worker (its
outbox included) holds plain data.
"""

from __future__ import annotations

from typing import Any

from google.protobuf.timestamp_pb2 import Timestamp
from sweepd.common.params import params_from_proto
from sweepd.v1 import common_pb2, workers_pb2, workers_pb2_grpc

from .messages import (
    ANY_ATTEMPT,
    Ack,
    Assignment,
    DrainOrder,
    Heartbeat,
    Hello,
    MetricBatch,
    Order,
    Outgoing,
    RunFinished,
    RunKey,
    RunOutput,
    RunStarted,
    StopOrder,
    Welcome,
)


async def check_sweep_exists(channel: Any, metadata: Any, sweep_id: str,
                             timeout: float) -> None:
    """GetSweep, for its error only: NOT_FOUND (or any other refusal) is raised as the
    ``grpc.aio.AioRpcError`` it is."""
    from sweepd.v1 import sweeps_pb2, sweeps_pb2_grpc

    stub = sweeps_pb2_grpc.SweepServiceStub(channel)
    await stub.GetSweep(sweeps_pb2.GetSweepRequest(sweep_id=sweep_id), metadata=metadata,
                        timeout=timeout)


def open_stream(channel: Any, metadata: Any) -> Any:
    """The worker's bidirectional stream on ``channel``. Not waiting for the channel to be
    ready: a coordinator that is down fails the call at once, and the reconnect loop retries."""
    stub = workers_pb2_grpc.WorkerServiceStub(channel)
    return stub.Connect(wait_for_ready=False, metadata=metadata)


def timestamp(t: float) -> Timestamp:
    ts = Timestamp()
    ts.FromNanoseconds(int(t * 1e9))
    return ts


def _held_runs(keys: list[RunKey]) -> list[workers_pb2.HeldRun]:
    return [workers_pb2.HeldRun(run_id=run_id, attempt=attempt) for run_id, attempt in keys]


def to_wire(message: Outgoing, seq: int = 0) -> workers_pb2.WorkerMessage:
    """``message`` as it is written; ``seq`` 0 for the unsequenced ones (hello, heartbeat,
    output). May raise ValueError / TypeError / UnicodeError for a value protobuf cannot hold."""
    if isinstance(message, Hello):
        return workers_pb2.WorkerMessage(hello=workers_pb2.Hello(
            worker_id=message.worker_id, incarnation=message.incarnation, host=message.host,
            slots=message.slots, labels=message.labels, sweep_id=message.sweep_id,
            gpus=message.gpus, queues=message.queues,
            heartbeat_interval_s=message.heartbeat_s, max_runs=message.max_runs,
            last_acked_seq=message.last_acked_seq, runs_assigned=message.runs_assigned,
            held_runs=_held_runs(message.held_runs)))
    if isinstance(message, Heartbeat):
        return workers_pb2.WorkerMessage(heartbeat=workers_pb2.Heartbeat(
            runs=_held_runs(message.runs), free_slots=message.free_slots,
            draining=message.draining, paused=message.paused))
    if isinstance(message, RunOutput):
        return workers_pb2.WorkerMessage(output=workers_pb2.RunOutput(
            run_id=message.run_id, attempt=message.attempt, data=message.data))
    if isinstance(message, RunStarted):
        return workers_pb2.WorkerMessage(seq=seq, run_started=workers_pb2.RunStarted(
            run_id=message.run_id, attempt=message.attempt, argv=message.argv,
            pid=message.pid, time=timestamp(message.time)))
    if isinstance(message, MetricBatch):
        return workers_pb2.WorkerMessage(seq=seq, metrics=workers_pb2.MetricBatch(
            run_id=message.run_id, attempt=message.attempt,
            records=[common_pb2.MetricRecord(index=r.index, step=r.step, values=r.values,
                                             time=timestamp(r.time))
                     for r in message.records]))
    if isinstance(message, RunFinished):
        finished = workers_pb2.RunFinished(
            run_id=message.run_id, attempt=message.attempt,
            state=common_pb2.RunState.Value(f"RUN_STATE_{message.state}"),
            reason=message.reason, time=timestamp(message.time), log_tail=message.log_tail)
        if message.exit_code is not None:  # unset: no program ran
            finished.exit_code = message.exit_code
        return workers_pb2.WorkerMessage(seq=seq, run_finished=finished)
    raise TypeError(f"not a message a worker sends: {message!r}")


def welcome_from_wire(msg: workers_pb2.CoordinatorMessage) -> Welcome | None:
    """The coordinator's first message as a Welcome; None if it is anything else."""
    if msg.WhichOneof("body") != "welcome":
        return None
    welcome = msg.welcome
    if welcome.stop_runs:
        stops = [(named.run_id, named.attempt) for named in welcome.stop_runs]
    else:
        # An older coordinator names run ids only (``stop_runs`` came later): every attempt.
        stops = [(run_id, ANY_ATTEMPT) for run_id in dict.fromkeys(welcome.stop_run_ids)]
    return Welcome(heartbeat_s=welcome.heartbeat_interval_s, applied_seq=welcome.applied_seq,
                   stop_runs=stops)


def order_from_wire(msg: workers_pb2.CoordinatorMessage) -> Order | None:
    """A message of the running stream; None for a kind this worker does not act on (a
    repeated welcome, or one a newer coordinator added)."""
    kind = msg.WhichOneof("body")
    if kind == "ack":
        return Ack(seq=msg.ack.seq, refused=msg.ack.refused)
    if kind == "assign":
        a = msg.assign
        return Assignment(run_id=a.run_id, sweep_id=a.sweep_id, attempt=a.attempt,
                          params=params_from_proto(a.params), argv=list(a.argv),
                          literal_argv=tuple(a.literal_argv), metric_name=a.metric_name)
    if kind == "stop_run":
        s = msg.stop_run
        return StopOrder(run_id=s.run_id, reason=s.reason, attempt=s.attempt)
    if kind == "drain":
        return DrainOrder(reason=msg.drain.reason)
    return None
