"""The ``early_terminate`` section: validated into one frozen settings object per rule type.

Config owns what the user may write and what it means once checked; ``coordinator/stopping``
builds its rule from these settings (``stopping.rule_for``) and never reads the raw mapping.
Config does not import stopping: it sits below it on the map.

Types: ``hyperband`` (W&B's rule, exactly), ``asha`` and ``median`` (sweepd additions).
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, TypeAlias

from ..errors import Problem

# W&B's default reduction factor for hyperband; ASHA uses the same.
DEFAULT_ETA = 3.0
# ASHA's first rung: judge from a run's first logged value unless asked otherwise.
DEFAULT_ASHA_MIN_ITER = 1
# Optuna's defaults for its median pruner: five runs make a median worth trusting, and no
# warm-up unless asked.
DEFAULT_N_STARTUP_RUNS = 5
DEFAULT_N_WARMUP_ITERS = 0


@dataclass(frozen=True)
class HyperbandSettings:
    """W&B's hyperband: bands from ``min_iter``, or from ``max_iter`` with ``s`` (this form
    wins when both are given, as in W&B); ``strict`` judges a run's value at its band, non-strict
    its best value so far."""

    rule_type: ClassVar[str] = "hyperband"

    min_iter: int | None = None
    max_iter: int | None = None
    s: int | None = None
    eta: float = DEFAULT_ETA
    strict: bool = True


@dataclass(frozen=True)
class AshaSettings:
    """Asynchronous successive halving: rungs at ``min_iter * eta**k`` up to ``max_iter``."""

    rule_type: ClassVar[str] = "asha"

    min_iter: int = DEFAULT_ASHA_MIN_ITER
    max_iter: int | None = None
    eta: float = DEFAULT_ETA


@dataclass(frozen=True)
class MedianSettings:
    """The median rule: judged once ``n_startup_runs`` other runs reached the same iteration,
    after ``n_warmup_iters`` iterations of its own."""

    rule_type: ClassVar[str] = "median"

    n_startup_runs: int = DEFAULT_N_STARTUP_RUNS
    n_warmup_iters: int = DEFAULT_N_WARMUP_ITERS


EarlyTerminate: TypeAlias = HyperbandSettings | AshaSettings | MedianSettings

SETTINGS_TYPES: dict[str, type[EarlyTerminate]] = {
    cls.rule_type: cls for cls in (HyperbandSettings, AshaSettings, MedianSettings)
}
# The keys each type accepts besides ``type``, in the order a fix lists them.
KEYS: dict[str, tuple[str, ...]] = {
    "hyperband": ("min_iter", "max_iter", "s", "eta", "strict"),
    "asha": ("min_iter", "max_iter", "eta"),
    "median": ("n_startup_runs", "n_warmup_iters"),
}
_EXAMPLES = {
    "hyperband": "{type: hyperband, min_iter: 3}",
    "asha": "{type: asha, min_iter: 1, max_iter: 81, eta: 3}",
    "median": "{type: median, n_startup_runs: 5, n_warmup_iters: 0}",
}
# difflib similarity below which a suggestion is more noise than help.
_SUGGEST_CUTOFF = 0.6


def parse_early_terminate(
    raw: Any, path: str = "early_terminate"
) -> tuple[EarlyTerminate | None, list[Problem]]:
    """Validates an ``early_terminate`` mapping into its settings.

    Returns ``(settings, [])`` when valid, ``(None, [])`` when ``raw`` is ``None`` (no early
    termination), else ``(None, problems)`` with every problem found, each located at its key
    (``early_terminate.eta``) and with a fix.
    """
    if raw is None:
        return None, []
    if not isinstance(raw, Mapping):
        return None, [Problem(path, f"must be a mapping, got {_kind(raw)}",
                              f"write e.g. {_EXAMPLES['hyperband']}")]
    problems: list[Problem] = []
    rule_type = _check_type(raw, path, problems)
    for key in raw:
        if key == "type":
            continue
        if rule_type is None:  # still report keys that no type knows
            if not any(key in keys for keys in KEYS.values()):
                problems.append(_unknown_key(str(key), None, path))
        elif key not in KEYS[rule_type]:
            problems.append(_unknown_key(str(key), rule_type, path))
    if rule_type is None:
        return None, problems

    fields: dict[str, Any] = {}
    check = _FieldChecker(raw, path, problems, fields)
    if rule_type == "hyperband":
        check.integer("min_iter", minimum=1)
        check.integer("max_iter", minimum=1)
        check.integer("s", minimum=1)
        check.eta()
        check.boolean("strict")
        _check_hyperband_form(raw, path, problems)
    elif rule_type == "asha":
        check.integer("min_iter", minimum=1)
        check.integer("max_iter", minimum=1)
        check.eta()
        if (isinstance(fields.get("max_iter"), int)
                and fields["max_iter"] < fields.get("min_iter", DEFAULT_ASHA_MIN_ITER)):
            problems.append(Problem(f"{path}.max_iter",
                                    f"{fields['max_iter']} is below min_iter",
                                    "max_iter is the last rung: make it at least min_iter"))
    else:
        check.integer("n_startup_runs", minimum=1)
        check.integer("n_warmup_iters", minimum=0)
    if problems:
        return None, problems

    settings = SETTINGS_TYPES[rule_type](**fields)
    # The first band of the max_iter form is max_iter / eta truncated; below 1 there is none
    # (s >= 1 here). A test holds stopping's hyperband_bands to the same answer.
    if (isinstance(settings, HyperbandSettings) and settings.max_iter is not None
            and settings.max_iter / settings.eta < 1):
        return None, [Problem(f"{path}.max_iter",
                              f"max_iter {settings.max_iter} is less than eta, so there "
                              "is no band to judge runs at",
                              "raise max_iter to at least eta, or lower eta")]
    return settings, []


def _check_type(raw: Mapping[Any, Any], path: str, problems: list[Problem]) -> str | None:
    types = ", ".join(KEYS)
    if "type" not in raw:
        problems.append(Problem(f"{path}.type", "is missing",
                                f"add type: one of {types}, e.g. {_EXAMPLES['hyperband']}"))
        return None
    value = raw["type"]
    if isinstance(value, str) and value in KEYS:
        return value
    near = difflib.get_close_matches(str(value).lower(), list(KEYS), n=1,
                                     cutoff=_SUGGEST_CUTOFF)
    fix = f"did you mean type: {near[0]}?" if near else f"use one of {types}"
    problems.append(Problem(f"{path}.type", f"unknown type {value!r}", fix))
    return None


def _unknown_key(key: str, rule_type: str | None, path: str) -> Problem:
    """A key the type does not take; ``rule_type`` None when the type itself is invalid."""
    if rule_type is None:
        allowed = tuple(dict.fromkeys(k for keys in KEYS.values() for k in keys))
        near = difflib.get_close_matches(key, allowed, n=1, cutoff=_SUGGEST_CUTOFF)
        fix = f"did you mean {near[0]}?" if near else "remove it"
        return Problem(f"{path}.{key}", "unknown key", fix)
    allowed = KEYS[rule_type]
    owners = [t for t, keys in KEYS.items() if key in keys]
    if owners:
        return Problem(f"{path}.{key}", f"is not a {rule_type} setting (it belongs to type: "
                       f"{owners[0]})", f"remove it; {rule_type} takes {', '.join(allowed)}")
    near = difflib.get_close_matches(key, allowed, n=1, cutoff=_SUGGEST_CUTOFF)
    fix = (f"did you mean {near[0]}?" if near
           else f"remove it; {rule_type} takes {', '.join(allowed)}")
    return Problem(f"{path}.{key}", f"unknown key for type: {rule_type}", fix)


def _check_hyperband_form(raw: Mapping[Any, Any], path: str, problems: list[Problem]) -> None:
    # W&B accepts min_iter, or max_iter with s; when both forms are present the max_iter one
    # is used, so a stray s next to min_iter is harmless and accepted as W&B does.
    if "max_iter" in raw and "s" not in raw:
        problems.append(Problem(f"{path}.s", "is required with max_iter (the number of bands "
                                "below max_iter)", "add s: 2 (for example), or use min_iter"))
    elif "max_iter" not in raw and "min_iter" not in raw:
        problems.append(Problem(path, "hyperband needs min_iter, or both max_iter and s",
                                "add min_iter: 3 (the first band), or max_iter: 27 with s: 2"))


class _FieldChecker:
    """Checks one key of the raw mapping at a time; valid values land in ``fields``."""

    def __init__(self, raw: Mapping[Any, Any], path: str, problems: list[Problem],
                 fields: dict[str, Any]) -> None:
        self.raw, self.path, self.problems, self.fields = raw, path, problems, fields

    def _check(self, key: str, ok: Callable[[Any], bool], message: str, fix: str,
               convert: Callable[[Any], Any] = lambda v: v) -> None:
        if key not in self.raw:
            return
        value = self.raw[key]
        if ok(value):
            self.fields[key] = convert(value)
        else:
            self.problems.append(Problem(f"{self.path}.{key}",
                                         f"{message}, got {value!r}", fix))

    def integer(self, key: str, minimum: int) -> None:
        self._check(key, lambda v: _is_int(v) and v >= minimum,
                    f"must be an integer >= {minimum}",
                    f"write a whole number of iterations, e.g. {key}: {max(minimum, 1) * 3}")

    def eta(self) -> None:
        self._check("eta", lambda v: _is_number(v) and math.isfinite(v) and v > 1,
                    "must be a number > 1", "eta is the reduction factor; 3 is usual", float)

    def boolean(self, key: str) -> None:
        self._check(key, lambda v: isinstance(v, bool), "must be true or false",
                    f"write {key}: true or {key}: false (no quotes)")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _kind(value: Any) -> str:
    return "a list" if isinstance(value, list) else f"{type(value).__name__} {value!r}"
