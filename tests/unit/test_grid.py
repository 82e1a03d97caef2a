"""Grid search: W&B's order, its enumeration of int_uniform and q_uniform, exhaustion."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
from sweepd.coordinator.config import parse_config
from sweepd.coordinator.config.model import SweepConfig
from sweepd.coordinator.search import grid
from sweepd.coordinator.search.base import Trial

RNG = np.random.default_rng(0)


def _config(parameters: dict[str, Any]) -> SweepConfig:
    return parse_config({"method": "grid", "program": "t.py", "parameters": parameters})


def _walk(config: SweepConfig) -> list[dict[Any, Any]]:
    trials: list[Trial] = []
    while (s := grid.suggest(config, trials, RNG)) is not None:
        trials.append(Trial(params=s.params, state="failed"))
        assert len(trials) <= 10_000
    return [dict(t.params) for t in trials]


def test_sorted_names_last_varies_fastest() -> None:
    config = _config({"b": {"values": [1, 2]}, "a": {"values": ["x", "y"]}})
    points = [(p[("a",)], p[("b",)]) for p in _walk(config)]
    assert points == [("x", 1), ("x", 2), ("y", 1), ("y", 2)]


def test_int_uniform_inclusive_and_q_uniform_excludes_max() -> None:
    config = _config(
        {
            "i": {"min": 1, "max": 3},
            "q": {"distribution": "q_uniform", "min": 0, "max": 1, "q": 0.25},
            "n": {"distribution": "q_uniform", "min": 0, "max": 6, "q": 2},
        }
    )
    assert grid.grid_size(config) == 3 * 4 * 3
    points = _walk(config)
    assert sorted({p[("i",)] for p in points}) == [1, 2, 3]
    assert sorted({p[("q",)] for p in points}) == [0.0, 0.25, 0.5, 0.75]
    assert sorted({p[("n",)] for p in points}) == [0, 2, 4]
    assert all(type(p[("n",)]) is int for p in points)


def test_nested_and_categorical_grid_enumerates_every_point_once() -> None:
    config = _config(
        {
            "opt": {"parameters": {"lr": {"values": [0.1, 0.01]}, "name": {"values": ["a", "b"]}}},
            "flag": {"values": [True, False, 1, 0]},
            "shape": {"values": [[2, 2], [3, 3], {"k": 1}]},
            "c": {"value": 5},
        }
    )
    points = _walk(config)
    assert len(points) == grid.grid_size(config) == 2 * 2 * 4 * 3
    keys = {tuple(sorted((k, repr(v)) for k, v in p.items())) for p in points}
    assert len(keys) == len(points)


def test_taken_by_any_state_and_whole_floats_match_ints() -> None:
    config = _config({"x": {"values": [1, 2, 3]}})
    trials = [Trial(params={("x",): 1.0}, state="failed"), Trial({("x",): 2}, "running")]
    s = grid.suggest(config, trials, RNG)
    assert s is not None and s.params == {("x",): 3}
    trials.append(Trial({("x",): True}, "finished"))  # True is not 1
    assert grid.suggest(config, trials[:1] + trials[2:], RNG).params == {("x",): 2}


def test_large_grid_is_fast() -> None:
    config = _config({"a": {"min": 0, "max": 199}, "b": {"min": 0, "max": 199}})
    assert grid.grid_size(config) == 40_000
    trials = [
        Trial(params={("a",): i // 200, ("b",): i % 200}, state="finished") for i in range(20_000)
    ]
    start = time.perf_counter()
    s = grid.suggest(config, trials, RNG)
    assert time.perf_counter() - start < 2.0
    assert s is not None and s.params == {("a",): 100, ("b",): 0}
