"""Search methods: pure ``suggest(config, trials, rng) -> Suggestion | None`` functions.

``METHODS`` maps a ``method:`` name to its function; registering a name here also makes the
configuration parser accept it (see ``config.schema.valid_methods``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from ..config.model import SweepConfig
from . import bayes, grid, random, sobol
from .base import Suggestion, Trial

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
    """The next point for ``config.method``; ``None`` when the search space is exhausted."""
    return METHODS[config.method](config, trials, rng)


__all__ = ["METHODS", "SuggestFn", "Suggestion", "Trial", "suggest"]
