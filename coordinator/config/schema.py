"""The top level of a sweep configuration: keys, method, metric, command, run_cap, notices.

:func:`parse_config` is the one entry point: text or mapping in, a validated :class:`SweepConfig`
out, or :class:`ConfigError` listing every problem found (not only the first).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, get_args

from ..errors import ConfigError, Problem
from ..limits import MAX_RETRIES_LIMIT
from . import distributions as dist
from .command import DEFAULT_COMMAND, PROGRAM_MACRO, parse_command, uses_value_macro
from .early_terminate import EarlyTerminate, parse_early_terminate
from .loader import TextError, load_text
from .model import Impute, MetricSpec, Parameter, SweepConfig
from .parameters import Collector, parse_parameters, suggest

# W&B's methods. `custom` (W&B's external scheduler) has no meaning in sweepd and is refused.
WANDB_METHODS = ("grid", "random", "bayes")
# Every method sweepd searches by: W&B's, then sweepd's own. Config owns the names (it sits
# below search and does not import it); search registers a function for each, and
# tests/unit/test_early_terminate_settings.py holds the two to the same set.
METHODS = (*WANDB_METHODS, "sobol")
GOALS = ("minimize", "maximize")
IMPUTES: tuple[str, ...] = get_args(Impute)
METRIC_KEYS = ("name", "goal", "target", "impute", "impute_while_running")
# Keys sweepd reads.
USED_KEYS = (
    "program",
    "method",
    "metric",
    "parameters",
    "early_terminate",
    "command",
    "run_cap",
    "name",
    "description",
)
# Keys of sweepd's own (W&B refuses them, so a config using them is sweepd-only).
SWEEPD_KEYS = ("max_retries", "seed")
# W&B keys kept with the sweep (in ``raw``) that change nothing in sweepd.
# (`settings` is what `wandb sweep --settings` writes.)
KEPT_KEYS = ("project", "entity", "controller", "apiVersion", "kind", "settings")
# `launch` is the block `wandb launch-sweep` reads (queue, resource, ...) before upload.
LAUNCH_KEYS = ("job", "image_uri", "scheduler", "launch")
# W&B keys for what sweepd does not do: kept with the sweep, and a notice says so.
UNSUPPORTED_KEYS = ("metrics",)
TOP_LEVEL_KEYS = USED_KEYS + SWEEPD_KEYS + KEPT_KEYS + LAUNCH_KEYS + UNSUPPORTED_KEYS
# A grid walks every point; one axis larger than this is almost surely a mistake (int_uniform
# 0..1e9) and would not fit in memory as the list W&B builds.
MAX_GRID_AXIS = 1_000_000


def parse_config(source: str | Mapping[str, Any], *, filename: str | None = None) -> SweepConfig:
    """Parses and validates a W&B sweep configuration (YAML/JSON text or a mapping).

    Raises :class:`ConfigError` with every problem found. Non-fatal remarks (inferred
    distributions, e-notation read as numbers, ignored keys) are in ``SweepConfig.notices``.
    """
    out = Collector()
    if isinstance(source, str):
        try:
            loaded = load_text(source, filename)
        except TextError as exc:
            raise ConfigError(exc.problems) from None
        raw: Any = loaded.data
        out.notices.extend(loaded.notices)
    else:
        raw = source
    if not isinstance(raw, Mapping):
        raise ConfigError(
            [Problem("", f"a sweep configuration is a mapping of keys, got {_kind(raw)}")]
        )
    config = _parse_mapping(raw, out)
    if out.problems or config is None:
        raise ConfigError(out.problems)
    return config


def _parse_mapping(raw: Mapping[str, Any], out: Collector) -> SweepConfig | None:
    for key in raw:
        if key not in TOP_LEVEL_KEYS:
            out.error(
                str(key),
                f"unknown top-level key {key!r}",
                suggest(key, TOP_LEVEL_KEYS) or f"valid keys: {', '.join(TOP_LEVEL_KEYS)}",
            )
    method = _method(raw, out)
    launch_only = _launch(raw, out)
    params: list[Parameter] = []
    if "parameters" in raw:
        params = parse_parameters(raw["parameters"], "parameters", out)
    elif not launch_only:
        out.error("parameters", "no parameters", "add `parameters:` with the search space")
    metric = _metric(raw.get("metric"), out) if "metric" in raw else None
    if method == "bayes" and "metric" not in raw:
        out.error(
            "metric",
            "method bayes needs a metric to optimise",
            "add `metric: {name: ..., goal: minimize}`",
        )
    rule = _early_terminate(raw, metric, out)
    program = _string(raw, "program", out)
    command = _command(raw, program, out)
    run_cap = _run_cap(raw.get("run_cap"), out)
    max_retries = _max_retries(raw.get("max_retries"), out)
    seed = _seed(raw.get("seed"), out)
    name = _string(raw, "name", out)
    description = _string(raw, "description", out)
    for key in KEPT_KEYS:
        if key in raw:
            out.notice(f"{key}: kept with the sweep for reference; it has no effect in sweepd")
    if "metrics" in raw:
        out.notice("metrics: W&B's multi-objective list is kept with the sweep but not"
                   " optimised; sweepd optimises one `metric` (name the one that matters"
                   " there)")
    if method == "grid" and params:
        _check_grid(params, out)
    if out.problems or method is None:
        return None
    return SweepConfig(
        method=method,
        parameters=tuple(params),
        metric=metric,
        early_terminate=rule,
        program=program,
        command=command,
        run_cap=run_cap,
        max_retries=max_retries,
        seed=seed,
        name=name,
        description=description,
        raw=raw,
        notices=tuple(out.notices),
    )


def _method(raw: Mapping[str, Any], out: Collector) -> str | None:
    if "method" not in raw:
        out.error("method", "no method", "add `method: random` (or grid, bayes)")
        return None
    method = raw["method"]
    methods = METHODS
    if method == "custom":
        out.error(
            "method",
            "method custom (W&B's external scheduler) has no meaning in sweepd",
            f"use one of {', '.join(methods)}",
        )
        return None
    if method not in methods:
        out.error(
            "method",
            f"unknown method {method!r}",
            suggest(method, methods) or f"one of {', '.join(methods)}",
        )
        return None
    return str(method)


def _launch(raw: Mapping[str, Any], out: Collector) -> bool:
    """Handles W&B Launch keys; True when the file is Launch-only (no search space here)."""
    present = [k for k in LAUNCH_KEYS if k in raw]
    if not present:
        return False
    if "parameters" not in raw:
        out.error(
            "parameters",
            "this is a W&B Launch sweep (" + ", ".join(present) + ") whose search space lives "
            "in the scheduler job, outside this file; sweepd cannot search it",
            "write the search space under `parameters:` and the script under `program:`",
        )
        return True
    out.notice(
        f"{', '.join(present)}: W&B Launch keys, kept with the sweep but ignored; sweepd runs "
        "`program` through `command` on its workers (or agent(function=...))"
    )
    return False


def _metric(raw: Any, out: Collector) -> MetricSpec | None:
    if not isinstance(raw, Mapping):
        out.error("metric", f"must be a mapping, got {_kind(raw)}", "write {name: ..., goal: ...}")
        return None
    ok = True
    for key in raw:
        if key not in METRIC_KEYS:
            out.error(
                f"metric.{key}",
                f"unknown metric key {key!r}",
                suggest(key, METRIC_KEYS) or f"valid keys: {', '.join(METRIC_KEYS)}",
            )
            ok = False
    name = raw.get("name")
    if not isinstance(name, str) or not name:
        out.error("metric.name", "metric needs a name (the key your program logs)")
        ok = False
    goal = raw.get("goal", "minimize")
    if goal not in GOALS:
        out.error(
            "metric.goal", f"unknown goal {goal!r}", suggest(goal, GOALS) or "minimize or maximize"
        )
        ok = False
    target = raw.get("target")
    if target is not None:
        if isinstance(target, bool) or not isinstance(target, (int, float)):
            out.error("metric.target", f"target must be a number, got {_kind(target)}")
            ok = False
        elif not math.isfinite(target):
            out.error("metric.target", "target must be finite")
            ok = False
    impute = raw.get("impute", "worst")
    if impute not in IMPUTES:
        out.error(
            "metric.impute",
            f"unknown impute {impute!r}",
            suggest(impute, IMPUTES) or f"one of {', '.join(IMPUTES)}",
        )
        ok = False
    running = raw.get("impute_while_running")
    # W&B's default is the string "false"; YAML `false` means the same.
    if running in (False, "false"):
        running = None
    if running is not None and running not in IMPUTES:
        out.error(
            "metric.impute_while_running",
            f"unknown value {running!r}",
            suggest(running, IMPUTES) or f"one of {', '.join(IMPUTES)} or false",
        )
        ok = False
    if not ok:
        return None
    return MetricSpec(
        name=str(name),
        goal=goal,
        target=None if target is None else float(target),
        impute=impute,
        impute_while_running=running,
    )


def _early_terminate(
    raw: Mapping[str, Any], metric: MetricSpec | None, out: Collector
) -> EarlyTerminate | None:
    if raw.get("early_terminate") is None:
        return None
    settings, problems = parse_early_terminate(raw["early_terminate"], "early_terminate")
    out.problems.extend(problems)
    if "metric" not in raw:
        out.error(
            "early_terminate",
            "early termination compares runs by the metric, but there is none",
            "add `metric: {name: ..., goal: ...}`",
        )
    return settings


def _command(raw: Mapping[str, Any], program: str | None, out: Collector) -> tuple[str, ...]:
    if "command" in raw:
        command = parse_command(raw["command"], out)
        if PROGRAM_MACRO in command and program is None:
            out.error(
                "program",
                "command uses ${program} but there is no program",
                "add `program: train.py`",
            )
    else:
        command = DEFAULT_COMMAND
        if program is None:
            out.notice(
                "program: none, and no command: only a notebook-style agent(function=...) or"
                " an ask/tell client (SuggestRun, ReportMetrics, FinishRun) can run this"
                " sweep; `worker join` daemons are never sent its runs"
            )
            return command
    if not uses_value_macro(command):
        out.notice(
            "command passes no ${args*} macro: parameter values reach the program only "
            "through run.config"
        )
    return command


def _run_cap(raw: Any, out: Collector) -> int | None:
    if raw is None:
        return None
    if isinstance(raw, bool) or not isinstance(raw, int) or raw <= 0:
        out.error("run_cap", f"run_cap must be a whole number > 0, got {raw!r}")
        return None
    return raw


# numpy seeds are non-negative; 2**63 - 1 keeps the value an SQLite/JSON-safe integer.
MAX_SEED = 2**63 - 1


def _seed(raw: Any, out: Collector) -> int | None:
    if raw is None:
        return None
    if isinstance(raw, bool) or not isinstance(raw, int) or not 0 <= raw <= MAX_SEED:
        out.error(
            "seed",
            f"must be a whole number from 0 to 2**63 - 1, got {raw!r}",
            "give any fixed number to make the search reproducible, e.g. `seed: 42`",
        )
        return None
    return raw


def _max_retries(raw: Any, out: Collector) -> int | None:
    if raw is None:
        return None
    if isinstance(raw, bool) or not isinstance(raw, int) or not 0 <= raw <= MAX_RETRIES_LIMIT:
        out.error(
            "max_retries",
            f"must be a whole number from 0 to {MAX_RETRIES_LIMIT}, got {raw!r}",
            "give how many times a LOST run's point is tried again, e.g. `max_retries: 2`",
        )
        return None
    return raw


def _string(raw: Mapping[str, Any], key: str, out: Collector) -> str | None:
    value = raw.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        out.error(key, f"{key} must be a string, got {_kind(value)}")
        return None
    return value


def _check_grid(params: list[Parameter], out: Collector) -> None:
    size = 1
    bad: list[Parameter] = []
    for p in params:
        try:
            n = dist.grid_axis_size(p)
        except dist.GridError as exc:
            out.error(f"parameters.{p.name}", str(exc))
            bad.append(p)
            continue
        if n > MAX_GRID_AXIS:
            out.error(
                f"parameters.{p.name}",
                f"grid axis of {n} values (more than {MAX_GRID_AXIS})",
                "narrow the range or use method: random",
            )
        size *= n
    if bad:
        out.error(
            "method",
            f"grid search needs every parameter enumerable; {len(bad)} are not (the others "
            f"form a grid of {size} points)",
            "give them `values: [...]`, or use method: random or bayes",
        )
    else:
        out.notice(f"method: grid of {size} points")


def _kind(value: Any) -> str:
    return "null" if value is None else type(value).__name__
