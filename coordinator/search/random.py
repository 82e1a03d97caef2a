"""Random search: every parameter drawn independently from its distribution, as in W&B.

One difference from W&B, which samples with replacement: in a fully discrete space (every
parameter constant, categorical, int_uniform or a bounded quantised form) a point already taken
by a trial is not suggested again while untaken points remain. Up to ``MAX_REJECTIONS`` fresh
draws are tried; after that the untaken remainder is enumerated and drawn from uniformly (only
when it is small enough, ``MAX_ENUMERATED_POINTS``; otherwise the last draw is returned, a repeat
being unlikely to matter in a space that large). When every point of a fully discrete space is
taken the search is exhausted: ``suggest`` returns ``None`` and the sweep finishes. A space with
any continuous parameter never ends (repeats have probability zero there and are not checked).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

import numpy as np

from ..config import distributions as dist
from ..config.model import SweepConfig, Value
from .base import Suggestion, Trial
from .grid import point_key, taken_keys

# Fresh draws tried before falling back to enumeration; the chance that 64 draws all hit taken
# points while a fraction f is free is (1 - f)^64, so this only triggers near exhaustion.
MAX_REJECTIONS = 64
# Largest discrete space enumerated to find the untaken remainder (a list of tuples in memory).
MAX_ENUMERATED_POINTS = 2_000_000


def needs_history(config: SweepConfig) -> bool:
    """Whether ``suggest`` reads the trials: only to avoid repeats in a fully discrete space."""
    return all(dist.is_discrete(p) for p in config.parameters)


def suggest(
    config: SweepConfig, trials: Sequence[Trial], rng: np.random.Generator
) -> Suggestion | None:
    """A random point; in a fully discrete space an untaken one, ``None`` when none is left."""
    params = config.parameters
    draw = {p.path: dist.sample(p, rng) for p in params}
    if not all(dist.is_discrete(p) for p in params) or not trials:
        return Suggestion(params=draw, info="random")
    taken = taken_keys(params, trials)
    size = math.prod(dist.support_size(p) or 0 for p in params)
    if len(taken) >= size and _all_taken(config, taken, size):
        return None
    for _ in range(MAX_REJECTIONS):
        if point_key(params, draw) not in taken:
            return Suggestion(params=draw, info="random")
        draw = {p.path: dist.sample(p, rng) for p in params}
    if size > MAX_ENUMERATED_POINTS:
        return Suggestion(params=draw, info="random (may repeat a point)")
    supports = [dist.enumerate_support(p) for p in params]
    free: list[tuple[Value, ...]] = [
        combo
        for combo in itertools.product(*supports)
        if tuple(dist.value_key(v) for v in combo) not in taken
    ]
    if not free:
        return None
    combo = free[int(rng.integers(len(free)))]
    return Suggestion(params={p.path: v for p, v in zip(params, combo)}, info="random")


def _all_taken(config: SweepConfig, taken: set[tuple[str, ...]], size: int) -> bool:
    """True when every point of the (discrete) space is among ``taken``."""
    if size > MAX_ENUMERATED_POINTS:
        return False
    supports = [dist.enumerate_support(p) for p in config.parameters]
    return all(
        tuple(dist.value_key(v) for v in combo) in taken for combo in itertools.product(*supports)
    )
