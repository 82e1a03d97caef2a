"""The unit-cube encoding that model-based search works in.

Every searchable parameter becomes one or more columns in [0, 1]:

1. A numeric parameter (uniform, int, quantised, log, inv-log, normal, beta, ...) becomes one
   column ``u = cdf(param, value)``: its prior CDF. This *warps* the input by the parameter's
   distribution — ``log_uniform_values`` becomes linear in ``log(value)``, a normal prior
   stretches its centre — so a stationary kernel on ``u`` matches how the user said the
   parameter should be explored. Decoding is ``ppf(param, u)``, which also rounds ints and
   quantised values onto their support ("snapping").
2. A categorical parameter with ``m`` values becomes ``m`` one-hot columns, so no order is
   imposed on the values (W&B's engine puts them on one ordinal axis). Decoding takes the
   largest column. A value that is not among ``values`` encodes as all zeros.
3. Constants take no column; they are added back when decoding.

The maths is in ``sweepd.coordinator.config.distributions``; this module only arranges
columns. Points are decoded to plain ``{path: value}`` mappings.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..config import distributions as dist
from ..config.model import Parameter, ParamPath, Point, Value

FloatArray = NDArray[np.float64]

# Decoding clips u into [U_EPS, 1 − U_EPS] so that unbounded priors (normal, log-normal) map to
# finite values (the 1e-9 quantile of a normal is −6σ) and bounded ones stay inside the range.
U_EPS = 1e-9
# A parameter missing from a run (e.g. logged by an older config) is placed at the prior median.
MISSING_U = 0.5


@dataclass(frozen=True)
class Column:
    """Where one free parameter lives in the encoded vector."""

    param: Parameter
    start: int
    stop: int
    categorical: bool
    discrete: bool
    # Smallest move in u that reaches another value (1/support size for ints and quantised
    # numerics; 0 when continuous): local search steps are never shorter.
    min_step: float = 0.0


@dataclass(frozen=True)
class Encoding:
    """Column layout of a search space (see the module docstring)."""

    columns: tuple[Column, ...]
    constants: tuple[Parameter, ...]
    dim: int

    @property
    def all_discrete(self) -> bool:
        """True when every free parameter has a countable support (dedup applies)."""
        return all(c.discrete for c in self.columns)

    def support_product(self) -> int | None:
        """Number of distinct points, or None if infinite / unknown."""
        total = 1
        for c in self.columns:
            size = dist.support_size(c.param)
            if size is None:
                return None
            total *= size
        return total

    def numeric_mask(self) -> NDArray[np.bool_]:
        mask = np.zeros(self.dim, dtype=bool)
        for c in self.columns:
            if not c.categorical:
                mask[c.start] = True
        return mask

    def encode(self, points: Sequence[Point]) -> FloatArray:
        """Encode points (n × dim). Values outside the support are clipped into [0, 1]."""
        out = np.zeros((len(points), self.dim))
        for c in self.columns:
            path = c.param.path
            memo: dict[str, Any] = {}
            if c.categorical:
                idx = _category_indices(c.param, points, path)
                rows = np.nonzero(idx >= 0)[0]
                out[rows, c.start + idx[rows]] = 1.0
                continue
            fast = _fast_cdf(c.param, [point.get(path) for point in points])
            if fast is not None:
                out[:, c.start] = fast
                continue
            for i, point in enumerate(points):
                out[i, c.start] = _cdf_memo(c.param, point, path, memo)
        return out

    def decode(self, row: FloatArray) -> dict[ParamPath, Value]:
        """Decode one row to a point, snapping every value onto its parameter's support."""
        point: dict[ParamPath, Value] = {p.path: p.value for p in self.constants}
        for c in self.columns:
            if c.categorical:
                values = c.param.values or ()
                point[c.param.path] = values[int(np.argmax(row[c.start : c.stop]))]
            else:
                # Python min/max: np.clip on a scalar costs ~100× more, and decode runs
                # per candidate row.
                u = min(max(float(row[c.start]), U_EPS), 1.0 - U_EPS)
                point[c.param.path] = dist.ppf(c.param, u)
        return point

    def snap(self, rows: FloatArray) -> tuple[FloatArray, list[dict[ParamPath, Value]]]:
        """Decode rows and re-encode them: the encodings of the points actually suggested."""
        points = [self.decode(r) for r in rows]
        return self.encode(points), points

    def sample(self, rng: np.random.Generator, n: int, box: FloatArray | None = None) -> FloatArray:
        """``n`` random encoded points: numeric u uniform (within ``box`` = (2, dim) lower and
        upper bounds if given), categoricals one-hot with uniformly drawn values."""
        out = np.zeros((n, self.dim))
        for c in self.columns:
            if c.categorical:
                idx = rng.integers(0, c.stop - c.start, size=n)
                out[np.arange(n), c.start + idx] = 1.0
            else:
                lo, hi = (0.0, 1.0) if box is None else (box[0, c.start], box[1, c.start])
                out[:, c.start] = lo + (hi - lo) * rng.random(n)
        return out

    def perturb(
        self,
        rng: np.random.Generator,
        centres: FloatArray,
        scale: float,
        box: FloatArray | None = None,
    ) -> FloatArray:
        """One random neighbour per row of ``centres``.

        Each parameter is changed with probability ``max(PERTURB_MIN_PROB, 1/k)`` (k free
        parameters; at least one is always changed): numeric columns by a Gaussian step of
        ``scale`` (at least one value's width for ints and quantised values; reflected into the
        box), categoricals by a uniformly drawn other value.
        """
        n = centres.shape[0]
        k = len(self.columns)
        out = centres.copy()
        prob = max(PERTURB_MIN_PROB, 1.0 / max(k, 1))
        change = rng.random((n, k)) < prob
        forced = rng.integers(0, max(k, 1), size=n)
        change[np.arange(n), forced] = True
        lo = np.zeros(self.dim) if box is None else box[0]
        hi = np.ones(self.dim) if box is None else box[1]
        for j, c in enumerate(self.columns):
            rows = np.nonzero(change[:, j])[0]
            if rows.size == 0:
                continue
            if c.categorical:
                m = c.stop - c.start
                if m < 2:
                    continue
                cur = np.argmax(out[rows, c.start : c.stop], axis=1)
                new = (cur + rng.integers(1, m, size=rows.size)) % m
                out[rows, c.start : c.stop] = 0.0
                out[rows, c.start + new] = 1.0
            else:
                col = c.start
                step_scale = max(scale, c.min_step)
                step = out[rows, col] + step_scale * rng.standard_normal(rows.size)
                out[rows, col] = _reflect(step, lo[col], hi[col])
        return out


# Probability of changing each parameter in a local perturbation (at least 1/k): a few
# coordinates at a time, as in TuRBO's perturbation masks, keeps neighbours close in high d.
PERTURB_MIN_PROB = 0.2


def _reflect(x: FloatArray, lo: float, hi: float) -> FloatArray:
    width = max(hi - lo, 1e-12)
    y = np.mod(x - lo, 2 * width)
    y = np.where(y > width, 2 * width - y, y)
    return np.asarray(lo + y, dtype=np.float64)


# Distributions whose CDF is affine in x or in log(x) (with W&B's bounds): encoded in one
# vectorised step. The result equals ``distributions.cdf`` (a unit test checks it); every other
# distribution goes through ``distributions.cdf`` value by value.
_LINEAR = frozenset({"uniform", "q_uniform"})
_LOG_VALUES = frozenset({"log_uniform_values", "q_log_uniform_values"})
_LOG_EXPONENTS = frozenset({"log_uniform", "q_log_uniform"})


def _fast_cdf(param: Parameter, values: Sequence[Value]) -> FloatArray | None:
    """Vectorised ``cdf`` for the uniform, log-uniform and int-uniform families, or None."""
    d = param.distribution
    if param.min is None or param.max is None:
        return None
    if not (d in _LINEAR or d in _LOG_VALUES or d in _LOG_EXPONENTS or d == "int_uniform"):
        return None
    try:
        x = np.array([np.nan if v is None else v for v in values], dtype=np.float64)
    except (TypeError, ValueError):
        return None
    lo, hi = float(param.min), float(param.max)
    with np.errstate(all="ignore"):
        if d == "int_uniform":
            u = (np.round(x) - lo + 0.5) / (hi - lo + 1.0)
        elif d in _LINEAR:
            u = (x - lo) / (hi - lo) if hi > lo else np.full_like(x, 0.5)
        else:
            t = np.where(x > 0, np.log(np.where(x > 0, x, 1.0)), -np.inf)
            a, b = (math.log(lo), math.log(hi)) if d in _LOG_VALUES else (lo, hi)
            u = (t - a) / (b - a) if b > a else np.full_like(x, 0.5)
    u = np.where(np.isnan(x), MISSING_U, u)
    return np.asarray(np.clip(np.nan_to_num(u, nan=MISSING_U), 0.0, 1.0), dtype=np.float64)


def _category_indices(
    param: Parameter, points: Sequence[Point], path: ParamPath
) -> NDArray[np.intp]:
    """Index of each point's value among the categorical's values (−1: missing/unknown),
    looked up once per distinct ``repr(value)`` (values repeat across runs)."""
    keys = [repr(point[path]) if path in point else None for point in points]
    by_key: dict[str | None, Value] = {}
    for key, point in zip(keys, points, strict=True):
        if key is not None and key not in by_key:
            by_key[key] = point[path]
    lookup: dict[str | None, int] = {None: -1}
    for key, value in by_key.items():
        found = dist.index_of(param, value)
        lookup[key] = -1 if found is None else found
    return np.fromiter((lookup[k] for k in keys), dtype=np.intp, count=len(keys))


def _cdf_memo(param: Parameter, point: Point, path: ParamPath, memo: dict[str, Any]) -> float:
    """``cdf(param, value)`` for the point's value, memoised on ``repr(value)`` within one
    encode call (discrete values repeat across runs)."""
    if path not in point:
        return MISSING_U
    value = point[path]
    key = repr(value)
    u: float | None = memo.get(key)
    if u is None:
        try:
            u = float(dist.cdf(param, value))
        except (TypeError, ValueError, KeyError, IndexError, OverflowError):
            u = MISSING_U
        if not np.isfinite(u):
            u = MISSING_U
        u = min(max(u, 0.0), 1.0)
        memo[key] = u
    return u


def build_encoding(parameters: Sequence[Parameter]) -> Encoding:
    """Lay out the columns for ``parameters`` (constants take none)."""
    columns: list[Column] = []
    constants: list[Parameter] = []
    start = 0
    for p in parameters:
        if p.distribution == "constant":
            constants.append(p)
            continue
        categorical = not dist.is_numeric(p)
        width = len(p.values or ()) if categorical else 1
        if categorical and width == 0:
            constants.append(p)
            continue
        discrete = bool(dist.is_discrete(p))
        size = dist.support_size(p) if discrete and not categorical else None
        min_step = 1.0 / size if size else 0.0
        columns.append(Column(p, start, start + width, categorical, discrete, min_step))
        start += width
    return Encoding(columns=tuple(columns), constants=tuple(constants), dim=start)


def row_keys(rows: FloatArray) -> list[bytes]:
    """Hashable identities of encoded points (for dedup): the rows rounded to 1e-9."""
    rounded = np.round(rows, 9) + 0.0  # + 0.0 turns -0.0 into 0.0
    return [r.tobytes() for r in rounded]
