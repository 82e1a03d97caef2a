"""Plain data that search methods read and return. No gRPC, no storage.

A search method is a pure function::

    suggest(config: SweepConfig, trials: Sequence[Trial], rng: numpy.random.Generator)
        -> Suggestion | None

``trials`` are all the sweep's runs so far (any state), in creation order. ``None`` means the
space is exhausted (a finished grid). Implementations never mutate their inputs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from ..config.model import Point

TrialState = Literal["pending", "running", "finished", "failed", "stopped"]


@dataclass(frozen=True)
class Trial:
    """What search sees of one run.

    ``value`` is the run's summary value of the sweep metric (its last logged value), raw as
    logged (not sign-flipped); ``None`` when the run logged none. ``best_value`` is the best
    value it logged by the metric's goal, for ``impute: best``.
    """

    params: Point
    state: TrialState
    value: float | None = None
    best_value: float | None = None


@dataclass(frozen=True)
class Suggestion:
    """The next point to try; ``predicted_mean``/``predicted_std`` are set by model-based
    methods (what the model expected of the point, in the metric's own units). ``notice`` is
    set when the user should hear about how the point was chosen (the sweep's method failed
    and the point is random: see ``search.suggest``)."""

    params: Point
    predicted_mean: float | None = None
    predicted_std: float | None = None
    info: str = ""
    notice: str = ""
