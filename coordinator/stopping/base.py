"""Plain data that early-stopping rules read and return. No gRPC, no storage.

A rule is a pure function of the metric histories of a sweep's runs::

    rule.should_stop(histories: Mapping[str, Sequence[float]], running: Set[str],
                     goal: Goal) -> list[StopDecision]

``histories[run_id]`` is every logged value of the sweep's metric for that run, in order (the
k-th entry is "iteration" k+1 in W&B's words). Only runs in ``running`` may be stopped; all
runs (finished ones included) inform thresholds.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class StopDecision:
    run_id: str
    reason: str  # one human sentence: "hyperband: loss 0.9 at iteration 3 worse than ..."
    rule: str  # "hyperband" | "asha" | "median"
    band: int | None = None  # the iteration (band / rung) at which the comparison was made
    threshold: float | None = None
    value: float | None = None
