"""method: bayes — the GP model, its suggestions, and the guarantees the issue asks for."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pytest
from sweepd.coordinator.config import distributions
from sweepd.coordinator.config.model import MetricSpec, Parameter, SweepConfig
from sweepd.coordinator.search import acquisition, bayes, encoding, gp, sobol
from sweepd.coordinator.search.base import Suggestion, Trial

Objective = Callable[[dict], float]


def _config(params: tuple[Parameter, ...], goal: str = "minimize", **metric: object) -> SweepConfig:
    return SweepConfig(
        method="bayes",
        parameters=params,
        metric=MetricSpec(name="loss", goal=goal, **metric),  # type: ignore[arg-type]
    )


UNIT2 = (
    Parameter(("x",), "uniform", min=0.0, max=1.0),
    Parameter(("y",), "uniform", min=0.0, max=1.0),
)

MIXED = (
    Parameter(("act",), "categorical", values=("relu", "gelu", "tanh")),
    Parameter(("layers",), "int_uniform", min=1, max=6),
    Parameter(("lr",), "log_uniform_values", min=1e-5, max=1e-1),
    Parameter(("drop",), "q_uniform", min=0.0, max=0.5, q=0.1),
    Parameter(("optimizer", "name"), "constant", value="adam"),
)


def _mixed_loss(p: dict) -> float:
    act = {"relu": 0.0, "gelu": -0.3, "tanh": 0.4}[p[("act",)]]
    return (
        (math.log10(p[("lr",)]) + 3.0) ** 2
        + 0.1 * (p[("layers",)] - 4) ** 2
        + (p[("drop",)] - 0.2) ** 2
        + act
    )


def _run(
    config: SweepConfig, objective: Objective, budget: int, seed: int = 0
) -> tuple[list[Trial], Suggestion]:
    trials: list[Trial] = []
    rng = np.random.default_rng(seed)
    s = bayes.suggest(config, trials, rng)
    for _ in range(budget):
        s = bayes.suggest(config, trials, rng)
        trials.append(Trial(params=dict(s.params), state="finished", value=objective(s.params)))
    return trials, s


def _in_mixed_support(p: dict) -> bool:
    lr = p[("lr",)]
    drop = p[("drop",)]
    return (
        p[("act",)] in ("relu", "gelu", "tanh")
        and isinstance(p[("layers",)], int)
        and 1 <= p[("layers",)] <= 6
        and 1e-5 <= lr <= 1e-1
        and 0.0 <= drop <= 0.5
        and abs(drop / 0.1 - round(drop / 0.1)) < 1e-9
        and p[("optimizer", "name")] == "adam"
    )


def test_gp_fits_a_smooth_function() -> None:
    rng = np.random.default_rng(0)
    x = rng.random((40, 2))
    y = np.sin(5 * x[:, 0]) + x[:, 1] ** 2
    post = gp.fit(x, (y - y.mean()) / y.std())
    xt = rng.random((50, 2))
    yt = (np.sin(5 * xt[:, 0]) + xt[:, 1] ** 2 - y.mean()) / y.std()
    mean, std = post.predict(xt)
    assert np.sqrt(np.mean((mean - yt) ** 2)) < 0.05
    assert np.all(std > 0)


def test_suggestions_approach_the_optimum() -> None:
    def bowl(p: dict) -> float:
        return (p[("x",)] - 0.3) ** 2 + (p[("y",)] - 0.7) ** 2

    trials, _ = _run(_config(UNIT2), bowl, budget=20)
    assert min(t.value for t in trials if t.value is not None) < 1e-3


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_dimension_dwarfed_by_another_is_still_optimised(seed: int) -> None:
    # y moves the loss by up to 49, x by at most 0.49: once y is right, the model must still
    # be unsure enough about x to look inside (0, 1) rather than re-measure x = 0 (which it
    # did while a length-scale could grow to 100 input widths).
    config = _config((
        Parameter(("x",), "uniform", min=0.0, max=1.0),
        Parameter(("y",), "int_uniform", min=-5, max=5),
    ))

    def skewed(p: dict) -> float:
        return (p[("x",)] - 0.3) ** 2 + (p[("y",)] - 2) ** 2

    trials, _ = _run(config, skewed, budget=25, seed=seed)
    assert min(t.value for t in trials if t.value is not None) < 0.01


def test_mixed_space_values_stay_in_their_support_and_find_the_optimum() -> None:
    trials, last = _run(_config(MIXED), _mixed_loss, budget=25)
    assert all(_in_mixed_support(dict(t.params)) for t in trials)
    assert _in_mixed_support(dict(last.params))
    best = min(trials, key=lambda t: t.value or 0.0)
    # the gelu basin near lr 1e-3 (optimum -0.3; a random point averages about 3)
    assert best.value is not None and best.value < 0.15
    assert best.params[("act",)] == "gelu"
    assert last.predicted_mean is not None and math.isfinite(last.predicted_mean)
    assert last.predicted_std is not None and last.predicted_std >= 0


def test_pending_points_make_parallel_suggestions_differ() -> None:
    trials, _ = _run(_config(UNIT2), lambda p: p[("x",)] + p[("y",)], budget=10)
    first = bayes.suggest(_config(UNIT2), trials, np.random.default_rng(5))
    with_pending = [*trials, Trial(params=dict(first.params), state="pending")]
    second = bayes.suggest(_config(UNIT2), with_pending, np.random.default_rng(5))
    assert first.params != second.params
    dist = math.dist(list(first.params.values()), list(second.params.values()))
    assert dist > 1e-3


def test_same_seed_same_suggestion() -> None:
    trials, _ = _run(_config(MIXED), _mixed_loss, budget=12)
    a = bayes.suggest(_config(MIXED), trials, np.random.default_rng(3))
    b = bayes.suggest(_config(MIXED), trials, np.random.default_rng(3))
    assert a == b


@pytest.mark.parametrize(
    "trials",
    [
        [],
        [Trial(params={("x",): 0.5, ("y",): 0.5}, state="finished", value=1.0)],
        [Trial(params={("x",): 0.1 * i, ("y",): 0.2}, state="failed") for i in range(10)],
        [
            Trial(params={("x",): 0.1 * i, ("y",): 0.2}, state="finished", value=float("nan"))
            for i in range(10)
        ],
    ],
    ids=["no-runs", "one-result", "all-failed", "all-nan"],
)
def test_a_valid_point_without_usable_results(trials: list[Trial]) -> None:
    s = bayes.suggest(_config(UNIT2), trials, np.random.default_rng(0))
    assert set(s.params) == {("x",), ("y",)}
    assert all(0.0 <= v <= 1.0 and math.isfinite(v) for v in s.params.values())


def test_no_metric_still_suggests() -> None:
    config = SweepConfig(method="bayes", parameters=UNIT2)
    s = bayes.suggest(config, [], np.random.default_rng(0))
    assert set(s.params) == {("x",), ("y",)}


def test_discrete_space_is_covered_without_repeats() -> None:
    space = (
        Parameter(("a",), "categorical", values=(1, 2, 3)),
        Parameter(("b",), "int_uniform", min=0, max=3),
    )
    seen = set()
    trials: list[Trial] = []
    rng = np.random.default_rng(0)
    for i in range(12):
        s = bayes.suggest(_config(space), trials, rng)
        key = (s.params[("a",)], s.params[("b",)])
        assert key not in seen, f"repeat at run {i}"
        seen.add(key)
        # Half the runs still pending: dedup covers every state.
        state = "pending" if i % 2 else "finished"
        trials.append(Trial(params=dict(s.params), state=state, value=float(sum(key))))
    assert len(seen) == 12


@pytest.mark.parametrize(
    ("mode", "expected"),
    [("worst", 5.0), ("latest", 3.0), ("best", 2.0)],
)
def test_failed_runs_are_imputed(mode: str, expected: float) -> None:
    config = _config(UNIT2, impute=mode)
    trials = [
        Trial(params={("x",): 0.1, ("y",): 0.1}, state="finished", value=1.0),
        Trial(params={("x",): 0.2, ("y",): 0.2}, state="finished", value=5.0),
        Trial(params={("x",): 0.3, ("y",): 0.3}, state="failed", value=3.0, best_value=2.0),
    ]
    hist = bayes._collect(config, trials, bayes.build_encoding(config.parameters))
    assert hist.y_obs.tolist() == [1.0, 5.0, expected]


def test_maximize_and_running_runs() -> None:
    config = _config(UNIT2, goal="maximize", impute_while_running="latest")
    trials = [
        Trial(params={("x",): 0.1, ("y",): 0.1}, state="finished", value=1.0),
        Trial(params={("x",): 0.2, ("y",): 0.2}, state="running", value=4.0),
        Trial(params={("x",): 0.3, ("y",): 0.3}, state="running"),
        Trial(params={("x",): 0.4, ("y",): 0.4}, state="pending"),
    ]
    hist = bayes._collect(config, trials, bayes.build_encoding(config.parameters))
    assert hist.y_obs.tolist() == [-1.0, -4.0]
    assert hist.x_pending.shape[0] == 2


def test_maximize_prediction_is_in_metric_units() -> None:
    def peak(p: dict) -> float:
        return 100.0 - 10 * ((p[("x",)] - 0.5) ** 2 + (p[("y",)] - 0.5) ** 2)

    trials, _ = _run(_config(UNIT2, goal="maximize"), peak, budget=15)
    s = bayes.suggest(_config(UNIT2, goal="maximize"), trials, np.random.default_rng(1))
    assert s.predicted_mean is not None and 95.0 < s.predicted_mean < 101.0


def test_long_sweeps_use_a_local_model() -> None:
    rng = np.random.default_rng(0)
    config = _config(MIXED)
    trials = []
    for _ in range(bayes.LOCAL_MAX + 150):
        p = {
            ("act",): ["relu", "gelu", "tanh"][int(rng.integers(3))],
            ("layers",): int(rng.integers(1, 7)),
            ("lr",): float(10 ** rng.uniform(-5, -1)),
            ("drop",): round(float(rng.integers(0, 6)) * 0.1, 10),
            ("optimizer", "name"): "adam",
        }
        trials.append(Trial(params=p, state="finished", value=_mixed_loss(p)))
    s = bayes.suggest(config, trials, rng)
    assert _in_mixed_support(dict(s.params))
    assert s.info == "gp-ei"


@pytest.mark.parametrize(
    "param",
    [
        Parameter(("a",), "uniform", min=-1.0, max=3.0),
        Parameter(("a",), "q_uniform", min=0.0, max=1.0, q=0.1),
        Parameter(("a",), "log_uniform_values", min=1e-5, max=1.0),
        Parameter(("a",), "q_log_uniform_values", min=1, max=256, q=1),
        Parameter(("a",), "log_uniform", min=-5.0, max=0.0),
        Parameter(("a",), "int_uniform", min=-3, max=7),
        Parameter(("a",), "normal", mu=1.0, sigma=2.0),
        Parameter(("a",), "inv_log_uniform_values", min=1e-3, max=1.0),
    ],
    ids=lambda p: p.distribution,
)
def test_encoding_matches_the_distribution_cdf(param: Parameter) -> None:
    enc = encoding.build_encoding((param,))
    rng = np.random.default_rng(0)
    values = [distributions.sample(param, rng) for _ in range(100)]
    encoded = enc.encode([{("a",): v} for v in values])[:, 0]
    expected = [distributions.cdf(param, v) for v in values]
    assert np.allclose(encoded, expected, rtol=0, atol=1e-12)
    # and decoding is the distribution's ppf (values round-trip onto their support)
    for row in enc.encode([{("a",): v} for v in values]):
        assert distributions.in_support(param, enc.decode(row)[("a",)])


def test_weighted_categorical_one_hot() -> None:
    param = Parameter(
        ("c",), "categorical_w_probabilities", values=("a", "b", "c"), probabilities=(0.7, 0.2, 0.1)
    )
    enc = encoding.build_encoding((param,))
    rows = enc.encode([{("c",): v} for v in ("a", "b", "c")])
    assert rows.tolist() == [[1, 0, 0], [0, 1, 0], [0, 0, 1]]
    assert [enc.decode(r)[("c",)] for r in rows] == ["a", "b", "c"]


def test_sobol_is_deterministic_spread_and_does_not_repeat() -> None:
    space = (
        Parameter(("a",), "categorical", values=(1, 2, 3)),
        Parameter(("b",), "int_uniform", min=0, max=3),
    )
    config = SweepConfig(method="sobol", parameters=space, name="s")
    trials: list[Trial] = []
    seen = set()
    for _ in range(12):
        s = sobol.suggest(config, trials, np.random.default_rng(0))
        again = sobol.suggest(config, trials, np.random.default_rng(1))
        assert s.params == again.params  # the sequence does not depend on rng
        key = (s.params[("a",)], s.params[("b",)])
        assert key not in seen
        seen.add(key)
        trials.append(Trial(params=dict(s.params), state="pending"))
    # continuous: the first 16 points stratify each axis into 16 cells
    config = SweepConfig(method="sobol", parameters=UNIT2, name="s")
    xs = []
    trials = []
    for _ in range(16):
        s = sobol.suggest(config, trials, np.random.default_rng(0))
        xs.append(s.params[("x",)])
        trials.append(Trial(params=dict(s.params), state="finished", value=0.0))
    assert sorted(int(x * 16) for x in xs) == list(range(16))


@pytest.mark.parametrize(
    "param",
    [
        Parameter(("a",), "int_uniform", min=-5, max=5),
        Parameter(("a",), "q_uniform", min=0.0, max=1.0, q=0.1),
        Parameter(("a",), "q_log_uniform_values", min=1, max=256, q=1),
        Parameter(("a",), "uniform", min=0.0, max=1.0),
    ],
    ids=lambda p: p.distribution,
)
def test_rounding_in_the_encoding_lands_on_the_decoded_value(param: Parameter) -> None:
    # What the acquisition scores must be the point that will be suggested: rounding a relaxed
    # row gives the encoding of the value that decoding it gives (continuous: unchanged).
    enc = encoding.build_encoding((param,))
    rows = np.linspace(0.0, 1.0, 1001)[:, None]
    rounded = enc.round_discrete(rows)
    if param.distribution == "uniform":
        assert np.array_equal(rounded, rows)
        return
    decoded = [enc.decode(r)[("a",)] for r in rounded]
    assert np.allclose(rounded, enc.encode([{("a",): v} for v in decoded]), atol=1e-12)
    # and it is the value the relaxed row decodes to, except within a hair of a cell edge
    same = [enc.decode(r)[("a",)] == v for r, v in zip(rows, decoded, strict=True)]
    assert np.mean(same) > 0.97


def test_bound_projections_move_only_near_coordinates_onto_the_bounds() -> None:
    enc = encoding.build_encoding(UNIT2)
    top = np.array([[0.98, 0.5], [0.01, 0.995], [0.4, 0.6]])
    out = acquisition.bound_projections(enc, top, None)
    rows = {tuple(r) for r in out.tolist()}
    assert (1.0, 0.5) in rows and (0.0, 0.995) in rows and (0.01, 1.0) in rows
    assert (0.0, 1.0) in rows  # both near: the corner
    assert not any(r[0] == 0.4 or r[1] == 0.6 for r in rows)  # far ones stay where they are


def test_a_corner_optimum_is_measured_exactly() -> None:
    # A plane falling towards (1, 1): only a run on the corner itself has regret 0.
    trials, _ = _run(_config(UNIT2), lambda p: 2.0 - p[("x",)] - p[("y",)], budget=25)
    assert min(t.value for t in trials if t.value is not None) < 1e-6


def test_seen_rows_answers_like_a_set_of_row_keys() -> None:
    rng = np.random.default_rng(0)
    rows = rng.random((300, 4))
    rows[:, 0] = np.round(rows[:, 0] * 3) / 3  # a discrete column: many equal values
    seen = encoding.SeenRows(rows)
    expected = set(encoding.row_keys(rows))
    queries = np.vstack([rows[:40], rng.random((40, 4)), rows[:10] + 1e-12, rows[:10] + 1e-6])
    for key in encoding.row_keys(queries):
        assert (key in seen) == (key in expected)


def test_cached_trial_rows_equal_a_fresh_encoding() -> None:
    config = _config(MIXED)
    enc = encoding.build_encoding(config.parameters)
    trials, _ = _run(config, _mixed_loss, budget=8)
    first = enc.encode_trials(config, trials)
    assert np.array_equal(first, enc.encode([t.params for t in trials]))
    # A run changed (a new Trial object at its position), one appended: both re-encoded.
    changed = Trial(params={**trials[3].params, ("layers",): 6}, state="finished", value=1.0)
    pending = Trial(params=dict(trials[0].params), state="pending")
    trials = [*trials[:3], changed, *trials[4:], pending]
    again = enc.encode_trials(config, trials)
    assert np.array_equal(again, enc.encode([t.params for t in trials]))
