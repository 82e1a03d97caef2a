"""``coordinator``: the coordinator daemon's command line.

Exit codes: 0 clean shutdown (SIGTERM/SIGINT), 1 runtime error, 2 bad usage,
3 the state directory cannot be used (unwritable, its filesystem full or failing, in use by
another coordinator, a damaged or missing database or one that is not sweepd's, an unusable
token file, or written by an incompatible version),
4 the address cannot be listened on (the port is in use on any address the host names, the
host is not this machine's).
"""

from __future__ import annotations

import asyncio
import logging
import sys
from pathlib import Path
from typing import Any

import click
from sweepd.common.transport import default_state_dir

from .dashboard import DEFAULT_DASHBOARD_PORT
from .dispatcher import DEFAULT_LEASE_S, DEFAULT_MAX_RETRIES, LEASE_HEARTBEATS, MIN_LEASE_S
from .server import AddressError, ServeOptions, serve
from .statedir import StateDirError
from .store import SchemaMismatch

EXIT_STATE_DIR = 3
EXIT_ADDRESS = 4


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="sweepd", prog_name="coordinator")
def main() -> None:
    """sweepd coordinator: keeps sweeps, decides what to try next, drives workers."""


@main.command("stop", epilog="""\b
Examples:
  coordinator stop
  coordinator stop --state-dir /srv/sweepd""")
@click.option("--state-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help=f"The state dir of the coordinator to stop. [default: {default_state_dir()}]")
@click.option("--timeout", type=click.FloatRange(min=0), default=30.0, show_default=True,
              help="Seconds to wait for it to exit after SIGTERM.")
def stop_command(state_dir: Path | None, timeout: float) -> None:
    """Stop the coordinator of a state dir on this machine (the one `sweep()`, `agent()` or
    `sweep create` started in the background, or any `coordinator serve`): SIGTERM to the pid
    in <state-dir>/coordinator.lock, then wait until it has exited."""
    from sweepd.common.local import LocalCoordinatorError, stop_local

    where = state_dir or default_state_dir()
    try:
        pid = stop_local(where, timeout)
    except LocalCoordinatorError as exc:
        click.echo(f"coordinator: {exc}", err=True)
        sys.exit(1)
    click.echo(f"stopped the coordinator of {where} (pid {pid})" if pid is not None
               else f"no coordinator is running on {where}")


@main.command("serve", epilog="""\b
Examples:
  coordinator serve                       # loopback :50051, the default state dir
  coordinator serve --host 0.0.0.0 --tls-cert cert.pem --tls-key key.pem""")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on. Use 0.0.0.0 to accept workers from other machines.")
@click.option("--port", default=50051, show_default=True, type=click.IntRange(0, 65535),
              help="Port to listen on; 0 picks a free one (printed at start).")
@click.option("--state-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help=f"Where the SQLite database lives. [default: {default_state_dir()}]")
@click.option("--lease-seconds", type=click.FloatRange(min=MIN_LEASE_S), default=DEFAULT_LEASE_S,
              show_default=True,
              help="A run whose worker (or ask/tell client) is not heard from for this long is"
                   f" LOST and retried. Workers are told to send {LEASE_HEARTBEATS} heartbeats"
                   f" per lease; the shortest lease is {MIN_LEASE_S:g} s.")
@click.option("--max-retries", type=click.IntRange(min=0), default=DEFAULT_MAX_RETRIES,
              show_default=True, help="How many times a LOST run is tried again.")
@click.option("--no-auth", is_flag=True,
              help="Accept calls without the token (by default every call but health checks"
                   " needs the token in <state-dir>/token, created on first start).")
@click.option("--tls-cert", type=click.Path(dir_okay=False, exists=True, path_type=Path),
              default=None, help="PEM certificate (chain) to serve TLS with.")
@click.option("--tls-key", type=click.Path(dir_okay=False, exists=True, path_type=Path),
              default=None, help="PEM private key of --tls-cert.")
@click.option("--tls-client-ca", type=click.Path(dir_okay=False, exists=True, path_type=Path),
              default=None, help="Mutual TLS: accept only clients with a certificate from this"
                                 " CA (PEM).")
@click.option("--insecure", is_flag=True,
              help="Allow a non-loopback --host without TLS (only on a network you trust).")
@click.option("--new-database", is_flag=True,
              help="Start with an empty database although the state dir has a token, i.e. has"
                   " served before (its database was deleted or emptied). Without it such a"
                   " start is refused, so that sweeps are never forgotten silently.")
@click.option("--dashboard-port", type=click.IntRange(0, 65535), default=None,
              help=f"Port of the web dashboard, on the same host (HTTPS when TLS is on); 0 turns"
                   f" it off. [default: {DEFAULT_DASHBOARD_PORT}; with --port 0, a free one;"
                   " the default port taken, the coordinator starts without the dashboard]")
@click.option("--log-level", type=click.Choice(["debug", "info", "warning", "error"]),
              default="info", show_default=True)
def serve_command(host: str, port: int, state_dir: Path | None, lease_seconds: float,
                  max_retries: int, no_auth: bool, tls_cert: Path | None,
                  tls_key: Path | None, tls_client_ca: Path | None, insecure: bool,
                  new_database: bool, dashboard_port: int | None, log_level: str) -> None:
    """Run the coordinator until SIGTERM or Ctrl+C (`coordinator stop` sends SIGTERM)."""
    logging.basicConfig(
        level=getattr(logging, log_level.upper()),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    opts = ServeOptions(host=host, port=port, state_dir=state_dir or default_state_dir(),
                        lease_s=lease_seconds, max_retries=max_retries, auth=not no_auth,
                        tls_cert=tls_cert, tls_key=tls_key, tls_client_ca=tls_client_ca,
                        insecure=insecure, new_database=new_database,
                        **_dashboard_options(port, dashboard_port))
    try:
        asyncio.run(serve(opts))
    except (SchemaMismatch, StateDirError) as exc:
        click.echo(f"coordinator: {exc}", err=True)
        sys.exit(EXIT_STATE_DIR)
    except AddressError as exc:
        click.echo(f"coordinator: {exc}", err=True)
        sys.exit(EXIT_ADDRESS)
    except PermissionError as exc:
        click.echo(f"coordinator: cannot use state dir {opts.state_dir}: {exc}", err=True)
        sys.exit(EXIT_STATE_DIR)


def _dashboard_options(port: int, dashboard_port: int | None) -> dict[str, Any]:
    if dashboard_port == 0:
        return {"dashboard_port": None}
    if dashboard_port is not None:
        return {"dashboard_port": dashboard_port, "dashboard_required": True}
    # Whoever asks for a free gRPC port (scripts, tests) gets a free dashboard port too.
    if port == 0:
        return {"dashboard_port": 0, "dashboard_required": True}
    return {"dashboard_port": DEFAULT_DASHBOARD_PORT, "dashboard_required": False}
