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
import weakref
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..config import distributions as dist
from ..config.model import Parameter, ParamPath, Point, Value

FloatArray = NDArray[np.float64]

# Decoding clips u into [U_EPS, 1 − U_EPS] for unbounded priors (normal, log-normal) so that
# they map to finite values (the 1e-9 quantile of a normal is −6σ). Bounded ones decode u = 0
# and u = 1 to their exact bounds: an optimum on a bound is then measured exactly (with the
# clip, a linear slope's corner was missed by 1e-9 of the range).
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
    # Discrete numerics: the encodings of the support's values, sorted (see ``round_discrete``);
    # None for ints (a closed form) and for supports too large to be worth rounding.
    centres: FloatArray | None = field(default=None, compare=False, repr=False)
    # How far inside (0, 1) decoding clips u (see U_EPS).
    u_eps: float = 0.0


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

    def encode_trials(self, owner: object, trials: Sequence[Any]) -> FloatArray:
        """``encode`` of the trials' points, reusing the rows of trials already encoded by an
        earlier call with the same ``owner`` (the sweep's config object, from which this
        encoding was built; see ``_RowCache``)."""
        return _ROW_CACHE.encode(self, owner, trials)

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
                u = min(max(float(row[c.start]), c.u_eps), 1.0 - c.u_eps)
                value = dist.ppf(c.param, u)
                if c.param.distribution in _VALUE_BOUNDED:
                    # exp(log(min)) can land a hair outside [min, max]; keep to the range.
                    value = min(max(value, c.param.min), c.param.max)
                point[c.param.path] = value
        return point

    def round_discrete(self, rows: FloatArray) -> FloatArray:
        """``rows`` with every int and quantised column moved to the encoding of the value it
        decodes to (the centre of its cell), in one vectorised step per column.

        The acquisition must score the points that will actually be suggested: scored in the
        relaxed space, a candidate between two cells (or past the last cell's centre, towards
        the bound) borrows uncertainty and extrapolated improvement that no value has, and
        rounding it afterwards re-measures a point the model already knows. That is how a sweep
        over an int got stuck at the bound (issue #12).
        """
        out = rows.copy()
        for c in self.columns:
            if c.categorical or not c.discrete:
                continue
            col = out[:, c.start]
            if c.param.distribution == "int_uniform":
                n = round(1.0 / c.min_step) if c.min_step > 0 else 1
                # ppf's own rule: value index floor(u * n), the last cell closed at u = 1.
                k = np.clip(np.floor(col * n), 0, n - 1)
                out[:, c.start] = (k + 0.5) / n
            elif c.centres is not None and c.centres.size > 0:
                mids = 0.5 * (c.centres[1:] + c.centres[:-1])
                out[:, c.start] = c.centres[np.searchsorted(mids, col)]
        return out

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


# owner (weakly), the trials of the last call (strongly), their ids, their rows
_CacheEntry = tuple["weakref.ref[Any]", list[Any], NDArray[np.uint64], FloatArray]


class _RowCache:
    """Encoded rows of trials, remembered between suggestions.

    The coordinator passes the same ``Trial`` objects, in creation order, on every call (it
    rebuilds one only when its run changes), so a long sweep's history need not be encoded
    again for each suggestion: at 5000 runs encoding was the largest part of a suggestion's
    time. For each owner (the sweep's config object, checked through a weak reference) the
    last call's trial list is kept, with strong references, beside its rows: while a trial
    is referenced here no other object can have its id, so a position whose id is unchanged
    holds the very same trial, and its row is reused. Any other position is encoded afresh,
    so a result never differs from encoding everything.
    """

    def __init__(self) -> None:
        self._entries: dict[int, _CacheEntry] = {}

    def encode(self, enc: Encoding, owner: object, trials: Sequence[Any]) -> FloatArray:
        n = len(trials)
        ids = np.fromiter(map(id, trials), dtype=np.uint64, count=n)
        out = np.empty((n, enc.dim))
        same = np.zeros(n, dtype=bool)
        entry = self._entries.get(id(owner))
        if entry is not None and entry[0]() is owner and entry[3].shape[1] == enc.dim:
            old_ids, old_rows = entry[2], entry[3]
            m = min(n, old_ids.size)
            same[:m] = old_ids[:m] == ids[:m]
            out[:m][same[:m]] = old_rows[:m][same[:m]]
        missing = np.nonzero(~same)[0]
        if missing.size:
            out[missing] = enc.encode([trials[int(i)].params for i in missing])
        try:
            ref = weakref.ref(owner)
        except TypeError:  # an owner without weak references: nothing is kept
            return out
        # Owners that are gone leave with their trials; past ROW_CACHE_SWEEPS, the sweeps
        # asked least recently leave too (their next suggestion encodes afresh).
        self._entries = {k: v for k, v in self._entries.items() if v[0]() is not None}
        self._entries.pop(id(owner), None)
        while len(self._entries) >= ROW_CACHE_SWEEPS:
            del self._entries[next(iter(self._entries))]
        self._entries[id(owner)] = (ref, list(trials), ids, out.copy())
        return out


# Sweeps whose rows are kept: a coordinator running more bayes sweeps than this at once
# re-encodes some histories (what every call did before the cache), and memory stays bounded
# (a 5000-run sweep's rows are ~0.5 MB).
ROW_CACHE_SWEEPS = 32


_ROW_CACHE = _RowCache()


# Probability of changing each parameter in a local perturbation (at least 1/k): a few
# coordinates at a time, as in TuRBO's perturbation masks, keeps neighbours close in high d.
PERTURB_MIN_PROB = 0.2


def _reflect(x: FloatArray, lo: float, hi: float) -> FloatArray:
    width = max(hi - lo, 1e-12)
    y = np.mod(x - lo, 2 * width)
    y = np.where(y > width, 2 * width - y, y)
    return np.asarray(lo + y, dtype=np.float64)


# Continuous distributions whose min and max bound the values themselves.
_VALUE_BOUNDED = frozenset({"uniform", "log_uniform_values", "inv_log_uniform_values"})

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
        centres = _support_centres(p, size) if size and p.distribution != "int_uniform" else None
        u_eps = U_EPS if p.distribution in dist.UNBOUNDED else 0.0
        columns.append(
            Column(
                p,
                start,
                start + width,
                categorical,
                discrete,
                min_step,
                centres=centres,
                u_eps=u_eps,
            )
        )
        start += width
    return Encoding(columns=tuple(columns), constants=tuple(constants), dim=start)


# Quantised supports larger than this are not rounded during the acquisition search: their
# cells are narrower than its finest step, and tabulating them would cost more than it saves.
ROUND_TABLE_MAX = 2048
# ... and for a distribution without a vectorised CDF (q_beta: one scipy call per value).
ROUND_TABLE_MAX_SLOW = 128


def _support_centres(param: Parameter, size: int) -> FloatArray | None:
    """Sorted encodings of a bounded quantised parameter's values (None when too many)."""
    if size > ROUND_TABLE_MAX:
        return None
    values = dist.enumerate_support(param)
    fast = _fast_cdf(param, values)
    if fast is not None:
        u = fast
    elif size <= ROUND_TABLE_MAX_SLOW:
        u = np.array([_cdf_memo(param, {param.path: v}, param.path, {}) for v in values])
    else:
        return None
    return np.unique(u)


def row_keys(rows: FloatArray) -> list[bytes]:
    """Hashable identities of encoded points (for dedup): the rows rounded to 1e-9."""
    rounded = np.round(rows, 9) + 0.0  # + 0.0 turns -0.0 into 0.0
    return [r.tobytes() for r in rounded]


class SeenRows:
    """The set of encoded rows already taken, answering ``key in seen`` for keys made by
    ``row_keys``, without hashing every row of a long sweep on each call.

    Rows are rounded as ``row_keys`` rounds them and reduced to one number each (a fixed random
    projection); a query finds the rows with its number by binary search and compares them
    exactly, so the answer is the same as membership in ``set(row_keys(rows))``.
    """

    def __init__(self, rows: FloatArray) -> None:
        self._rows = np.round(rows, 9) + 0.0
        self._proj = _projection(rows.shape[1])
        fp = self._fingerprint(self._rows)
        self._order = np.argsort(fp, kind="stable")
        self._fp = fp[self._order]

    def __contains__(self, key: object) -> bool:
        if not isinstance(key, bytes):
            return False
        row = np.frombuffer(key, dtype=np.float64)
        if row.size != self._rows.shape[1]:
            return False
        fp = float(self._fingerprint(row[None, :])[0])
        lo = int(np.searchsorted(self._fp, fp, side="left"))
        hi = int(np.searchsorted(self._fp, fp, side="right"))
        return bool(np.any(np.all(self._rows[self._order[lo:hi]] == row, axis=1)))


    def _fingerprint(self, rows: FloatArray) -> FloatArray:
        # Column by column, so that one row and many rows round alike (a matrix product may
        # sum in another order for each shape, and the numbers must match exactly).
        fp = np.zeros(rows.shape[0])
        for j in range(rows.shape[1]):
            fp += rows[:, j] * self._proj[j]
        return fp


def _projection(dim: int) -> FloatArray:
    # Fixed (not from the caller's rng: membership must not consume or depend on it).
    return np.random.default_rng(12).standard_normal(dim)

