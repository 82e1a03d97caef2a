"""W&B's hyperband early termination, with W&B's exact bands, threshold and strict mode.

This is successive halving against the whole population (not Hyperband's separate brackets),
as W&B runs it; a user's ``early_terminate: {type: hyperband, ...}`` stops the same runs here.
"""

from __future__ import annotations

import bisect
from collections.abc import Mapping, Sequence, Set
from dataclasses import dataclass, field
from typing import ClassVar

from ..config.early_terminate import DEFAULT_ETA
from ..config.model import Goal
from ..domain import StopDecision
from ._common import MAX_LADDER_ITERATION, best_cost, cost, fmt, from_cost, geometric_ladder
from .base import DEFAULT_METRIC_LABEL

# The min_iter form has this many geometric bands in W&B; only the reachable ones matter.
MIN_ITER_BAND_COUNT = 100


def hyperband_bands(
    *, min_iter: int | None = None, max_iter: int | None = None, s: int | None = None,
    eta: float = DEFAULT_ETA,
) -> list[int]:
    """The iterations at which runs are judged, ascending, as W&B computes them.

    - ``max_iter`` and ``s`` (this form wins when both forms are given, as in W&B): divide
      ``max_iter`` by ``eta`` up to ``s`` times, stopping below 1, and truncate each quotient
      to an int. ``max_iter`` itself is never a band: 150, s 4, eta 3 -> 1, 5, 16, 50.
    - ``min_iter``: ``int(min_iter * eta**k)`` for k = 0 .. 99: 3, eta 3 -> 3, 9, 27, 81, ...
      (bands beyond a billion iterations are dropped: no run reaches them).

    Bands repeated by truncation (``eta`` below 2) are listed once; judging is unchanged.
    """
    if max_iter is not None:
        if s is None:
            raise ValueError("max_iter needs s")
        bands: set[int] = set()
        band = float(max_iter)
        for _ in range(s):
            band /= eta  # successive division, not max_iter / eta**k: W&B's rounding exactly
            if band < 1:
                break
            bands.add(int(band))
        return sorted(bands)
    if min_iter is not None:
        return geometric_ladder(min_iter, eta, MAX_LADDER_ITERATION, MIN_ITER_BAND_COUNT)
    raise ValueError("hyperband needs min_iter, or max_iter and s")


@dataclass(frozen=True)
class HyperbandRule:
    """Stop a running run that falls outside the top 1/eta at its latest band.

    For a running run with n logged values:

    1. its band b is the largest band <= n; before the first band it is never judged;
    2. the band's threshold is the ``int(m / eta)``-th smallest cost (0-based) among the
       b-th values of all m runs (any state) that logged at least b values;
    3. strict (the default): stop if its b-th value is worse than the threshold;
       non-strict: stop if even its best value so far (over all n values) is worse.

    The run is judged again on every report until its next band, against a threshold that
    moves as more runs reach the band (W&B evaluates every few minutes; we on every report).
    """

    rule_type: ClassVar[str] = "hyperband"

    min_iter: int | None = None
    max_iter: int | None = None
    s: int | None = None
    eta: float = DEFAULT_ETA
    strict: bool = True
    bands: tuple[int, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.eta > 1:
            raise ValueError(f"eta must be > 1, got {self.eta}")
        for name in ("min_iter", "max_iter", "s"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"{name} must be >= 1, got {value}")
        bands = hyperband_bands(min_iter=self.min_iter, max_iter=self.max_iter, s=self.s,
                                eta=self.eta)
        if not bands:
            raise ValueError(f"max_iter {self.max_iter} / eta {self.eta} < 1 leaves no band")
        object.__setattr__(self, "bands", tuple(bands))

    def band_for(self, n_values: int) -> int | None:
        """The band a run with ``n_values`` logged values is judged at, if any."""
        i = bisect.bisect_right(self.bands, n_values)
        return self.bands[i - 1] if i else None

    def threshold(
        self, band: int, histories: Mapping[str, Sequence[float]], goal: Goal
    ) -> tuple[float, int]:
        """(threshold cost, number of runs that reached the band); +inf cost when none did."""
        costs = sorted(cost(h[band - 1], goal) for h in histories.values() if len(h) >= band)
        if not costs:
            return float("inf"), 0
        return costs[int(len(costs) / self.eta)], len(costs)

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
        cache: dict[int, tuple[float, int]] = {}  # band -> threshold, shared by all runs
        decisions = (self._judge(r, histories, goal, metric, cache) for r in sorted(running))
        return [d for d in decisions if d is not None]

    def _judge(
        self,
        run_id: str,
        histories: Mapping[str, Sequence[float]],
        goal: Goal,
        metric: str,
        cache: dict[int, tuple[float, int]],
    ) -> StopDecision | None:
        history = histories.get(run_id, ())
        band = self.band_for(len(history))
        if band is None:
            return None
        if band not in cache:
            cache[band] = self.threshold(band, histories, goal)
        threshold, reached = cache[band]
        mine = cost(history[band - 1], goal) if self.strict else best_cost(history, goal)
        if not mine > threshold:
            return None
        # Strict shows the logged value as is (a NaN stays NaN); non-strict the best one.
        value = history[band - 1] if self.strict else from_cost(mine, goal)
        limit = from_cost(threshold, goal)
        what = (f"{metric}={fmt(value)} at iteration {band} is worse than the band threshold"
                if self.strict else
                f"best {metric}={fmt(value)} in {len(history)} iterations is worse than the "
                f"iteration-{band} band threshold")
        reason = (f"hyperband: {what} {fmt(limit)} (top 1/{fmt(self.eta)} of {reached} runs)")
        return StopDecision(run_id, reason, self.rule_type, band, limit, value)

    def describe(self) -> str:
        shown = ", ".join(str(b) for b in self.bands[:DESCRIBE_BANDS])
        more = " …" if len(self.bands) > DESCRIBE_BANDS else ""
        mode = "strict" if self.strict else "non-strict (best value so far)"
        return f"hyperband, bands at iterations {shown}{more}, eta {fmt(self.eta)}, {mode}"


# How many bands a one-line description lists before "…".
DESCRIBE_BANDS = 4
