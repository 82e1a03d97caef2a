"""Search methods: pure functions ``suggest(config, trials, rng) -> Suggestion | None``."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from ..config.model import SweepConfig
from . import _fallback
from .base import Suggestion, Trial

SuggestFn = Callable[[SweepConfig, Sequence[Trial], np.random.Generator], Suggestion | None]

METHODS: dict[str, SuggestFn] = {
    "grid": _fallback.grid,
    "random": _fallback.random,
}


def suggest(config: SweepConfig, trials: Sequence[Trial], rng: np.random.Generator
            ) -> Suggestion | None:
    return METHODS[config.method](config, trials, rng)
