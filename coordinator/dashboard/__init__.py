"""The coordinator's web dashboard: sweeps, runs, figures, live, on the coordinator's own loop.

Why aiohttp (and not starlette with uvicorn): it is one dependency that is both the server and
the framework, and its ``AppRunner``/``TCPSite`` start a server on an event loop that is
already running, beside grpc.aio, without taking over the process's signals or its loop
(uvicorn is built to own the process: its ``Server.serve()`` installs signal handlers and
its lifespan and logging set-up assume it is the program). It has streaming responses for
server-sent events, TLS from an ``ssl.SSLContext``, and a test client, and it is mature
(a decade of releases) with wheels for every platform we support.

The dashboard reads the dispatcher only through its queries (get_sweep, list_sweeps,
get_run, history, events, live_log, best_run) and follows changes through ``watch`` /
``unwatch``, the feed WatchSweep uses; it changes state only through the dispatcher's
commands (pause, resume, stop, cancel).
"""

from __future__ import annotations

import contextlib
import json
import os
import ssl
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web
from sweepd.common.dashboard_link import URL_FILENAME

from ..dispatcher import Dispatcher
from .app import Dashboard
from .auth import Sessions

# The default port: the gRPC port's default (50051) plus one.
DEFAULT_DASHBOARD_PORT = 50052
# Open live pages get this long to notice the shutdown before their connections are cut.
SHUTDOWN_GRACE_S = 1.0

__all__ = [
    "DEFAULT_DASHBOARD_PORT",
    "URL_FILENAME",
    "Dashboard",
    "RunningDashboard",
    "Sessions",
    "ssl_context",
    "start_dashboard",
]


@dataclass
class RunningDashboard:
    url: str
    dashboard: Dashboard
    runner: web.AppRunner
    url_file: Path | None

    async def close(self) -> None:
        self.dashboard.closing.set()
        if self.url_file is not None:
            with contextlib.suppress(OSError):
                self.url_file.unlink()
        await self.runner.cleanup()


def ssl_context(cert: Path, key: Path, client_ca: Path | None) -> ssl.SSLContext:
    """The gRPC port's certificate (and client CA, for mutual TLS) for HTTPS too."""
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert, key)
    if client_ca is not None:
        ctx.load_verify_locations(client_ca)
        ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx


async def start_dashboard(dispatcher: Dispatcher, host: str, port: int, *,
                          token: str | None, tls: ssl.SSLContext | None = None,
                          state_dir: Path | None = None, grpc_address: str = ""
                          ) -> RunningDashboard:
    """Serves the dashboard on ``host:port`` (0: a free port) on the running loop.

    Raises ``OSError`` when the address cannot be listened on.
    """
    dashboard = Dashboard(dispatcher, Sessions(token), secure=tls is not None)
    runner = web.AppRunner(dashboard.app, access_log=None, shutdown_timeout=SHUTDOWN_GRACE_S)
    await runner.setup()
    site = web.TCPSite(runner, host, port, ssl_context=tls, reuse_port=False,
                       shutdown_timeout=SHUTDOWN_GRACE_S)
    try:
        await site.start()
    except OSError:
        await runner.cleanup()
        raise
    bound = port
    for address in runner.addresses:
        bound = address[1]
        break
    shown = f"[{host}]" if ":" in host else host
    if host in ("0.0.0.0", "::"):
        shown = "127.0.0.1" if host == "0.0.0.0" else "[::1]"
    url = f"{'https' if tls else 'http'}://{shown}:{bound}/"
    url_file = None
    if state_dir is not None:
        url_file = state_dir / URL_FILENAME
        try:
            # Owner-only like the token beside it; the URL itself is no secret.
            fd = os.open(url_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as f:
                json.dump({"url": url, "pid": os.getpid(), "coordinator": grpc_address}, f)
        except OSError:
            url_file = None
    return RunningDashboard(url=url, dashboard=dashboard, runner=runner, url_file=url_file)
