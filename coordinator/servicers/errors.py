"""The one mapping from the domain's exceptions to gRPC status codes."""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import grpc
from google.protobuf import any_pb2
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status

from ..errors import (
    AlreadyExists,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    Problem,
    ResourceExhausted,
    StorageFull,
    SweepdError,
    Unavailable,
)

log = logging.getLogger("sweepd.coordinator")

STATUS_OF: dict[type[SweepdError], grpc.StatusCode] = {
    InvalidArgument: grpc.StatusCode.INVALID_ARGUMENT,
    NotFound: grpc.StatusCode.NOT_FOUND,
    FailedPrecondition: grpc.StatusCode.FAILED_PRECONDITION,
    PermissionDenied: grpc.StatusCode.PERMISSION_DENIED,
    ResourceExhausted: grpc.StatusCode.RESOURCE_EXHAUSTED,
    AlreadyExists: grpc.StatusCode.ALREADY_EXISTS,
    Unavailable: grpc.StatusCode.UNAVAILABLE,
    # status_of walks the MRO, so this wins over Unavailable: the operator must free space.
    StorageFull: grpc.StatusCode.RESOURCE_EXHAUSTED,
}

R = TypeVar("R")


def details_of(exc: Exception) -> str:
    """The message as gRPC can carry it: text quoted from a request may hold lone surrogates
    (from JSON escapes), which cannot be encoded and would leave the call unanswered."""
    return str(exc).encode("utf-8", "backslashreplace").decode("utf-8")


def status_of(exc: SweepdError) -> grpc.StatusCode:
    for cls in type(exc).__mro__:
        if cls in STATUS_OF:
            return STATUS_OF[cls]
    return grpc.StatusCode.INTERNAL


def rich_status(exc: SweepdError) -> grpc.Status:
    """The status for ``exc``, with the same text as before and, for a refused request, a
    ``google.rpc.BadRequest`` in its details (the ``grpc-status-details-bin`` trailer): one
    field violation per problem, so that a program in any language can show each problem
    beside its field without parsing the message."""
    code = status_of(exc)
    message = details_of(exc)
    status = status_pb2.Status(code=code.value[0], message=message)
    if isinstance(exc, InvalidArgument):
        bad = error_details_pb2.BadRequest(field_violations=[
            _violation(p) for p in exc.problems])
        detail = any_pb2.Any()
        detail.Pack(bad)
        status.details.append(detail)
    return rpc_status.to_status(status)


# A problem raised as plain text names its field first ("sweep_id: must not be empty").
_LEADING_FIELD = re.compile(r"^([A-Za-z_][\w.\[\]-]*): (.+)$", re.DOTALL)


def _violation(problem: Problem) -> error_details_pb2.BadRequest.FieldViolation:
    field, message = problem.path, problem.message
    if not field:
        match = _LEADING_FIELD.match(message)
        if match:
            field, message = match.groups()
    description = f"{message} ({problem.fix})" if problem.fix else message
    return error_details_pb2.BadRequest.FieldViolation(
        field=_carried(field), description=_carried(description))


def _carried(text: str) -> str:
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def maps_errors(
    method: Callable[..., Awaitable[R]],
) -> Callable[..., Awaitable[R]]:
    """Turns a domain error raised by a unary servicer method into its status."""

    @functools.wraps(method)
    async def wrapper(self: Any, request: Any, context: grpc.aio.ServicerContext) -> R:
        try:
            return await method(self, request, context)
        except SweepdError as exc:
            await context.abort_with_status(rich_status(exc))
            raise  # unreachable: abort raises

    return wrapper
