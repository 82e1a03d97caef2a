"""Which parameters matter: importance and correlation of each parameter with the sweep metric.

Pure functions over plain data (a list of :class:`RunPoint`), so the CLI, the dashboard and the
offline report all show the same numbers and tests run them in milliseconds.

Importance is **permutation importance measured on held-out runs**: the runs are split into K
folds; a model is fitted on the other folds, then each parameter's values among the held-out runs
are shuffled and the loss of R² is recorded. Two scikit-learn models are tried and the one that
predicts held-out runs better is used: a Gaussian process with one length-scale per input (most
hyperparameter responses are smooth, and with 40 runs a GP separates a weak effect from none
where trees cannot) and gradient-boosted trees (steps, interactions, categoricals, and sweeps
too large for a GP). Why permutation importance on held-out runs:

- impurity importance (what W&B appears to show) is computed on the training data and is
  biased toward high-cardinality parameters: a continuous parameter that does nothing gets a
  sizeable share, which is exactly the wrong answer to "can I stop tuning this?";
- fANOVA, the other standard answer, takes minutes at 10,000 runs, and it reports no fit
  quality: here the held-out R² is shown, and a low one says the ranking is not to be trusted;
- held-out folds give a spread for free, so every number comes with its standard deviation and
  the number of runs behind it.

Correlation is Spearman's rank correlation with the metric (monotone, not only linear, and
insensitive to log-scaled parameters). A categorical parameter gets one correlation per value
(that value against all others), since "the correlation of `optimizer`" has no sign.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

# Below this many usable runs a forest's ranking is mostly noise; the answer says how many more.
MIN_RUNS = 10
# Held-out folds and shuffles per fold: 5 × 4 estimates per parameter give a usable spread at
# 40 runs.
FOLDS = 5
SHUFFLES = 4
# Large sweeps are subsampled: the ranking is stable long before 2,000 runs, the cost is not.
MAX_RUNS_FITTED = 2000
# A GP costs n³ per fit: above this many runs (or this many encoded inputs) only trees are tried.
MAX_GP_RUNS = 400
MAX_GP_INPUTS = 40
# A positive numeric parameter spanning this factor or more is compared on a log scale (learning
# rates, weight decays): a GP's length-scale is meaningful only on the scale it was searched on.
LOG_SCALE_RATIO = 50.0
# A parameter absent from a run (a conditional or nested branch not taken) is coded as this
# category, or for a numeric parameter as a value below its range, so trees can split it off.
ABSENT = "<absent>"


@dataclass(frozen=True)
class RunPoint:
    """One finished run: its parameters (nested as in run.config) and its metric value."""

    params: Mapping[str, Any]
    value: float


@dataclass(frozen=True)
class ValueCorrelation:
    value: str
    correlation: float | None
    runs: int


@dataclass(frozen=True)
class ParamImportance:
    param: str
    importance: float
    importance_std: float
    correlation: float | None
    kind: str  # "numeric" or "categorical"
    by_value: tuple[ValueCorrelation, ...] = ()

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "param": self.param,
            "importance": _rounded(self.importance),
            "importance_std": _rounded(self.importance_std),
            "correlation": None if self.correlation is None else _rounded(self.correlation),
            "kind": self.kind,
        }
        if self.by_value:
            out["by_value"] = [
                {"value": v.value, "correlation": None if v.correlation is None
                 else _rounded(v.correlation), "runs": v.runs}
                for v in self.by_value
            ]
        return out


@dataclass(frozen=True)
class ImportanceResult:
    params: tuple[ParamImportance, ...]
    runs_used: int
    # How well the forest predicts held-out runs (R², 1 is perfect, <= 0 is no better than the
    # mean): when it is low the ranking says little, and the views say so.
    model_r2: float | None
    # Which model the importances come from: "gaussian process" or "gradient boosting".
    model: str = ""
    notices: tuple[str, ...] = field(default=())

    def to_json(self) -> dict[str, Any]:
        return {
            "params": [p.to_json() for p in self.params],
            "runs_used": self.runs_used,
            "model": self.model,
            "model_r2": None if self.model_r2 is None else _rounded(self.model_r2),
            "notices": list(self.notices),
        }


class NotEnoughRuns(ValueError):
    def __init__(self, have: int, need: int) -> None:
        super().__init__(
            f"parameter importance needs at least {need} finished runs with the metric; "
            f"this sweep has {have}"
        )
        self.have = have
        self.need = need


def flatten(params: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested run parameters as dotted paths: {"opt": {"lr": 1}} -> {"opt.lr": 1}."""
    flat: dict[str, Any] = {}
    for key, value in params.items():
        path = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten(value, path + "."))
        else:
            flat[path] = value
    return flat


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _rounded(x: float) -> float:
    return float(f"{x:.4g}")


@dataclass
class _Column:
    name: str
    numeric: bool
    raw: list[Any]
    # One column for trees: the value, or a category's code.
    encoded: np.ndarray

    def smooth(self) -> np.ndarray:
        """Columns for a GP: the value scaled to [0, 1] (log where it spans decades), or one
        indicator column per category."""
        if not self.numeric:
            codes = self.encoded.astype(int)
            return np.eye(int(codes.max()) + 1)[codes]
        x = self.encoded.copy()
        low, high = float(x.min()), float(x.max())
        if low > 0 and high / low >= LOG_SCALE_RATIO:
            x, low, high = np.log(x), math.log(low), math.log(high)
        return ((x - low) / (high - low if high > low else 1.0))[:, None]


def _columns(points: Sequence[RunPoint]) -> list[_Column]:
    flats = [flatten(p.params) for p in points]
    names = sorted({k for f in flats for k in f})
    columns: list[_Column] = []
    for name in names:
        raw = [f.get(name, ABSENT) for f in flats]
        present = [v for v in raw if v is not ABSENT]
        if len({_key(v) for v in present}) < 2 and len(present) == len(raw):
            continue  # a constant parameter explains nothing
        if present and all(_is_number(v) for v in present):
            values = np.array([float(v) for v in present])
            low, high = float(values.min()), float(values.max())
            absent_code = low - max(high - low, 1.0)
            encoded = np.array([absent_code if v is ABSENT else float(v) for v in raw])
            columns.append(_Column(name, True, raw, encoded))
        else:
            labels = sorted({_key(v) for v in raw})
            code = {label: i for i, label in enumerate(labels)}
            encoded = np.array([float(code[_key(v)]) for v in raw])
            columns.append(_Column(name, False, raw, encoded))
    return columns


def _key(value: Any) -> str:
    if value is ABSENT:
        return ABSENT
    if isinstance(value, str):
        return value
    return repr(value)


def spearman(x: np.ndarray, y: np.ndarray) -> float | None:
    """Spearman's rho, or None where it is undefined (a constant column)."""
    from scipy.stats import spearmanr

    if len(x) < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return None
    rho = float(spearmanr(x, y).statistic)
    return None if math.isnan(rho) else rho


def param_importance(points: Sequence[RunPoint], *, seed: int = 0,
               min_runs: int = MIN_RUNS) -> ImportanceResult:
    """Importance and correlation of every parameter that varies across ``points``.

    Runs whose value is not finite are left out. Raises :class:`NotEnoughRuns` when fewer
    than ``min_runs`` remain.
    """
    usable = [p for p in points if math.isfinite(p.value)]
    if len(usable) < min_runs:
        raise NotEnoughRuns(len(usable), min_runs)
    rng = np.random.default_rng(seed)
    notices: list[str] = []
    if len(usable) > MAX_RUNS_FITTED:
        keep = rng.choice(len(usable), MAX_RUNS_FITTED, replace=False)
        fitted = [usable[i] for i in sorted(keep)]
        notices.append(f"importance fitted on a random {MAX_RUNS_FITTED} of {len(usable)} runs")
    else:
        fitted = usable
    columns = _columns(fitted)
    y = np.array([p.value for p in fitted])
    if not columns:
        return ImportanceResult((), len(usable), None, notices=("no parameter varies",))
    candidates: list[_Trees | _GaussianProcess] = [
        _Trees(np.column_stack([c.encoded for c in columns]))
    ]
    if len(fitted) <= MAX_GP_RUNS:
        smooth = [c.smooth() for c in columns]
        if sum(m.shape[1] for m in smooth) <= MAX_GP_INPUTS:
            candidates.insert(0, _GaussianProcess(smooth))
    best: tuple[float, np.ndarray, str] | None = None
    for candidate in candidates:
        drops, r2 = _permutation_drops(candidate, len(columns), y, rng)
        if best is None or r2 > best[0]:
            best = (r2, drops, candidate.name)
    assert best is not None
    r2, drops, model = best
    mean_drop = np.clip(drops.mean(axis=0), 0.0, None)
    total = float(mean_drop.sum())
    share = mean_drop / total if total > 0 else np.zeros_like(mean_drop)
    # The spread is of the share itself: each fold-and-shuffle estimate normalised on its own.
    clipped = np.clip(drops, 0.0, None)
    row_totals = clipped.sum(axis=1, keepdims=True)
    shares = np.divide(clipped, row_totals, out=np.zeros_like(clipped), where=row_totals > 0)
    share_std = shares.std(axis=0) if total > 0 else np.zeros_like(mean_drop)
    if r2 < 0.1:
        notices.append(
            f"the model explains little of the metric (held-out R² {r2:.2f}): "
            "the ranking is uncertain; more runs or a less noisy metric will help"
        )

    all_y = np.array([p.value for p in usable])
    all_flat = [flatten(p.params) for p in usable]
    results = []
    for i, col in enumerate(columns):
        raw = [f.get(col.name, ABSENT) for f in all_flat]
        if col.numeric:
            mask = np.array([v is not ABSENT for v in raw])
            xs = np.array([float(v) for v in raw if v is not ABSENT])
            corr = spearman(xs, all_y[mask])
            by_value: tuple[ValueCorrelation, ...] = ()
        else:
            corr = None
            labels = sorted({_key(v) for v in raw})
            keys = [_key(v) for v in raw]
            by_value = tuple(
                ValueCorrelation(
                    label,
                    spearman(np.array([1.0 if k == label else 0.0 for k in keys]), all_y),
                    keys.count(label),
                )
                for label in labels
            )
        results.append(ParamImportance(
            param=col.name,
            importance=float(share[i]),
            importance_std=float(share_std[i]),
            correlation=corr,
            kind="numeric" if col.numeric else "categorical",
            by_value=by_value,
        ))
    results.sort(key=lambda r: (-r.importance, r.param))
    return ImportanceResult(tuple(results), len(usable), r2, model=model,
                            notices=tuple(notices))


class _Trees:
    """Gradient-boosted shallow trees: steps, interactions and categoricals (as codes)."""

    name = "gradient boosting"

    def __init__(self, x: np.ndarray) -> None:
        self.x = x

    def rows(self, index: np.ndarray) -> np.ndarray:
        return self.x[index]

    def permute(self, x: np.ndarray, column: int, order: np.ndarray) -> np.ndarray:
        out = x.copy()
        out[:, column] = x[order, column]
        return out

    def fit(self, x: np.ndarray, y: np.ndarray, seed: int) -> Any:
        from sklearn.ensemble import GradientBoostingRegressor

        # Depth 2 and a slow learning rate: additive effects first, which is what most
        # hyperparameter responses are, with room for pairwise interactions.
        return GradientBoostingRegressor(
            n_estimators=150, learning_rate=0.05, max_depth=2, subsample=0.8,
            random_state=seed,
        ).fit(x, y)


class _GaussianProcess:
    """A GP with one length-scale per input on [0, 1]-scaled values and one-hot categoricals."""

    name = "gaussian process"

    def __init__(self, blocks: list[np.ndarray]) -> None:
        self.x = np.hstack(blocks)
        # Which encoded columns belong to each parameter: a categorical's indicator columns
        # are shuffled together, as one parameter.
        edges = np.cumsum([0] + [b.shape[1] for b in blocks])
        self.spans = [(int(edges[i]), int(edges[i + 1])) for i in range(len(blocks))]

    def rows(self, index: np.ndarray) -> np.ndarray:
        return self.x[index]

    def permute(self, x: np.ndarray, column: int, order: np.ndarray) -> np.ndarray:
        start, end = self.spans[column]
        out = x.copy()
        out[:, start:end] = x[order, start:end]
        return out

    def fit(self, x: np.ndarray, y: np.ndarray, seed: int) -> Any:
        from sklearn.gaussian_process import GaussianProcessRegressor
        from sklearn.gaussian_process.kernels import ConstantKernel, Matern, WhiteKernel

        kernel = ConstantKernel(1.0, (1e-2, 1e2)) * Matern(
            length_scale=np.ones(x.shape[1]), length_scale_bounds=(1e-2, 1e2), nu=2.5
        ) + WhiteKernel(1e-2, (1e-6, 1.0))
        return GaussianProcessRegressor(kernel, normalize_y=True, random_state=seed).fit(x, y)


def _permutation_drops(model: _Trees | _GaussianProcess, params: int, y: np.ndarray,
                       rng: np.random.Generator) -> tuple[np.ndarray, float]:
    """Loss of held-out R² when each parameter is shuffled (one row per fold and shuffle),
    and the model's mean held-out R²."""
    import warnings

    from sklearn.exceptions import ConvergenceWarning
    from sklearn.metrics import r2_score

    n = len(y)
    folds = min(FOLDS, n // 2)
    order = rng.permutation(n)
    drops: list[np.ndarray] = []
    scores: list[float] = []
    for k in range(folds):
        test = order[k::folds]
        train = np.setdiff1d(order, test)
        with warnings.catch_warnings():
            # A length-scale at its bound is an answer here (the parameter does not matter).
            warnings.simplefilter("ignore", ConvergenceWarning)
            fitted = model.fit(model.rows(train), y[train], int(rng.integers(2**31 - 1)))
        x_test = model.rows(test)
        base = float(r2_score(y[test], fitted.predict(x_test)))
        scores.append(base)
        for _ in range(SHUFFLES):
            row = np.empty(params)
            for j in range(params):
                shuffled = model.permute(x_test, j, rng.permutation(len(test)))
                row[j] = base - float(r2_score(y[test], fitted.predict(shuffled)))
            drops.append(row)
    return np.array(drops), float(np.mean(scores))
