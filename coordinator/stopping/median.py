"""The median stopping rule: stop a run doing worse than the typical run at the same point."""

from __future__ import annotations

import bisect
from collections.abc import Mapping, Sequence, Set
from dataclasses import dataclass
from typing import ClassVar, overload

from ..config.early_terminate import DEFAULT_N_STARTUP_RUNS, DEFAULT_N_WARMUP_ITERS
from ..config.model import Goal
from ..domain import StopDecision
from ._common import best_cost, cost, fmt, from_cost
from .base import DEFAULT_METRIC_LABEL


class _Without(Sequence[float]):
    """A sorted sequence with one element left out, without copying it (O(1) per access)."""

    def __init__(self, values: Sequence[float], skip: int) -> None:
        self.values, self.skip = values, skip

    def __len__(self) -> int:
        return len(self.values) - 1

    @overload
    def __getitem__(self, i: int) -> float: ...
    @overload
    def __getitem__(self, i: slice) -> Sequence[float]: ...
    def __getitem__(self, i: int | slice) -> float | Sequence[float]:
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        return self.values[i if i < self.skip else i + 1]


def _without(sorted_values: Sequence[float], value: float) -> Sequence[float]:
    """``sorted_values`` less one occurrence of ``value`` (which it must contain)."""
    return _Without(sorted_values, bisect.bisect_left(sorted_values, value))


def median(sorted_values: Sequence[float]) -> float:
    """The median of an ascending, non-empty sequence (the mean of the middle two when even)."""
    mid = len(sorted_values) // 2
    if len(sorted_values) % 2:
        return sorted_values[mid]
    low, high = sorted_values[mid - 1], sorted_values[mid]
    # Equal middles (two infinities included) are the median; -inf and +inf give NaN, which
    # stops nobody.
    return low if low == high else low / 2 + high / 2


@dataclass(frozen=True)
class MedianRule:
    """Stop a run whose best value so far is worse than the median of the other runs.

    For a running run with k logged values (it is at iteration k):

    1. it is not judged during its first ``n_warmup_iters`` iterations (k <= n_warmup_iters);
    2. the others are every other run, in any state, that has logged at least k values; while
       fewer than ``n_startup_runs`` of them exist the run continues. Counting runs that
       *reached* k rather than runs that *finished* lets a parallel sweep prune from its first
       wave instead of only after whole runs complete;
    3. stop if its best value over its k values is worse than the median of the others'
       k-th values (a real median: one diverged run cannot drag it).

    Judged again on every report, at its new iteration.
    """

    rule_type: ClassVar[str] = "median"

    n_startup_runs: int = DEFAULT_N_STARTUP_RUNS
    n_warmup_iters: int = DEFAULT_N_WARMUP_ITERS

    def __post_init__(self) -> None:
        if self.n_startup_runs < 1:
            raise ValueError(f"n_startup_runs must be >= 1, got {self.n_startup_runs}")
        if self.n_warmup_iters < 0:
            raise ValueError(f"n_warmup_iters must be >= 0, got {self.n_warmup_iters}")

    def should_stop_run(
        self,
        run_id: str,
        histories: Mapping[str, Sequence[float]],
        goal: Goal,
        *,
        arrived: int = 1,
        metric: str = DEFAULT_METRIC_LABEL,
    ) -> StopDecision | None:
        return self._judge(run_id, histories, goal, metric, {})

    def should_stop(
        self,
        histories: Mapping[str, Sequence[float]],
        running: Set[str],
        goal: Goal,
        *,
        metric: str = DEFAULT_METRIC_LABEL,
    ) -> list[StopDecision]:
        cache: dict[int, list[float]] = {}  # iteration -> sorted costs, shared by all runs
        decisions = (self._judge(r, histories, goal, metric, cache) for r in sorted(running))
        return [d for d in decisions if d is not None]

    def _judge(
        self,
        run_id: str,
        histories: Mapping[str, Sequence[float]],
        goal: Goal,
        metric: str,
        cache: dict[int, list[float]],
    ) -> StopDecision | None:
        history = histories.get(run_id, ())
        k = len(history)
        if k == 0 or k <= self.n_warmup_iters:
            return None
        if k not in cache:  # every run's k-th value, this run's included
            cache[k] = sorted(cost(h[k - 1], goal) for h in histories.values() if len(h) >= k)
        others = _without(cache[k], cost(history[k - 1], goal))
        if len(others) < self.n_startup_runs:
            return None
        threshold, mine = median(others), best_cost(history, goal)
        if not mine > threshold:
            return None
        value, limit = from_cost(mine, goal), from_cost(threshold, goal)
        reason = (f"median: best {metric}={fmt(value)} in {k} iterations is worse than the "
                  f"median {fmt(limit)} of {len(others)} other runs at iteration {k}")
        return StopDecision(run_id, reason, self.rule_type, k, limit, value)

    def describe(self) -> str:
        warmup = (f", from iteration {self.n_warmup_iters + 1}" if self.n_warmup_iters else "")
        return (f"median, stop a run whose best value is worse than the median of the other "
                f"runs at the same iteration, once {self.n_startup_runs} runs reached it"
                f"{warmup}")
