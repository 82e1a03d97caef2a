"""``sweep``: create and steer sweeps from the command line.

Every command takes ``--coordinator HOST:PORT`` (default ``$SWEEPD_COORDINATOR``, else
127.0.0.1:50051) and ``--format table|json``; json prints one document per call with the
field names of ``sweepd.client.Client``.

Exit codes: 0 success; 1 the coordinator refused the request (the message says why);
2 bad usage or an invalid sweep configuration; 3 the coordinator cannot be reached.
"""

from __future__ import annotations

import functools
import json
import os
import re
import shlex
import shutil
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import click
import grpc
from sweepd.common.transport import Security, coordinator_address

from .api import Client, SweepdClientError
from .dashboard_cli import dashboard_command, report_command
from .format import cell_text, duration, table, to_json, when
from .runs_view import (
    RunsViewError,
    SortKey,
    check_metrics,
    flatten,
    param_names,
    parse_sort,
    sort_runs,
    to_csv,
)
from .validate import validate_command
from .watch_view import WatchState, live_view

# `sweep show RUN_ID` of a failed run ends with this many lines of its output.
LOG_LINES_ON_FAILURE = 20
_RUN_ID = re.compile(r"^[0-9a-z]+-[1-9][0-9]*$")


def parse_run_id(value: str) -> str | None:
    """The value if it reads as a run id (``<sweep id>-<number>``), else None."""
    return value if _RUN_ID.match(value) else None

EXIT_REFUSED = 1
EXIT_INVALID = 2
EXIT_UNREACHABLE = 3
# 128 + SIGINT, what a shell reports for a command ended by Ctrl+C.
EXIT_INTERRUPTED = 130

F = TypeVar("F", bound=Callable[..., Any])


def common_options(func: F | None = None, *, formats: tuple[str, ...] = ("table", "json"),
                   autostart: bool = False) -> Any:
    """--coordinator and --format on every command, and errors turned into exit codes.

    ``@common_options`` offers table and json; ``@common_options(formats=...)`` others too.
    ``autostart``: with no coordinator named and none answering on the default address, start
    a local one first (``sweepd.common.local``)."""
    if func is None:
        return functools.partial(_with_common_options, formats=formats, autostart=autostart)
    return _with_common_options(func, formats=formats, autostart=autostart)


def _with_common_options(func: F, *, formats: tuple[str, ...], autostart: bool = False) -> F:
    @click.option("--coordinator", metavar="HOST:PORT", default=None,
                  help="Coordinator address [default: $SWEEPD_COORDINATOR or 127.0.0.1:50051]")
    @click.option("--format", "fmt", type=click.Choice(list(formats)), default="table",
                  show_default=True, help="Output for people (table) or programs ("
                  + ", ".join(f for f in formats if f != "table") + ").")
    @click.option("--token", default=None, help="The coordinator's token [default:"
                  " $SWEEPD_TOKEN, else the token file in the default state dir].")
    @click.option("--tls-ca", type=click.Path(dir_okay=False, exists=True), default=None,
                  help="Connect with TLS, trusting this CA (PEM) [default: $SWEEPD_TLS_CA].")
    @functools.wraps(func)
    def wrapper(*args: Any, coordinator: str | None, fmt: str, token: str | None,
                tls_ca: str | None, **kwargs: Any) -> Any:
        try:
            if autostart:
                from sweepd.common.local import LocalCoordinatorError, ensure_local

                try:
                    ensure_local(coordinator)
                except LocalCoordinatorError as exc:
                    click.echo(f"error: {exc}", err=True)
                    sys.exit(EXIT_UNREACHABLE)
            with Client(coordinator, security=Security.resolve(token, tls_ca)) as client:
                return func(*args, client=client, fmt=fmt, **kwargs)
        except KeyboardInterrupt:
            # Ctrl+C on a command that follows something (watch, logs -f): a normal way out,
            # with the shell's code for SIGINT and no "Aborted!".
            click.echo("", err=True)
            sys.exit(EXIT_INTERRUPTED)
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
@click.version_option(package_name="sweepd", prog_name="sweep")
def main() -> None:
    """sweepd: create and steer hyperparameter sweeps."""
    _add_examples()


@main.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path,
                                       allow_dash=True))
@click.option("--queue", default="", metavar="NAME",
              help="The worker queue that runs it (`worker join --queue`) [default: default].")
@click.option("--max-concurrent", type=click.IntRange(min=0), default=0, metavar="N",
              help="At most N of its runs at once (0: no limit).")
@click.option("--max-retries", type=click.IntRange(min=0), default=None, metavar="N",
              help="Try a LOST run (its worker vanished) again up to N times [default: the"
                   " config's max_retries, else the coordinator's --max-retries].")
@common_options(autostart=True)
def create(file: Path, queue: str, max_concurrent: int, max_retries: int | None,
           client: Client, fmt: str) -> None:
    """Create a sweep from a W&B-style sweep.yaml (`-`: read it from standard input); prints
    its id. With no coordinator named and none running on this machine, starts one in the
    background (`coordinator stop` ends it)."""
    config: Path | str = sys.stdin.read() if str(file) == "-" else file
    sweep = client.create_sweep(config, queue=queue, max_concurrent=max_concurrent,
                                max_retries=max_retries)
    if fmt == "json":
        click.echo(to_json(sweep))
        return
    click.echo(sweep["id"])
    for notice in sweep["notices"]:
        click.echo(f"notice: {notice}", err=True)
    address = client.address
    flag = "" if address == coordinator_address(None) else f" --coordinator {address}"
    click.echo(f"Created sweep {sweep['id']} ({sweep['method']}). Start workers with:", err=True)
    click.echo(f"  worker join{flag} --sweep {sweep['id']}           # until the sweep ends",
               err=True)
    click.echo(f"  worker join{flag} --sweep {sweep['id']} --count 5 # or: at most 5 runs",
               err=True)


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


def _show_run(run_id: str, client: Client, fmt: str) -> None:
    r = client.get_run(run_id, history=True)
    if fmt == "json":
        click.echo(to_json(r))
        return
    lines = [
        f"run      {r['id']}  (attempt {r['attempt']})",
        f"state    {r['state']}" + (f"  ({r['reason']})" if r["reason"] else ""),
        f"params   {cell_text(r['params'])}",
        f"summary  {cell_text(r['summary']) or '-'}",
    ]
    if r["predicted_mean"] is not None:
        # What the search model expected of this point when it chose it.
        spread = (f" ± {cell_text(r['predicted_std'])}" if r["predicted_std"] is not None
                  else "")
        lines.append(f"expected {cell_text(r['predicted_mean'])}{spread}  (the model's"
                     " prediction when the run was created)")
    if r["stop"] is not None:
        lines.append(f"stopped  {r['stop']['reason']}")
    lines += [
        f"worker   {r['worker_id'] or '-'}",
        f"time     {duration(r['started_at'], r['ended_at'])}",
    ]
    if r["exit_code"] is not None:
        lines.append(f"exit     {r['exit_code']}")
    lines += _command_lines(r["command"], r["argv"])
    for e in r["events"]:
        lines.append(f"event    {when(e['time'])}  {e['state']:<9} attempt {e['attempt']}"
                     + (f"  {e['worker_id']}" if e["worker_id"] else "")
                     + (f"  {e['reason']}" if e["reason"] else ""))
    click.echo("\n".join(lines))
    if r["log_tail"] and r["state"] in ("FAILED", "LOST"):
        click.echo("---- output (last lines; `sweep logs` prints it all)")
        click.echo("\n".join(r["log_tail"].splitlines()[-LOG_LINES_ON_FAILURE:]))


def _command_lines(command: list[str], argv: list[str]) -> list[str]:
    """What the run is to run and, once started, what its worker ran: the second differs from
    the first where the worker resolved its macros (${interpreter} became its own Python), so
    it is shown only then."""
    lines = []
    if command:
        lines.append(f"command  {shlex.join(command)}")
    if argv and argv != command:
        lines.append(f"started  {shlex.join(argv)}")
    return lines


def _run_of_sweep(sweep_id: str, run: str) -> str:
    """``sweep show SWEEP_ID RUN``: RUN is the run's id or its number in the sweep."""
    run_id = f"{sweep_id}-{run}" if run.isdigit() else run
    if parse_run_id(run_id) is None or run_id.rsplit("-", 1)[0] != sweep_id:
        raise click.BadParameter(
            f"{run!r} is not a run of sweep {sweep_id}: give its id ({sweep_id}-N) or its"
            " number N", param_hint="RUN_ID")
    return run_id


@main.command()
@click.argument("sweep_id", metavar="SWEEP_ID|RUN_ID")
@click.argument("run", metavar="[RUN_ID]", required=False)
@common_options
def show(sweep_id: str, run: str | None, client: Client, fmt: str) -> None:
    """Show one sweep (state, run counts, best run, notices), or one run (with the end of its
    output when it failed): `sweep show RUN_ID`, or `sweep show SWEEP_ID RUN_ID` where RUN_ID
    may also be the run's number."""
    if run is not None:
        _show_run(_run_of_sweep(sweep_id, run), client, fmt)
        return
    if parse_run_id(sweep_id) is not None:
        _show_run(sweep_id, client, fmt)
        return
    s = client.get_sweep(sweep_id)
    if fmt == "json":
        click.echo(to_json(s))
        return
    metric = s["metric"]
    lines = [
        f"sweep    {s['id']}" + (f"  ({s['name']})" if s["name"] else ""),
        f"state    {s['state']}" + (f"  ({s['state_reason']})" if s["state_reason"] else ""),
        f"method   {s['method']}",
        f"queue    {s['queue']}" + (f"  (at most {s['max_concurrent']} at once)"
                                    if s["max_concurrent"] else ""),
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
@click.option("--sort", "sort_key", metavar="KEY", default=None,
              help="Sort by a parameter (dotted path for nested ones), a logged metric or a run"
              " field (state, created, ...); prefix '-' for descending. Runs without the value"
              " come last.")
@click.option("--top", type=click.IntRange(min=1), default=None, metavar="N",
              help="Only the first N runs (with no --sort: the N best by the sweep's metric).")
@click.option("--metrics", default="", metavar="A,B",
              help="Also show these logged metrics (their last value), comma-separated.")
@common_options(formats=("table", "json", "csv"))
def runs(sweep_id: str, sort_key: str | None, top: int | None, metrics: str, client: Client,
         fmt: str) -> None:
    """List a sweep's runs with their parameters, state and metric.

    A column per parameter when the terminal is wide enough, else one PARAMS column;
    --format csv always has a column per parameter and per metric."""
    run_list: list[dict[str, Any]] = client.runs(sweep_id)
    sweep_info = client.get_sweep(sweep_id)
    metric = sweep_info["metric"]
    metric_name = metric["name"] if metric else None
    extra = [m.strip() for m in metrics.split(",") if m.strip()]
    try:
        if sort_key is not None:
            run_list = sort_runs(run_list, parse_sort(sort_key, run_list, metric_name))
        elif top is not None and metric:
            best_first = SortKey("metric", metric_name or "", metric["goal"] == "maximize")
            run_list = sort_runs(run_list, best_first)
    except RunsViewError as exc:
        raise click.UsageError(str(exc)) from None
    if top is not None:
        run_list = run_list[:top]
    for notice in check_metrics(extra, run_list):
        click.echo(f"note: {notice}", err=True)
    if fmt == "json":
        click.echo(to_json(run_list))
        return
    if fmt == "csv":
        click.echo(to_csv(run_list, metric_name, extra), nl=False)
        return
    metric_columns = list(dict.fromkeys(([metric_name] if metric_name else []) + extra))
    params = param_names(run_list)

    def rows(per_param: bool) -> list[list[Any]]:
        out = []
        for r in run_list:
            reason = r["reason"] or (f"exit {r['exit_code']}" if r["exit_code"] else "")
            flat = flatten(r["params"])
            shown = [flat.get(p) for p in params] if per_param else [cell_text(r["params"])]
            out.append([r["id"], r["state"], *shown,
                        *(r["summary"].get(m) for m in metric_columns),
                        duration(r["started_at"], r["ended_at"]), r["worker_id"] or "-",
                        reason])
        return out

    tail = ["TIME", "WORKER", "REASON"]
    heads = [*(metric_columns or ["METRIC"])]
    wide = table(["RUN", "STATE", *params, *heads, *tail], rows(True))
    width = shutil.get_terminal_size((100, 24)).columns
    if max((len(line) for line in wide.splitlines()), default=0) <= width:
        click.echo(wide)
    else:
        click.echo(table(["RUN", "STATE", "PARAMS", *heads, *tail], rows(False)))


@main.command()
@click.argument("sweep_id")
@common_options
def importance(sweep_id: str, client: Client, fmt: str) -> None:
    """Which parameters matter for the sweep's metric, over its finished runs.

    IMPORTANCE is each parameter's share of what a model fitted to the runs can predict on runs
    it did not see (permutation importance on held-out folds; the shares sum to 1), with its
    spread. CORRELATION is Spearman's rank correlation with the metric; a categorical parameter
    gets one per value. With --format json: the list of {"param", "importance",
    "correlation", ...}, most important first."""
    result = client.importance(sweep_id)
    if fmt == "json":
        click.echo(to_json(result["params"]))
        return
    rows = []
    for p in result["params"]:
        share = f"{p['importance']:.3f} ± {p['importance_std']:.3f}"
        if p["kind"] == "categorical":
            corr = ", ".join(
                f"{v['value']} {_signed(v['correlation'])}" for v in p.get("by_value", [])
            )
        else:
            corr = _signed(p["correlation"])
        rows.append([p["param"], share, corr])
    click.echo(table(["PARAMETER", "IMPORTANCE", "CORRELATION"], rows))
    r2 = result["model_r2"]
    fit = f", held-out R² {r2:.2f}" if r2 is not None else ""
    click.echo(f"from {result['runs_used']} finished runs ({result['model']}{fit})")
    for notice in result["notices"]:
        click.echo(f"note: {notice}")


def _signed(value: float | None) -> str:
    return "-" if value is None else f"{value:+.2f}"


@main.command()
@click.argument("sweep_id")
@click.option("--failed", is_flag=True, help="Retry the runs that FAILED.")
@click.option("--lost", is_flag=True, help="Retry the runs that were LOST (retries used up).")
@common_options
def retry(sweep_id: str, failed: bool, lost: bool, client: Client, fmt: str) -> None:
    """Put a sweep's failed and/or lost runs back in the queue."""
    if not (failed or lost):
        raise click.UsageError("say which runs to retry: --failed and/or --lost")
    result = client.retry(sweep_id, failed=failed, lost=lost)
    if fmt == "json":
        click.echo(to_json(result))
        return
    s = result["sweep"]
    click.echo(f"{len(result['run_ids'])} run(s) queued again; sweep {s['id']} is {s['state']}")


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
             ",".join(w["gpus"]) or "-", ",".join(w["queues"]) or "default",
             ",".join(w["run_ids"]) or "-", w["sweep_id"] or "any", cell_text(w["labels"]) or "-",
             when(w["last_heartbeat"])] for w in ws]
    click.echo(table(["WORKER", "HOST", "CONNECTED", "SLOTS", "GPUS", "QUEUES", "RUNS", "SWEEP",
                      "LABELS", "LAST HEARTBEAT"], rows))


@main.command()
@click.argument("run_id")
@click.option("--follow", "-f", is_flag=True, help="Keep printing new output until the run ends.")
@common_options
def logs(run_id: str, follow: bool, client: Client, fmt: str) -> None:
    """Print a run's output (stdout and stderr): the last 64 KiB once it ended. With
    --format json: one JSON document per line of output, {"run_id", "line"} (a line cut
    by the 64 KiB window or still being written comes as it is)."""
    if fmt == "json":
        _logs_as_json(run_id, client.logs(run_id, follow=follow))
        return
    out = sys.stdout.buffer
    for chunk in client.logs(run_id, follow=follow):
        out.write(chunk)
        out.flush()


def _logs_as_json(run_id: str, chunks: Iterator[bytes]) -> None:
    pending = b""
    for chunk in chunks:
        pending += chunk
        *lines, pending = pending.split(b"\n")
        for line in lines:
            _echo_json_line(run_id, line)
    if pending:
        _echo_json_line(run_id, pending)


def _echo_json_line(run_id: str, line: bytes) -> None:
    # Undecodable bytes replaced: a JSON reader must never choke on a program's output.
    text = line.decode("utf-8", errors="replace").removesuffix("\r")
    click.echo(json.dumps({"run_id": run_id, "line": text}, ensure_ascii=False))


@main.command()
@click.argument("sweep_id")
@click.option("--plain", is_flag=True,
              help="Plain lines even on a terminal (the default when output is not one).")
@common_options
def watch(sweep_id: str, plain: bool, client: Client, fmt: str) -> None:
    """Follow a sweep live until it has ended and its last run is over.

    On a terminal: a screen redrawn in place with a progress bar (finished runs of run_cap
    or of the grid), the best run so far, the running runs with their latest metric and step,
    counts by state and the last events. Otherwise (or with --plain): a line per run state
    change and per new best run. With --format json: every update as a JSON line."""
    updates = client.watch(sweep_id)
    if fmt == "json":
        for update in updates:
            click.echo(json.dumps(update, separators=(",", ":"), default=str))
        return
    state = WatchState(sweep_id)
    if not plain and sys.stdout.isatty() and os.environ.get("TERM") != "dumb":
        from rich.console import Console

        live_view(state, updates, lambda run_id: client.get_run(run_id, history=True),
                  Console())
    else:
        for update in updates:
            for line in state.apply(update):
                click.echo(line)
    if state.sweep is not None:
        final = client.get_sweep(sweep_id)
        line = f"sweep {sweep_id} {final['state']}"
        if final["state_reason"]:
            line += f" ({final['state_reason']})"
        best = final["best_run"]
        if best and state.metric:
            line += (f"; best {best['id']} {state.metric}="
                     f"{cell_text(best['summary'].get(state.metric))}")
        click.echo(line)


main.add_command(validate_command, "validate")

# Shown at the end of each command's --help: what a first try looks like.
EXAMPLES = {
    "create": ["sweep create sweep.yaml", "sweep create sweep.yaml --queue gpu --max-concurrent 4",
               "cat sweep.json | sweep create -"],
    "list": ["sweep list", "sweep list --format json"],
    "show": ["sweep show 3f9c2a1b", "sweep show 3f9c2a1b-4", "sweep show 3f9c2a1b 4"],
    "runs": ["sweep runs 3f9c2a1b --top 5", "sweep runs 3f9c2a1b --sort -accuracy --metrics"
             " loss,epoch", "sweep runs 3f9c2a1b --format csv > runs.csv"],
    "importance": ["sweep importance 3f9c2a1b", "sweep importance 3f9c2a1b --format json"],
    "retry": ["sweep retry 3f9c2a1b --failed", "sweep retry 3f9c2a1b --failed --lost"],
    "pause": ["sweep pause 3f9c2a1b"],
    "resume": ["sweep resume 3f9c2a1b"],
    "stop": ["sweep stop 3f9c2a1b"],
    "cancel": ["sweep cancel 3f9c2a1b"],
    "workers": ["sweep workers", "sweep workers --format json"],
    "logs": ["sweep logs 3f9c2a1b-4", "sweep logs 3f9c2a1b-4 --follow",
             "sweep logs 3f9c2a1b-4 --format json"],
    "watch": ["sweep watch 3f9c2a1b", "sweep watch 3f9c2a1b --format json > updates.jsonl"],
    "validate": ["sweep validate sweep.yaml", "cat sweep.yaml | sweep validate -"],
    "dashboard": ["sweep dashboard"],
    "report": ["sweep report 3f9c2a1b -o report.html"],
}


def _add_examples() -> None:
    # Called when the group runs, i.e. after every module has added its commands.
    for name, lines in EXAMPLES.items():
        cmd = main.commands.get(name)
        if cmd is not None and not cmd.epilog:
            cmd.epilog = "\b\nExamples:\n" + "\n".join(f"  {x}" for x in lines)


main.add_command(dashboard_command, "dashboard")
main.add_command(report_command, "report")
