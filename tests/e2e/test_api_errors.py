"""The API as a program in another language meets it (#16): machine-readable error details,
validate_only, the UNAUTHENTICATED hint, the JSON `-5` notice and reflection v1, against a
real coordinator process."""

from __future__ import annotations

import json
from pathlib import Path

import grpc
import pytest
from google.protobuf import descriptor_pb2
from google.rpc import error_details_pb2
from grpc_reflection.v1alpha import reflection_pb2
from grpc_status import rpc_status
from sweepd.client.api import Client, SweepdClientError
from sweepd.common.transport import Security
from sweepd.v1 import sweeps_pb2, sweeps_pb2_grpc

from .harness import Cluster

pytestmark = pytest.mark.e2e

BAD_CONFIG = """\
method: random
metric: {name: loss, goal: minimize}
parameters:
  lr: {min: 0.1, max: -1.0}
  batch_size: {values: [16, 32], mn: 3}
"""

GOOD_CONFIG = """\
method: random
metric: {name: loss, goal: minimize}
parameters:
  lr: {min: 0.001, max: 0.1}
"""


def _stub(cluster: Cluster, token: str | None = None) -> sweeps_pb2_grpc.SweepServiceStub:
    return sweeps_pb2_grpc.SweepServiceStub(cluster.channel(token=token))


def _refusal(call: object) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as caught:
        call()  # type: ignore[operator]
    return caught.value


def test_a_refused_config_carries_bad_request_field_violations(cluster: Cluster) -> None:
    cluster.start_coordinator()
    stub = _stub(cluster)
    err = _refusal(lambda: stub.CreateSweep(sweeps_pb2.CreateSweepRequest(
        config_text=BAD_CONFIG, source_name="sweep.yaml")))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    message = err.details()
    # Today's text is kept, one problem a line.
    assert message.startswith("invalid sweep configuration")
    # from_call also checks the rich status's code and message equal the call's own.
    status = rpc_status.from_call(err)
    assert status is not None and status.message == message
    violations: list[error_details_pb2.BadRequest.FieldViolation] = []
    for detail in status.details:
        bad = error_details_pb2.BadRequest()
        assert detail.Unpack(bad), detail.type_url
        violations.extend(bad.field_violations)
    fields = {v.field: v.description for v in violations}
    assert "parameters.batch_size.mn" in fields, fields
    assert "min" in fields["parameters.batch_size.mn"]  # the fix: did you mean 'min'?
    assert any(f.startswith("parameters.lr") for f in fields), fields
    assert all(v.description for v in violations)
    # Every problem of the message is one violation.
    assert len(violations) == len(message.splitlines()) - 1

    # The Python client hands them over as (field, description).
    client = Client(cluster.address, security=Security(token=cluster.token))
    with pytest.raises(SweepdClientError) as caught:
        client.create_sweep(BAD_CONFIG)
    assert dict(caught.value.field_violations) == fields


def test_a_plain_invalid_argument_names_its_field_too(cluster: Cluster) -> None:
    cluster.start_coordinator()
    err = _refusal(lambda: _stub(cluster).CreateSweep(sweeps_pb2.CreateSweepRequest(
        config_text=GOOD_CONFIG, max_concurrent=-2)))
    status = rpc_status.from_call(err)
    assert status is not None
    bad = error_details_pb2.BadRequest()
    assert status.details[0].Unpack(bad)
    assert [v.field for v in bad.field_violations] == ["max_concurrent"]
    assert "0 for no limit" in bad.field_violations[0].description


def test_validate_only_checks_and_creates_nothing(cluster: Cluster) -> None:
    cluster.start_coordinator()
    client = Client(cluster.address, security=Security(token=cluster.token))
    # The config a JSON writer produces from {min: -5.0, max: 5.0}: the .0 is gone.
    as_json = json.dumps({"method": "random", "metric": {"name": "loss", "goal": "minimize"},
                          "parameters": {"x": {"min": -5, "max": 5}}})
    would = client.create_sweep(as_json, validate_only=True)
    assert would["id"] == "" and would["state"] == "UNSPECIFIED"
    assert would["method"] == "random" and would["metric"] == {"name": "loss",
                                                              "goal": "minimize"}
    notice = next(n for n in would["notices"] if n.startswith("parameters.x"))
    # A JSON program cannot write -5.0: the notice gives the fix it can apply.
    assert "int_uniform" in notice and "`distribution: uniform`" in notice
    assert client.list_sweeps() == []

    with pytest.raises(SweepdClientError) as caught:
        client.create_sweep(BAD_CONFIG, validate_only=True)
    assert caught.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert caught.value.field_violations
    with pytest.raises(SweepdClientError) as caught:
        client.create_sweep(GOOD_CONFIG, validate_only=True, max_retries=-1)
    assert caught.value.field_violations[0][0] == "max_retries"
    assert client.list_sweeps() == []

    # The fix the notice gives works and leaves no notice about x's type.
    fixed = json.loads(as_json)
    fixed["parameters"]["x"]["distribution"] = "uniform"
    checked = client.create_sweep(json.dumps(fixed), validate_only=True)
    assert not [n for n in checked["notices"] if n.startswith("parameters.x")]
    created = client.create_sweep(json.dumps(fixed))
    assert created["id"] and [s["id"] for s in client.list_sweeps()] == [created["id"]]


def test_unauthenticated_names_the_header(cluster: Cluster) -> None:
    cluster.start_coordinator()
    for token in ("", "not-the-token"):
        err = _refusal(lambda t=token: _stub(cluster, token=t).ListSweeps(
            sweeps_pb2.ListSweepsRequest()))
        assert err.code() == grpc.StatusCode.UNAUTHENTICATED
        assert "`authorization: Bearer <token>`" in err.details()


def _reflect(channel: grpc.Channel, service: str,
             requests: list[reflection_pb2.ServerReflectionRequest]
             ) -> list[reflection_pb2.ServerReflectionResponse]:
    # A reflection client of either version: the messages are the same bytes on the wire.
    call = channel.stream_stream(
        f"/{service}/ServerReflectionInfo",
        request_serializer=reflection_pb2.ServerReflectionRequest.SerializeToString,
        response_deserializer=reflection_pb2.ServerReflectionResponse.FromString)
    return list(call(iter(requests), timeout=30))


@pytest.mark.parametrize("service", ["grpc.reflection.v1.ServerReflection",
                                     "grpc.reflection.v1alpha.ServerReflection"])
def test_reflection_v1_and_v1alpha(cluster: Cluster, service: str, tmp_path: Path) -> None:
    cluster.start_coordinator()
    listed, described, itself = _reflect(cluster.channel(), service, [
        reflection_pb2.ServerReflectionRequest(list_services=""),
        reflection_pb2.ServerReflectionRequest(file_containing_symbol="sweepd.v1.SweepService"),
        reflection_pb2.ServerReflectionRequest(file_containing_symbol=service),
    ])
    names = {s.name for s in listed.list_services_response.service}
    assert {"sweepd.v1.SweepService", "sweepd.v1.WorkerService", "grpc.health.v1.Health",
            "grpc.reflection.v1.ServerReflection",
            "grpc.reflection.v1alpha.ServerReflection"} <= names
    files = [descriptor_pb2.FileDescriptorProto.FromString(b)
             for b in described.file_descriptor_response.file_descriptor_proto]
    sweeps = next(f for f in files if f.name == "sweepd/v1/sweeps.proto")
    create = next(m for m in sweeps.message_type if m.name == "CreateSweepRequest")
    assert "validate_only" in {f.name for f in create.field}
    own = [descriptor_pb2.FileDescriptorProto.FromString(b)
           for b in itself.file_descriptor_response.file_descriptor_proto]
    assert [f.package for f in own] == [service.rsplit(".", 1)[0]]
    assert own[0].service[0].method[0].input_type == (
        "." + service.rsplit(".", 1)[0] + ".ServerReflectionRequest")
