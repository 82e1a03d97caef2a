"""Interim parser for the spine's subset of the W&B schema (values, value, min/max,
log_uniform_values; grid and random). Replaced by the full schema module."""

from __future__ import annotations

import difflib
import json
import math
from collections.abc import Mapping
from typing import Any

import yaml

from ..errors import ConfigError, Problem
from .model import MetricSpec, Parameter, ParamPath, Point, SweepConfig

TOP_LEVEL = ("program", "method", "metric", "parameters", "early_terminate", "command",
             "run_cap", "name", "description", "project", "entity", "controller", "job",
             "image_uri", "scheduler", "apiVersion", "kind")
METHODS = ("grid", "random", "bayes")
ARG_MACROS = ("${args}",)
WORKER_MACROS = ("${env}", "${interpreter}", "${args_json_file}")


def _nearest(word: str, options: tuple[str, ...]) -> str:
    close = difflib.get_close_matches(word, options, n=1)
    return f"did you mean {close[0]!r}?" if close else "valid: " + ", ".join(options)


def _number(x: Any) -> Any:
    if isinstance(x, str):
        try:
            return float(x)
        except ValueError:
            return x
    return x


def _parse_param(path: ParamPath, spec: Any, problems: list[Problem]) -> list[Parameter]:
    where = "parameters." + ".".join(path)
    if not isinstance(spec, Mapping):
        problems.append(Problem(where, f"is a bare {type(spec).__name__}, not a mapping",
                                "write {values: [...]}, {value: x} or {min: a, max: b}"))
        return []
    if "parameters" in spec:
        out: list[Parameter] = []
        for name, child in spec["parameters"].items():
            out += _parse_param((*path, str(name)), child, problems)
        return out
    dist = spec.get("distribution")
    if "values" in spec:
        values = spec["values"]
        if not isinstance(values, list) or not values:
            problems.append(Problem(where + ".values", "must be a non-empty list",
                                    "write values: [a, b, ...]"))
            return []
        return [Parameter(path, "categorical", values=tuple(values))]
    if "value" in spec:
        return [Parameter(path, "constant", value=spec["value"])]
    if "min" in spec and "max" in spec:
        lo, hi = _number(spec["min"]), _number(spec["max"])
        if lo >= hi:
            problems.append(Problem(where + ".max", f"max {hi} is not greater than min {lo}",
                                    "make max greater than min"))
            return []
        if dist == "log_uniform_values":
            return [Parameter(path, "log_uniform_values", min=lo, max=hi)]
        if isinstance(lo, int) and isinstance(hi, int) and dist in (None, "int_uniform"):
            return [Parameter(path, "int_uniform", min=lo, max=hi)]
        return [Parameter(path, "uniform", min=float(lo), max=float(hi))]
    problems.append(Problem(where, "has no values, value or min/max", "give one of them"))
    return []


def parse_config(source: str | Mapping[str, Any], *, filename: str | None = None) -> SweepConfig:
    raw = yaml.safe_load(source) if isinstance(source, str) else dict(source)
    problems: list[Problem] = []
    if not isinstance(raw, Mapping):
        raise ConfigError([Problem("", "the configuration is not a mapping")])
    for key in raw:
        if key not in TOP_LEVEL:
            problems.append(Problem(str(key), "unknown key", _nearest(str(key), TOP_LEVEL)))
    method = raw.get("method")
    if method not in METHODS:
        problems.append(Problem("method", f"{method!r} is not a method", _nearest(str(method), METHODS)))
    params_raw = raw.get("parameters")
    params: list[Parameter] = []
    if not isinstance(params_raw, Mapping) or not params_raw:
        problems.append(Problem("parameters", "missing", "add parameters: {name: {values: [...]}}"))
    else:
        for name, spec in params_raw.items():
            params += _parse_param((str(name),), spec, problems)
    metric = None
    if isinstance(raw.get("metric"), Mapping):
        m = raw["metric"]
        goal = m.get("goal", "minimize")
        if goal not in ("minimize", "maximize"):
            problems.append(Problem("metric.goal", f"{goal!r}", _nearest(str(goal), ("minimize", "maximize"))))
        metric = MetricSpec(name=str(m.get("name", "")), goal=goal if goal == "maximize" else "minimize",
                            target=m.get("target"))
    if method == "grid":
        for p in params:
            if p.distribution == "uniform":
                problems.append(Problem("parameters." + p.name, "grid cannot enumerate a continuous parameter", "use values"))
    rule = None
    if raw.get("early_terminate") is not None:
        from ..stopping import parse_rule

        rule, rule_problems = parse_rule(raw["early_terminate"])
        problems += rule_problems
    if problems:
        raise ConfigError(problems)
    params.sort(key=lambda p: ".".join(p.path))
    command = tuple(str(c) for c in raw.get("command", ())) or SweepConfig.command
    return SweepConfig(method=str(method), parameters=tuple(params), metric=metric,
                       early_terminate=rule, program=raw.get("program"), command=command, run_cap=raw.get("run_cap"),
                       name=raw.get("name"), raw=raw)


def nest(point: Point) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for path, value in point.items():
        node = out
        for part in path[:-1]:
            node = node.setdefault(part, {})
        node[path[-1]] = value
    return out


def render_command(config: SweepConfig, point: Point) -> list[str]:
    args = nest(point)
    argv: list[str] = []
    for token in config.command:
        if token == "${program}":
            argv.append(config.program or "")
        elif token == "${args}":
            argv += [f"--{k}={v}" for k, v in sorted(args.items())]
        elif token == "${args_json}":
            argv.append(json.dumps(args))
        else:
            argv.append(token)
    return argv


def sample(p: Parameter, rng: Any) -> Any:
    if p.distribution == "constant":
        return p.value
    if p.distribution == "categorical":
        assert p.values is not None
        return p.values[int(rng.integers(len(p.values)))]
    if p.distribution == "int_uniform":
        return int(rng.integers(int(p.min), int(p.max) + 1))  # type: ignore[arg-type]
    if p.distribution == "log_uniform_values":
        return float(math.exp(rng.uniform(math.log(p.min), math.log(p.max))))  # type: ignore[arg-type]
    return float(rng.uniform(p.min, p.max))
