"""``sweep dashboard`` (the web dashboard's URL of this machine's coordinator, and a one-time
login link) and ``sweep report`` (the dashboard's offline report of a sweep): kept apart from
cli.py, as neither speaks gRPC."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import click
from sweepd.common.dashboard_link import LINK_TTL_S, NoDashboard, dashboard_url, login_link_query
from sweepd.common.transport import (
    ADDRESS_ENV,
    TLS_CA_ENV,
    TOKEN_ENV,
    default_state_dir,
    token_path,
)

# As cli.py's exit codes: the coordinator refused (1), there is nothing to reach (3).
EXIT_REFUSED = 1
EXIT_NO_DASHBOARD = 3
# Drawing the report reads every run's metric history: long for a very long sweep.
REPORT_TIMEOUT_S = 300.0


@click.command()
@click.option("--coordinator", metavar="HOST:PORT", default=None,
              help="The coordinator whose dashboard to show, on this machine [default:"
                   " $SWEEPD_COORDINATOR, else the one of the state dir].")
@click.option("--state-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="The coordinator's state dir [default: $SWEEPD_STATE_DIR or the per-user"
                   " one].")
@click.option("--token", default=None, help="The coordinator's token, to sign the login link"
              " [default: $SWEEPD_TOKEN, else the token file in the state dir].")
@click.option("--no-link", is_flag=True, help="Print the URL only, without a login link.")
def dashboard_command(coordinator: str | None, state_dir: Path | None, token: str | None,
                      no_link: bool) -> None:
    """Print the web dashboard's URL of this machine's coordinator, and a one-time login link.

    The link holds no token (it is signed with it), works once, and only for 5 minutes."""
    where = state_dir or default_state_dir()
    try:
        url = dashboard_url(where, coordinator or os.environ.get(ADDRESS_ENV))
    except NoDashboard as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_NO_DASHBOARD)
    click.echo(url)
    if no_link:
        return
    try:
        secret = token or os.environ.get(TOKEN_ENV) or token_path(where).read_text().strip()
    except OSError:
        secret = ""
    if secret:
        click.echo(f"{url}login/link?{login_link_query(secret)}")
        click.echo(f"(a one-time login link, good for {LINK_TTL_S / 60:.0f} minutes)", err=True)
    else:
        click.echo(f"no token in {token_path(where)} or ${TOKEN_ENV}: paste the token into the"
                   " page's login form, or pass --token for a link", err=True)


@click.command()
@click.argument("sweep_id")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="The HTML file to write.")
@click.option("--coordinator", metavar="HOST:PORT", default=None,
              help="The coordinator on this machine whose dashboard draws the report [default:"
                   " $SWEEPD_COORDINATOR, else the one of the state dir].")
@click.option("--dashboard", "dashboard", metavar="URL", default=None,
              help="The coordinator's dashboard URL [default: the one of this machine's"
                   " coordinator, from its state dir].")
@click.option("--state-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="The coordinator's state dir [default: $SWEEPD_STATE_DIR or the per-user"
                   " one].")
@click.option("--token", default=None, help="The coordinator's token [default: $SWEEPD_TOKEN,"
              " else the token file in the state dir].")
@click.option("--tls-ca", type=click.Path(dir_okay=False, exists=True), default=None,
              help="Trust this CA (PEM) for an HTTPS dashboard [default: $SWEEPD_TLS_CA].")
def report_command(sweep_id: str, output: Path, coordinator: str | None, dashboard: str | None,
                   state_dir: Path | None, token: str | None, tls_ca: str | None) -> None:
    """Write one self-contained HTML file with the sweep's plots and tables.

    It opens offline (everything is inside it, and it loads nothing), to attach to a pull
    request or an e-mail. The coordinator draws it: its dashboard must be on."""
    import ssl
    import urllib.error
    import urllib.request
    from urllib.parse import quote

    where = state_dir or default_state_dir()
    try:
        base = dashboard or dashboard_url(where, coordinator or os.environ.get(ADDRESS_ENV))
    except NoDashboard as exc:
        click.echo(f"error: {exc}; or pass --dashboard URL", err=True)
        sys.exit(EXIT_NO_DASHBOARD)
    try:
        secret = token or os.environ.get(TOKEN_ENV) or token_path(where).read_text().strip()
    except OSError:
        secret = ""
    request = urllib.request.Request(
        base.rstrip("/") + f"/api/sweeps/{quote(sweep_id, safe='')}/report",
        headers={"Authorization": f"Bearer {secret}"} if secret else {})
    ca = tls_ca or os.environ.get(TLS_CA_ENV)
    context = ssl.create_default_context(cafile=ca) if ca else None
    try:
        with urllib.request.urlopen(request, context=context, timeout=REPORT_TIMEOUT_S) as reply:
            body = reply.read()
    except urllib.error.HTTPError as exc:
        click.echo(f"error: {_error_of(exc)}", err=True)
        sys.exit(EXIT_REFUSED)
    except (urllib.error.URLError, OSError) as exc:
        click.echo(f"error: cannot reach the dashboard at {base}: {exc}", err=True)
        sys.exit(EXIT_NO_DASHBOARD)
    partial = output.with_name(output.name + ".partial")
    partial.write_bytes(body)
    partial.replace(output)
    click.echo(f"wrote {output} ({len(body) / 1e6:.1f} MB)")


def _error_of(exc: Any) -> str:
    try:
        return str(json.loads(exc.read())["error"])
    except (ValueError, KeyError, TypeError, OSError):
        return f"HTTP {exc.code} {exc.reason}"
