"""Random search over a space that is not fully discrete reads no history: the dispatcher
skips building every trial (O(runs)) for it, and its points are the same either way."""

from __future__ import annotations

from sweepd.coordinator.config import parse_config
from sweepd.coordinator.search import needs_history, rng_for, suggest
from sweepd.coordinator.search.base import Trial

MIXED = "method: random\nparameters:\n  a: {min: 0.0, max: 1.0}\n  b: {values: [1, 2]}\n"
DISCRETE = "method: random\nparameters:\n  b: {values: [1, 2]}\n  c: {min: 1, max: 3}\n"


def test_only_random_over_a_space_with_a_continuous_parameter_needs_no_history() -> None:
    assert not needs_history(parse_config(MIXED))
    assert needs_history(parse_config(DISCRETE))
    assert needs_history(parse_config(MIXED.replace("random", "grid").replace(
        "{min: 0.0, max: 1.0}", "{values: [0.5]}")))
    assert needs_history(parse_config(MIXED.replace("random", "bayes").replace(
        "method: bayes", "method: bayes\nmetric: {name: loss}")))


def test_the_points_are_the_same_without_the_history() -> None:
    config = parse_config(MIXED)
    trials = [Trial(params={("a",): 0.5, ("b",): 1}, state="finished", value=1.0)] * 50
    for n in range(20):
        with_history = suggest(config, trials, rng_for(config, "s", n))
        without = suggest(config, [], rng_for(config, "s", n))
        assert with_history is not None and without is not None
        assert with_history.params == without.params
