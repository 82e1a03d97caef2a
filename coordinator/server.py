"""Assembles and runs the coordinator's gRPC server."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from sweepd.v1 import sweeps_pb2, sweeps_pb2_grpc, workers_pb2, workers_pb2_grpc

from . import limits
from .dispatcher import DEFAULT_LEASE_S, DEFAULT_MAX_RETRIES, LEASE_CHECK_INTERVAL_S, Dispatcher
from .security import (
    MalformedRequestGuard,
    TokenInterceptor,
    how_to_pass,
    is_loopback,
    load_or_create_token,
    server_credentials,
)
from .servicers.sweeps import SweepServicer
from .servicers.workers import WorkerServicer
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
    ("grpc.max_receive_message_length", limits.MAX_MESSAGE_BYTES),
    ("grpc.max_send_message_length", 64 * 1024 * 1024),
]


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

    def check(self) -> None:
        """Refuses unsafe or incomplete combinations before anything starts."""
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


async def serve(opts: ServeOptions, *, ready: asyncio.Event | None = None) -> None:
    store = Store(opts.state_dir / DB_FILENAME)
    # One search thread: fits are numpy-bound (the GIL is released in BLAS), and one at a time
    # keeps a slow fit from starving the event loop of CPU.
    executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sweepd-search")
    dispatcher = Dispatcher(store, executor=executor, lease_s=opts.lease_s,
                            max_retries=opts.max_retries)
    opts.check()
    interceptors: list[grpc.aio.ServerInterceptor] = []
    if opts.auth:
        token, created = load_or_create_token(opts.state_dir)
        interceptors.append(TokenInterceptor(token, how_to_pass(opts.state_dir)))
        print(("created" if created else "using") + f" token {opts.state_dir / 'token'}:"
              f" {how_to_pass(opts.state_dir)}", flush=True)
    interceptors.append(MalformedRequestGuard())
    if not opts.auth:
        print("authentication is OFF (--no-auth): anyone who reaches the port can use it",
              flush=True)
    server = grpc.aio.server(options=SERVER_OPTIONS, interceptors=interceptors)
    sweeps_pb2_grpc.add_SweepServiceServicer_to_server(SweepServicer(dispatcher), server)
    workers_pb2_grpc.add_WorkerServiceServicer_to_server(WorkerServicer(dispatcher), server)
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    service_names = [
        sweeps_pb2.DESCRIPTOR.services_by_name["SweepService"].full_name,
        workers_pb2.DESCRIPTOR.services_by_name["WorkerService"].full_name,
        health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
        reflection.SERVICE_NAME,
    ]
    reflection.enable_server_reflection(service_names, server)
    address = f"[{opts.host}]:{opts.port}" if ":" in opts.host else f"{opts.host}:{opts.port}"
    if opts.tls_cert and opts.tls_key:
        port = server.add_secure_port(address, server_credentials(
            opts.tls_cert, opts.tls_key, opts.tls_client_ca))
    else:
        port = server.add_insecure_port(address)
    if port == 0:
        raise SystemExit(f"coordinator: cannot listen on {address} (is the port in use?)")
    await server.start()
    for name in service_names[:2] + [""]:
        await health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    # Parseable by scripts and tests that pass --port 0.
    print(f"sweepd coordinator listening on {opts.host}:{port} (state: {store.path})",
          flush=True)

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)

    async def watch_leases() -> None:
        while True:
            await asyncio.sleep(LEASE_CHECK_INTERVAL_S)
            try:
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
        await server.stop(SHUTDOWN_GRACE_S)
    finally:
        lease_task.cancel()
        executor.shutdown(wait=False, cancel_futures=True)
        store.close()
    print("sweepd coordinator stopped", flush=True)
