"""The worker's stream to its coordinator, reopened with backoff whenever it breaks.

A session: the hello, the coordinator's welcome, then the resend of every unacknowledged event
and, side by side, a writer, the heartbeats and the reading of the coordinator's orders, until
the stream breaks. What the worker says and does is its own (``SessionOwner``); this module
only carries it, and is the one that knows of gRPC calls and their errors.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import sys
from typing import Any, Protocol

import grpc
from sweepd.common.transport import Security, auth_metadata, open_aio_channel

from . import protocol
from .messages import Event, Heartbeat, Hello, Order, Outgoing, Welcome

log = logging.getLogger("sweepd.worker")

# Reconnect backoff: exponential with full jitter so that many workers do not reconnect in
# lockstep after a coordinator restart; capped low because a restart is usually seconds.
BACKOFF_INITIAL_S = 0.2
BACKOFF_MAX_S = 5.0
# The heartbeat interval this worker proposes; the coordinator may clamp it.
PROPOSED_HEARTBEAT_S = 2.0
# The sweep check before the first session is one small read; past this the coordinator is as
# good as unreachable, and the connection loop retries.
SWEEP_CHECK_TIMEOUT_S = 10.0


class Refused(Exception):
    """The coordinator answered, and said no for good: a wrong token, or a sweep it does not
    have. Raised only before the first welcome: a worker that has worked keeps retrying (a
    coordinator restarted with a new token may be fixed while its runs go on)."""


class SessionOwner(Protocol):
    """What the connection needs of the worker it carries."""

    def hello(self) -> Hello: ...
    def heartbeat(self) -> Heartbeat: ...
    def unacked(self) -> list[tuple[int, Event]]: ...
    def on_welcome(self, welcome: Welcome) -> None: ...
    def on_connected(self) -> None: ...
    def on_order(self, order: Order) -> None: ...
    def on_unsendable(self, seq: int) -> None: ...


class Connection:
    def __init__(self, owner: SessionOwner, *, coordinator: str, worker_id: str,
                 security: Security | None) -> None:
        self.owner = owner
        self.coordinator = coordinator
        self.worker_id = worker_id
        self.security = security  # None: from the environment at every attempt
        self.heartbeat_s = PROPOSED_HEARTBEAT_S
        # (seq, message) to write; None while no session is up (then only the outbox keeps
        # what matters, and best-effort messages are not sent).
        self._queue: asyncio.Queue[tuple[int, Outgoing]] | None = None
        # Whether the coordinator refused our id (another live process holds it) since the
        # last session: the user is told once, not at every retry.
        self._id_refused = False
        self._ever_welcomed = False
        # Between writing the hello and reading the welcome: a refusal then is of the hello.
        self._awaiting_welcome = False

    def send(self, message: Outgoing, seq: int = 0) -> None:
        """Writes ``message`` if a session is up; dropped otherwise."""
        if self._queue is not None:
            self._queue.put_nowait((seq, message))

    async def run_forever(self) -> None:
        backoff = BACKOFF_INITIAL_S
        while True:
            welcomed = False
            self._awaiting_welcome = False
            try:
                security = self.security or Security.resolve()
                async with open_aio_channel(self.coordinator, security) as channel:
                    if not self._ever_welcomed:
                        await self._check_sweep(channel, auth_metadata(security))
                    welcomed = await self.session(
                        protocol.open_stream(channel, auth_metadata(security)))
                    self._ever_welcomed = self._ever_welcomed or welcomed
            except grpc.aio.AioRpcError as exc:
                if exc.code() == grpc.StatusCode.ALREADY_EXISTS:
                    self._on_id_in_use(exc.details() or "")
                elif (exc.code() in (grpc.StatusCode.INVALID_ARGUMENT,
                                     grpc.StatusCode.FAILED_PRECONDITION)
                      and self._awaiting_welcome):
                    # The hello itself was refused (a malformed or reserved id, an id another
                    # process took over): the same hello would be refused for ever.
                    raise Refused(
                        f"the coordinator {self.coordinator} refused this worker"
                        f" ({exc.code().name}): {exc.details()}") from None
                elif (exc.code() == grpc.StatusCode.UNAUTHENTICATED
                      and not self._ever_welcomed):
                    raise Refused(
                        f"the coordinator {self.coordinator} refused this worker's token"
                        f" ({exc.details()}); pass its token with --token or $SWEEPD_TOKEN"
                        " (the file <state dir>/token on the coordinator's machine)"
                    ) from None
                elif exc.code() in (grpc.StatusCode.UNAUTHENTICATED,
                                    grpc.StatusCode.PERMISSION_DENIED):
                    log.error("coordinator %s refused this worker: %s; retrying",
                              self.coordinator, exc.details())
                else:
                    log.info("coordinator %s unavailable (%s); retrying",
                             self.coordinator, exc.code().name)
            except (asyncio.CancelledError, Refused):
                raise
            except Exception:
                log.exception("worker session failed; reconnecting")
            finally:
                self._queue = None
            if welcomed:
                backoff = BACKOFF_INITIAL_S
            await asyncio.sleep(random.uniform(0, backoff))
            backoff = min(backoff * 2, BACKOFF_MAX_S)

    async def _check_sweep(self, channel: Any, metadata: Any) -> None:
        """Before the first session of a worker bound to a sweep: the sweep must exist (a
        worker that waits for ever on a mistyped id helps no one)."""
        sweep_id = self.owner.hello().sweep_id
        if not sweep_id:
            return
        try:
            await protocol.check_sweep_exists(channel, metadata, sweep_id,
                                              SWEEP_CHECK_TIMEOUT_S)
        except grpc.aio.AioRpcError as exc:
            if exc.code() == grpc.StatusCode.NOT_FOUND:
                raise Refused(
                    f"the coordinator {self.coordinator} has no sweep {sweep_id!r}:"
                    f" `sweep list --coordinator {self.coordinator}` shows the sweeps there"
                ) from None
            raise

    def _on_id_in_use(self, details: str) -> None:
        """Another live process holds this worker id. Said once, plainly, with the
        coordinator's words (they name the host holding it); then retried quietly, since the
        holder may leave. Until then no run comes, so --exit-when-idle still applies."""
        if self._id_refused:
            log.debug("worker id %s still in use elsewhere; retrying", self.worker_id)
            return
        self._id_refused = True
        print(f"worker: the coordinator {self.coordinator} refused worker id"
              f" {self.worker_id!r} (ALREADY_EXISTS): {details}\n"
              "worker: retrying quietly until that id is free", file=sys.stderr, flush=True)

    async def session(self, call: Any) -> bool:
        """One stream's life. Returns whether it got as far as the coordinator's welcome."""
        self._awaiting_welcome = True  # left set if the hello is refused (run_forever reads it)
        await call.write(protocol.to_wire(self.owner.hello()))
        first = await call.read()
        self._awaiting_welcome = False
        welcome = None if first is grpc.aio.EOF else protocol.welcome_from_wire(first)
        if welcome is None:
            return False
        self.heartbeat_s = welcome.heartbeat_s or PROPOSED_HEARTBEAT_S
        log.info("connected to %s as %s", self.coordinator, self.worker_id)
        if self._id_refused:
            self._id_refused = False
            print(f"worker: connected as {self.worker_id}: the id is free again",
                  file=sys.stderr, flush=True)
        # Before the resend: what the welcome acknowledges is not sent again.
        self.owner.on_welcome(welcome)
        queue: asyncio.Queue[tuple[int, Outgoing]] = asyncio.Queue()
        for seq, event in self.owner.unacked():
            queue.put_nowait((seq, event))
        self._queue = queue
        self.owner.on_connected()
        writer = asyncio.create_task(self._write(call, queue))
        heartbeats = asyncio.create_task(self._heartbeats())
        try:
            while True:
                msg = await call.read()
                if msg is grpc.aio.EOF:
                    break
                order = protocol.order_from_wire(msg)
                if order is not None:
                    self.owner.on_order(order)
        finally:
            self._queue = None
            writer.cancel()
            heartbeats.cancel()
            call.cancel()
        return True

    async def _write(self, call: Any, queue: asyncio.Queue[tuple[int, Outgoing]]) -> None:
        with contextlib.suppress(grpc.aio.AioRpcError, asyncio.InvalidStateError):
            while True:
                seq, message = await queue.get()
                try:
                    await call.write(protocol.to_wire(message, seq))
                except (ValueError, TypeError, UnicodeError) as exc:
                    # A message that cannot be serialized must not end the writer (the stream
                    # would go silent and every run would be LOST); nor be resent for ever.
                    log.error("dropping a %s message that cannot be sent: %s",
                              type(message).__name__, exc)
                    if seq:
                        self.owner.on_unsendable(seq)

    async def _heartbeats(self) -> None:
        while True:
            await asyncio.sleep(self.heartbeat_s)
            self.send(self.owner.heartbeat())
