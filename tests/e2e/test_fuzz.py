"""Random and malformed requests and configs against a live coordinator: never INTERNAL or
UNKNOWN, never a crash, and no stored state changed by a request that was refused."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sweepd.v1 import common_pb2, sweeps_pb2, sweeps_pb2_grpc, workers_pb2, workers_pb2_grpc

from .harness import Cluster

pytestmark = pytest.mark.e2e

FORBIDDEN = {grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN}
FUZZ = settings(max_examples=60, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow])
METHODS = ["CreateSweep", "GetSweep", "ListSweeps", "SetSweepState", "ListRuns", "GetRun",
           "ListWorkers", "SuggestRun", "ReportMetrics", "FinishRun", "RetryRuns"]
GOOD = "method: grid\nprogram: t.py\nparameters:\n  a: {values: [1, 2, 3]}\n"


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Cluster, Any, str]]:
    cluster = Cluster(tmp_path_factory.mktemp("fuzz"))
    try:
        # Ask/tell runs have leases (issue #11 item 9): one long enough that the control run
        # outlives the module without renewing it.
        cluster.start_coordinator("--lease-seconds", "3600")
        channel = cluster.channel()
        stub = sweeps_pb2_grpc.SweepServiceStub(channel)
        sweep = stub.CreateSweep(sweeps_pb2.CreateSweepRequest(config_text=GOOD)).sweep
        # A control run held by an ask/report client, which fuzzed calls must not disturb.
        stub.SuggestRun(sweeps_pb2.SuggestRunRequest(sweep_id=sweep.id, client_id="control"))
        yield cluster, channel, sweep.id
        assert cluster.coordinator is not None and cluster.coordinator.poll() is None, \
            cluster.coordinator.output() if cluster.coordinator else ""
        channel.close()
    finally:
        cluster.close()


def snapshot(stub: Any) -> str:
    sweeps = stub.ListSweeps(sweeps_pb2.ListSweepsRequest()).sweeps
    state = []
    for s in sorted(sweeps, key=lambda s: s.id):
        runs = stub.ListRuns(sweeps_pb2.ListRunsRequest(sweep_id=s.id)).runs
        state.append([s.id, s.state, s.state_reason,
                      sorted((r.id, r.state, r.attempt, r.next_record_index
                              if hasattr(r, "next_record_index") else 0,
                              json.dumps(dict(r.summary), sort_keys=True)) for r in runs)])
    return json.dumps(state)


def call(fn: Any, request: Any) -> grpc.StatusCode:
    try:
        fn(request, timeout=10)
    except grpc.RpcError as exc:
        assert exc.code() not in FORBIDDEN, (exc.code(), exc.details())
        return exc.code()  # type: ignore[no-any-return]
    return grpc.StatusCode.OK


@FUZZ
@given(method=st.sampled_from(METHODS), payload=st.binary(max_size=512))
def test_malformed_bytes_are_refused_cleanly(live: tuple[Cluster, Any, str], method: str,
                                            payload: bytes) -> None:
    _, channel, _ = live
    stub = sweeps_pb2_grpc.SweepServiceStub(channel)
    before = snapshot(stub)
    raw = channel.unary_unary(f"/sweepd.v1.SweepService/{method}",
                              request_serializer=lambda b: b,
                              response_deserializer=lambda b: b)
    code = call(raw, payload)
    if code != grpc.StatusCode.OK or method not in ("CreateSweep", "SuggestRun",
                                                    "SetSweepState", "RetryRuns"):
        assert snapshot(stub) == before, (method, payload)


scalars = st.one_of(st.none(), st.booleans(), st.integers(-10**12, 10**12),
                    st.floats(allow_nan=True), st.text(max_size=30))
yaml_like = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=5),
    st.dictionaries(st.sampled_from(["method", "parameters", "metric", "values", "min", "max",
                                     "distribution", "name", "goal", "program", "command",
                                     "run_cap", "early_terminate", "max_retries", "q", "mu",
                                     "sigma", "probabilities", "value", "type"]) | st.text(
                                         max_size=10), inner, max_size=6)), max_leaves=25)


@FUZZ
@given(config=yaml_like, as_text=st.text(max_size=200), use_text=st.booleans())
def test_random_configs_never_hurt_the_coordinator(live: tuple[Cluster, Any, str],
                                                   config: Any, as_text: str,
                                                   use_text: bool) -> None:
    _, channel, _ = live
    stub = sweeps_pb2_grpc.SweepServiceStub(channel)
    before = snapshot(stub)
    text = as_text if use_text else json.dumps(config)
    code = call(stub.CreateSweep, sweeps_pb2.CreateSweepRequest(config_text=text))
    if code != grpc.StatusCode.OK:
        assert snapshot(stub) == before
        assert code in (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.RESOURCE_EXHAUSTED)
    else:  # a valid config: the only change is a new sweep; stop it so it holds nothing
        sweeps = stub.ListSweeps(sweeps_pb2.ListSweepsRequest()).sweeps
        for s in sweeps:
            if s.state == common_pb2.SWEEP_STATE_RUNNING and s.id != live[2]:
                stub.SetSweepState(sweeps_pb2.SetSweepStateRequest(
                    sweep_id=s.id, action=sweeps_pb2.SWEEP_ACTION_CANCEL))


ids = st.one_of(st.text(max_size=40), st.just("x" * 100_000))
records = st.lists(st.builds(
    common_pb2.MetricRecord, index=st.integers(-5, 2**62), step=st.integers(-5, 2**62),
    values=st.dictionaries(st.text(max_size=300), st.floats(allow_nan=True), max_size=4)),
    max_size=5)


@FUZZ
@given(run_suffix=st.sampled_from(["-1", "-2", "-99", ""]), run_id=ids,
       attempt=st.integers(-2**31, 2**31 - 1), recs=records,
       state=st.integers(-3, 12), client_id=ids, action=st.integers(-2, 7),
       failed=st.booleans(), lost=st.booleans())
def test_random_calls_refused_without_changing_state(
    live: tuple[Cluster, Any, str], run_suffix: str, run_id: str, attempt: int,
    recs: list[Any], state: int, client_id: str, action: int, failed: bool, lost: bool,
) -> None:
    _, channel, sweep_id = live
    stub = sweeps_pb2_grpc.SweepServiceStub(channel)
    before = snapshot(stub)
    target = (sweep_id + run_suffix) if run_suffix else run_id
    call(stub.GetRun, sweeps_pb2.GetRunRequest(run_id=target, include_history=True))
    call(stub.ListRuns, sweeps_pb2.ListRunsRequest(sweep_id=run_id))
    # The control run is held by "control" at attempt 1: anything else must be refused.
    if attempt != 1:
        assert call(stub.ReportMetrics, sweeps_pb2.ReportMetricsRequest(
            run_id=target, attempt=attempt, records=recs)) != grpc.StatusCode.OK
        assert call(stub.FinishRun, sweeps_pb2.FinishRunRequest(
            run_id=target, attempt=attempt, state=state)) != grpc.StatusCode.OK
    call(stub.SetSweepState, sweeps_pb2.SetSweepStateRequest(sweep_id=run_id, action=action))
    call(stub.RetryRuns, sweeps_pb2.RetryRunsRequest(sweep_id=run_id, failed=failed,
                                                     lost=lost))
    if client_id:
        call(stub.SuggestRun, sweeps_pb2.SuggestRunRequest(sweep_id=run_id,
                                                           client_id=client_id))
    assert snapshot(stub) == before


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(worker_id=ids, slots=st.integers(-5, 10**9), seq=st.integers(0, 2**62),
       run_suffix=st.sampled_from(["-1", "-2", ""]), attempt=st.integers(-3, 5),
       recs=records, first_is_hello=st.booleans())
def test_random_worker_streams(live: tuple[Cluster, Any, str], worker_id: str, slots: int,
                               seq: int, run_suffix: str, attempt: int, recs: list[Any],
                               first_is_hello: bool) -> None:
    cluster, channel, sweep_id = live
    stub = sweeps_pb2_grpc.SweepServiceStub(channel)
    before = snapshot(stub)
    target = sweep_id + run_suffix if run_suffix else worker_id
    # A worker of another sweep that does not exist: it is given no runs, so the only effect
    # a message could have is on runs it does not hold, which must be refused.
    hello = workers_pb2.WorkerMessage(hello=workers_pb2.Hello(
        worker_id=worker_id, slots=slots, sweep_id="no-such-sweep", incarnation="x"))
    batch = workers_pb2.WorkerMessage(seq=seq, metrics=workers_pb2.MetricBatch(
        run_id=target, attempt=attempt, records=recs))
    finish = workers_pb2.WorkerMessage(seq=seq + 1, run_finished=workers_pb2.RunFinished(
        run_id=target, attempt=attempt, state=common_pb2.RUN_STATE_FINISHED))
    messages = [hello, batch, finish] if first_is_hello else [batch, hello]
    wstub = workers_pb2_grpc.WorkerServiceStub(channel)
    try:
        for _ in wstub.Connect(iter(messages), timeout=2):
            pass
    except grpc.RpcError as exc:
        assert exc.code() not in FORBIDDEN, (exc.code(), exc.details())
    assert snapshot(stub) == before
    del cluster


def test_limits_are_named(live: tuple[Cluster, Any, str], tmp_path: Path) -> None:
    _, channel, _ = live
    stub = sweeps_pb2_grpc.SweepServiceStub(channel)
    big = "# " + "x" * (2 * 1024 * 1024) + "\n" + GOOD
    with pytest.raises(grpc.RpcError) as err:
        stub.CreateSweep(sweeps_pb2.CreateSweepRequest(config_text=big), timeout=10)
    assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "MAX_CONFIG_BYTES" in (err.value.details() or "")
    many = "method: random\nprogram: t.py\nparameters:\n" + "".join(
        f"  p{i}: {{values: [1, 2]}}\n" for i in range(1001))
    with pytest.raises(grpc.RpcError) as err:
        stub.CreateSweep(sweeps_pb2.CreateSweepRequest(config_text=many), timeout=10)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "MAX_PARAMETERS" in (err.value.details() or "")
    with pytest.raises(grpc.RpcError) as err:
        stub.CreateSweep(sweeps_pb2.CreateSweepRequest(config_text="x" * (9 * 1024 * 1024)),
                         timeout=10)
    assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
