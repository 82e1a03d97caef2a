"""Assembles and runs the coordinator's gRPC server."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import ipaddress
import logging
import os
import signal
import socket
import sqlite3
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from sweepd.v1 import sweeps_pb2, sweeps_pb2_grpc, workers_pb2, workers_pb2_grpc

from . import limits, statedir
from .dashboard import RunningDashboard, ssl_context, start_dashboard
from .dispatcher import (
    DEFAULT_LEASE_S,
    DEFAULT_MAX_RETRIES,
    LEASE_CHECK_INTERVAL_S,
    STALL_TOLERANCE_S,
    Dispatcher,
)
from .reflection import enable_reflection
from .security import (
    GuardedServer,
    how_to_pass,
    is_loopback,
    load_or_create_token,
    server_credentials,
)
from .servicers.sweeps import SweepServicer
from .servicers.workers import WorkerServicer
from .statedir import StateDirError
from .store import DB_FILENAME, Store

log = logging.getLogger("sweepd.coordinator")

# On SIGTERM, in-flight calls get this long to complete before the server closes them;
# worker streams end at once and the workers reconnect to the next coordinator.
SHUTDOWN_GRACE_S = 2.0
# Server side of the channel keepalive the clients use (client/transport.py): accept their
# pings, and ping idle streams ourselves so a vanished worker's stream is noticed.
SERVER_OPTIONS = [
    ("grpc.keepalive_time_ms", 60_000),
    ("grpc.keepalive_timeout_ms", 20_000),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.min_ping_interval_without_data_ms", 10_000),
    ("grpc.http2.max_ping_strikes", 0),
    # What one request may be (coordinator/limits.py); answers (a long ListRuns) may be more.
    ("grpc.max_receive_message_length", limits.MAX_REQUEST_BYTES),
    ("grpc.max_send_message_length", limits.MAX_MESSAGE_BYTES),
    # gRPC sets SO_REUSEPORT by default: a second coordinator on the same port would then
    # share it silently and clients would land on either at random. Off, its bind fails.
    ("grpc.so_reuseport", 0),
]
# The banner around the warnings of --no-auth and --insecure: they must not scroll by unseen.
_LOUD = "!" * 78


def _host_port(host: str, port: int) -> str:
    """``host:port``, an IPv6 address in brackets (as gRPC and URLs write it)."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class AddressError(RuntimeError):
    """The coordinator cannot listen on the address it was given (in use, not local, not an
    address at all)."""


@dataclass
class ServeOptions:
    host: str
    port: int
    state_dir: Path
    lease_s: float = DEFAULT_LEASE_S
    max_retries: int = DEFAULT_MAX_RETRIES
    auth: bool = True
    tls_cert: Path | None = None
    tls_key: Path | None = None
    tls_client_ca: Path | None = None
    insecure: bool = False
    # Start with an empty database where a token shows that one existed (statedir.py).
    new_database: bool = False
    # The web dashboard's port on the same host: None turns it off, 0 picks a free one.
    # Not required (the default port, not asked for): taken, the coordinator starts without
    # it, so that a second coordinator on another --port still starts.
    dashboard_port: int | None = None
    dashboard_required: bool = True

    def __post_init__(self) -> None:
        # "[::1]", as in a URL, names the same address as "::1".
        if self.host.startswith("[") and self.host.endswith("]"):
            self.host = self.host[1:-1]

    @property
    def address(self) -> str:
        return _host_port(self.host, self.port)

    def check(self) -> None:
        """Refuses unsafe or incomplete combinations before anything starts (or is written)."""
        if bool(self.tls_cert) != bool(self.tls_key):
            raise SystemExit("coordinator: --tls-cert and --tls-key go together")
        if self.tls_client_ca and not self.tls_cert:
            raise SystemExit("coordinator: --tls-client-ca (mutual TLS) needs --tls-cert and"
                             " --tls-key too")
        if not self.tls_cert and not self.insecure and not is_loopback(self.host):
            raise SystemExit(
                f"coordinator: refusing to listen on {self.host} without TLS: the token and"
                " every sweep's data would cross the network in plain text. Pass --tls-cert"
                " and --tls-key, or --insecure on a network you trust."
            )

    def warnings(self, listening: str) -> list[str]:
        """What an operator must not miss: a port that lets anyone run commands."""
        lines: list[str] = []
        if not self.auth:
            lines.append(
                f"WARNING: --no-auth: authentication is OFF. Anyone who reaches {listening}"
                " can create sweeps, and so run any command on every worker connected to this"
                " coordinator, as the user each worker runs as.")
        if self.insecure and not self.tls_cert:
            lines.append(
                f"WARNING: --insecure: {listening} speaks plain text, without TLS. Anyone who"
                " can see the traffic reads every sweep"
                + ("" if not self.auth else " and learns the token; anyone who reaches the"
                   " port with it can run any command on every worker connected to this"
                   " coordinator") + ".")
        return lines


async def serve(opts: ServeOptions, *, ready: asyncio.Event | None = None) -> None:
    """Runs the coordinator until SIGTERM or SIGINT.

    Refusals before anything is served: ``SystemExit`` (unsafe options, before the state dir is
    touched), :class:`StateDirError` (in use, damaged, token unusable), :class:`AddressError`.
    """
    opts.check()
    statedir.prepare(opts.state_dir)
    lock = statedir.lock(opts.state_dir)
    try:
        await _serve_locked(opts, lock, ready)
    finally:
        lock.release()


async def _serve_locked(opts: ServeOptions, lock: statedir.StateDirLock,
                        ready: asyncio.Event | None) -> None:
    statedir.check_database(opts.state_dir, new_database=opts.new_database)
    store_path = opts.state_dir / DB_FILENAME
    # One search thread: fits are numpy-bound (the GIL is released in BLAS), and one at a time
    # keeps a slow fit from starving the event loop of CPU.
    executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sweepd-search")
    try:
        # The database before the token: a token then always has a database beside it, which
        # is what check_database relies on.
        store = Store(store_path)
        dispatcher = Dispatcher(store, executor=executor, lease_s=opts.lease_s,
                                max_retries=opts.max_retries)
    except (sqlite3.DatabaseError, ValueError) as exc:
        # Damage quick_check cannot see (a garbled value: bad JSON, a bad number), met while
        # the state is loaded.
        executor.shutdown(wait=False)
        raise StateDirError(statedir.database_error(store_path, exc)) from None
    try:
        await _serve_store(opts, lock, ready, store, dispatcher)
    finally:
        executor.shutdown(wait=False, cancel_futures=True)
        store.close()


async def _serve_store(opts: ServeOptions, lock: statedir.StateDirLock,
                       ready: asyncio.Event | None, store: Store,
                       dispatcher: Dispatcher) -> None:
    token: str | None = None
    if opts.auth:
        token, created = load_or_create_token(opts.state_dir)
        print(("created" if created else "using") + f" token {opts.state_dir / 'token'}:"
              f" {how_to_pass(opts.state_dir)}", flush=True)
    server = grpc.aio.server(options=SERVER_OPTIONS)
    # Servicers register through the guard: every method checks the token and the request.
    guarded: Any = GuardedServer(server, token, how_to_pass(opts.state_dir))
    sweeps_pb2_grpc.add_SweepServiceServicer_to_server(SweepServicer(dispatcher), guarded)
    workers_pb2_grpc.add_WorkerServiceServicer_to_server(WorkerServicer(dispatcher), guarded)
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, guarded)
    service_names = [
        sweeps_pb2.DESCRIPTOR.services_by_name["SweepService"].full_name,
        workers_pb2.DESCRIPTOR.services_by_name["WorkerService"].full_name,
        health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
    ]
    enable_reflection(service_names, guarded)
    port = _listen(server, opts)
    listening = _host_port(opts.host, port)
    lock.describe(f"listening on {listening}")
    for warning in opts.warnings(listening):
        print(f"{_LOUD}\n{warning}\n{_LOUD}", file=sys.stderr, flush=True)
    dashboard = await _start_dashboard(opts, dispatcher, token, listening)
    await server.start()
    for name in service_names[:2] + [""]:
        await health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    # Parseable by scripts and tests that pass --port 0.
    print(f"sweepd coordinator listening on {listening} (state: {store.path})", flush=True)
    if dashboard is not None:
        print(f"sweepd dashboard at {dashboard.url} (`sweep dashboard` prints a login link)",
              flush=True)

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)

    async def watch_leases() -> None:
        # Measured on the monotonic clock, which runs on while this process is stopped.
        last = time.monotonic()
        while True:
            await asyncio.sleep(LEASE_CHECK_INTERVAL_S)
            now = time.monotonic()
            stall, last = now - last - LEASE_CHECK_INTERVAL_S, now
            try:
                if stall > STALL_TOLERANCE_S:
                    dispatcher.forgive_stall(stall)
                dispatcher.expire_leases()
            except Exception:  # one bad pass must not end lease checking for good
                log.exception("lease check failed")

    lease_task = asyncio.create_task(watch_leases())
    if ready is not None:
        ready.set()
    try:
        await stop.wait()
        log.info("shutting down")
        for name in service_names[:2] + [""]:
            await health_servicer.set(name, health_pb2.HealthCheckResponse.NOT_SERVING)
        if dashboard is not None:
            await dashboard.close()
        await server.stop(SHUTDOWN_GRACE_S)
    finally:
        lease_task.cancel()
    print("sweepd coordinator stopped", flush=True)


async def _start_dashboard(opts: ServeOptions, dispatcher: Dispatcher, token: str | None,
                           listening: str) -> RunningDashboard | None:
    if opts.dashboard_port is None:
        return None
    tls = (ssl_context(opts.tls_cert, opts.tls_key, opts.tls_client_ca)
           if opts.tls_cert and opts.tls_key else None)
    try:
        return await start_dashboard(dispatcher, opts.host, opts.dashboard_port, token=token,
                                     tls=tls, state_dir=opts.state_dir,
                                     grpc_address=listening)
    except OSError:
        message = _cannot_listen(opts.host, opts.dashboard_port).replace(
            "--port", "--dashboard-port").replace("(0 picks a free one)", "(0 turns it off)")
        if opts.dashboard_required:
            raise AddressError(f"dashboard: {message}") from None
        print(f"coordinator: WARNING: no dashboard: {message}", file=sys.stderr, flush=True)
        return None


def _listen(server: grpc.aio.Server, opts: ServeOptions) -> int:
    """Binds every address ``opts.host`` names, or raises :class:`AddressError`.

    Given a name with several addresses (``localhost``: 127.0.0.1 and ::1), gRPC is content
    with binding any one of them: beside a coordinator on 127.0.0.1:P, a second one on
    ``localhost:P`` would serve [::1]:P, and clients of localhost:P would land on either.
    So each address is bound on its own, and one in use refuses the start.
    """
    credentials = (server_credentials(opts.tls_cert, opts.tls_key, opts.tls_client_ca)
                   if opts.tls_cert and opts.tls_key else None)

    def bind(address: str) -> int:
        try:
            if credentials is not None:
                return int(server.add_secure_port(address, credentials))
            return int(server.add_insecure_port(address))
        except RuntimeError:  # grpc's "Failed to bind to address ..."
            return 0

    hosts = _addresses_of(opts.host)
    if len(hosts) < 2:
        port = bind(opts.address)
        if port == 0:
            raise AddressError(_cannot_listen(opts.host, opts.port))
        return port
    port = opts.port  # 0: the first address picks a free port, the others take the same
    bound = 0
    for host in hosts:
        address = _host_port(host, port)
        got = bind(address)
        if got:
            port, bound = got, bound + 1
            continue
        if _unusable_here(host, port):
            # An address this machine cannot have (IPv6 off): nobody else can serve it either.
            log.info("%s resolves to %s, which this machine cannot listen on; skipped",
                     opts.host, host)
            continue
        # Named: the address in use is not the one the operator typed.
        raise AddressError(f"{opts.host} names {', '.join(hosts)}; "
                           + _cannot_listen(host, port))
    if bound == 0:
        raise AddressError(_cannot_listen(opts.host, opts.port))
    return port


def _addresses_of(host: str) -> list[str]:
    """The distinct addresses a host name resolves to for listening, in the resolver's order;
    [] for an IP address or a name that does not resolve (bound as given, for gRPC's own
    message)."""
    try:
        ipaddress.ip_address(host)
        return []
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM,
                                   flags=socket.AI_PASSIVE)
    except (OSError, UnicodeError):
        return []
    addresses: list[str] = []
    for *_, sockaddr in infos:
        if str(sockaddr[0]) not in addresses:
            addresses.append(str(sockaddr[0]))
    if host.lower().rstrip(".") == "localhost":
        # gRPC's resolver gives localhost both loopbacks whatever /etc/hosts says (measured:
        # getaddrinfo 127.0.0.1 only, gRPC bound [::1] too), and so do many clients.
        addresses += [a for a in ("127.0.0.1", "::1") if a not in addresses]
    return addresses


def _unusable_here(host: str, port: int) -> bool:
    """Whether binding ``host`` fails for want of the address or its family (not because it
    is in use)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.bind((host, port))
    except OSError as exc:
        return exc.errno in (errno.EADDRNOTAVAIL, errno.EAFNOSUPPORT)
    return False


def _cannot_listen(host: str, port: int) -> str:
    address = _host_port(host, port)
    try:
        ipaddress.ip_address(host)
    except ValueError:
        try:
            socket.getaddrinfo(host, port)
        except (OSError, UnicodeError):
            return (f"cannot listen on {address}: {host!r} is not an IP address or a name this"
                    " machine resolves; pass --host with an address of this machine"
                    " (127.0.0.1, ::1, 0.0.0.0)")
    holder = _listener_of(port) if port else None
    if holder:
        return (f"cannot listen on {address}: port {port} is in use by {holder}; stop it, or"
                " pass another --port (0 picks a free one)")
    return (f"cannot listen on {address}: the port is in use or {host} is not an address of"
            " this machine; pass another --port (0 picks a free one) or --host")


def _listener_of(port: int) -> str | None:
    """``pid N (command)`` of the process listening on TCP ``port``, where /proc shows it (Linux,
    a process of this user); None elsewhere."""
    inodes: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                next(f, None)
                for line in f:
                    fields = line.split()
                    # local_address is HEXIP:HEXPORT; state 0A is LISTEN.
                    if (len(fields) > 9 and fields[3] == "0A"
                            and int(fields[1].rsplit(":", 1)[1], 16) == port):
                        inodes.add(f"socket:[{fields[9]}]")
        except (OSError, ValueError):
            continue
    if not inodes:
        return None
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
            if any(os.readlink(f"/proc/{pid}/fd/{fd}") in inodes for fd in fds):
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    cmdline = f.read().replace(b"\0", b" ").decode(errors="replace").strip()
                return f"pid {pid} ({cmdline[:200]})"
        except OSError:
            continue
    return None
