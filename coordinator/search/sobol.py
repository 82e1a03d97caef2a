"""``method: sobol`` — a scrambled Sobol sequence: quasi-random, space-filling, stateless.

W&B's ``random`` draws every run independently, so small sweeps leave gaps and clumps. This
method gives run *i* of a sweep the *i*-th point of one scrambled Sobol sequence
(``scipy.stats.qmc.Sobol``), which covers the space evenly at every prefix length:

1. One coordinate per free parameter, mapped to its value by ``ppf(param, u)`` — the same
   prior warping as W&B's random search (log scale for the log forms, the prior's own shape
   for normal/beta, ints and quantised values rounded, categoricals by value index).
2. The scramble seed is a hash of the sweep's name and parameter paths, so it is the same on
   every call of one sweep (the function keeps no state) and differs between sweeps.
3. The index is the number of runs the sweep already has (any state), so parallel workers
   asking in turn get consecutive points.
4. In a discrete space a point that repeats an existing run is skipped (the sequence moves
   on); after ``MAX_SKIP`` repeats, unseen random points are tried, and only then a repeat.

``rng`` is used only for that fallback. Deterministic for the same config and trials.
"""

from __future__ import annotations

import warnings
import zlib
from collections.abc import Sequence

import numpy as np
from scipy.stats import qmc

from ..config import distributions as dist
from ..config.model import ParamPath, SweepConfig, Value
from .base import Suggestion, Trial
from .encoding import build_encoding, row_keys

# Sequence points tried past the run count before falling back to random unseen points.
MAX_SKIP = 256
# Random points tried by that fallback.
FALLBACK_SAMPLES = 256


def _seed(config: SweepConfig) -> int:
    key = repr((config.name, [p.path for p in config.parameters]))
    return zlib.crc32(key.encode())


def suggest(config: SweepConfig, trials: Sequence[Trial], rng: np.random.Generator) -> Suggestion:
    """The next point of the sweep's scrambled Sobol sequence (see the module docstring)."""
    enc = build_encoding(config.parameters)
    constants: dict[ParamPath, Value] = {p.path: p.value for p in enc.constants}
    free = [c.param for c in enc.columns]
    if not free:
        return Suggestion(params=constants, info="constant space")
    sampler = qmc.Sobol(d=len(free), scramble=True, seed=_seed(config))
    n = len(trials)
    if n:
        sampler.fast_forward(n)
    seen = set(row_keys(enc.encode([t.params for t in trials]))) if enc.all_discrete else set()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "balance properties" warning for non-2^m draws
        block = sampler.random(MAX_SKIP if enc.all_discrete else 1)
    for i, u in enumerate(block):
        point = dict(constants)
        for p, ui in zip(free, u, strict=True):
            point[p.path] = dist.ppf(p, float(ui))
        if not enc.all_discrete or row_keys(enc.encode([point]))[0] not in seen:
            return Suggestion(params=point, info=f"sobol #{n + i}")
    for _ in range(FALLBACK_SAMPLES):
        point = dict(constants)
        for p in free:
            point[p.path] = dist.sample(p, rng)
        if row_keys(enc.encode([point]))[0] not in seen:
            return Suggestion(params=point, info="sobol: random unseen point")
    return Suggestion(params=point, info="space exhausted: repeating a point")
