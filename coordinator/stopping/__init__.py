"""Early termination: which running runs to stop, as pure functions of metric histories.

Public surface::

    rule = rule_for(config.early_terminate)                       # settings -> rule
    rule.should_stop(histories, running, goal)                    # every running run
    rule.should_stop_run(run_id, histories, goal, arrived=n)      # after n new values of one run
    describe_rule(rule)                                           # one line for `sweep validate`
    rule, problems = parse_rule(raw)                              # raw mapping -> rule, in one go

The ``early_terminate`` section is validated by ``config.early_terminate`` into typed settings
(config sits below stopping and does not import it); this package turns settings into rules.
Types: ``hyperband`` (W&B's rule, exactly), ``asha`` and ``median`` (sweepd additions).
"""

from __future__ import annotations

import functools
from typing import Any

from ..config.early_terminate import (
    AshaSettings,
    EarlyTerminate,
    HyperbandSettings,
    MedianSettings,
    parse_early_terminate,
)
from ..domain import StopDecision
from ..errors import Problem
from .asha import AshaRule
from .base import StopRule
from .hyperband import HyperbandRule, hyperband_bands
from .median import MedianRule

__all__ = [
    "AshaRule",
    "HyperbandRule",
    "MedianRule",
    "StopDecision",
    "StopRule",
    "describe_rule",
    "hyperband_bands",
    "parse_rule",
    "rule_for",
]


# Cached: the dispatcher asks on every metric report, and hyperband and asha work out their
# ladders when built. Settings are frozen, so equal settings share one rule.
@functools.cache
def rule_for(settings: EarlyTerminate) -> StopRule:
    """The rule that applies ``settings`` (validated by ``config.parse_early_terminate``)."""
    if isinstance(settings, HyperbandSettings):
        return HyperbandRule(min_iter=settings.min_iter, max_iter=settings.max_iter,
                             s=settings.s, eta=settings.eta, strict=settings.strict)
    if isinstance(settings, AshaSettings):
        return AshaRule(min_iter=settings.min_iter, max_iter=settings.max_iter,
                        eta=settings.eta)
    if isinstance(settings, MedianSettings):
        return MedianRule(n_startup_runs=settings.n_startup_runs,
                          n_warmup_iters=settings.n_warmup_iters)
    raise TypeError(f"no stopping rule for {type(settings).__name__}")


def parse_rule(raw: Any, path: str = "early_terminate") -> tuple[StopRule | None, list[Problem]]:
    """Validates an ``early_terminate`` mapping and builds its rule (for benchmarks and tests
    that start from YAML-like data); ``(None, problems)`` when invalid, ``(None, [])`` when
    ``raw`` is ``None``."""
    settings, problems = parse_early_terminate(raw, path)
    return (None if settings is None else rule_for(settings)), problems


def describe_rule(rule: StopRule | None) -> str:
    """One line for ``sweep validate``: "hyperband, bands at iterations 3, 9, 27, 81 …, ..."."""
    return "no early termination" if rule is None else rule.describe()
