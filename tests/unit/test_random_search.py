"""Random search: independent draws; no repeats in a discrete space until it is exhausted."""

from __future__ import annotations

from typing import Any

import numpy as np
from sweepd.coordinator.config import distributions as dist
from sweepd.coordinator.config import parse_config
from sweepd.coordinator.config.model import SweepConfig
from sweepd.coordinator.search import METHODS, random, suggest
from sweepd.coordinator.search.base import Trial


def _config(parameters: dict[str, Any]) -> SweepConfig:
    return parse_config({"method": "random", "program": "t.py", "parameters": parameters})


def test_discrete_space_never_repeats_then_ends() -> None:
    config = _config({"a": {"values": [1, 2, 3]}, "b": {"min": 0, "max": 3}, "c": {"value": "k"}})
    rng = np.random.default_rng(1)
    trials: list[Trial] = []
    while (s := random.suggest(config, trials, rng)) is not None:
        trials.append(Trial(params=s.params, state="finished"))
        assert len(trials) <= 12
    keys = {tuple(sorted(t.params.items())) for t in trials}
    assert len(trials) == len(keys) == 12


def test_continuous_space_samples_in_support() -> None:
    config = _config(
        {
            "lr": {"distribution": "log_uniform_values", "min": 1e-5, "max": 1e-1},
            "n": {"values": [1]},
        }
    )
    rng = np.random.default_rng(2)
    trials = [Trial(params={("lr",): 0.01, ("n",): 1}, state="finished")]
    for _ in range(50):
        s = random.suggest(config, trials, rng)
        assert s is not None
        assert all(dist.in_support(p, s.params[p.path]) for p in config.parameters)
        assert type(s.params[("lr",)]) is float


def test_registry_dispatches() -> None:
    assert {"grid", "random", "bayes"} <= set(METHODS)
    config = _config({"a": {"values": [1]}})
    assert suggest(config, [], np.random.default_rng(0)) is not None
    assert suggest(config, [Trial({("a",): 1}, "failed")], np.random.default_rng(0)) is None
