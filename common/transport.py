"""How clients and workers reach a coordinator: its address, the channel, the state dir.

Shared by the client, the worker and the coordinator (which reads ``default_state_dir``):
the one small module that the daemons truly share, so that they agree on defaults.
"""

from __future__ import annotations

import os
import random
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import grpc

T = TypeVar("T")

DEFAULT_ADDRESS = "127.0.0.1:50051"
ADDRESS_ENV = "SWEEPD_COORDINATOR"
STATE_DIR_ENV = "SWEEPD_STATE_DIR"
TOKEN_ENV = "SWEEPD_TOKEN"
TLS_CA_ENV = "SWEEPD_TLS_CA"
TLS_CERT_ENV = "SWEEPD_TLS_CERT"
TLS_KEY_ENV = "SWEEPD_TLS_KEY"
# The coordinator writes its token here on first start (mode 0600), so that clients and
# workers of the same user on the same machine find it without being told.
TOKEN_FILENAME = "token"
AUTH_METADATA_KEY = "authorization"
# Keepalive pings every 60 s keep NAT and cloud load balancers (some cut idle TCP connections
# after 4 minutes) from silently dropping a quiet worker stream, and detect a dead peer.
KEEPALIVE_TIME_MS = 60_000
KEEPALIVE_TIMEOUT_MS = 20_000
# The largest message on any channel, the coordinator's answers included (the coordinator's
# limits.py takes it from here; it accepts requests of at most MAX_REQUEST_BYTES). Config texts
# and metric batches are small; a page of ListRuns is kept under a quarter of this.
MAX_MESSAGE_BYTES = 64 * 1024 * 1024

# gRPC's own reconnect backoff grows to 120 s; a coordinator restart takes seconds, so a client
# waiting for it (below) should notice it is back within a couple of seconds.
RECONNECT_BACKOFF_INITIAL_MS = 100
RECONNECT_BACKOFF_MAX_MS = 2_000
# How long a client that has been answered waits for its coordinator to come back (a restart,
# an upgrade, a crash and its supervisor) before a safe-to-repeat call gives up.
RESTART_WAIT_S = 60.0
# Between tries while the coordinator is away: exponential from the first, with full jitter
# (many agents must not hammer a coordinator that is just starting), capped.
RETRY_INITIAL_S = 0.1
RETRY_MAX_S = 2.0
# SweepService calls that are safe to repeat after a failure whose outcome is unknown: reads,
# and the ask/report/finish calls, which the coordinator applies once (per client id, per
# record index, per run attempt). CreateSweep, SetSweepState and RetryRuns are not.
IDEMPOTENT_METHODS = frozenset({
    "GetSweep", "ListSweeps", "ListRuns", "GetRun", "ListWorkers", "GetParamImportance",
    "SuggestRun", "ReportMetrics", "FinishRun",
})

# RESOURCE_EXHAUSTED from a coordinator whose database's disk is full (coordinator/store.py
# StorageFull, whose message says this) means "nothing was kept, send it again once space is
# freed": a safe-to-repeat call waits for it as for a restart. gRPC itself answers
# RESOURCE_EXHAUSTED for a message over the size limit, and the coordinator for a configured
# limit: sending those again fails the same way, so only this message is waited out.
STORAGE_FULL_MARK = "is on a full disk"

CHANNEL_OPTIONS: list[tuple[str, int]] = [
    ("grpc.initial_reconnect_backoff_ms", RECONNECT_BACKOFF_INITIAL_MS),
    ("grpc.max_reconnect_backoff_ms", RECONNECT_BACKOFF_MAX_MS),
    ("grpc.keepalive_time_ms", KEEPALIVE_TIME_MS),
    ("grpc.keepalive_timeout_ms", KEEPALIVE_TIMEOUT_MS),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.max_pings_without_data", 0),
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
]


def coordinator_address(explicit: str | None = None) -> str:
    """``--coordinator`` if given, else ``$SWEEPD_COORDINATOR``, else 127.0.0.1:50051."""
    return explicit or os.environ.get(ADDRESS_ENV) or DEFAULT_ADDRESS


def default_state_dir() -> Path:
    """The per-user data directory where the coordinator keeps its database."""
    if os.environ.get(STATE_DIR_ENV):
        return Path(os.environ[STATE_DIR_ENV])
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Application Support" / "sweepd"
    if sys.platform == "win32":
        base = os.environ.get("LOCALAPPDATA") or str(Path.home() / "AppData" / "Local")
        return Path(base) / "sweepd"
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "sweepd"


def token_path(state_dir: Path | None = None) -> Path:
    return (state_dir or default_state_dir()) / TOKEN_FILENAME


@dataclass(frozen=True)
class Security:
    """What a client presents: a bearer token, and TLS material (PEM bytes) if any."""

    token: str = ""
    tls_ca: bytes | None = None
    tls_cert: bytes | None = None
    tls_key: bytes | None = None

    @property
    def tls(self) -> bool:
        return self.tls_ca is not None or self.tls_cert is not None

    @classmethod
    def resolve(cls, token: str | None = None, tls_ca: str | Path | None = None,
                tls_cert: str | Path | None = None, tls_key: str | Path | None = None,
                ) -> Security:
        """Explicit values first, then $SWEEPD_TOKEN / $SWEEPD_TLS_*, then the token file in
        the default state dir (a coordinator on this machine run by this user)."""
        token = token or os.environ.get(TOKEN_ENV) or _read_token_file()
        ca = tls_ca or os.environ.get(TLS_CA_ENV)
        cert = tls_cert or os.environ.get(TLS_CERT_ENV)
        key = tls_key or os.environ.get(TLS_KEY_ENV)
        if bool(cert) != bool(key):
            raise ValueError("--tls-cert and --tls-key go together (a client certificate"
                             " and its private key)")
        return cls(token=token.strip(), tls_ca=_read(ca), tls_cert=_read(cert),
                   tls_key=_read(key))


def _read(path: str | Path | None) -> bytes | None:
    return Path(path).read_bytes() if path else None


def _read_token_file() -> str:
    try:
        return token_path().read_text().strip()
    except OSError:
        return ""


class _AuthInterceptor(grpc.UnaryUnaryClientInterceptor, grpc.UnaryStreamClientInterceptor,
                       grpc.StreamUnaryClientInterceptor, grpc.StreamStreamClientInterceptor):
    """Adds ``authorization: Bearer <token>`` to every call of a sync channel. (Call
    credentials would do it only over TLS; the token is required on plaintext loopback too.)"""

    def __init__(self, token: str) -> None:
        self.header = (AUTH_METADATA_KEY, f"Bearer {token}")

    def _with_token(self, details: Any) -> Any:
        metadata = list(details.metadata or []) + [self.header]
        return _CallDetails(details.method, details.timeout, metadata, details.credentials,
                            details.wait_for_ready, details.compression)

    def intercept_unary_unary(self, continuation: Callable[..., Any], details: Any,
                              request: Any) -> Any:
        return continuation(self._with_token(details), request)

    def intercept_unary_stream(self, continuation: Callable[..., Any], details: Any,
                               request: Any) -> Any:
        return continuation(self._with_token(details), request)

    def intercept_stream_unary(self, continuation: Callable[..., Any], details: Any,
                               request_iterator: Any) -> Any:
        return continuation(self._with_token(details), request_iterator)

    def intercept_stream_stream(self, continuation: Callable[..., Any], details: Any,
                                request_iterator: Any) -> Any:
        return continuation(self._with_token(details), request_iterator)


@dataclass(frozen=True)
class _CallDetails(grpc.ClientCallDetails):
    method: str
    timeout: float | None
    metadata: Any
    credentials: Any
    wait_for_ready: bool | None
    compression: Any


def _credentials(security: Security) -> grpc.ChannelCredentials:
    return grpc.ssl_channel_credentials(root_certificates=security.tls_ca,
                                        private_key=security.tls_key,
                                        certificate_chain=security.tls_cert)


def open_channel(address: str, security: Security | None = None) -> grpc.Channel:
    security = security if security is not None else Security.resolve()
    if security.tls:
        channel = grpc.secure_channel(address, _credentials(security), options=CHANNEL_OPTIONS)
    else:
        channel = grpc.insecure_channel(address, options=CHANNEL_OPTIONS)
    if security.token:
        channel = grpc.intercept_channel(channel, _AuthInterceptor(security.token))
    return channel


def auth_metadata(security: Security) -> tuple[tuple[str, str], ...]:
    """Metadata for one call on an aio channel (the worker passes it to its stream)."""
    return ((AUTH_METADATA_KEY, f"Bearer {security.token}"),) if security.token else ()


def open_aio_channel(address: str, security: Security | None = None) -> grpc.aio.Channel:
    """An aio channel; pass ``auth_metadata(security)`` as each call's metadata."""
    security = security if security is not None else Security.resolve()
    if security.tls:
        return grpc.aio.secure_channel(address, _credentials(security), options=CHANNEL_OPTIONS)
    return grpc.aio.insecure_channel(address, options=CHANNEL_OPTIONS)


def _code(exc: grpc.RpcError) -> grpc.StatusCode | None:
    return exc.code() if hasattr(exc, "code") else None


def _details(exc: grpc.RpcError) -> str:
    details = exc.details() if hasattr(exc, "details") else None
    return details if isinstance(details, str) else str(exc)


def storage_full(exc: grpc.RpcError) -> bool:
    """Whether the coordinator refused for a full disk, keeping nothing of the request."""
    return (_code(exc) is grpc.StatusCode.RESOURCE_EXHAUSTED
            and STORAGE_FULL_MARK in _details(exc))


class StillUnavailable(Exception):
    """The coordinator stayed unavailable (or its disk full: ``storage_full``) for the whole
    wait."""

    def __init__(self, waited_s: float, details: str, storage_full: bool = False) -> None:
        self.waited_s = waited_s
        self.details = details
        self.storage_full = storage_full
        super().__init__(f"unavailable for {waited_s:.0f} s: {details}")


def retry_while_unavailable(
    attempt: Callable[[float], T],
    *,
    timeout: float,
    wait_s: float = RESTART_WAIT_S,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> T:
    """``attempt(deadline_s)`` until it answers, tried again while the coordinator is
    UNAVAILABLE (down, restarting, or unable to commit for now), CANCELLED (stopping) or says
    its disk is full (``storage_full``), for at most ``wait_s``.

    Only for calls that are safe to repeat (``IDEMPOTENT_METHODS``), made with
    ``wait_for_ready`` so that a try waits for the channel to reconnect rather than failing at
    once. A try that runs out of time after the coordinator went away counts as unavailable
    too; any other failure is raised at once. When ``wait_s`` is spent: ``StillUnavailable``.
    """
    started = clock()
    give_up_at = started + wait_s
    pause = RETRY_INITIAL_S
    seen_unavailable = False
    while True:
        remaining = give_up_at - clock()
        try:
            return attempt(max(min(timeout, remaining), 0.001) if seen_unavailable else timeout)
        except grpc.RpcError as exc:
            code = _code(exc)
            full = storage_full(exc)
            # CANCELLED: a coordinator that is stopping cancels the calls in flight (this
            # client never cancels a call of its own: Ctrl+C raises KeyboardInterrupt).
            away = full or code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED) or (
                seen_unavailable and code is grpc.StatusCode.DEADLINE_EXCEEDED)
            if not away:
                raise
            if clock() >= give_up_at:
                raise StillUnavailable(clock() - started, _details(exc), full) from exc
            seen_unavailable = True
        sleep(min(random.uniform(0, pause), max(give_up_at - clock(), 0)))
        pause = min(pause * 2, RETRY_MAX_S)
