"""The acquisition of ``method: bayes``: log expected improvement, and its maximisation over
the encoded space (random and local candidates, shrinking local search, bound projections;
step 8 of ``bayes.py``). Pure functions of a fitted GP posterior and an rng.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import scipy.special
from numpy.typing import NDArray

from . import gp
from .encoding import Encoding

FloatArray = NDArray[np.float64]

# The local region is the bounding box of the local runs, widened by this fraction of its
# width on each side (so the incumbent at the edge can still move outwards).
BOX_MARGIN = 0.1

# Acquisition search sizes: random candidates, perturbations of the best observed points,
# then refinement rounds of local search with shrinking steps (in unit-cube units).
N_RANDOM = 512
N_CENTRES = 5
N_LOCAL = 512
LOCAL_SCALE = 0.1
REFINE_SCALES = (0.05, 0.02, 0.005, 0.001)
REFINE_TOP = 8
REFINE_PER_CENTRE = 48
# Candidates this close to a bound (unit-cube units) are also tried on it, all such
# coordinates at once (see bound_projections).
BOUND_NEAR = 0.05
# How far below every uncertain point a known one ranks (see bayes.MIN_STD_FRACTION).
KNOWN_POINT_PENALTY = 1e3


# An acquisition function: encoded candidates (m × dim) → scores (m,), larger is better.
Acq = Callable[[FloatArray], FloatArray]


def score(mean: FloatArray, std: FloatArray, f_best: float, min_std: float) -> FloatArray:
    """log EI of candidates with the model's ``mean`` and ``std`` there. A point the model
    already knows (``std`` below ``min_std``) teaches nothing: it ranks below every point that
    is still uncertain."""
    ei = log_ei(mean, std, f_best)
    return np.asarray(np.where(std >= min_std, ei, ei - KNOWN_POINT_PENALTY), dtype=np.float64)


def expected_improvement(post: gp.GPPosterior, f_best: float, min_std: float) -> Acq:
    """The acquisition function of ``post``: ``score`` at the candidates' prediction."""
    def acq(c: FloatArray) -> FloatArray:
        m, s = post.predict(c)
        return score(m, s, f_best, min_std)

    return acq


def box_around(enc: Encoding, x: FloatArray) -> FloatArray:
    """The bounding box of ``x``, widened by BOX_MARGIN on each side, whole along categorical
    columns."""
    lo = x.min(axis=0)
    hi = x.max(axis=0)
    margin = BOX_MARGIN * (hi - lo)
    box = np.vstack([np.clip(lo - margin, 0.0, 1.0), np.clip(hi + margin, 0.0, 1.0)])
    cat = ~enc.numeric_mask()
    box[0, cat], box[1, cat] = 0.0, 1.0
    return box


def optimise(
    enc: Encoding,
    acq: Acq,
    x_obs: FloatArray,
    mu_obs: FloatArray,
    box: FloatArray | None,
    rng: np.random.Generator,
) -> tuple[FloatArray, FloatArray]:
    """Random + local candidates, then shrinking local search; returns all scored candidates."""
    width = 1.0 if box is None else float(np.mean(box[1] - box[0]))
    # Inside a trust region (long sweeps) the region is small: half the candidates suffice.
    share = 1 if box is None else 2
    n_local = N_LOCAL // share
    centres = x_obs[np.argsort(mu_obs, kind="stable")[:N_CENTRES]]
    local = enc.perturb(
        rng,
        np.repeat(centres, n_local // len(centres) + 1, axis=0)[:n_local],
        LOCAL_SCALE * width,
        box,
    )
    # Every candidate is rounded before it is scored (see Encoding.round_discrete).
    cand = enc.round_discrete(np.vstack([enc.sample(rng, N_RANDOM // share, box), local]))
    score = acq(cand)
    for scale in REFINE_SCALES:
        top = cand[np.argsort(-score, kind="stable")[:REFINE_TOP]]
        per_centre = REFINE_PER_CENTRE // share
        new = enc.round_discrete(
            enc.perturb(rng, np.repeat(top, per_centre, axis=0), scale * width, box)
        )
        cand = np.vstack([cand, new])
        score = np.concatenate([score, acq(new)])
    top = cand[np.argsort(-score, kind="stable")[:REFINE_TOP]]
    edges = enc.round_discrete(bound_projections(enc, top, box))
    return np.vstack([cand, edges]), np.concatenate([score, acq(edges)])


def bound_projections(enc: Encoding, top: FloatArray, box: FloatArray | None) -> FloatArray:
    """Copies of the best candidates with coordinates near a bound of the space moved onto it:
    each such coordinate alone, and all of them at once (a corner, when all are near).

    Random and Gaussian steps reach a bound with probability zero, so without these an optimum
    on a face or a corner of the box (a learning rate best at its maximum, a linear trend) is
    approached but never measured: the issue's linear slope ended 10^-2.3 from its corner.
    Only coordinates already within ``BOUND_NEAR`` move: projecting far ones as well sent runs
    to the bounds wherever the model extrapolated a trend (bench: Ackley-5 median regret
    1.9 -> 8.6, Hartmann-6 0.002 -> 0.2).
    """
    numeric = np.nonzero(enc.numeric_mask())[0]
    if numeric.size == 0 or top.shape[0] == 0:
        return np.zeros((0, enc.dim))
    lo = np.zeros(enc.dim) if box is None else box[0]
    hi = np.ones(enc.dim) if box is None else box[1]
    out = []
    for row in top:
        near = row.copy()
        moved = 0
        for j in numeric:
            # Only bounds of the space itself: a trust region's own edges are not special.
            if row[j] <= BOUND_NEAR and lo[j] <= 0.0:
                target = 0.0
            elif row[j] >= 1.0 - BOUND_NEAR and hi[j] >= 1.0:
                target = 1.0
            else:
                continue
            single = row.copy()
            single[j] = target
            out.append(single)
            near[j] = target
            moved += 1
        if moved > 1:
            out.append(near)
    if not out:
        return np.zeros((0, enc.dim))
    return np.asarray(out, dtype=np.float64)


# Below this standardised improvement the erfcx form of log EI loses precision and the
# asymptotic expansion h(z) ≈ φ(z)/z² · (1 − 3/z² + 15/z⁴) is used instead.
LOG_EI_ASYMPTOTIC_Z = -30.0
# Above this the plain form φ(z) + zΦ(z) has no cancellation (and erfcx would overflow).
LOG_EI_DIRECT_Z = -1.0
_LOG_SQRT_2PI = 0.5 * math.log(2 * math.pi)


def log_ei(mean: FloatArray, std: FloatArray, f_best: float) -> FloatArray:
    """log of expected improvement below ``f_best``, stable far into the tail.

    EI = σ·h(z) with z = (f_best − μ)/σ and h(z) = φ(z) + zΦ(z); log h is computed in three
    ranges so that it stays finite and ordered even where EI underflows to 0.
    """
    z = np.asarray((f_best - mean) / std, dtype=np.float64)
    out = np.empty_like(z)
    direct = z >= LOG_EI_DIRECT_Z
    zd = z[direct]
    h = np.exp(-0.5 * zd * zd - _LOG_SQRT_2PI) + zd * scipy.special.ndtr(zd)
    out[direct] = np.log(np.maximum(h, 1e-300))
    mid = (~direct) & (z > LOG_EI_ASYMPTOTIC_Z)
    zm = z[mid]
    bracket = 1.0 + zm * math.sqrt(math.pi / 2) * scipy.special.erfcx(-zm / math.sqrt(2))
    out[mid] = -0.5 * zm * zm - _LOG_SQRT_2PI + np.log(np.maximum(bracket, 1e-300))
    tail = z <= LOG_EI_ASYMPTOTIC_Z
    zt = z[tail]
    zt2 = zt * zt
    out[tail] = -0.5 * zt2 - _LOG_SQRT_2PI - np.log(zt2) + np.log1p(-3.0 / zt2 + 15.0 / zt2**2)
    return np.asarray(out + np.log(std), dtype=np.float64)
