"""``worker``: the worker daemon's command line.

Exit codes: 0 done (its sweep ended, ``--count`` reached, or a clean shutdown);
130 interrupted by Ctrl+C / SIGTERM (after its runs were handled); 2 bad usage;
3 refused by the coordinator before any work (no such sweep, a wrong token).
"""

from __future__ import annotations

import asyncio
import logging
import sys
from pathlib import Path

import click
from sweepd.common.transport import Security, coordinator_address

from .daemon import DEFAULT_QUEUE, Worker, WorkerOptions
from .flapping import DEFAULT_FAILURE_BACKOFF_S
from .gpus import GpuAllocator, GpuError, resolve_gpus
from .runner import DEFAULT_STOP_GRACE_S


def _labels(values: tuple[str, ...]) -> dict[str, str]:
    labels = {}
    for item in values:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{item!r}: write labels as KEY=VALUE", param_hint="--label")
        labels[key] = value
    return labels


def _sweep_id(value: str) -> str:
    """A sweep id as W&B prints it too: ``ID`` or ``entity/project/ID`` (the last part)."""
    sweep_id = value.strip().rstrip("/").rsplit("/", 1)[-1]
    if not sweep_id:
        raise click.BadParameter(f"{value!r}: expected a sweep id (or entity/project/ID)",
                                 param_hint="SWEEP_ID")
    return sweep_id


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="sweepd", prog_name="worker")
def main() -> None:
    """sweepd worker: runs what the coordinator assigns."""


@main.command("join", epilog="""\b
Examples:
  worker join                                   # every sweep, until stopped
  worker join 3f9c2a1b --count 5                # five runs of one sweep (as `wandb agent ID`)
  worker join --coordinator head:50051 --sweep 3f9c2a1b --gpus auto""")
@click.argument("sweep", metavar="[SWEEP_ID]", required=False)
@click.option("--coordinator", metavar="HOST:PORT", default=None,
              help="Coordinator address [default: $SWEEPD_COORDINATOR or 127.0.0.1:50051]")
@click.option("--slots", type=click.IntRange(min=1), default=1, show_default=True,
              help="How many runs to run at once.")
@click.option("--sweep", "sweep_id", default="", metavar="ID",
              help="Take runs of this sweep only, and exit when it ends.")
@click.option("--count", type=click.IntRange(min=0), default=0,
              help="Exit after this many runs (0: no limit).")
@click.option("--workdir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Directory runs start in (the program path is relative to it); run files"
                   " go to WORKDIR/.sweepd/runs. [default: the current directory]")
@click.option("--interpreter", default=sys.executable, show_default="this worker's Python",
              help="What ${interpreter} in the sweep's command runs.")
@click.option("--worker-id", default="", help="A stable name for this worker"
              " [default: HOST-PID-random].")
@click.option("--label", "labels", multiple=True, metavar="KEY=VALUE",
              help="A label reported to the coordinator (repeatable).")
@click.option("--stop-grace", type=click.FloatRange(min=0), default=DEFAULT_STOP_GRACE_S,
              show_default=True, help="Seconds between SIGTERM and SIGKILL when a run is stopped.")
@click.option("--gpus", "gpus_spec", default="", metavar="auto|ID,ID,...",
              help="GPUs to hand out, each run seeing only its own in CUDA_VISIBLE_DEVICES:"
                   " 'auto' finds them (CUDA_VISIBLE_DEVICES, else nvidia-smi), or list ids."
                   " Makes one slot per --gpus-per-run GPUs (overrides --slots).")
@click.option("--gpus-per-run", type=click.IntRange(min=1), default=1, show_default=True,
              help="GPUs each run gets.")
@click.option("--queue", "queues", multiple=True, metavar="NAME",
              help="A queue to take runs from (repeatable) [default: default].")
@click.option("--exit-when-idle", type=click.FloatRange(min=0), default=0.0, metavar="SECONDS",
              help="Exit after this many seconds without any run (0: never).")
@click.option("--token", default=None, help="The coordinator's token [default: $SWEEPD_TOKEN,"
              " else the token file in the default state dir].")
@click.option("--tls-ca", type=click.Path(dir_okay=False, exists=True), default=None,
              help="Connect with TLS, trusting this CA (PEM) [default: $SWEEPD_TLS_CA].")
@click.option("--tls-cert", type=click.Path(dir_okay=False, exists=True), default=None,
              help="Client certificate (PEM) for mutual TLS [default: $SWEEPD_TLS_CERT].")
@click.option("--tls-key", type=click.Path(dir_okay=False, exists=True), default=None,
              help="Private key of --tls-cert (PEM) [default: $SWEEPD_TLS_KEY].")
@click.option("--failure-backoff", type=click.FloatRange(min=0), default=DEFAULT_FAILURE_BACKOFF_S,
              show_default=True, metavar="SECONDS",
              help="After 3 runs in a row fail within a minute of starting, take no runs for"
                   " this long (doubling each time, up to 15 minutes).")
@click.option("--log-level", type=click.Choice(["debug", "info", "warning", "error"]),
              default="info", show_default=True)
def join(sweep: str | None, coordinator: str | None, slots: int, sweep_id: str, count: int,
         workdir: Path | None,
         interpreter: str, worker_id: str, labels: tuple[str, ...], stop_grace: float,
         gpus_spec: str, gpus_per_run: int, queues: tuple[str, ...], exit_when_idle: float,
         failure_backoff: float,
         token: str | None, tls_ca: str | None, tls_cert: str | None, tls_key: str | None,
         log_level: str) -> None:
    """Join a coordinator and run assigned runs until told to stop.

    SWEEP_ID (or --sweep; `entity/project/ID` as W&B prints it works too): take runs of that
    sweep only, and exit when it ends. Exit codes: 0 done, 2 bad usage, 3 refused by the
    coordinator (no such sweep, wrong token; an unreachable one is retried), 130 interrupted."""
    if sweep and sweep_id and _sweep_id(sweep) != _sweep_id(sweep_id):
        raise click.UsageError(f"two different sweeps: {sweep!r} and --sweep {sweep_id!r};"
                               " give one")
    sweep_id = _sweep_id(sweep or sweep_id) if (sweep or sweep_id) else ""
    logging.basicConfig(level=getattr(logging, log_level.upper()),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        stream=sys.stderr)
    try:
        gpus = resolve_gpus(gpus_spec)
        if gpus:
            slots = GpuAllocator(gpus, gpus_per_run).slots
    except GpuError as exc:
        raise click.BadParameter(str(exc), param_hint="--gpus") from None
    try:
        security = Security.resolve(token, tls_ca, tls_cert, tls_key)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    workdir = (workdir or Path.cwd()).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    opts = WorkerOptions(
        coordinator=coordinator_address(coordinator), slots=slots, sweep_id=sweep_id,
        count=count, workdir=workdir, interpreter=interpreter, worker_id=worker_id,
        labels=_labels(labels), stop_grace_s=stop_grace, gpus=gpus, gpus_per_run=gpus_per_run,
        queues=list(dict.fromkeys(queues)) or [DEFAULT_QUEUE], exit_when_idle_s=exit_when_idle,
        failure_backoff_s=failure_backoff,
        security=security,
    )
    sys.exit(asyncio.run(Worker(opts).run()))
