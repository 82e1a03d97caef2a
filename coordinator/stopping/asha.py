"""Asynchronous successive halving (ASHA) as a stopping rule.

Unlike W&B's hyperband, a rung's verdict is final: a run is judged once, when it reaches a
rung, against the values recorded there so far, and never re-judged at that rung when later
runs arrive. Nobody waits for a full bracket.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence, Set
from dataclasses import dataclass, field
from typing import ClassVar

from ..config.early_terminate import DEFAULT_ASHA_MIN_ITER, DEFAULT_ETA
from ..config.model import Goal
from ..domain import StopDecision
from ._common import MAX_LADDER_ITERATION, cost, fmt, from_cost, geometric_ladder
from .base import DEFAULT_METRIC_LABEL

# How many rungs a one-line description lists before "…".
DESCRIBE_RUNGS = 4


@dataclass(frozen=True)
class AshaRule:
    """Stop a run that reaches a rung outside the top 1/eta of the values recorded there.

    Rungs are at iterations ``int(min_iter * eta**k)``, k = 0, 1, ..., up to ``max_iter``
    (inclusive; unbounded when ``max_iter`` is not set). When a run's values reach rung r:

    1. collect the r-th value of every run (any state, this one included) that has logged at
       least r values: n values;
    2. with fewer than ``eta`` of them the run continues: the top 1/eta of fewer than eta runs
       is less than one run, and stopping the first runs of a sweep on that little evidence
       would only kill the pioneers;
    3. otherwise the run continues iff its r-th value is no worse than the ``floor(n / eta)``-th
       best of them (ties continue).

    A run whose new values cross several rungs at once is judged at each in turn, stopping at
    the first it fails. Callers say how many values are new with ``arrived``; ``should_stop``
    assumes one, i.e. that it is called after every appended value.
    """

    rule_type: ClassVar[str] = "asha"

    min_iter: int = DEFAULT_ASHA_MIN_ITER
    max_iter: int | None = None
    eta: float = DEFAULT_ETA
    rungs: tuple[int, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.eta > 1:
            raise ValueError(f"eta must be > 1, got {self.eta}")
        if self.min_iter < 1:
            raise ValueError(f"min_iter must be >= 1, got {self.min_iter}")
        if self.max_iter is not None and self.max_iter < self.min_iter:
            raise ValueError(f"max_iter {self.max_iter} is below min_iter {self.min_iter}")
        top = MAX_LADDER_ITERATION if self.max_iter is None else self.max_iter
        object.__setattr__(self, "rungs", tuple(geometric_ladder(self.min_iter, self.eta, top)))

    def should_stop_run(
        self,
        run_id: str,
        histories: Mapping[str, Sequence[float]],
        goal: Goal,
        *,
        arrived: int = 1,
        metric: str = DEFAULT_METRIC_LABEL,
    ) -> StopDecision | None:
        n = len(histories.get(run_id, ()))
        for rung in self.rungs:
            if rung > n:
                break
            if rung > n - arrived:  # reached by one of the new values
                decision = self._judge(run_id, rung, histories, goal, metric)
                if decision is not None:
                    return decision
        return None

    def should_stop(
        self,
        histories: Mapping[str, Sequence[float]],
        running: Set[str],
        goal: Goal,
        *,
        metric: str = DEFAULT_METRIC_LABEL,
    ) -> list[StopDecision]:
        decisions = (self.should_stop_run(r, histories, goal, metric=metric)
                     for r in sorted(running))
        return [d for d in decisions if d is not None]

    def _judge(
        self, run_id: str, rung: int, histories: Mapping[str, Sequence[float]], goal: Goal,
        metric: str,
    ) -> StopDecision | None:
        costs = sorted(cost(h[rung - 1], goal) for h in histories.values() if len(h) >= rung)
        keep = int(len(costs) / self.eta)
        if keep < 1:
            return None
        threshold = costs[keep - 1]
        value = histories[run_id][rung - 1]
        if not cost(value, goal) > threshold:
            return None
        limit = from_cost(threshold, goal)
        reason = (f"asha: {metric}={fmt(value)} at rung {rung} is worse than the rung threshold "
                  f"{fmt(limit)} (top {keep} of {len(costs)} runs, 1/{fmt(self.eta)})")
        return StopDecision(run_id, reason, self.rule_type, rung, limit, value)

    def describe(self) -> str:
        shown = ", ".join(str(r) for r in self.rungs[:DESCRIBE_RUNGS])
        more = " …" if len(self.rungs) > DESCRIBE_RUNGS else ""
        return (f"asha, rungs at iterations {shown}{more}, eta {fmt(self.eta)}, "
                f"top 1/{fmt(self.eta)} continue at each rung")
