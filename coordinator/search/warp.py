"""The output warp of ``method: bayes``: y → standardise → Yeo-Johnson(λ) → standardise.

The GP (``gp.py``) expects roughly Gaussian, unit-variance targets; losses are often skewed
(a long tail of diverged runs). ``fit_ywarp`` picks the maximum-likelihood λ on a fixed grid
and returns a ``YWarp`` whose ``forward`` maps observations into model units and whose
``inverse`` maps predictions back (the transform is monotone, so an inverted mean is the
predictive median). Pure numpy; no state.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

FloatArray = NDArray[np.float64]


@dataclass(frozen=True)
class YWarp:
    """y → standardise → Yeo-Johnson(λ) → standardise, and its inverse."""

    mean0: float
    std0: float
    lam: float
    mean1: float
    std1: float
    # The observed range (internal minimisation units), to tell an extrapolation from a
    # prediction.
    y_lo: float = -math.inf
    y_hi: float = math.inf

    def forward(self, y: FloatArray) -> FloatArray:
        z = (y - self.mean0) / self.std0
        t = _yeojohnson(z, np.array([self.lam]))[0]
        return (t - self.mean1) / self.std1

    def inverse(self, w: FloatArray) -> FloatArray:
        t = w * self.std1 + self.mean1
        return _inv_yeojohnson(t, self.lam) * self.std0 + self.mean0


def fit_ywarp(y: FloatArray) -> YWarp:
    mean0 = float(np.mean(y))
    std0 = float(np.std(y)) or 1.0
    z = (y - mean0) / std0
    lam = _yeojohnson_lambda(z) if np.ptp(z) > 0 else 1.0
    t = _yeojohnson(z, np.array([lam]))[0]
    mean1 = float(np.mean(t))
    std1 = float(np.std(t)) or 1.0
    return YWarp(mean0, std0, lam, mean1, std1, float(np.min(y)), float(np.max(y)))


# λ is chosen on this grid (a step of 0.1 is finer than the fit can tell apart; the grid is
# evaluated in one vectorised step, ~0.5 ms) within a range where the transform and its
# inverse stay well conditioned.
YJ_LAMBDA_GRID = np.round(np.arange(-2.0, 4.0 + 1e-9, 0.1), 10)


def _yeojohnson(z: FloatArray, lam: FloatArray) -> FloatArray:
    """Yeo-Johnson transform of ``z`` (n,) for each λ in ``lam`` (L,) → (L, n).

    z ≥ 0: ((1+z)^λ − 1)/λ (log1p(z) at λ = 0); z < 0: −((1−z)^(2−λ) − 1)/(2−λ)
    (−log1p(−z) at λ = 2), written with expm1/log1p for accuracy.
    """
    lam = lam[:, None]
    a = np.log1p(np.abs(z))[None, :]
    pos = z >= 0
    with np.errstate(all="ignore"):
        lp = np.where(np.abs(lam) < 1e-12, 1.0, lam)
        tp = np.where(np.abs(lam) < 1e-12, a, np.expm1(lp * a) / lp)
        ln = np.where(np.abs(2.0 - lam) < 1e-12, 1.0, 2.0 - lam)
        tn = np.where(np.abs(2.0 - lam) < 1e-12, -a, -np.expm1(ln * a) / ln)
    return np.asarray(np.where(pos[None, :], tp, tn), dtype=np.float64)


def _yeojohnson_lambda(z: FloatArray) -> float:
    """Maximum-likelihood Yeo-Johnson λ for ``z`` over ``YJ_LAMBDA_GRID``: the profile
    log-likelihood −n/2·log var(t_λ) + (λ−1)·Σ sign(z)·log1p(|z|)."""
    n = z.size
    jac = float(np.sum(np.sign(z) * np.log1p(np.abs(z))))
    t = _yeojohnson(z, YJ_LAMBDA_GRID)
    with np.errstate(all="ignore"):
        var = np.var(t, axis=1)
        llf = -0.5 * n * np.log(var) + (YJ_LAMBDA_GRID - 1.0) * jac
    llf = np.where(np.isfinite(llf) & (var > 0), llf, -np.inf)
    return float(YJ_LAMBDA_GRID[int(np.argmax(llf))]) if np.isfinite(np.max(llf)) else 1.0


def _inv_yeojohnson(t: FloatArray, lam: float) -> FloatArray:
    t = np.asarray(t, dtype=np.float64)
    out = np.empty_like(t)
    pos = t >= 0
    if abs(lam) < 1e-8:
        out[pos] = np.expm1(np.minimum(t[pos], 700.0))
    else:
        base = np.maximum(lam * t[pos] + 1.0, 1e-12)
        out[pos] = base ** (1.0 / lam) - 1.0
    neg = ~pos
    if abs(lam - 2.0) < 1e-8:
        out[neg] = -np.expm1(np.minimum(-t[neg], 700.0))
    else:
        base = np.maximum(1.0 - (2.0 - lam) * t[neg], 1e-12)
        out[neg] = 1.0 - base ** (1.0 / (2.0 - lam))
    return out
