"""Who may call the coordinator: a bearer token on every call (health checks excepted),
created on first start, and TLS / mutual TLS material for the listening port."""

from __future__ import annotations

import hmac
import inspect
import ipaddress
import os
import secrets
import socket
import stat
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import grpc
from sweepd.common.transport import AUTH_METADATA_KEY, TOKEN_ENV, TOKEN_FILENAME

from .statedir import StateDirError, os_refusal

# 32 random bytes: far beyond guessing over the network, short enough to paste.
TOKEN_BYTES = 32
# Owner read/write only: the token is as good as a password to this coordinator.
TOKEN_FILE_MODE = 0o600
# The shortest token a token file may hold. The token guards running any command on every
# worker and can be tried over the network; one written by hand shorter than this may be a
# word or a test value. Created tokens have 43 characters.
MIN_TOKEN_CHARS = 16
# Health checks stay open so load balancers and orchestrators can probe without a secret.
UNAUTHENTICATED_PREFIXES = ("/grpc.health.v1.Health/",)


def load_or_create_token(state_dir: Path) -> tuple[str, bool]:
    """(token, created). The token file is created atomically with mode 0600.

    An existing token file readable by group or others is narrowed to 0600 with a warning
    rather than refused: the token may already have leaked, which the warning says, but
    refusing would only make the operator type the chmod. An empty one is refused: an empty
    token would accept ``authorization: Bearer `` from anyone.
    """
    path = state_dir / TOKEN_FILENAME
    try:
        return _read_token(path), False
    except FileNotFoundError:
        pass
    state_dir.mkdir(parents=True, exist_ok=True)
    token = secrets.token_urlsafe(TOKEN_BYTES)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, TOKEN_FILE_MODE)
    except FileExistsError:  # another coordinator on this state dir won the race
        return _read_token(path), False
    except OSError as exc:
        raise os_refusal(state_dir, f"create the token file {path}", exc) from None
    try:
        with os.fdopen(fd, "w") as f:
            f.write(token + "\n")
    except OSError as exc:
        # A token file cut short would be refused at the next start (or hold a token that
        # no client has); without it, the next start creates a new one.
        path.unlink(missing_ok=True)
        raise os_refusal(state_dir, f"write the token file {path}", exc) from None
    return token, True


def _read_token(path: Path) -> str:
    """The token in ``path``; refuses what is not a regular file of one line of printable
    text of at least MIN_TOKEN_CHARS characters.

    A symbolic link is read but never chmod-ed: its target is someone else's choice (a
    mounted secret, a file shared with other tools), and chmod would change it for all of
    them. Readable by others, it gets a warning instead.
    """
    linked = path.is_symlink()
    try:
        st = path.stat()
    except FileNotFoundError:
        if linked:  # a dangling link: creating a token would write through it
            raise StateDirError(
                f"the token file {path} is a symbolic link to {os.readlink(path)}, which does"
                " not exist: point it at the token file, or delete the link to have a new"
                " token created") from None
        raise
    except OSError as exc:
        raise StateDirError(f"cannot read the token file {path}: {exc}") from None
    if not stat.S_ISREG(st.st_mode):
        kind = "a directory" if stat.S_ISDIR(st.st_mode) else "not a regular file"
        raise StateDirError(
            f"the token file {path} is {kind}: remove it to have a new token created, or put"
            " the token there as a file")
    mode = stat.S_IMODE(st.st_mode)
    if mode & 0o077:
        if linked:
            print(f"coordinator: WARNING: the token file {path} links to"
                  f" {path.resolve()}, which is mode {mode:04o}, readable by other users; it"
                  " was left as it is (a link's target is not changed). Run `chmod 600` on"
                  " it, or on the file it comes from", file=sys.stderr, flush=True)
        elif st.st_uid != os.geteuid():
            raise StateDirError(
                f"the token file {path} is mode {mode:04o}, readable by others, and belongs to"
                f" another user: run `chmod 600 {path}` as its owner")
        else:
            path.chmod(TOKEN_FILE_MODE)
            print(f"coordinator: WARNING: the token file {path} was mode {mode:04o}, readable"
                  f" by other users; set to {TOKEN_FILE_MODE:04o}. If others could log in"
                  " here, they may have the token: delete the file and restart to get a new"
                  " one", file=sys.stderr, flush=True)
    try:
        token = path.read_text().strip()
    except UnicodeDecodeError:
        token = ""
    except OSError as exc:
        raise StateDirError(f"cannot read the token file {path}: {exc}") from None
    if not token or not token.isprintable() or any(c.isspace() for c in token):
        raise StateDirError(
            f"the token file {path} is empty or not one line of printable text, which would let"
            " anyone in: delete it to have a new token created, or write the token into it")
    if len(token) < MIN_TOKEN_CHARS:
        raise StateDirError(
            f"the token file {path} holds a token of {len(token)} characters, which could be"
            f" guessed; it needs at least {MIN_TOKEN_CHARS}: delete the file to have a new"
            " token created, or write a longer one into it (e.g. the output of `python3 -c"
            " 'import secrets; print(secrets.token_urlsafe(32))'`)")
    return token


def how_to_pass(state_dir: Path) -> str:
    return (f"pass the token in {state_dir / TOKEN_FILENAME} with --token or ${TOKEN_ENV}"
            " (clients of the same user on this machine read it from the default state dir"
            " by themselves)")


class GuardedServer:
    """The server as the servicers register on it: each method handler is wrapped once, at
    registration, with the bearer-token check (UNAUTHENTICATED without the token; health
    checks excepted) and the answer to undecodable request bytes (INVALID_ARGUMENT, where
    gRPC's own is UNKNOWN, which reads as a server fault).

    Done at registration rather than by server interceptors: grpc.aio runs interceptors as
    coroutines on every call and builds a new handler each time, about a tenth of the
    server's cost of a small call.
    """

    def __init__(self, server: grpc.aio.Server, token: str | None, hint: str) -> None:
        self._server = server
        self._expected = token.encode() if token is not None else None
        self._hint = hint

    def add_registered_method_handlers(self, service: str,
                                       handlers: dict[str, grpc.RpcMethodHandler]) -> None:
        self._server.add_registered_method_handlers(service, {
            name: self.guard(f"/{service}/{name}", handler)
            for name, handler in handlers.items()})

    def add_generic_rpc_handlers(self, handlers: Any) -> None:
        self._server.add_generic_rpc_handlers(tuple(_GuardedGeneric(self, h) for h in handlers))

    def refusal(self, context: grpc.aio.ServicerContext) -> str:
        """Why the call may not go on, or "" when it carries the token."""
        if self._expected is None:
            return ""
        given = ""
        for key, value in context.invocation_metadata() or ():
            if key == AUTH_METADATA_KEY:
                given = value if isinstance(value, str) else value.decode(errors="replace")
        # The scheme in any case (RFC 7235); the token compared in constant time, so that it
        # cannot be found byte by byte from timings.
        scheme, _, credentials = given.partition(" ")
        if scheme.lower() == "bearer" and hmac.compare_digest(credentials.encode(),
                                                              self._expected):
            return ""
        # Programs in other languages meet this first: name the header before the CLI flags.
        return (("missing token" if not given else "wrong token")
                + f"; send the header `{AUTH_METADATA_KEY}: Bearer <token>` with every call"
                + f" (the CLI and Python client: {self._hint})")

    def guard(self, method: str, handler: Any) -> Any:
        if handler is None:
            return None
        check = (_no_check if method.startswith(UNAUTHENTICATED_PREFIXES) else self.refusal)
        return _guarded(handler, check)


class _GuardedGeneric(grpc.GenericRpcHandler):
    def __init__(self, guard: GuardedServer, inner: grpc.GenericRpcHandler) -> None:
        self._guard = guard
        self._inner = inner

    def service(self, handler_call_details: grpc.HandlerCallDetails) -> Any:
        method = handler_call_details.method or ""
        return self._guard.guard(method, self._inner.service(handler_call_details))


def _no_check(context: grpc.aio.ServicerContext) -> str:
    return ""


def is_loopback(host: str) -> bool:
    if host in ("localhost", ""):
        return host == "localhost"
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        try:
            return ipaddress.ip_address(socket.gethostbyname(host)).is_loopback
        except (OSError, ValueError):
            return False


def server_credentials(cert: Path, key: Path, client_ca: Path | None
                       ) -> grpc.ServerCredentials:
    """TLS for the port; with ``client_ca``, mutual TLS: clients must present a certificate
    signed by it."""
    return grpc.ssl_server_credentials(
        [(key.read_bytes(), cert.read_bytes())],
        root_certificates=client_ca.read_bytes() if client_ca else None,
        require_client_auth=client_ca is not None,
    )


class _Malformed:
    """Stands in for a request whose bytes are not the message they should be."""

    def __init__(self, error: Exception) -> None:
        self.error = error


def _malformed_message(request: _Malformed) -> str:
    return f"the request is not a valid protobuf message of its type: {request.error}"


async def _check(request: Any, context: grpc.aio.ServicerContext,
                 refusal: Callable[[grpc.aio.ServicerContext], str]) -> None:
    """Aborts the call without the token, or with bytes that are not its request message."""
    why = refusal(context)
    if why:
        await context.abort(grpc.StatusCode.UNAUTHENTICATED, why)
    if isinstance(request, _Malformed):
        await context.abort(grpc.StatusCode.INVALID_ARGUMENT, _malformed_message(request))


def _guarded(handler: Any, refusal: Callable[[grpc.aio.ServicerContext], str]) -> Any:
    """``handler`` with ``_check`` before its behaviour, of the same kind (unary or stream,
    coroutine or async generator: grpc tells them apart with iscoroutinefunction, and a
    wrapper of the wrong kind ends the call UNKNOWN)."""
    original = handler.request_deserializer

    def deserialize(data: bytes) -> Any:
        if original is None:
            return data
        try:
            return original(data)
        except Exception as exc:  # DecodeError, or any parser failure
            return _Malformed(exc)

    ser = handler.response_serializer
    if handler.unary_unary:
        unary_unary = handler.unary_unary

        async def unary(request: Any, context: grpc.aio.ServicerContext) -> Any:
            await _check(request, context, refusal)
            return await unary_unary(request, context)

        return grpc.unary_unary_rpc_method_handler(unary, deserialize, ser)
    if handler.unary_stream:
        unary_stream = handler.unary_stream
        # A server-streaming handler is either a coroutine that sends its responses with
        # ``context.write`` (grpcio's own HealthServicer.Watch) or an async generator.
        if inspect.iscoroutinefunction(unary_stream):
            async def unary_writer(request: Any, context: grpc.aio.ServicerContext) -> Any:
                await _check(request, context, refusal)
                return await unary_stream(request, context)

            return grpc.unary_stream_rpc_method_handler(unary_writer, deserialize, ser)

        async def unary_gen(request: Any, context: grpc.aio.ServicerContext) -> Any:
            await _check(request, context, refusal)
            async for item in unary_stream(request, context):
                yield item

        return grpc.unary_stream_rpc_method_handler(unary_gen, deserialize, ser)

    async def checked(requests: Any, context: grpc.aio.ServicerContext) -> Any:
        async for request in requests:
            if isinstance(request, _Malformed):
                await context.abort(grpc.StatusCode.INVALID_ARGUMENT,
                                    _malformed_message(request))
            yield request

    async def authorized(context: grpc.aio.ServicerContext) -> None:
        why = refusal(context)
        if why:
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, why)

    if handler.stream_unary:
        stream_unary = handler.stream_unary

        async def su(requests: Any, context: grpc.aio.ServicerContext) -> Any:
            await authorized(context)
            return await stream_unary(checked(requests, context), context)

        return grpc.stream_unary_rpc_method_handler(su, deserialize, ser)
    stream_stream = handler.stream_stream
    if inspect.iscoroutinefunction(stream_stream):  # writes with context.write
        async def ss_writer(requests: Any, context: grpc.aio.ServicerContext) -> Any:
            await authorized(context)
            return await stream_stream(checked(requests, context), context)

        return grpc.stream_stream_rpc_method_handler(ss_writer, deserialize, ser)

    async def ss(requests: Any, context: grpc.aio.ServicerContext) -> Any:
        await authorized(context)
        async for item in stream_stream(checked(requests, context), context):
            yield item

    return grpc.stream_stream_rpc_method_handler(ss, deserialize, ser)
