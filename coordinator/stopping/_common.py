"""Helpers the rules share: goal-aware costs, geometric iteration ladders, number formatting."""

from __future__ import annotations

import math
from collections.abc import Sequence

from ..config.model import Goal
from ..domain import MAXIMIZE

# Ladders (hyperband bands, asha rungs) are cut here: no run logs a billion values of one
# metric, and an unbounded geometric ladder with a large eta would overflow a float.
MAX_LADDER_ITERATION = 10**9


def cost(value: float, goal: Goal) -> float:
    """The value as a cost where lower is better; NaN (a diverged run) is the worst cost."""
    if math.isnan(value):
        return math.inf
    return -value if goal == MAXIMIZE else value


def from_cost(c: float, goal: Goal) -> float:
    """The inverse of :func:`cost` (a NaN's cost comes back as the worst infinity)."""
    return -c if goal == MAXIMIZE else c


def best_cost(history: Sequence[float], goal: Goal) -> float:
    return min(cost(v, goal) for v in history)


def geometric_ladder(start: int, eta: float, stop: int = MAX_LADDER_ITERATION,
                     count: int | None = None) -> list[int]:
    """``int(start * eta**k)`` for k = 0, 1, ... while at most ``stop`` (and ``count`` terms),
    without duplicates, ascending. Multiplies step by step so that an int eta stays exact."""
    ladder: list[int] = []
    value: float = start
    k = 0
    while value <= stop and (count is None or k < count):
        if not ladder or int(value) != ladder[-1]:
            ladder.append(int(value))
        value *= eta
        k += 1
    return ladder


def fmt(x: float) -> str:
    """A number as people read it in a reason: 0.93, 1.2e-05, 3, inf."""
    return f"{x:.4g}"
