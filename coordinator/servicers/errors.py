"""The one mapping from the domain's exceptions to gRPC status codes."""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import grpc

from ..errors import (
    AlreadyExists,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
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


def maps_errors(
    method: Callable[..., Awaitable[R]],
) -> Callable[..., Awaitable[R]]:
    """Turns a domain error raised by a unary servicer method into its status."""

    @functools.wraps(method)
    async def wrapper(self: Any, request: Any, context: grpc.aio.ServicerContext) -> R:
        try:
            return await method(self, request, context)
        except SweepdError as exc:
            await context.abort(status_of(exc), details_of(exc))
            raise  # unreachable: abort raises

    return wrapper
