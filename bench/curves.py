"""Synthetic learning curves for early-stopping benchmarks: pure, seeded, no dependencies.

A curve is a training loss logged once per iteration (lower is better). Its final value is only
partly predictable from its start, as in real sweeps:

- each configuration has a *quality* that sets the loss it converges to;
- and a *speed*: some learn fast and plateau early, others start slowly and catch up. Speed is
  mildly anti-correlated with quality (small learning rates are slow and often end better), so
  early stopping can kill a late bloomer, which is the cost a benchmark must show;
- every logged value carries measurement noise, and a few runs diverge to NaN (a high
  learning rate blowing up), which rules must treat as the worst value.
"""

from __future__ import annotations

import math
import random

# Converged losses lie in [FLOOR, FLOOR + SPREAD]: the spread between configurations is what
# a search can win.
FLOOR = 0.1
SPREAD = 0.5
# Losses start around START (+ up to START_JITTER): an untrained model is equally bad everywhere.
START = 1.0
START_JITTER = 0.3
# Time constant of the decay, as a fraction of the run's length: 2% is a configuration that is
# nearly done after a tenth of its iterations; 60% one still improving at the end.
FASTEST, SLOWEST = 0.02, 0.6
# How strongly slowness goes with a better final loss (0: independent, 1: fully).
SLOW_IS_GOOD = 0.4
# Relative noise of each logged value (validation loss on a finite validation set).
NOISE = 0.03
# Share of configurations that diverge (to NaN) somewhere in their second half or earlier.
DIVERGE_PROBABILITY = 0.03


def curve(seed: int, n_steps: int) -> list[float]:
    """The loss logged at iterations 1..n_steps by configuration ``seed``; the same seed and
    length give the same curve."""
    rng = random.Random(seed)
    quality = rng.random()  # 0 best, 1 worst
    final = FLOOR + SPREAD * quality
    # Slowness in [0, 1]: partly "good configurations are slow", partly independent.
    slowness = SLOW_IS_GOOD * (1.0 - quality) + (1.0 - SLOW_IS_GOOD) * rng.random()
    tau = n_steps * FASTEST * (SLOWEST / FASTEST) ** slowness  # log-uniform between the two
    start = START + START_JITTER * rng.random()
    diverge_at = (rng.randrange(1, n_steps + 1) if rng.random() < DIVERGE_PROBABILITY
                  else n_steps + 1)
    values = []
    for t in range(1, n_steps + 1):
        if t >= diverge_at:
            values.append(math.nan)
            continue
        clean = final + (start - final) * math.exp(-t / tau)
        values.append(clean * (1.0 + NOISE * rng.gauss(0.0, 1.0)))
    return values


def final_value(seed: int, n_steps: int) -> float:
    """What the configuration would end at if never stopped (NaN as +inf: worst)."""
    last = curve(seed, n_steps)[-1]
    return math.inf if math.isnan(last) else last
