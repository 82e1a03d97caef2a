"""The 18 W&B parameter distributions: sampling, inverse sampling and supports.

W&B samples every parameter as ``ppf(U)`` with ``U ~ Uniform(0, 1)``; this module gives the same
``ppf`` for each distribution, its inverse ``cdf`` (used by model-based search to put points on
the unit cube), and the facts search methods need about each support (finite? how large? which
values would grid search walk?).

Semantics, per distribution (``min``/``max`` of the deprecated base-e forms are exponents):

- ``constant``: ``value``. ``categorical``: ``values[floor(u * n)]``.
  ``categorical_w_probabilities``: the value whose cumulative-probability interval holds ``u``.
- ``int_uniform``: ``min + floor(u * (max - min + 1))``, so ``max`` is included.
- ``uniform``: ``min + u * (max - min)``.
- ``log_uniform``: ``exp(uniform(min, max))``; ``log_uniform_values``: ``exp(uniform(ln min,
  ln max))``; ``inv_log_uniform``: ``exp(-uniform(min, max))``; ``inv_log_uniform_values``: ``x``
  with ``ln(1/x)`` uniform on ``[ln(1/max), ln(1/min)]``. All four are increasing in ``u``.
- ``normal``: ``N(mu, sigma)``; ``log_normal``: ``exp(N(mu, sigma))``; ``beta``: ``Beta(a, b)``.
- every ``q_*`` form: the unquantised value ``x`` rounded as ``round(x / q) * q`` (half to even,
  as numpy rounds), an ``int`` when ``q`` is an ``int``.

Every number returned is a plain Python ``int`` or ``float``, never a numpy scalar, so that it
serialises to JSON and renders with ``str()`` exactly as W&B's agent would render it.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence

import numpy as np
import scipy.stats

from .model import Parameter, Value

CATEGORICAL = frozenset({"categorical", "categorical_w_probabilities"})
QUANTISED = frozenset(
    {"q_uniform", "q_log_uniform", "q_log_uniform_values", "q_normal", "q_log_normal", "q_beta"}
)
# Quantised forms whose unquantised value lies in a bounded interval: their support is finite.
BOUNDED_QUANTISED = frozenset({"q_uniform", "q_log_uniform", "q_log_uniform_values", "q_beta"})
UNBOUNDED = frozenset({"normal", "q_normal", "log_normal", "q_log_normal"})
# Distributions grid search walks (W&B's grid refuses everything else).
GRID_DISTRIBUTIONS = frozenset({"constant", "categorical", "int_uniform", "q_uniform"})

# Unbounded priors have an infinite ppf at u = 0 (and u = 1); a generator may return exactly 0.0,
# so u is clipped this far inside (0, 1): the 1e-12 quantile of a normal is about -7 sigma.
U_CLIP = 1e-12
# Relative tolerance when deciding whether a float is a multiple of q or inside a bound: values
# are produced by float arithmetic (round(x / q) * q), so exact comparison would reject them.
REL_TOL = 1e-9


class GridError(ValueError):
    """A parameter that grid search cannot enumerate (continuous, or weighted categorical)."""


# -- classification -------------------------------------------------------------------------


def is_numeric(param: Parameter) -> bool:
    """True for an ordered numeric axis: everything but ``constant`` and the categoricals."""
    return param.distribution != "constant" and param.distribution not in CATEGORICAL


def is_discrete(param: Parameter) -> bool:
    """True when the support is finite (constant, categoricals, int_uniform, bounded q forms)."""
    d = param.distribution
    return d in ("constant", "int_uniform") or d in CATEGORICAL or d in BOUNDED_QUANTISED


def support_size(param: Parameter) -> int | None:
    """The number of distinct values the distribution can produce, or ``None`` if infinite."""
    d = param.distribution
    if d == "constant":
        return 1
    if d in CATEGORICAL:
        return len(_values(param))
    if d == "int_uniform":
        return int(_num(param.max)) - int(_num(param.min)) + 1
    if d in BOUNDED_QUANTISED:
        lo, hi = _quantised_index_range(param)
        return hi - lo + 1
    return None


# -- ppf / cdf / sample ---------------------------------------------------------------------


def ppf(param: Parameter, u: float) -> Value:
    """The value at quantile ``u`` in [0, 1) of the parameter's distribution (W&B's sampler)."""
    d = param.distribution
    u = min(max(float(u), 0.0), 1.0)
    if d == "constant":
        return param.value
    if d == "categorical":
        values = _values(param)
        return values[min(math.floor(u * len(values)), len(values) - 1)]
    if d == "categorical_w_probabilities":
        values = _values(param)
        cumulative = np.cumsum(np.asarray(_probabilities(param), dtype=float))
        index = int(np.searchsorted(cumulative / cumulative[-1], u, side="right"))
        return values[min(index, len(values) - 1)]
    if d == "int_uniform":
        lo, hi = int(_num(param.min)), int(_num(param.max))
        return min(lo + math.floor(u * (hi - lo + 1)), hi)
    x = _continuous_ppf(param, u)
    if d in QUANTISED:
        return _quantise(x, _q(param))
    return x


def cdf(param: Parameter, value: Value) -> float:
    """The quantile of ``value``: the inverse of :func:`ppf`, clipped to [0, 1].

    For ``int_uniform`` and the categoricals the result is the middle of the value's quantile
    interval, so ``ppf(param, cdf(param, v)) == v``; a categorical value that is not among
    ``values`` maps to 0.5 and a constant always maps to 0.5.
    """
    d = param.distribution
    if d == "constant":
        return 0.5
    if d in CATEGORICAL:
        index = index_of(param, value)
        if index is None:
            return 0.5
        if d == "categorical":
            return (index + 0.5) / len(_values(param))
        probs = np.asarray(_probabilities(param), dtype=float)
        probs = probs / probs.sum()
        return float(probs[:index].sum() + probs[index] / 2)
    x = float(value)
    if d == "int_uniform":
        lo, hi = int(_num(param.min)), int(_num(param.max))
        return _clip01((round(x) - lo + 0.5) / (hi - lo + 1))
    return _clip01(_continuous_cdf(param, x))


def sample(param: Parameter, rng: np.random.Generator) -> Value:
    """One W&B-style draw: ``ppf(param, U)`` with ``U`` from ``rng``."""
    return ppf(param, float(rng.random()))


# -- supports -------------------------------------------------------------------------------


def in_support(param: Parameter, value: Value) -> bool:
    """Whether ``value`` is a value this parameter's distribution can produce."""
    d = param.distribution
    if d == "constant":
        return value_key(value) == value_key(param.value)
    if d in CATEGORICAL:
        return index_of(param, value) is not None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    if not math.isfinite(value):
        return False
    if d == "int_uniform":
        return isinstance(value, int) and int(_num(param.min)) <= value <= int(_num(param.max))
    if d in QUANTISED:
        q = _q(param)
        if isinstance(q, int) and not isinstance(value, int):
            return False
        k = value / q
        if not math.isclose(k, round(k), rel_tol=REL_TOL, abs_tol=REL_TOL):
            return False
        if d in BOUNDED_QUANTISED:
            lo, hi = _quantised_index_range(param)
            return lo <= round(k) <= hi
        return d != "q_log_normal" or value >= 0
    lo_b, hi_b = _bounds(param)
    tol = REL_TOL * max(1.0, abs(lo_b), abs(hi_b))
    return lo_b - tol <= value <= hi_b + tol


def enumerate_grid_values(param: Parameter) -> list[Value]:
    """The values W&B's grid search walks for this parameter, in order.

    ``int_uniform`` walks ``min..max`` inclusive; ``q_uniform`` walks ``min, min + q, ...``
    *excluding* ``max`` (numpy ``arange``, as W&B does), ints when min, max and q are all ints.
    Raises :class:`GridError` for any other distribution except constants and plain categoricals.
    """
    d = param.distribution
    if d == "constant":
        return [param.value]
    if d == "categorical":
        return list(_values(param))
    if d == "int_uniform":
        return list(range(int(_num(param.min)), int(_num(param.max)) + 1))
    if d == "q_uniform":
        lo, hi, q = _num(param.min), _num(param.max), _q(param)
        values = np.arange(lo, hi, q).tolist()
        if all(isinstance(v, int) for v in (lo, hi, q)):
            return [int(v) for v in values]
        return [float(v) for v in values]
    if d == "categorical_w_probabilities":
        raise GridError(
            f"grid search cannot use {param.name!r} ({d}): a grid tries every value once, so "
            "probabilities have no meaning; drop `probabilities` or use method: random"
        )
    raise GridError(
        f"grid search cannot enumerate {param.name!r} ({d}): its values are continuous; use "
        "`values: [...]`, int_uniform or q_uniform, or method: random / bayes"
    )


def grid_axis_size(param: Parameter) -> int:
    """How many values :func:`enumerate_grid_values` returns, without building the list."""
    d = param.distribution
    if d == "q_uniform":
        lo, hi, q = _num(param.min), _num(param.max), _q(param)
        return max(0, math.ceil((hi - lo) / q))
    if d in GRID_DISTRIBUTIONS:
        size = support_size(param)
        assert size is not None
        return size
    enumerate_grid_values(param)  # raises the explanatory GridError
    raise AssertionError("unreachable")


def enumerate_support(param: Parameter) -> list[Value]:
    """Every value of a finite support, as :func:`ppf` would produce it (for dedup fall-back)."""
    d = param.distribution
    if d == "constant":
        return [param.value]
    if d in CATEGORICAL:
        return list(_values(param))
    if d == "int_uniform":
        return list(range(int(_num(param.min)), int(_num(param.max)) + 1))
    if d in BOUNDED_QUANTISED:
        lo, hi = _quantised_index_range(param)
        q = _q(param)
        return [_quantise(k * q, q) for k in range(lo, hi + 1)]
    raise ValueError(f"{param.name!r} ({d}) has an infinite support")


# -- value identity -------------------------------------------------------------------------


def canonical(value: Value) -> Value:
    """``value`` normalised for identity: whole floats become ints, tuples lists, recursively.

    W&B's grid compares values after coercing whole-number floats to ints (so ``3e6`` from YAML
    and ``3000000`` match) while ``True`` stays distinct from ``1``; this mirrors that.
    """
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        f = float(value)
        if math.isfinite(f) and f.is_integer():
            return int(f)
        return f if math.isfinite(f) else repr(f)
    if isinstance(value, dict):
        return {str(k): canonical(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [canonical(v) for v in value]
    return repr(value)


def value_key(value: Value) -> str:
    """A hashable identity for any JSON-like value (see :func:`canonical`)."""
    # Fast paths for scalars (grid and random dedup key every value of every trial); they
    # produce exactly what the general json.dumps path would.
    if value is True or value is False or value is None:
        return "true" if value is True else "false" if value is False else "null"
    if type(value) is int:
        return str(value)
    if type(value) is float and math.isfinite(value):
        return str(int(value)) if value.is_integer() else repr(value)
    return json.dumps(canonical(value), sort_keys=True, separators=(",", ":"))


def index_of(param: Parameter, value: Value) -> int | None:
    """Position of ``value`` among a categorical's ``values`` (by :func:`value_key`)."""
    key = value_key(value)
    for i, v in enumerate(_values(param)):
        if value_key(v) == key:
            return i
    return None


# -- internals ------------------------------------------------------------------------------


def _continuous_ppf(param: Parameter, u: float) -> float:
    d = param.distribution
    if d in ("normal", "q_normal", "log_normal", "q_log_normal"):
        # sigma = 0 is allowed (W&B checks sigma >= 0): the prior collapses onto mu.
        z = _mu(param)
        if _sigma(param) > 0:
            z = float(scipy.stats.norm.ppf(_inner(u), loc=z, scale=_sigma(param)))
        return z if d in ("normal", "q_normal") else math.exp(z)
    if d in ("beta", "q_beta"):
        return float(scipy.stats.beta.ppf(_inner(u), _ab(param.a), _ab(param.b)))
    lo, hi = _num(param.min), _num(param.max)
    if d in ("uniform", "q_uniform"):
        return float(lo + u * (hi - lo))
    if d in ("log_uniform", "q_log_uniform"):
        return math.exp(lo + u * (hi - lo))
    if d == "log_uniform_values" or d == "q_log_uniform_values":
        return math.exp(math.log(lo) + u * (math.log(hi) - math.log(lo)))
    if d == "inv_log_uniform":
        # exp(-U(min, max)), read from the top so that the result grows with u.
        return math.exp(-(lo + (1.0 - u) * (hi - lo)))
    if d == "inv_log_uniform_values":
        a, b = math.log(1.0 / hi), math.log(1.0 / lo)
        return math.exp(-(a + (1.0 - u) * (b - a)))
    raise ValueError(f"unknown distribution {d!r}")


def _continuous_cdf(param: Parameter, x: float) -> float:
    d = param.distribution
    if d in ("normal", "q_normal", "log_normal", "q_log_normal"):
        if d in ("log_normal", "q_log_normal"):
            if x <= 0:
                return 0.0
            x = math.log(x)
        if _sigma(param) <= 0:
            return 0.5
        return float(scipy.stats.norm.cdf(x, loc=_mu(param), scale=_sigma(param)))
    if d in ("beta", "q_beta"):
        return float(scipy.stats.beta.cdf(x, _ab(param.a), _ab(param.b)))
    lo, hi = _num(param.min), _num(param.max)
    if d in ("uniform", "q_uniform"):
        return _ratio(x - lo, hi - lo)
    if x <= 0 and d not in ("uniform", "q_uniform"):
        return 0.0
    if d in ("log_uniform", "q_log_uniform"):
        return _ratio(math.log(x) - lo, hi - lo)
    if d in ("log_uniform_values", "q_log_uniform_values"):
        return _ratio(math.log(x) - math.log(lo), math.log(hi) - math.log(lo))
    if d == "inv_log_uniform":
        return 1.0 - _ratio(-math.log(x) - lo, hi - lo)
    if d == "inv_log_uniform_values":
        a, b = math.log(1.0 / hi), math.log(1.0 / lo)
        return 1.0 - _ratio(-math.log(x) - a, b - a)
    raise ValueError(f"unknown distribution {d!r}")


def _bounds(param: Parameter) -> tuple[float, float]:
    """The closed interval a continuous distribution's values lie in."""
    d = param.distribution
    if d in UNBOUNDED:
        return (0.0 if d == "log_normal" else -math.inf), math.inf
    if d == "beta":
        return 0.0, 1.0
    return _continuous_ppf(param, 0.0), _continuous_ppf(param, 1.0)


def _quantised_index_range(param: Parameter) -> tuple[int, int]:
    """Smallest and largest ``k`` such that ``k * q`` is a possible quantised value."""
    q = float(_q(param))
    if param.distribution == "q_beta":
        lo, hi = 0.0, 1.0
    else:
        lo, hi = _continuous_ppf(param, 0.0), _continuous_ppf(param, 1.0)
    return round(lo / q), round(hi / q)


def _quantise(x: float, q: float | int) -> int | float:
    quantised = float(np.round(x / q)) * q
    return int(quantised) if isinstance(q, int) else float(quantised)


def _inner(u: float) -> float:
    return min(max(u, U_CLIP), 1.0 - U_CLIP)


def _ratio(num: float, den: float) -> float:
    return _clip01(num / den) if den else 0.5


def _clip01(x: float) -> float:
    return 0.0 if not x > 0.0 else min(float(x), 1.0)


def _num(x: float | int | None) -> float | int:
    if x is None:
        raise ValueError("distribution bound missing")
    return x


def _q(param: Parameter) -> float | int:
    return 1.0 if param.q is None else param.q


def _mu(param: Parameter) -> float:
    return 0.0 if param.mu is None else float(param.mu)


def _sigma(param: Parameter) -> float:
    return 1.0 if param.sigma is None else float(param.sigma)


def _ab(x: float | None) -> float:
    return 1.0 if x is None else float(x)


def _values(param: Parameter) -> tuple[Value, ...]:
    if not param.values:
        raise ValueError(f"{param.name!r} has no values")
    return param.values


def _probabilities(param: Parameter) -> Sequence[float]:
    if param.probabilities is None:
        n = len(_values(param))
        return [1.0 / n] * n
    return param.probabilities
