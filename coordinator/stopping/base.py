"""What early-stopping rules are: pure functions of metric histories. No gRPC, no storage.

They return ``domain.StopDecision``, the very record the run stores.

A rule is a small frozen object whose methods are pure functions of the metric histories of a
sweep's runs::

    rule.should_stop(histories: Mapping[str, Sequence[float]], running: AbstractSet[str],
                     goal: Goal) -> list[StopDecision]
    rule.should_stop_run(run_id, histories, goal, arrived=1) -> StopDecision | None

``histories[run_id]`` is every logged value of the sweep's metric for that run, in order (the
k-th entry is "iteration" k in W&B's words: iterations count logged values, never ``_step``).

Invariants every rule keeps:

- Only runs in ``running`` may be stopped; all runs (finished, failed, stopped ones included)
  inform thresholds.
- Inputs are never modified, and the same inputs give the same decisions.
- ``should_stop(h, running, g)`` equals ``[should_stop_run(r, h, g) for r in sorted(running)]``
  without the ``None`` entries: the batch form is the per-run form applied to every running run.
- Values are compared by the goal: for ``minimize`` lower is better, for ``maximize`` higher.
  NaN is the worst possible value; infinities keep their order.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence, Set
from typing import ClassVar, Protocol

from ..config.model import Goal
from ..domain import StopDecision

# What reasons call the metric when the caller does not name it.
DEFAULT_METRIC_LABEL = "value"


class StopRule(Protocol):
    """An early-termination rule: decides which running runs to stop from metric histories.

    ``should_stop_run`` is the fast path for "new values arrived for run X": it judges X alone
    and costs O(number of runs) at most. ``arrived`` says how many of X's values are new since
    the previous call for X; rules that judge the current state (hyperband, median) ignore it,
    rules that decide once per rung (asha) judge every rung those values crossed.
    ``metric`` only labels the metric in reasons.
    """

    rule_type: ClassVar[str]

    def should_stop(
        self,
        histories: Mapping[str, Sequence[float]],
        running: Set[str],
        goal: Goal,
        *,
        metric: str = DEFAULT_METRIC_LABEL,
    ) -> list[StopDecision]: ...

    def should_stop_run(
        self,
        run_id: str,
        histories: Mapping[str, Sequence[float]],
        goal: Goal,
        *,
        arrived: int = 1,
        metric: str = DEFAULT_METRIC_LABEL,
    ) -> StopDecision | None: ...

    def describe(self) -> str: ...
