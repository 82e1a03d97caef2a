"""Parameter importance and correlation (coordinator/analysis): pure functions over runs."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sweepd.coordinator.analysis import NotEnoughRuns, RunPoint, flatten, param_importance


def _lr_dropout_batch(seed: int, runs: int = 40) -> list[RunPoint]:
    """A metric that depends strongly on lr, weakly on dropout and not at all on batch_size."""
    rng = np.random.default_rng(seed)
    points = []
    for _ in range(runs):
        lr = 10 ** rng.uniform(-4, -1)
        dropout = rng.uniform(0.0, 0.5)
        batch_size = int(rng.choice([16, 32, 64, 128]))
        value = (math.log10(lr) + 2.5) ** 2 + 0.5 * dropout + rng.normal(0.0, 0.05)
        points.append(RunPoint({"lr": lr, "dropout": dropout, "batch_size": batch_size}, value))
    return points


def test_a_strong_a_weak_and_an_irrelevant_parameter_are_ranked_in_order() -> None:
    right = 0
    for seed in range(10):
        result = param_importance(_lr_dropout_batch(seed), seed=seed)
        share = {p.param: p.importance for p in result.params}
        right += share["lr"] > share["dropout"] > share["batch_size"]
        assert math.isclose(sum(share.values()), 1.0, abs_tol=1e-9)
        assert result.runs_used == 40
        assert result.model_r2 is not None and result.model_r2 > 0.5
    assert right >= 9


def test_too_few_runs_says_how_many_are_needed() -> None:
    points = _lr_dropout_batch(0, runs=6)
    with pytest.raises(NotEnoughRuns) as err:
        param_importance(points)
    assert err.value.have == 6 and err.value.need == 10
    assert "needs at least 10 finished runs" in str(err.value)


def test_runs_without_a_finite_value_are_left_out() -> None:
    points = _lr_dropout_batch(1, runs=12)
    points += [RunPoint({"lr": 0.01, "dropout": 0.1, "batch_size": 16}, math.nan)] * 5
    assert param_importance(points).runs_used == 12


def test_spearman_correlation_has_the_sign_of_the_effect() -> None:
    rng = np.random.default_rng(3)
    points = []
    for _ in range(30):
        up, down = rng.uniform(0, 1), rng.uniform(0, 1)
        points.append(RunPoint({"up": up, "down": down}, 3 * up - down + rng.normal(0, 0.01)))
    by_name = {p.param: p for p in param_importance(points).params}
    assert by_name["up"].correlation is not None and by_name["up"].correlation > 0.8
    assert by_name["down"].correlation is not None and by_name["down"].correlation < -0.1
    assert by_name["up"].kind == by_name["down"].kind == "numeric"


def test_categorical_nested_and_conditional_parameters() -> None:
    rng = np.random.default_rng(4)
    points = []
    for _ in range(40):
        name = str(rng.choice(["adam", "sgd", "rmsprop"]))
        optimizer: dict[str, object] = {"name": name, "lr": float(rng.uniform(0, 1))}
        if name == "sgd":
            optimizer["momentum"] = float(rng.uniform(0, 1))
        value = {"adam": 0.0, "sgd": 1.0, "rmsprop": 0.5}[name] + rng.normal(0, 0.01)
        points.append(RunPoint({"optimizer": optimizer, "epochs": 5}, value))
    result = param_importance(points, seed=1)
    by_name = {p.param: p for p in result.params}
    # A constant parameter explains nothing and is left out; nested names are dotted paths.
    assert set(by_name) == {"optimizer.name", "optimizer.lr", "optimizer.momentum"}
    assert result.params[0].param == "optimizer.name"
    name = by_name["optimizer.name"]
    assert name.kind == "categorical" and name.correlation is None
    per_value = {v.value: v for v in name.by_value}
    assert set(per_value) == {"adam", "sgd", "rmsprop"}
    assert per_value["sgd"].correlation is not None and per_value["sgd"].correlation > 0.5
    assert per_value["adam"].correlation is not None and per_value["adam"].correlation < -0.5
    assert sum(v.runs for v in name.by_value) == 40
    as_json = result.to_json()
    assert as_json["params"][0]["param"] == "optimizer.name"
    assert {"value", "correlation", "runs"} <= set(as_json["params"][0]["by_value"][0])


def test_flatten_uses_dotted_paths() -> None:
    assert flatten({"a": {"b": 1, "c": {"d": "x"}}, "e": 2.0}) == {"a.b": 1, "a.c.d": "x", "e": 2.0}
