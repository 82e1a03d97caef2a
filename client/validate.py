"""``sweep validate FILE``: check a sweep configuration without a coordinator.

Prints the parsed search space (each parameter's distribution and range, with the int/float
choice shown), the grid size where there is one, the command a run would get for a sample point
(worker macros resolved with this machine's Python), and every notice. On an invalid file it
prints each problem on its own line to stderr and exits 2.

Layering exception: the client never imports the coordinator, except here, lazily, so that the
verdict is the coordinator's own parser's verdict rather than a copy that could drift.
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import Any

import click
from sweepd.common.macros import resolve_worker_macros

from .format import table, to_json

EXIT_INVALID = 2
# Where `${args_json_file}` would point on a worker; shown, not written.
SAMPLE_ARGS_JSON_FILE = "<run dir>/args.json"


@click.command("validate")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path, allow_dash=True))
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "json"]),
    default="table",
    show_default=True,
    help="Output for people (table) or programs (json).",
)
def validate_command(file: Path, fmt: str) -> None:
    """Check a W&B sweep.yaml the way the coordinator will, without contacting one."""
    from sweepd.coordinator.config import ConfigError, describe, parse_config

    try:
        text = sys.stdin.read() if str(file) == "-" else file.read_text(encoding="utf-8")
    except OSError as exc:
        click.echo(f"cannot read {file}: {exc.strerror or exc}", err=True)
        sys.exit(EXIT_INVALID)
    try:
        config = parse_config(text, filename=str(file))
    except ConfigError as exc:
        click.echo(
            f"{file}: invalid sweep configuration, {len(exc.problems)} problem(s):", err=True
        )
        for problem in exc.problems:
            click.echo(str(problem), err=True)
        sys.exit(EXIT_INVALID)
    info = describe(config)
    info["command"] = resolve_worker_macros(
        info["command"],
        interpreter=sys.executable,
        env={},
        args_json_file=lambda: SAMPLE_ARGS_JSON_FILE,
    )
    if fmt == "json":
        click.echo(to_json(info))
        return
    click.echo(_text(file, info))


def _text(file: Path, info: dict[str, Any]) -> str:
    metric = info["metric"]
    lines = [
        f"{file}: valid ({info['method']} search, {len(info['parameters'])} parameters"
        + (f", metric {metric['name']} ({metric['goal']})" if metric else ", no metric")
        + ")",
        "",
        table(
            ["PARAMETER", "DISTRIBUTION", "RANGE"],
            [[p["name"], p["distribution"], p["range"]] for p in info["parameters"]],
        ),
        "",
    ]
    if info["grid_size"] is not None:
        lines.append(f"grid size: {info['grid_size']} points")
    if info["run_cap"] is not None:
        lines.append(f"run cap: {info['run_cap']}")
    lines.append("sample command: " + shlex.join(info["command"]))
    if info["notices"]:
        lines.append("")
        lines.append("notices:")
        lines.extend(f"  - {n}" for n in info["notices"])
    return "\n".join(lines)


def grid_size_of(config_text: str) -> int | None:
    """The number of points of a grid sweep's config by the coordinator's own count (for
    `sweep watch`'s progress bar), else None: not a grid, or not parseable here."""
    from sweepd.coordinator.config import describe, parse_config

    try:
        size = describe(parse_config(config_text))["grid_size"]
    except Exception:  # a view without a total is better than no view
        return None
    return int(size) if size else None
