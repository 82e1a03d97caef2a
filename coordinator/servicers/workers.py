"""WorkerService: one bidirectional stream per worker, translated to dispatcher calls.

The stream's reader applies the worker's messages in order; its writer sends what the
dispatcher puts in the session's outbox (acks, assignments, stop orders, drain).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

import grpc
from sweepd.v1 import workers_pb2, workers_pb2_grpc

from .. import limits, names
from ..dispatcher import (
    Dispatcher,
    Hello,
    MetricsEvent,
    RunFinishedEvent,
    RunStartedEvent,
    WorkerEvent,
    WorkerSession,
)
from ..domain import AckOrder, AssignOrder, DrainOrder, Order, RunState, StopOrder
from ..errors import InvalidArgument, SweepdError
from .convert import (
    argv_from_proto,
    check_interval,
    check_seq,
    names_from_proto,
    params_to_proto,
    records_from_proto,
    run_state_from_proto,
    seconds,
)
from .errors import details_of, status_of

log = logging.getLogger("sweepd.coordinator")

_END_STATES = (RunState.FINISHED, RunState.FAILED, RunState.STOPPED, RunState.PENDING)


def hello_from_proto(msg: workers_pb2.Hello) -> Hello:
    names.check_holder_id("hello.worker_id", msg.worker_id, worker=True)
    if msg.slots < 0:
        raise InvalidArgument(f"hello.slots: {msg.slots} is negative")
    return Hello(
        worker_id=msg.worker_id,
        incarnation=limits.check_text("hello.incarnation", msg.incarnation, "MAX_NAME_LENGTH"),
        host=msg.host, slots=msg.slots,
        labels=dict(msg.labels), held_runs={h.run_id: h.attempt for h in msg.held_runs},
        sweep_id=limits.check_text("hello.sweep_id", msg.sweep_id, "MAX_NAME_LENGTH"),
        heartbeat_interval_s=check_interval("hello.heartbeat_interval_s",
                                            msg.heartbeat_interval_s),
        max_runs=msg.max_runs, runs_assigned=msg.runs_assigned,
        last_acked_seq=check_seq(msg.last_acked_seq),
        gpus=names_from_proto("hello.gpus", msg.gpus, "MAX_WORKER_GPUS"),
        queues=names_from_proto("hello.queues", [q for q in msg.queues if q],
                                "MAX_WORKER_QUEUES"),
    )


def event_from_proto(msg: workers_pb2.WorkerMessage, now: float) -> WorkerEvent | None:
    kind = msg.WhichOneof("body")
    if kind == "run_started":
        m = msg.run_started
        return RunStartedEvent(m.run_id, m.attempt, argv_from_proto("run_started.argv", m.argv),
                               seconds(m.time, now, "run_started.time"))
    if kind == "metrics":
        m2 = msg.metrics
        return MetricsEvent(m2.run_id, m2.attempt,
                            records_from_proto(m2.records, now, "metrics.records"))
    if kind == "run_finished":
        m3 = msg.run_finished
        state = run_state_from_proto(m3.state, "run_finished.state")
        if state not in _END_STATES:
            raise InvalidArgument(
                "run_finished.state: must be FINISHED, FAILED, STOPPED or PENDING (handed back)")
        return RunFinishedEvent(
            m3.run_id, m3.attempt, state, m3.exit_code if m3.HasField("exit_code") else None,
            # Cut, not refused: the run's end must be recorded whatever its reason says.
            limits.clip_text(m3.reason), seconds(m3.time, now, "run_finished.time"),
            log_tail=m3.log_tail.decode("utf-8", errors="replace"),
        )
    return None


def order_to_proto(order: Order) -> workers_pb2.CoordinatorMessage:
    if isinstance(order, AckOrder):
        return workers_pb2.CoordinatorMessage(ack=workers_pb2.Ack(seq=order.seq,
                                                                  refused=order.refused))
    if isinstance(order, AssignOrder):
        return workers_pb2.CoordinatorMessage(assign=workers_pb2.Assign(
            run_id=order.run_id, sweep_id=order.sweep_id, attempt=order.attempt,
            params=params_to_proto(order.params), argv=order.argv,
            metric_name=order.metric_name, literal_argv=order.literal_argv,
        ))
    if isinstance(order, StopOrder):
        return workers_pb2.CoordinatorMessage(
            stop_run=workers_pb2.StopRun(run_id=order.run_id, reason=order.reason,
                                         attempt=order.attempt))
    assert isinstance(order, DrainOrder)
    return workers_pb2.CoordinatorMessage(drain=workers_pb2.Drain(reason=order.reason))


class WorkerServicer(workers_pb2_grpc.WorkerServiceServicer):
    def __init__(self, dispatcher: Dispatcher) -> None:
        self.d = dispatcher

    async def Connect(
        self,
        request_iterator: AsyncIterator[workers_pb2.WorkerMessage],
        context: grpc.aio.ServicerContext,
    ) -> AsyncIterator[workers_pb2.CoordinatorMessage]:
        try:
            first = await anext(aiter(request_iterator))
        except StopAsyncIteration:
            return
        if first.WhichOneof("body") != "hello":
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT,
                                "the first message on a worker stream must be hello")
        try:
            session, welcome = self.d.attach_worker(hello_from_proto(first.hello))
        except SweepdError as exc:
            await context.abort(status_of(exc), str(exc))
            return
        try:
            yield workers_pb2.CoordinatorMessage(welcome=workers_pb2.Welcome(
                heartbeat_interval_s=welcome.heartbeat_interval_s, lease_s=welcome.lease_s,
                stop_run_ids=welcome.stop_run_ids, applied_seq=welcome.applied_seq,
                stop_runs=[workers_pb2.HeldRun(run_id=run_id, attempt=attempt)
                           for run_id, attempt in welcome.stop_runs.items()],
            ))
            reader = asyncio.create_task(self._read(request_iterator, session))
            try:
                while True:
                    getter = asyncio.create_task(session.outbox.get())
                    done, _ = await asyncio.wait({getter, reader},
                                                 return_when=asyncio.FIRST_COMPLETED)
                    if getter not in done:
                        getter.cancel()
                        failed = reader.exception()
                        if isinstance(failed, SweepdError):
                            # A message was refused or could not be stored: the worker learns
                            # why, reconnects and resends what was not acknowledged.
                            await context.abort(status_of(failed), details_of(failed))
                        break  # the worker closed its side
                    order = getter.result()
                    if order is None:
                        break  # replaced by a newer stream of the same worker
                    yield order_to_proto(order)
            finally:
                reader.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await reader
        finally:
            self.d.detach_worker(session)

    async def _read(
        self, request_iterator: AsyncIterator[workers_pb2.WorkerMessage], session: WorkerSession
    ) -> None:
        async for msg in request_iterator:
            kind = msg.WhichOneof("body")
            if kind == "heartbeat":
                self.d.heartbeat(session, {h.run_id: h.attempt for h in msg.heartbeat.runs},
                                 msg.heartbeat.draining, msg.heartbeat.paused)
                continue
            if kind == "output":
                out = msg.output
                self.d.run_output(session, out.run_id, out.attempt, out.data)
                continue
            check_seq(msg.seq)  # out of range: the stream ends, nothing is acknowledged
            try:
                event = event_from_proto(msg, self.d.now())
                if event is None:
                    raise InvalidArgument(f"{kind or 'body'}: not a message a worker sends"
                                          " after hello")
            except SweepdError as exc:
                log.warning("worker %s sent a malformed %s: %s", session.info.id, kind, exc)
                self.d.refuse_worker_message(session, msg.seq, str(exc))
                continue
            self.d.worker_message(session, msg.seq, event)


