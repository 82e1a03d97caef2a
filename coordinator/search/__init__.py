"""Search methods: pure ``suggest(config, trials, rng) -> Suggestion | None`` functions.

``METHODS`` maps a ``method:`` name to its function; registering a name here also makes the
configuration parser accept it (see ``config.schema.valid_methods``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
from collections.abc import Callable, Sequence

import numpy as np

from ..config.model import SweepConfig
from . import bayes, grid, random, sobol
from .base import Suggestion, Trial

log = logging.getLogger("sweepd.coordinator")

SuggestFn = Callable[[SweepConfig, Sequence[Trial], np.random.Generator], Suggestion | None]

METHODS: dict[str, SuggestFn] = {
    "grid": grid.suggest,
    "random": random.suggest,
    "bayes": bayes.suggest,
    "sobol": sobol.suggest,
}


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


__all__ = ["METHODS", "SuggestFn", "Suggestion", "Trial", "rng_for", "suggest"]
