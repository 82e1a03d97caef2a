"""One parameter spec (``lr: {distribution: ..., min: ..., max: ...}``) to typed Parameters.

Follows W&B's schema: the distribution is inferred when missing (``values`` -> categorical,
``values`` + ``probabilities`` -> categorical_w_probabilities, ``value`` -> constant, integer
``min``/``max`` -> int_uniform, a float bound -> uniform, ``parameters`` -> nested), defaults are
filled in (``q: 1.0``, ``mu: 0``, ``sigma: 1``, ``a = b = 1``), and each distribution allows
exactly its own keys. Unlike W&B, every violation is an error, and all of them are reported.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, get_args

from ..errors import Problem
from .model import Distribution, Parameter, ParamPath

DISTRIBUTIONS: tuple[str, ...] = get_args(Distribution)

# W&B's parameter-name pattern; dots are allowed because Hydra users write `model.lr`.
NAME_PATTERN = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$")
# W&B's flattening delimiter: sorting flattened names joined with it reproduces W&B's order.
NESTING_DELIMITER = ".wbnest[599c28ca25da]."
# How far probabilities may sum from 1: YAML decimals such as 0.1 + 0.2 + 0.7 are not exact.
PROBABILITY_SUM_TOL = 1e-6
# difflib ratio above which a misspelling gets a "did you mean" (0.6 is difflib's default).
SUGGEST_CUTOFF = 0.6

_BOUNDS = ("min", "max")
_NORMAL = ("mu", "sigma")
_BETA = ("a", "b")
ALLOWED_KEYS: dict[str, tuple[str, ...]] = {
    "constant": ("value",),
    "categorical": ("values",),
    "categorical_w_probabilities": ("values", "probabilities"),
    "int_uniform": _BOUNDS,
    "uniform": _BOUNDS,
    "q_uniform": (*_BOUNDS, "q"),
    "log_uniform": _BOUNDS,
    "log_uniform_values": _BOUNDS,
    "q_log_uniform": (*_BOUNDS, "q"),
    "q_log_uniform_values": (*_BOUNDS, "q"),
    "inv_log_uniform": _BOUNDS,
    "inv_log_uniform_values": _BOUNDS,
    "normal": _NORMAL,
    "q_normal": (*_NORMAL, "q"),
    "log_normal": _NORMAL,
    "q_log_normal": (*_NORMAL, "q"),
    "beta": _BETA,
    "q_beta": (*_BETA, "q"),
}
DEFAULTS: dict[str, float] = {"q": 1.0, "mu": 0.0, "sigma": 1.0, "a": 1.0, "b": 1.0}
NESTED_KEY = "parameters"
ALL_KEYS = frozenset(
    {"distribution", NESTED_KEY} | {k for keys in ALLOWED_KEYS.values() for k in keys}
)
DEPRECATED = {
    "log_uniform": "log_uniform_values",
    "q_log_uniform": "q_log_uniform_values",
    "inv_log_uniform": "inv_log_uniform_values",
}
# Distributions whose min must be > 0 because the value's logarithm is taken.
POSITIVE_MIN = frozenset({"log_uniform_values", "q_log_uniform_values", "inv_log_uniform_values"})


@dataclass
class Collector:
    """Problems and notices gathered while parsing; one instance per configuration."""

    problems: list[Problem] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)

    def error(self, path: str, message: str, fix: str = "") -> None:
        self.problems.append(Problem(path, message, fix))

    def notice(self, text: str) -> None:
        self.notices.append(text)


def suggest(word: str, choices: Any) -> str:
    """``did you mean 'x'?`` text for the nearest valid spelling, or ``""``."""
    match = difflib.get_close_matches(str(word), list(choices), n=1, cutoff=SUGGEST_CUTOFF)
    return f"did you mean {match[0]!r}?" if match else ""


def sort_key(path: ParamPath) -> str:
    return NESTING_DELIMITER.join(path)


def parse_parameters(raw: Any, where: str, out: Collector) -> list[Parameter]:
    """Every parameter under a ``parameters:`` mapping, flattened and in W&B order."""
    if not isinstance(raw, Mapping):
        out.error(where, f"must be a mapping of parameter names to specs, got {_kind(raw)}")
        return []
    if not raw:
        out.error(where, "has no parameters", "add at least one parameter")
        return []
    params: list[Parameter] = []
    _parse_mapping(raw, (), where, out, params)
    params.sort(key=lambda p: sort_key(p.path))
    return params


def _parse_mapping(
    raw: Mapping[Any, Any], prefix: ParamPath, where: str, out: Collector, acc: list[Parameter]
) -> None:
    for name, spec in raw.items():
        path = f"{where}.{name}"
        if not isinstance(name, str) or not NAME_PATTERN.match(name):
            out.error(
                path,
                f"invalid parameter name {name!r}",
                "names start with a letter or '_' and contain only letters, digits, '_', '.', '-'",
            )
            continue
        _parse_one(name, spec, (*prefix, name), path, out, acc)


def _parse_one(
    name: str, spec: Any, full: ParamPath, path: str, out: Collector, acc: list[Parameter]
) -> None:
    if spec is None:
        out.error(
            path,
            f"parameter {name!r} is a bare null, not a spec mapping",
            "indent its spec under it (a misindented `value:` below it becomes a parameter)",
        )
        return
    if not isinstance(spec, Mapping):
        out.error(
            path,
            f"parameter {name!r} is a bare {_kind(spec)}, not a spec mapping",
            f"write `{name}: {{value: {_yaml(spec)}}}` for a fixed value or "
            f"`{name}: {{values: [...]}}` for choices",
        )
        return
    for key in spec:
        if key not in ALL_KEYS:
            hint = suggest(key, ALL_KEYS)
            out.error(
                f"{path}.{key}",
                f"unknown key {key!r} in parameter {name!r}",
                hint or "a nested parameter goes under `parameters:`",
            )
    distribution = _resolve_distribution(name, spec, path, out)
    if distribution is None:
        return
    if distribution == NESTED_KEY:
        for key in spec:
            if key in ALL_KEYS and key != NESTED_KEY:
                out.error(f"{path}.{key}", f"nested parameter {name!r} may not have key {key!r}")
        children = spec[NESTED_KEY]
        if not isinstance(children, Mapping) or not children:
            out.error(f"{path}.{NESTED_KEY}", "must be a non-empty mapping of parameters")
            return
        _parse_mapping(children, full, f"{path}.{NESTED_KEY}", out, acc)
        return
    allowed = ALLOWED_KEYS[distribution]
    for key in spec:
        if key in ALL_KEYS and key not in allowed and key != "distribution":
            out.error(
                f"{path}.{key}",
                f"parameter {name!r} ({distribution}) may not have key {key!r}",
                f"{distribution} takes {', '.join(allowed)}",
            )
    param = _build(name, distribution, spec, full, path, out)
    if param is not None:
        acc.append(param)


def _resolve_distribution(
    name: str, spec: Mapping[Any, Any], path: str, out: Collector
) -> str | None:
    if "distribution" in spec:
        given = spec["distribution"]
        if given not in DISTRIBUTIONS:
            out.error(
                f"{path}.distribution",
                f"unknown distribution {given!r}",
                suggest(given, DISTRIBUTIONS) or f"one of {', '.join(DISTRIBUTIONS)}",
            )
            return None
        if given in DEPRECATED:
            out.notice(
                f"{path}: {given} is deprecated in W&B: min/max are base-e exponents "
                f"(values from e^min to e^max); {DEPRECATED[given]} takes the values themselves"
            )
        return str(given)
    if NESTED_KEY in spec:
        return NESTED_KEY
    if "values" in spec:
        return "categorical_w_probabilities" if "probabilities" in spec else "categorical"
    if "value" in spec:
        return "constant"
    if "min" in spec and "max" in spec:
        lo, hi = _number(spec["min"]), _number(spec["max"])
        if lo is None or hi is None:
            return "uniform"  # _build reports the non-numeric bound
        if isinstance(lo, int) and isinstance(hi, int):
            out.notice(
                f"{path}: no distribution given; integer bounds {lo} and {hi} make it "
                f"int_uniform (whole numbers {lo}..{hi}); for a continuous range add "
                f"`distribution: uniform` (or write {lo}.0 in YAML: JSON writers such as "
                "JavaScript's JSON.stringify drop the .0)"
            )
            return "int_uniform"
        out.notice(
            f"{path}: no distribution given; bounds {spec['min']!r} and {spec['max']!r} make it "
            "uniform (a float bound makes the range continuous)"
        )
        return "uniform"
    if "min" in spec or "max" in spec:
        missing = "max" if "min" in spec else "min"
        out.error(path, f"parameter {name!r} has no {missing}", f"add `{missing}:`")
        return None
    present = [k for k in spec if k in ALL_KEYS]
    fix = "add `distribution:`" if present else "give `value`, `values`, or `min` and `max`"
    out.error(path, f"parameter {name!r} has no distribution and none can be inferred", fix)
    return None


def _build(
    name: str,
    distribution: str,
    spec: Mapping[Any, Any],
    full: ParamPath,
    path: str,
    out: Collector,
) -> Parameter | None:
    ok = True
    fields: dict[str, Any] = {}

    def number(key: str, *, required: bool) -> float | int | None:
        nonlocal ok
        if key not in spec:
            if required:
                out.error(path, f"parameter {name!r} ({distribution}) needs {key!r}")
                ok = False
            return DEFAULTS.get(key)
        raw = spec[key]
        value = _number(raw)
        if value is None:
            out.error(
                f"{path}.{key}",
                f"{key} is {_kind(raw)} {raw!r}, not a number",
                "write a plain number",
            )
            ok = False
            return None
        if isinstance(raw, str):
            out.notice(f"{path}.{key}: the string {raw!r} is read as the number {value!r}")
        return value

    if distribution == "constant":
        fields["value"] = spec.get("value")
    elif distribution in ("categorical", "categorical_w_probabilities"):
        values = spec.get("values")
        if not isinstance(values, list):
            out.error(
                f"{path}.values",
                f"values is not a list (got {_kind(values)})",
                f"write `values: [{_yaml(values)}]`, or `value: {_yaml(values)}` for a constant",
            )
            return None
        if not values:
            out.error(f"{path}.values", "values is empty", "give at least one value")
            return None
        fields["values"] = tuple(values)
        if distribution == "categorical_w_probabilities":
            probs = _probabilities(spec.get("probabilities"), len(values), f"{path}", out)
            if probs is None:
                return None
            fields["probabilities"] = probs
    else:
        for key in ALLOWED_KEYS[distribution]:
            fields[key] = number(key, required=key in _BOUNDS)
        if not ok:
            return None
        if not _check_numbers(name, distribution, fields, path, out):
            return None
    return Parameter(path=full, distribution=distribution, **fields)  # type: ignore[arg-type]


def _check_numbers(
    name: str, distribution: str, f: dict[str, Any], path: str, out: Collector
) -> bool:
    ok = True
    lo, hi = f.get("min"), f.get("max")
    if distribution == "int_uniform":
        for key, v in (("min", lo), ("max", hi)):
            if not isinstance(v, int):
                out.error(
                    f"{path}.{key}",
                    f"int_uniform with non-integer bound {v!r}",
                    "write whole numbers without a dot, or use distribution: uniform",
                )
                ok = False
    if lo is not None and hi is not None and not lo < hi:
        out.error(
            f"{path}.max", f"max ({hi}) must be greater than min ({lo})", "swap or widen them"
        )
        ok = False
    if distribution in POSITIVE_MIN and lo is not None and lo <= 0:
        out.error(
            f"{path}.min",
            f"{distribution} needs min > 0 (its logarithm is taken), got {lo}",
            "use a small positive min such as 1e-6",
        )
        ok = False
    q = f.get("q")
    if q is not None and not q > 0:
        out.error(f"{path}.q", f"q must be > 0, got {q}")
        ok = False
    sigma = f.get("sigma")
    if sigma is not None and sigma < 0:
        out.error(f"{path}.sigma", f"sigma must be >= 0, got {sigma}")
        ok = False
    for key in ("a", "b"):
        v = f.get(key)
        if v is not None and not v > 0:
            out.error(f"{path}.{key}", f"beta's {key} must be > 0, got {v}")
            ok = False
    for key in ("min", "max", "mu", "sigma", "q", "a", "b"):
        v = f.get(key)
        if isinstance(v, float) and not math.isfinite(v):
            out.error(f"{path}.{key}", f"{key} must be finite, got {v}")
            ok = False
    if distribution in DEPRECATED and ok and hi is not None and hi > MAX_EXPONENT:
        out.error(
            f"{path}.max",
            f"{distribution} takes base-e exponents: max {hi} means e^{hi}, which overflows",
            f"use {DEPRECATED[distribution]} with the values themselves",
        )
        ok = False
    return ok


# exp() overflows a float just above 709.
MAX_EXPONENT = 709


def _probabilities(raw: Any, n: int, path: str, out: Collector) -> tuple[float, ...] | None:
    where = f"{path}.probabilities"
    if not isinstance(raw, list):
        out.error(where, f"probabilities is not a list (got {_kind(raw)})")
        return None
    numbers = [_number(p) for p in raw]
    if any(p is None or p < 0 for p in numbers):
        out.error(where, "probabilities must be numbers >= 0")
        return None
    if len(numbers) != n:
        out.error(
            where, f"{len(numbers)} probabilities for {n} values", "give one probability per value"
        )
        return None
    total = math.fsum(p for p in numbers if p is not None)
    if abs(total - 1.0) > PROBABILITY_SUM_TOL:
        out.error(where, f"probabilities sum to {total}, not 1", "rescale them to sum to 1")
        return None
    return tuple(float(p) for p in numbers if p is not None)


def _number(raw: Any) -> float | int | None:
    """A number as YAML gave it; numeric strings (``"1e-4"``) are read as numbers too."""
    if isinstance(raw, bool):
        return None
    if isinstance(raw, (int, float)):
        return raw
    if isinstance(raw, str):
        try:
            value = float(raw.replace("_", ""))
        except ValueError:
            return None
        return value if math.isfinite(value) else None
    return None


def _kind(value: Any) -> str:
    return "null" if value is None else type(value).__name__


def _yaml(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)
