"""A run's directory: where it lies and what each file in it holds, for every starter of runs.

The worker daemon and the notebook agent both start runs in
``<workdir>/.sweepd/runs/<run-id>.<attempt>/``, one directory per attempt:

- ``config.json``   the run's parameters, nested, as ``run.config`` reads them;
- ``metrics.jsonl`` where the program appends one JSON object per line (``runfile`` owns the
  format);
- ``stop``          written (with the reason) when the run is asked to stop, so that the
  program can notice (``run.should_stop()``) before the SIGTERM arrives;
- ``output.log``    the program's stdout and stderr (the worker's runs).

The program finds the files through the ``SWEEPD_*`` environment (:meth:`RunFiles.env`), so the
layout can change here without a program noticing. Pure Python, no sweepd imports but
``runfile``.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .runfile import (
    ENV_ATTEMPT,
    ENV_CONFIG_FILE,
    ENV_METRICS_FILE,
    ENV_RUN_DIR,
    ENV_RUN_ID,
    ENV_STOP_FILE,
    ENV_SWEEP_ID,
)

# Under the directory the runs start in: hidden, so that a `git status` or a glob of the
# user's project does not show the runs' files.
RUNS_DIR = Path(".sweepd", "runs")
CONFIG_FILE = "config.json"
METRICS_FILE = "metrics.jsonl"
STOP_FILE = "stop"
OUTPUT_FILE = "output.log"


@dataclass(frozen=True)
class RunFiles:
    """The files of one attempt of one run, in ``dir``."""

    dir: Path

    @classmethod
    def at(cls, workdir: Path, run_id: str, attempt: int) -> RunFiles:
        """The directory of ``run_id``'s ``attempt`` under ``workdir`` (ids are checked to be
        path-safe before they get here: ``names.check_wire_ids``)."""
        return cls(workdir / RUNS_DIR / f"{run_id}.{attempt}")

    @property
    def config(self) -> Path:
        return self.dir / CONFIG_FILE

    @property
    def metrics(self) -> Path:
        return self.dir / METRICS_FILE

    @property
    def stop(self) -> Path:
        return self.dir / STOP_FILE

    @property
    def output(self) -> Path:
        return self.dir / OUTPUT_FILE

    def prepare(self, params: Mapping[str, Any]) -> None:
        """Creates the directory with the run's config and an empty metrics file, and removes
        a stop file left by an earlier start of the same attempt (it would stop this one)."""
        self.dir.mkdir(parents=True, exist_ok=True)
        self.config.write_text(json.dumps(params, indent=2))
        self.metrics.touch()
        with contextlib.suppress(FileNotFoundError):
            self.stop.unlink()

    def env(self, run_id: str, sweep_id: str, attempt: int) -> dict[str, str]:
        """The ``SWEEPD_*`` environment the run's program reads."""
        return {
            ENV_RUN_ID: run_id,
            ENV_SWEEP_ID: sweep_id,
            ENV_ATTEMPT: str(attempt),
            ENV_RUN_DIR: str(self.dir),
            ENV_CONFIG_FILE: str(self.config),
            ENV_METRICS_FILE: str(self.metrics),
            ENV_STOP_FILE: str(self.stop),
        }

    def write_stop(self, reason: str) -> None:
        """Tells the program why it is asked to stop (read by ``run.should_stop()``)."""
        self.stop.write_text(reason + "\n")
