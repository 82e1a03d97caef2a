"""Search methods: pure ``suggest(config, trials, rng) -> Suggestion | None`` functions.

``METHODS`` maps a ``method:`` name to its function. The configuration parser accepts the
names in ``config.METHODS`` (config sits below search); a unit test holds the two equal, so a
method added here is added there too.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from ..config.model import SweepConfig
from . import bayes, gp, grid, random, sobol
from .base import Suggestion, Trial

log = logging.getLogger("sweepd.coordinator")

SuggestFn = Callable[[SweepConfig, Sequence[Trial], np.random.Generator], Suggestion | None]

METHODS: dict[str, SuggestFn] = {
    "grid": grid.suggest,
    "random": random.suggest,
    "bayes": bayes.suggest,
    "sobol": sobol.suggest,
}


def needs_history(config: SweepConfig) -> bool:
    """Whether ``suggest`` reads the trials for ``config`` (random search over a space that is
    not fully discrete does not): a caller may then pass none and skip building them."""
    if config.method == "random" and METHODS["random"] is random.suggest:
        return random.needs_history(config)
    return True


def suggest(
    config: SweepConfig, trials: Sequence[Trial], rng: np.random.Generator
) -> Suggestion | None:
    """The next point for ``config.method``; ``None`` when the search space is exhausted.

    If the method raises (a bug, or data it cannot handle), the point is drawn by random
    search instead and carries a ``notice`` naming the error, which the coordinator shows
    with the sweep; the traceback goes to the coordinator's log. A sweep keeps running on a
    failing model rather than leaving its workers idle and its ask/tell clients waiting.
    Only a failure of random search itself propagates.
    """
    try:
        return METHODS[config.method](config, trials, rng)
    except Exception as exc:  # any failure of a method falls back alike
        if config.method == "random":
            raise
        log.exception("search: method %s failed; drawing this point at random", config.method)
        fallback = random.suggest(config, trials, rng)
        if fallback is None:
            return None
        notice = (
            f"method {config.method} failed ({type(exc).__name__}: {exc}); run points are"
            " drawn at random until it succeeds again (traceback in the coordinator's log)"
        )
        return dataclasses.replace(fallback, info=f"random ({config.method} failed)", notice=notice)


@dataclass(frozen=True)
class Batch:
    """``suggest_batch``'s answer: distinct points in the order to hand them out, empty when
    the space is exhausted; ``warm`` is what the method may reuse on the sweep's next call
    (bayes: its fitted hyperparameters), opaque to the caller."""

    suggestions: tuple[Suggestion, ...]
    warm: object | None = None


def suggest_batch(
    config: SweepConfig,
    trials: Sequence[Trial],
    rng: np.random.Generator,
    k: int,
    warm: object | None = None,
    on_point: Callable[[Suggestion], None] | None = None,
) -> Batch:
    """Up to ``k`` distinct points for ``k`` takers waiting at once (fewer only when the space
    runs out); the first is the one ``suggest`` would return, except that bayes starts its fit
    from ``warm`` when given (the previous call's ``Batch.warm`` for the same sweep).
    ``on_point`` is called with each point as soon as it is chosen (in the calling thread,
    before this returns), so that the first taker in line need not wait for the last point.

    Failures fall back to random search as in ``suggest``, for the points not yet chosen.
    """
    if k < 1:
        raise ValueError(f"k: must be at least 1, got {k}")
    chosen: list[Suggestion] = []

    def choose(suggestion: Suggestion) -> None:
        chosen.append(suggestion)
        if on_point is not None:
            on_point(suggestion)

    try:
        method = METHODS[config.method]
        if method is bayes.suggest:  # (not when a test or plug-in replaced it)
            start = warm if isinstance(warm, gp.GPParams) else None
            _, fitted = bayes.suggest_batch(config, trials, rng, k, start, choose)
            return Batch(tuple(chosen), fitted)
        _one_by_one(method, config, trials, rng, k, choose)
        return Batch(tuple(chosen))
    except Exception as exc:  # any failure of a method falls back alike, as in suggest()
        if config.method == "random":
            raise
        log.exception("search: method %s failed; drawing this batch at random", config.method)
        notice = (
            f"method {config.method} failed ({type(exc).__name__}: {exc}); run points are"
            " drawn at random until it succeeds again (traceback in the coordinator's log)"
        )
        done = [*trials, *(Trial(params=s.params, state="pending") for s in chosen)]
        _one_by_one(random.suggest, config, done, rng, k - len(chosen), lambda s: choose(
            dataclasses.replace(s, info=f"random ({config.method} failed)", notice=notice)))
        return Batch(tuple(chosen))


def _one_by_one(
    method: SuggestFn,
    config: SweepConfig,
    trials: Sequence[Trial],
    rng: np.random.Generator,
    k: int,
    choose: Callable[[Suggestion], None],
) -> None:
    """``k`` calls of ``method``, each seeing the points before it as pending runs."""
    seen = list(trials)
    for _ in range(k):
        suggestion = method(config, seen, rng)
        if suggestion is None:
            break
        choose(suggestion)
        seen.append(Trial(params=suggestion.params, state="pending"))


def rng_for(config: SweepConfig, sweep_id: str, run_count: int) -> np.random.Generator:
    """The generator for a sweep's next suggestion, made afresh for every call.

    Seeded by the config's ``seed`` when set (so two sweeps with the same config, seed and
    history get the same suggestions), else by the sweep's id; and by the number of runs so
    far, so that a coordinator restart continues exactly where it left off.
    """
    if config.seed is not None:
        root = config.seed
    else:
        root = int.from_bytes(hashlib.sha256(sweep_id.encode()).digest()[:8], "little")
    return np.random.default_rng([root, run_count])


__all__ = [
    "METHODS",
    "Batch",
    "SuggestFn",
    "Suggestion",
    "Trial",
    "needs_history",
    "rng_for",
    "suggest",
    "suggest_batch",
]
