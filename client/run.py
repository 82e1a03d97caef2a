"""The in-run API: what a training program uses to read its parameters and log metrics.

    from sweepd.client import run

    lr = run.config.lr            # or run.config["lr"]
    for epoch in range(10):
        ...
        run.log({"loss": loss, "epoch": epoch})
        if run.should_stop():     # early-terminated: save a checkpoint and exit
            break

It is a drop-in for the ``wandb.config`` / ``wandb.log`` lines of a training script. The
worker that starts the program tells it where things are through environment variables
(``SWEEPD_CONFIG_FILE``, ``SWEEPD_METRICS_FILE``, ``SWEEPD_STOP_FILE``); ``run.log`` appends
one JSON line per call to the metrics file, which the worker follows. Outside a sweep (the
script run by hand) ``run.config`` is empty, ``run.log`` prints its values once per call to
stderr, and ``should_stop()`` is False.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from sweepd.common.runfile import (
    ENV_CONFIG_FILE,
    ENV_METRICS_FILE,
    ENV_RUN_ID,
    ENV_STOP_FILE,
    ENV_SWEEP_ID,
)


class Config(Mapping[str, Any]):
    """Run parameters with attribute and item access; nested groups are Configs.

    The sweep's parameters are locked, as in W&B: ``run.config.update({...})``,
    ``run.config.key = value`` and ``run.config["key"] = value`` add other keys (kept in this
    process, for the program's own use; the coordinator records only the parameters), and an
    attempt to change a sweep parameter's value is ignored with a warning, the sweep's value
    kept.
    """

    _values: dict[str, Any]
    _locked: frozenset[str]

    def __init__(self, values: Mapping[str, Any] | None = None) -> None:
        object.__setattr__(self, "_values", dict(values or {}))
        object.__setattr__(self, "_locked", frozenset(self._values))

    def update(self, values: Mapping[str, Any] | None = None, allow_val_change: bool = False,
               **kwargs: Any) -> None:
        """Adds keys, as ``wandb.config.update``. ``allow_val_change`` lets a key added here
        change; a sweep parameter never changes (the run would no longer be the point the
        sweep chose)."""
        if values is not None and not isinstance(values, Mapping):
            # W&B also takes an argparse Namespace or an object with attributes.
            values = vars(values) if hasattr(values, "__dict__") else None
            if values is None:
                raise TypeError("run.config.update takes a dict (or an argparse Namespace)")
        for key, value in {**(values or {}), **kwargs}.items():
            self._set(str(key), value, allow_val_change)

    def _set(self, key: str, value: Any, allow_val_change: bool) -> None:
        if key in self._locked:
            if self._values[key] != value:
                print(f"sweepd: run.config.{key} is a sweep parameter (value"
                      f" {self._values[key]!r}); the update to {value!r} is ignored. Keep"
                      " derived values under another key.", file=sys.stderr)
            return
        if key in self._values and self._values[key] != value and not allow_val_change:
            raise ValueError(
                f"run.config.{key} is already {self._values[key]!r}; to change it to"
                f" {value!r} pass allow_val_change=True (run.config.update({{{key!r}: ...}},"
                " allow_val_change=True))")
        self._values[key] = value

    def __setitem__(self, key: str, value: Any) -> None:
        self._set(key, value, True)

    def __getitem__(self, key: str) -> Any:
        value = self._values[key]
        return Config(value) if isinstance(value, Mapping) else value

    def __getattr__(self, key: str) -> Any:
        try:
            return self[key]
        except KeyError:
            raise AttributeError(
                f"run.config has no parameter {key!r}; it has: {', '.join(self._values) or '-'}"
            ) from None

    def __setattr__(self, key: str, value: Any) -> None:
        self._set(key, value, True)

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __repr__(self) -> str:
        return f"Config({self._values!r})"

    def as_dict(self) -> dict[str, Any]:
        return json.loads(json.dumps(self._values))


class Run:
    """The current run, configured from the environment the worker sets."""

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        self.id: str = env.get(ENV_RUN_ID, "")
        self.sweep_id: str = env.get(ENV_SWEEP_ID, "")
        config_file = env.get(ENV_CONFIG_FILE)
        self.config = Config(json.loads(Path(config_file).read_text()) if config_file else {})
        metrics_file = env.get(ENV_METRICS_FILE)
        self._metrics_path = Path(metrics_file) if metrics_file else None
        stop_file = env.get(ENV_STOP_FILE)
        self._stop_path = Path(stop_file) if stop_file else None
        self._step = 0
        self._lock = threading.Lock()

    @property
    def in_sweep(self) -> bool:
        return bool(self.id)

    def log(self, values: Mapping[str, Any], step: int | None = None) -> None:
        """Records metric values (numbers; other values are ignored by the coordinator).

        ``step`` defaults to one more than the previous call's. The sweep's metric must be
        logged at the top level under exactly its name, as with W&B.
        """
        if not isinstance(values, Mapping):
            raise TypeError(f"run.log takes a dict of metric values, not {type(values).__name__}")
        with self._lock:
            if step is None:
                step = self._step
            self._step = step + 1
            record = {str(k): _jsonable(v) for k, v in values.items()}
            record["_step"] = step
            record["_timestamp"] = time.time()
            line = json.dumps(record, allow_nan=True)
            if self._metrics_path is None:
                print(f"[sweepd run.log] {line}", file=sys.stderr)
                return
            # One write of a whole line, so the worker never reads half a record.
            with open(self._metrics_path, "a", encoding="utf-8") as f:
                f.write(line + "\n")

    def should_stop(self) -> bool:
        """True once the coordinator asked this run to stop (early termination, canceled
        sweep); a SIGTERM follows. Save what you need and exit."""
        return self._stop_path is not None and self._stop_path.exists()


def _jsonable(value: Any) -> Any:
    # NaN and inf are kept (as JSON's NaN/Infinity): a diverged loss is worth recording.
    if isinstance(value, (bool, int, float, str)) or value is None:
        return value
    try:  # numpy and torch scalars
        return float(value)
    except (TypeError, ValueError):
        return str(value)


class _LazyRun:
    """``sweepd.client.run``: the current run, read from the environment on first use (so
    that importing sweepd in a process that is not a run costs nothing)."""

    _run: Run | None = None

    def _get(self) -> Run:
        if self._run is None:
            self._run = Run()
        return self._run

    def _reset(self) -> None:
        """Forget the cached run (the notebook agent runs several in one process)."""
        self._run = None

    def __getattr__(self, name: str) -> Any:
        return getattr(self._get(), name)


run = _LazyRun()
