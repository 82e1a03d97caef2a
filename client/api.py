"""The Python client: ``Client`` for every SweepService call, and ``sweep()``.

    from sweepd.client import Client, sweep

    sweep_id = sweep("sweep.yaml")                 # or a dict, as wandb.sweep takes
    client = Client()                              # $SWEEPD_COORDINATOR or 127.0.0.1:50051
    for r in client.runs(sweep_id):
        print(r["id"], r["state"], r["params"], r["summary"])

Results are plain dicts with stable field names (the same documents ``sweep ... --format
json`` prints). Errors raise ``SweepdClientError`` carrying the gRPC status code and the
coordinator's message.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import grpc
from google.protobuf.timestamp_pb2 import Timestamp
from sweepd.common.params import params_from_proto
from sweepd.common.transport import (
    IDEMPOTENT_METHODS,
    RESTART_WAIT_S,
    Security,
    StillUnavailable,
    coordinator_address,
    open_channel,
    retry_while_unavailable,
)
from sweepd.v1 import common_pb2, sweeps_pb2, sweeps_pb2_grpc

# Unary calls answer in milliseconds; this bounds a call to a hung coordinator.
DEFAULT_TIMEOUT_S = 30.0


class SweepdClientError(Exception):
    """A refused call. ``field_violations``: for INVALID_ARGUMENT, each problem as (field path,
    description with the fix), from the status details (empty from older coordinators)."""

    def __init__(self, code: grpc.StatusCode, message: str,
                 field_violations: Sequence[tuple[str, str]] = ()) -> None:
        self.code = code
        self.message = message
        self.field_violations: list[tuple[str, str]] = list(field_violations)
        super().__init__(f"{code.name}: {message}")


def field_violations(exc: grpc.RpcError) -> list[tuple[str, str]]:
    """The BadRequest field violations in a failed call's ``grpc-status-details-bin``."""
    # Imported here: only a refused call needs them, and the client stays quick to import.
    from google.rpc import error_details_pb2, status_pb2

    trailing = exc.trailing_metadata() if isinstance(exc, grpc.Call) else None
    found: list[tuple[str, str]] = []
    for key, value in trailing or ():
        if key != "grpc-status-details-bin" or not isinstance(value, bytes):
            continue
        for detail in status_pb2.Status.FromString(value).details:
            bad = error_details_pb2.BadRequest()
            if detail.Unpack(bad):
                found.extend((v.field, v.description) for v in bad.field_violations)
    return found


def _time(ts: Timestamp) -> float | None:
    return ts.ToNanoseconds() / 1e9 if (ts.seconds or ts.nanos) else None


def run_to_dict(run: common_pb2.Run) -> dict[str, Any]:
    return {
        "id": run.id,
        "sweep_id": run.sweep_id,
        "number": run.number,
        "state": common_pb2.RunState.Name(run.state).removeprefix("RUN_STATE_"),
        "params": params_from_proto(run.params),
        "summary": dict(run.summary),
        "worker_id": run.worker_id,
        "attempt": run.attempt,
        "exit_code": run.exit_code if run.HasField("exit_code") else None,
        "reason": run.reason,
        # What to run (worker-side macros unresolved) and what was started (resolved).
        "command": list(run.command),
        "argv": list(run.argv),
        "created_at": _time(run.created_at),
        "started_at": _time(run.started_at),
        "ended_at": _time(run.ended_at),
        "predicted_mean": run.predicted_mean if run.HasField("predicted_mean") else None,
        "predicted_std": run.predicted_std if run.HasField("predicted_std") else None,
        "stop": {
            "rule": run.stop.rule,
            "reason": run.stop.reason,
            "band": run.stop.band if run.stop.HasField("band") else None,
            "threshold": run.stop.threshold if run.stop.HasField("threshold") else None,
            "value": run.stop.value if run.stop.HasField("value") else None,
        } if run.HasField("stop") else None,
        # Filled by get_run only: the end of the run's output once it ended.
        "log_tail": run.log_tail or None,
    }


def sweep_to_dict(sweep: common_pb2.Sweep) -> dict[str, Any]:
    return {
        "id": sweep.id,
        "name": sweep.name,
        "state": common_pb2.SweepState.Name(sweep.state).removeprefix("SWEEP_STATE_"),
        "state_reason": sweep.state_reason,
        "method": sweep.method,
        "metric": {"name": sweep.metric_name, "goal": sweep.metric_goal}
        if sweep.metric_name else None,
        "run_cap": sweep.run_cap or None,
        "queue": sweep.queue or "default",
        "max_concurrent": sweep.max_concurrent or None,
        "run_counts": dict(sweep.run_counts),
        "best_run": run_to_dict(sweep.best_run) if sweep.HasField("best_run") else None,
        "notices": list(sweep.notices),
        "created_at": _time(sweep.created_at),
        "updated_at": _time(sweep.updated_at),
        "config": sweep.config_text,
    }


def worker_to_dict(w: sweeps_pb2.Worker) -> dict[str, Any]:
    return {
        "id": w.id,
        "host": w.host,
        "slots": w.slots,
        "labels": dict(w.labels),
        "connected": w.connected,
        "run_ids": list(w.run_ids),
        "sweep_id": w.sweep_id or None,
        "gpus": list(w.gpus),
        "queues": list(w.queues),
        "last_heartbeat": _time(w.last_heartbeat),
        "connected_at": _time(w.connected_at),
    }


def config_text(config: str | Path | Mapping[str, Any]) -> tuple[str, str]:
    """(text, source name) of a config given as a dict, a path, or YAML/JSON text."""
    if isinstance(config, Mapping):
        return json.dumps(dict(config)), "<dict>"
    path = Path(config)
    if isinstance(config, Path) or (len(str(config)) < 4096 and "\n" not in str(config)
                                     and path.suffix in (".yaml", ".yml", ".json")):
        return path.read_text(encoding="utf-8"), str(path)
    return str(config), "<text>"


def _status(exc: grpc.RpcError) -> tuple[grpc.StatusCode, str]:
    code = exc.code() if hasattr(exc, "code") else grpc.StatusCode.UNKNOWN
    details = exc.details() if hasattr(exc, "details") else str(exc)
    return code, details


class Client:
    def __init__(self, coordinator: str | None = None, *, timeout: float = DEFAULT_TIMEOUT_S,
                 security: Security | None = None,
                 restart_wait_s: float = RESTART_WAIT_S) -> None:
        """``security``: token and TLS; by default $SWEEPD_TOKEN / $SWEEPD_TLS_CA, else the
        token file of a coordinator on this machine (see ``Security.resolve``).

        ``restart_wait_s``: once the coordinator has answered this client, a call that is safe
        to repeat (reads, ask/report/finish) waits up to this long for it to come back from a
        restart instead of failing (0: never wait). Before the first answer a call fails at
        once: a coordinator never reached is more likely misaddressed than restarting."""
        self.address = coordinator_address(coordinator)
        self.timeout = timeout
        self.restart_wait_s = restart_wait_s
        self._answered = False
        self._channel = open_channel(self.address, security)
        self._stub = sweeps_pb2_grpc.SweepServiceStub(self._channel)

    def close(self) -> None:
        self._channel.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _call(self, method: str, request: Any) -> Any:
        stub = getattr(self._stub, method)
        waits = self._answered and self.restart_wait_s > 0 and method in IDEMPOTENT_METHODS
        try:
            if waits:
                response = retry_while_unavailable(
                    lambda timeout: stub(request, timeout=timeout, wait_for_ready=True),
                    timeout=self.timeout, wait_s=self.restart_wait_s)
            else:
                response = stub(request, timeout=self.timeout)
            self._answered = True
            return response
        except StillUnavailable as gone:
            if gone.storage_full:
                raise SweepdClientError(grpc.StatusCode.RESOURCE_EXHAUSTED, (
                    f"the coordinator at {self.address} could not store anything for"
                    f" {gone.waited_s:.0f} s: its state directory's disk is full ({gone.details});"
                    " free space there, then call again (nothing of this call was kept)"
                )) from None
            raise SweepdClientError(grpc.StatusCode.UNAVAILABLE, (
                f"the coordinator at {self.address} was unreachable for {gone.waited_s:.0f} s"
                f" ({gone.details}); is `coordinator serve` still running there?")) from None
        except grpc.RpcError as exc:
            code, details = _status(exc)
            if code == grpc.StatusCode.UNAVAILABLE:
                details = (f"cannot reach the coordinator at {self.address} ({details}); is"
                           " `coordinator serve` running there? Name the right one with"
                           " coordinator=\"HOST:PORT\" (Python), --coordinator (CLI) or"
                           " SWEEPD_COORDINATOR")
            raise SweepdClientError(code, details, field_violations(exc)) from None

    def _stream(self, method: str, request: Any, timeout: float | None) -> Iterator[Any]:
        """The messages of a server-streaming call, its failure as SweepdClientError."""
        try:
            yield from getattr(self._stub, method)(request, timeout=timeout)
        except grpc.RpcError as exc:
            raise SweepdClientError(*_status(exc)) from None

    # -- sweeps ---------------------------------------------------------------------------

    def create_sweep(self, config: str | Path | Mapping[str, Any], *, queue: str = "",
                     max_concurrent: int = 0, max_retries: int | None = None,
                     validate_only: bool = False) -> dict[str, Any]:
        """Creates a sweep on ``queue`` (default "default"), at most ``max_concurrent`` runs at
        once (0: no limit), a LOST run tried again up to ``max_retries`` times (None: the
        config's ``max_retries``, else the coordinator's default). With ``validate_only``,
        only checks: the answer is the sweep it would create (its ``notices``; no id), and
        nothing is created."""
        text, source = config_text(config)
        request = sweeps_pb2.CreateSweepRequest(
            config_text=text, source_name=source, queue=queue, max_concurrent=max_concurrent,
            validate_only=validate_only)
        if max_retries is not None:
            request.max_retries = max_retries
        response = self._call("CreateSweep", request)
        return sweep_to_dict(response.sweep)

    def retry(self, sweep_id: str, *, failed: bool = False, lost: bool = False
              ) -> dict[str, Any]:
        """Puts the sweep's FAILED and/or LOST runs back in the queue. Returns
        ``{"run_ids": [...], "sweep": {...}}``."""
        response = self._call("RetryRuns", sweeps_pb2.RetryRunsRequest(
            sweep_id=sweep_id, failed=failed, lost=lost))
        return {"run_ids": list(response.run_ids), "sweep": sweep_to_dict(response.sweep)}

    def importance(self, sweep_id: str) -> dict[str, Any]:
        """Which parameters matter for the sweep's metric, most important first: ``{"params":
        [{"param", "importance", "importance_std", "correlation", "kind", "by_value"?}, ...],
        "runs_used", "model", "model_r2", "notices"}``. Raises ``SweepdClientError``
        (FAILED_PRECONDITION) while too few runs have finished, saying how many are needed."""
        response = self._call("GetParamImportance",
                              sweeps_pb2.GetParamImportanceRequest(sweep_id=sweep_id))
        return importance_to_dict(response)

    def get_sweep(self, sweep_id: str) -> dict[str, Any]:
        return sweep_to_dict(self._call("GetSweep", sweeps_pb2.GetSweepRequest(sweep_id=sweep_id)))

    def list_sweeps(self) -> list[dict[str, Any]]:
        response = self._call("ListSweeps", sweeps_pb2.ListSweepsRequest())
        return [sweep_to_dict(s) for s in response.sweeps]

    def _set_state(self, sweep_id: str, action: int) -> dict[str, Any]:
        return sweep_to_dict(self._call("SetSweepState", sweeps_pb2.SetSweepStateRequest(
            sweep_id=sweep_id, action=action)))

    def pause(self, sweep_id: str) -> dict[str, Any]:
        return self._set_state(sweep_id, sweeps_pb2.SWEEP_ACTION_PAUSE)

    def resume(self, sweep_id: str) -> dict[str, Any]:
        return self._set_state(sweep_id, sweeps_pb2.SWEEP_ACTION_RESUME)

    def stop(self, sweep_id: str) -> dict[str, Any]:
        return self._set_state(sweep_id, sweeps_pb2.SWEEP_ACTION_STOP)

    def cancel(self, sweep_id: str) -> dict[str, Any]:
        return self._set_state(sweep_id, sweeps_pb2.SWEEP_ACTION_CANCEL)

    # -- runs and workers -----------------------------------------------------------------

    def runs(self, sweep_id: str, *, page_size: int = 0) -> list[dict[str, Any]]:
        """Every run of the sweep, in creation order, fetched a page at a time (``page_size``
        runs per call; 0: the coordinator's default)."""
        return list(self.iter_runs(sweep_id, page_size=page_size))

    list_runs = runs

    def iter_runs(self, sweep_id: str, *, page_size: int = 0) -> Iterator[dict[str, Any]]:
        """The sweep's runs page by page, as they are fetched."""
        token = ""
        while True:
            response = self._call("ListRuns", sweeps_pb2.ListRunsRequest(
                sweep_id=sweep_id, page_size=page_size, page_token=token))
            for r in response.runs:
                yield run_to_dict(r)
            token = response.next_page_token
            if not token:
                return

    def get_run(self, run_id: str, *, history: bool = False) -> dict[str, Any]:
        response = self._call("GetRun", sweeps_pb2.GetRunRequest(
            run_id=run_id, include_history=history))
        result = run_to_dict(response.run)
        if history:
            result["history"] = [
                {"index": r.index, "step": r.step, "time": _time(r.time), **dict(r.values)}
                for r in response.history
            ]
            result["events"] = [
                {"attempt": e.attempt, "time": _time(e.time), "worker_id": e.worker_id,
                 "state": common_pb2.RunState.Name(e.state).removeprefix("RUN_STATE_"),
                 "reason": e.reason}
                for e in response.events
            ]
        return result

    def logs(self, run_id: str, *, follow: bool = False) -> Iterator[bytes]:
        """A run's output in chunks; with ``follow``, until the run ends."""
        request = sweeps_pb2.GetRunLogsRequest(run_id=run_id, follow=follow)
        # No deadline when following: the stream lasts as long as the run.
        for chunk in self._stream("GetRunLogs", request, None if follow else self.timeout):
            yield chunk.data

    def watch(self, sweep_id: str) -> Iterator[dict[str, Any]]:
        """The sweep, then each run, then every change as it happens, as ``{"sweep": ...}`` and
        ``{"run": ...}`` documents; ends once the sweep ended and no run of it is active."""
        request = sweeps_pb2.WatchSweepRequest(sweep_id=sweep_id)
        for update in self._stream("WatchSweep", request, None):
            if update.HasField("sweep"):
                yield {"sweep": sweep_to_dict(update.sweep)}
            else:
                yield {"run": run_to_dict(update.run)}

    def workers(self) -> list[dict[str, Any]]:
        response = self._call("ListWorkers", sweeps_pb2.ListWorkersRequest())
        return [worker_to_dict(w) for w in response.workers]

    # -- ask / report / finish ------------------------------------------------------------

    def suggest_run(self, sweep_id: str, client_id: str) -> tuple[dict[str, Any] | None, bool]:
        """(run or None, sweep_done). The run comes with ``lease_seconds``: report (or ask
        again) within it, or the run is LOST and retried elsewhere."""
        response = self._call("SuggestRun", sweeps_pb2.SuggestRunRequest(
            sweep_id=sweep_id, client_id=client_id))
        run = run_to_dict(response.run) if response.HasField("run") else None
        if run is not None:
            run["lease_seconds"] = response.lease_seconds
        return run, response.sweep_done

    def report_metrics(self, run_id: str, attempt: int, records: Sequence[Mapping[str, float]],
                       *, first_index: int = 0, client_id: str = "") -> tuple[bool, str]:
        """Reports records (dicts of metric values; optional ``_step``) of a run taken with
        ``client_id``; no records only renews its lease. Returns (should_stop, reason)."""
        response = self._call("ReportMetrics", sweeps_pb2.ReportMetricsRequest(
            run_id=run_id, attempt=attempt, records=_records_to_proto(records, first_index),
            client_id=client_id))
        return response.should_stop, response.stop_reason

    def finish_run(self, run_id: str, attempt: int, state: str = "FINISHED",
                   exit_code: int | None = None, reason: str = "", *,
                   client_id: str = "", records: Sequence[Mapping[str, float]] = (),
                   first_index: int = 0) -> dict[str, Any]:
        """Ends a run taken with ``client_id`` (required by the coordinator). ``records``
        (as for ``report_metrics``, numbered from ``first_index``) are stored first, in the
        same commit: a trial's result and its end in one call."""
        request = sweeps_pb2.FinishRunRequest(
            run_id=run_id, attempt=attempt,
            state=common_pb2.RunState.Value(f"RUN_STATE_{state.upper()}"), reason=reason,
            client_id=client_id, records=_records_to_proto(records, first_index))
        if exit_code is not None:
            request.exit_code = exit_code
        return run_to_dict(self._call("FinishRun", request))


def _records_to_proto(records: Sequence[Mapping[str, float]], first_index: int
                      ) -> list[common_pb2.MetricRecord]:
    """Metric records from dicts of values (``_step`` optional), indexed from
    ``first_index``."""
    protos = []
    for i, rec in enumerate(records):
        values = {k: float(v) for k, v in rec.items() if not k.startswith("_")}
        step = int(rec.get("_step", first_index + i))
        protos.append(common_pb2.MetricRecord(index=first_index + i, step=step, values=values))
    return protos


def sweep(config: str | Path | Mapping[str, Any], *, coordinator: str | None = None) -> str:
    """Creates a sweep from a config dict, a path to a YAML/JSON file, or the text itself,
    and returns its id (as ``wandb.sweep`` does).

    With no ``coordinator`` (nor ``$SWEEPD_COORDINATOR``) and none answering on this
    machine's default address, a local one is started in the background and reused
    afterwards (``sweepd.common.local``; ``coordinator stop`` ends it)."""
    from sweepd.common.local import ensure_local

    ensure_local(coordinator)
    with Client(coordinator) as client:
        return str(client.create_sweep(config)["id"])


def _optional(message: Any, name: str) -> float | None:
    return getattr(message, name) if message.HasField(name) else None


def importance_to_dict(response: sweeps_pb2.GetParamImportanceResponse) -> dict[str, Any]:
    params = []
    for p in response.params:
        entry: dict[str, Any] = {
            "param": p.param, "importance": p.importance, "importance_std": p.importance_std,
            "correlation": _optional(p, "correlation"), "kind": p.kind,
        }
        if p.by_value:
            entry["by_value"] = [
                {"value": v.value, "correlation": _optional(v, "correlation"), "runs": v.runs}
                for v in p.by_value
            ]
        params.append(entry)
    return {
        "params": params, "runs_used": response.runs_used, "model": response.model,
        "model_r2": _optional(response, "model_r2"), "notices": list(response.notices),
    }
