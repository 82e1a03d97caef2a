"""SweepService: thin translation between the client-facing API and the dispatcher."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import TypeAlias, TypeVar

import grpc
from sweepd.v1 import common_pb2, sweeps_pb2, sweeps_pb2_grpc

from .. import limits
from ..config.model import SweepConfig
from ..dispatcher import Dispatcher, read_config
from ..dispatcher.checks import check_sweep_options
from ..domain import DEFAULT_QUEUE, Run
from ..errors import InvalidArgument, SweepdError, Unavailable
from .convert import (
    event_to_proto,
    record_to_proto,
    records_from_proto,
    run_state_from_proto,
    run_to_proto,
    runs_page,
    sweep_to_proto,
    worker_to_proto,
)
from .errors import details_of, maps_errors, status_of
from .importance import importance_response

Context: TypeAlias = grpc.aio.ServicerContext
# How often `sweep logs --follow` looks for new output: output arrives from the worker every
# half second anyway, so polling faster would only spin.
LOG_FOLLOW_POLL_S = 0.2
# WatchSweep gathers the changes of this long before sending them: a burst of metric reports
# becomes one update per run, and a watcher costs the coordinator a bounded rate of messages.
WATCH_BATCH_S = 0.1
# How often a read is built again after the commit it waited for failed, before the failure
# is the answer (the client library tries again).
READ_REBUILDS = 3
T = TypeVar("T")


def _require(value: str, field: str) -> str:
    if not value:
        raise InvalidArgument(f"{field}: must not be empty")
    return value


def _would_create(request: sweeps_pb2.CreateSweepRequest, config: SweepConfig
                  ) -> common_pb2.Sweep:
    """CreateSweep's answer with ``validate_only``: the option checks the dispatcher's create
    makes, then the sweep it would create, with no id and no state because nothing was
    created."""
    check_sweep_options(request.queue, request.max_concurrent,
                        request.max_retries if request.HasField("max_retries") else None)
    metric = config.metric
    return common_pb2.Sweep(
        name=config.name or "", config_text=request.config_text, method=config.method,
        metric_name=metric.name if metric else "", metric_goal=metric.goal if metric else "",
        notices=list(config.notices), run_cap=config.run_cap or 0,
        queue=request.queue or DEFAULT_QUEUE, max_concurrent=request.max_concurrent,
    )


class SweepServicer(sweeps_pb2_grpc.SweepServiceServicer):
    def __init__(self, dispatcher: Dispatcher) -> None:
        self.d = dispatcher

    async def _committed(self, answer: Callable[[], T]) -> T:
        """``answer()``, a reply built from memory, sent once what it shows is committed:
        memory may hold changes of ask/tell calls whose group commit is still open, and a
        reply must never show one that a failed commit then takes back (it is built again
        from the restored memory)."""
        for _ in range(READ_REBUILDS):
            reply = answer()
            try:
                await self.d.durable()
                return reply
            except Unavailable:
                continue
        reply = answer()
        await self.d.durable()
        return reply

    @maps_errors
    async def CreateSweep(
        self, request: sweeps_pb2.CreateSweepRequest, context: Context
    ) -> sweeps_pb2.CreateSweepResponse:
        if not request.config_text.strip():
            raise InvalidArgument("config_text: empty; pass the sweep configuration's YAML or JSON")
        # Parsing is pure Python and may take seconds on a large config: off the event loop,
        # so heartbeats and every other call are answered meanwhile.
        config = await asyncio.get_running_loop().run_in_executor(
            None, read_config, request.config_text, request.source_name)
        if request.validate_only:
            return sweeps_pb2.CreateSweepResponse(sweep=_would_create(request, config))
        view = self.d.create_sweep(
            request.config_text, request.source_name, queue=request.queue,
            max_concurrent=request.max_concurrent,
            max_retries=request.max_retries if request.HasField("max_retries") else None,
            config=config,
        )
        return sweeps_pb2.CreateSweepResponse(sweep=sweep_to_proto(view, self.d))

    @maps_errors
    async def GetSweep(self, request: sweeps_pb2.GetSweepRequest, context: Context
                       ) -> common_pb2.Sweep:
        view = self.d.get_sweep(_require(request.sweep_id, "sweep_id"))
        return await self._committed(lambda: sweep_to_proto(view, self.d))

    @maps_errors
    async def ListSweeps(self, request: sweeps_pb2.ListSweepsRequest, context: Context
                         ) -> sweeps_pb2.ListSweepsResponse:
        return await self._committed(lambda: sweeps_pb2.ListSweepsResponse(
            sweeps=[sweep_to_proto(v, self.d) for v in self.d.list_sweeps()]
        ))

    @maps_errors
    async def SetSweepState(self, request: sweeps_pb2.SetSweepStateRequest, context: Context
                            ) -> common_pb2.Sweep:
        sweep_id = _require(request.sweep_id, "sweep_id")
        actions = {
            sweeps_pb2.SWEEP_ACTION_PAUSE: self.d.pause,
            sweeps_pb2.SWEEP_ACTION_RESUME: self.d.resume,
            sweeps_pb2.SWEEP_ACTION_STOP: self.d.stop,
            sweeps_pb2.SWEEP_ACTION_CANCEL: self.d.cancel,
        }
        action = actions.get(request.action)
        if action is None:
            raise InvalidArgument("action: must be PAUSE, RESUME, STOP or CANCEL")
        return sweep_to_proto(action(sweep_id), self.d)

    @maps_errors
    async def ListRuns(self, request: sweeps_pb2.ListRunsRequest, context: Context
                       ) -> sweeps_pb2.ListRunsResponse:
        view = self.d.get_sweep(_require(request.sweep_id, "sweep_id"))
        return await self._committed(
            lambda: runs_page(view, request.page_size, request.page_token))

    @maps_errors
    async def GetRun(self, request: sweeps_pb2.GetRunRequest, context: Context
                     ) -> sweeps_pb2.GetRunResponse:
        run = self.d.get_run(_require(request.run_id, "run_id"))

        def answer() -> sweeps_pb2.GetRunResponse:
            history = self.d.history(run) if request.include_history else []
            events = self.d.events(run) if request.include_history else []
            return sweeps_pb2.GetRunResponse(
                run=run_to_proto(run, log_tail=True),
                history=[record_to_proto(r) for r in history],
                events=[event_to_proto(e) for e in events],
            )

        return await self._committed(answer)

    @maps_errors
    async def GetParamImportance(self, request: sweeps_pb2.GetParamImportanceRequest,
                                 context: Context) -> sweeps_pb2.GetParamImportanceResponse:
        sweep_id = _require(request.sweep_id, "sweep_id")
        view = self.d.get_sweep(sweep_id)
        return await importance_response(sweep_id, list(view.runs.values()), view.metric_name)

    @maps_errors
    async def RetryRuns(self, request: sweeps_pb2.RetryRunsRequest, context: Context
                        ) -> sweeps_pb2.RetryRunsResponse:
        sweep_id = _require(request.sweep_id, "sweep_id")
        runs = self.d.retry_runs(sweep_id, failed=request.failed, lost=request.lost)
        return sweeps_pb2.RetryRunsResponse(
            run_ids=[r.id for r in runs], sweep=sweep_to_proto(self.d.get_sweep(sweep_id), self.d)
        )

    async def GetRunLogs(self, request: sweeps_pb2.GetRunLogsRequest, context: Context
                         ) -> AsyncIterator[sweeps_pb2.LogChunk]:
        # A generator cannot use @maps_errors: errors before the first chunk are mapped here.
        try:
            run = self.d.get_run(_require(request.run_id, "run_id"))
        except SweepdError as exc:
            await context.abort(status_of(exc), details_of(exc))
            return
        live = self.d.live_log(run.id)
        if live is None and (run.state.is_ended or not request.follow):
            # Ended: its stored tail (a live run without output yet has none).
            if run.log_tail:
                yield sweeps_pb2.LogChunk(data=run.log_tail.encode())
            return
        offset = 0
        while True:
            live = live or self.d.live_log(run.id)
            if live is not None:
                data, offset = live.since(offset)
                if data:
                    yield sweeps_pb2.LogChunk(data=data)
                if live.ended or not request.follow:
                    return
            elif run.state.is_ended or not run.state.is_active:
                if run.log_tail and offset == 0:
                    yield sweeps_pb2.LogChunk(data=run.log_tail.encode())
                return
            await asyncio.sleep(LOG_FOLLOW_POLL_S)

    async def WatchSweep(self, request: sweeps_pb2.WatchSweepRequest, context: Context
                         ) -> AsyncIterator[sweeps_pb2.SweepUpdate]:
        try:
            view, watch = self.d.watch(_require(request.sweep_id, "sweep_id"))
        except SweepdError as exc:
            await context.abort(status_of(exc), details_of(exc))
            return
        try:
            with contextlib.suppress(Unavailable):
                await self.d.durable()
            sent = sweep_to_proto(view, self.d)
            yield sweeps_pb2.SweepUpdate(sweep=sent)
            for run in list(view.runs.values()):
                yield sweeps_pb2.SweepUpdate(run=run_to_proto(run))
            over = self.d.watch_is_over(view)
            while not over:
                await watch.wake.wait()
                await asyncio.sleep(WATCH_BATCH_S)
                # Not before the changes are committed (a failed commit's are taken back).
                with contextlib.suppress(Unavailable):
                    await self.d.durable()
                # Decided before this batch is taken: changes that arrive while it is being
                # sent (the last runs ending with the sweep) go out in one more batch.
                over = self.d.watch_is_over(view)
                for run_id in watch.take():
                    changed = view.runs.get(run_id)
                    if changed is not None:
                        yield sweeps_pb2.SweepUpdate(run=run_to_proto(changed))
                sweep = sweep_to_proto(view, self.d)
                if sweep != sent:
                    sent = sweep
                    yield sweeps_pb2.SweepUpdate(sweep=sweep)
        finally:
            self.d.unwatch(view, watch)

    @maps_errors
    async def ListWorkers(self, request: sweeps_pb2.ListWorkersRequest, context: Context
                          ) -> sweeps_pb2.ListWorkersResponse:
        return sweeps_pb2.ListWorkersResponse(
            workers=[worker_to_proto(info, run_ids) for info, run_ids in self.d.list_workers()])

    @maps_errors
    async def SuggestRun(self, request: sweeps_pb2.SuggestRunRequest, context: Context
                         ) -> sweeps_pb2.SuggestRunResponse:
        sweep_id = _require(request.sweep_id, "sweep_id")
        finished = None
        if request.HasField("finish"):
            finish = request.finish
            if finish.client_id and finish.client_id != request.client_id:
                raise InvalidArgument(
                    f"finish.client_id: {finish.client_id!r} is not this request's client_id"
                    f" {request.client_id!r}; leave it empty (the request's is used)")
            finished = self._finish(finish, request.client_id, "finish.")
        # The finish's commit, checked after the ask (which may wait for a point) as well.
        finish_durable = self.d.durable_later()
        run, done = await self.d.suggest_for_client(sweep_id, request.client_id)
        await finish_durable()
        await self.d.durable()
        response = sweeps_pb2.SuggestRunResponse(sweep_done=done)
        if run is not None:
            response.run.CopyFrom(run_to_proto(run))
            response.lease_seconds = self.d.lease_s
        if finished is not None:
            response.finished.CopyFrom(run_to_proto(finished))
        return response

    @maps_errors
    async def ReportMetrics(self, request: sweeps_pb2.ReportMetricsRequest, context: Context
                            ) -> sweeps_pb2.ReportMetricsResponse:
        records = records_from_proto(request.records, self.d.now())
        run = self.d.report_from_client(_require(request.run_id, "run_id"), request.attempt,
                                        records, request.client_id)
        await self.d.durable()
        return sweeps_pb2.ReportMetricsResponse(
            should_stop=run.stop is not None, stop_reason=run.reason if run.stop else ""
        )

    @maps_errors
    async def FinishRun(self, request: sweeps_pb2.FinishRunRequest, context: Context
                        ) -> common_pb2.Run:
        run = self._finish(request, request.client_id)
        await self.d.durable()
        return run_to_proto(run)

    def _finish(self, request: sweeps_pb2.FinishRunRequest, client_id: str,
                prefix: str = "") -> Run:
        """FinishRun's change, for FinishRun and for SuggestRun's ``finish`` (whose fields
        errors name with ``prefix``)."""
        state = run_state_from_proto(request.state, f"{prefix}state")
        records = records_from_proto(request.records, self.d.now(), f"{prefix}records")
        return self.d.finish_from_client(
            _require(request.run_id, f"{prefix}run_id"), request.attempt, state,
            request.exit_code if request.HasField("exit_code") else None,
            limits.check_text(f"{prefix}reason", request.reason), client_id, records,
        )
