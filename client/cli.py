"""``sweep``: create and steer sweeps from the command line.

Every command takes ``--coordinator HOST:PORT`` (default ``$SWEEPD_COORDINATOR``, else
127.0.0.1:50051) and ``--format table|json``; json prints one document per call with the
field names of ``sweepd.client.Client``.

Exit codes: 0 success; 1 the coordinator refused the request (the message says why);
2 bad usage or an invalid sweep configuration; 3 the coordinator cannot be reached.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click
import grpc

from .api import Client, SweepdClientError
from .format import cell_text, duration, table, to_json, when
from .transport import coordinator_address

EXIT_REFUSED = 1
EXIT_INVALID = 2
EXIT_UNREACHABLE = 3

F = TypeVar("F", bound=Callable[..., Any])


def common_options(func: F) -> F:
    """--coordinator and --format on every command, and errors turned into exit codes."""

    @click.option("--coordinator", metavar="HOST:PORT", default=None,
                  help="Coordinator address [default: $SWEEPD_COORDINATOR or 127.0.0.1:50051]")
    @click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table",
                  show_default=True, help="Output for people (table) or programs (json).")
    @functools.wraps(func)
    def wrapper(*args: Any, coordinator: str | None, fmt: str, **kwargs: Any) -> Any:
        try:
            with Client(coordinator) as client:
                return func(*args, client=client, fmt=fmt, **kwargs)
        except SweepdClientError as exc:
            for line in exc.message.splitlines():
                click.echo(f"error: {line}" if line and not line.startswith(" ") else line,
                           err=True)
            if exc.code == grpc.StatusCode.INVALID_ARGUMENT:
                sys.exit(EXIT_INVALID)
            if exc.code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
                sys.exit(EXIT_UNREACHABLE)
            sys.exit(EXIT_REFUSED)

    return wrapper  # type: ignore[return-value]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """sweepd: create and steer hyperparameter sweeps."""


@main.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@common_options
def create(file: Path, client: Client, fmt: str) -> None:
    """Create a sweep from a W&B-style sweep.yaml; prints its id."""
    sweep = client.create_sweep(file)
    if fmt == "json":
        click.echo(to_json(sweep))
        return
    click.echo(sweep["id"])
    for notice in sweep["notices"]:
        click.echo(f"notice: {notice}", err=True)
    address = client.address
    flag = "" if address == coordinator_address(None) else f" --coordinator {address}"
    click.echo(f"Created sweep {sweep['id']} ({sweep['method']}). Start workers with:", err=True)
    click.echo(f"  worker join{flag} --sweep {sweep['id']}", err=True)


@main.command("list")
@common_options
def list_(client: Client, fmt: str) -> None:
    """List sweeps, newest first."""
    sweeps = client.list_sweeps()
    if fmt == "json":
        click.echo(to_json(sweeps))
        return
    rows = []
    for s in sweeps:
        counts = s["run_counts"]
        best = s["best_run"]
        metric = s["metric"]
        best_text = "-"
        if best and metric:
            best_text = f"{best['id']} {metric['name']}="
            best_text += cell_text(best["summary"].get(metric["name"]))
        rows.append([s["id"], s["name"] or "-", s["state"], s["method"],
                     sum(counts.values()), counts.get("RUNNING", 0), best_text,
                     when(s["created_at"])])
    click.echo(table(["SWEEP", "NAME", "STATE", "METHOD", "RUNS", "RUNNING", "BEST", "CREATED"],
                     rows))


@main.command()
@click.argument("sweep_id")
@common_options
def show(sweep_id: str, client: Client, fmt: str) -> None:
    """Show one sweep: state, run counts, best run, notices."""
    s = client.get_sweep(sweep_id)
    if fmt == "json":
        click.echo(to_json(s))
        return
    metric = s["metric"]
    lines = [
        f"sweep    {s['id']}" + (f"  ({s['name']})" if s["name"] else ""),
        f"state    {s['state']}" + (f"  ({s['state_reason']})" if s["state_reason"] else ""),
        f"method   {s['method']}",
        f"metric   {metric['name']} ({metric['goal']})" if metric else "metric   -",
        "runs     " + (", ".join(f"{k.lower()} {v}" for k, v in sorted(s["run_counts"].items()))
                        or "none yet") + (f"  (run_cap {s['run_cap']})" if s["run_cap"] else ""),
        f"created  {when(s['created_at'])}",
    ]
    best = s["best_run"]
    if best and metric:
        value = cell_text(best["summary"].get(metric["name"]))
        lines.append(f"best     {best['id']}  {metric['name']}={value}"
                     f"  {cell_text(best['params'])}")
    lines += [f"notice   {n}" for n in s["notices"]]
    click.echo("\n".join(lines))


@main.command()
@click.argument("sweep_id")
@common_options
def runs(sweep_id: str, client: Client, fmt: str) -> None:
    """List a sweep's runs with their parameters, state and metric."""
    run_list = client.runs(sweep_id)
    if fmt == "json":
        click.echo(to_json(run_list))
        return
    metric = client.get_sweep(sweep_id)["metric"]
    metric_name = metric["name"] if metric else None
    rows = []
    for r in run_list:
        value = r["summary"].get(metric_name) if metric_name else None
        reason = r["reason"] or (f"exit {r['exit_code']}" if r["exit_code"] else "")
        rows.append([r["id"], r["state"], cell_text(r["params"]), value,
                     duration(r["started_at"], r["ended_at"]), r["worker_id"] or "-", reason])
    headers = ["RUN", "STATE", "PARAMS", metric_name or "METRIC", "TIME", "WORKER", "REASON"]
    click.echo(table(headers, rows))


def _state_command(name: str, action: str, doc: str) -> None:
    @main.command(name, help=doc)
    @click.argument("sweep_id")
    @common_options
    def command(sweep_id: str, client: Client, fmt: str) -> None:
        s = getattr(client, action)(sweep_id)
        if fmt == "json":
            click.echo(to_json(s))
        else:
            click.echo(f"sweep {s['id']} is {s['state']}"
                       + (f" ({s['state_reason']})" if s["state_reason"] else ""))


_state_command("pause", "pause", "Pause a sweep: no new runs; running runs continue.")
_state_command("resume", "resume", "Resume a paused (or stopped, finished) sweep.")
_state_command("stop", "stop", "Stop a sweep: no new runs; running runs finish.")
_state_command("cancel", "cancel", "Cancel a sweep: running runs are stopped.")


@main.command()
@common_options
def workers(client: Client, fmt: str) -> None:
    """List the workers the coordinator knows, connected first."""
    ws = client.workers()
    if fmt == "json":
        click.echo(to_json(ws))
        return
    rows = [[w["id"], w["host"], "yes" if w["connected"] else "no", w["slots"],
             ",".join(w["run_ids"]) or "-", w["sweep_id"] or "any", cell_text(w["labels"]) or "-",
             when(w["last_heartbeat"])] for w in ws]
    click.echo(table(["WORKER", "HOST", "CONNECTED", "SLOTS", "RUNS", "SWEEP", "LABELS",
                      "LAST HEARTBEAT"], rows))


def _register_validate() -> None:
    try:
        from .validate import validate_command
    except ImportError:  # pragma: no cover - only while the module is being written
        return
    main.add_command(validate_command, "validate")


_register_validate()
