"""Interim grid and random search for the spine; replaced by grid.py / random.py."""

from __future__ import annotations

import itertools
import json
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..config._fallback import sample
from ..config.model import SweepConfig
from .base import Suggestion, Trial


def _key(params: Any) -> str:
    return json.dumps(sorted((list(k), v) for k, v in params.items()), sort_keys=True)


def grid(config: SweepConfig, trials: Sequence[Trial], rng: np.random.Generator
         ) -> Suggestion | None:
    taken = {_key(t.params) for t in trials}
    axes = []
    for p in config.parameters:
        if p.distribution == "constant":
            axes.append([p.value])
        elif p.distribution == "categorical":
            axes.append(list(p.values or ()))
        else:
            axes.append(list(range(int(p.min), int(p.max) + 1)))  # type: ignore[arg-type]
    for combo in itertools.product(*axes):
        point = {p.path: v for p, v in zip(config.parameters, combo)}
        if _key(point) not in taken:
            return Suggestion(point)
    return None


def random(config: SweepConfig, trials: Sequence[Trial], rng: np.random.Generator
           ) -> Suggestion | None:
    return Suggestion({p.path: sample(p, rng) for p in config.parameters})
