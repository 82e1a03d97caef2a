"""Median rule: warm-up, start-up, a real median, best-so-far, goals and NaN."""

from __future__ import annotations

import math
import random

import pytest
from sweepd.coordinator.config.model import Goal
from sweepd.coordinator.stopping import MedianRule
from sweepd.coordinator.stopping.median import median


def test_median_is_a_median() -> None:
    assert median([1.0, 2.0, 100.0]) == 2.0
    assert median([1.0, 2.0, 3.0, 4.0]) == 2.5
    assert median([1.0, math.inf, math.inf]) == math.inf
    assert math.isnan(median([-math.inf, math.inf]))


def test_stops_a_run_worse_than_the_median_not_the_mean() -> None:
    rule = MedianRule(n_startup_runs=3)
    histories = {"a": [1.0, 1.0], "b": [2.0, 2.0], "c": [100.0, 100.0], "x": [3.0, 3.0]}
    # Others at iteration 2: 1, 2, 100 -> median 2 (the mean, 34.3, would keep x).
    decision = rule.should_stop_run("x", histories, "minimize", metric="loss")
    assert decision is not None
    assert decision.band == 2 and decision.threshold == 2.0 and decision.value == 3.0
    assert decision.reason == ("median: best loss=3 in 2 iterations is worse than the median 2 "
                               "of 3 other runs at iteration 2")


def test_compares_the_best_value_so_far() -> None:
    rule = MedianRule(n_startup_runs=3)
    histories = {"a": [2.0, 2.0], "b": [2.0, 2.0], "c": [2.0, 2.0], "x": [1.0, 5.0]}
    assert rule.should_stop_run("x", histories, "minimize") is None  # best 1.0 beats 2.0


def test_start_up_counts_other_runs_that_reached_the_iteration() -> None:
    rule = MedianRule(n_startup_runs=3)
    histories = {"a": [1.0, 1.0], "b": [1.0, 1.0], "c": [1.0], "x": [9.0, 9.0]}
    # Only a and b reached iteration 2 (c, finished or not, did not): too few to judge.
    assert rule.should_stop_run("x", histories, "minimize") is None
    histories["c"] = [1.0, 1.0, 1.0]  # a run that went further counts
    assert rule.should_stop_run("x", histories, "minimize") is not None


def test_warm_up_iterations_are_never_judged() -> None:
    rule = MedianRule(n_startup_runs=1, n_warmup_iters=2)
    histories = {"a": [0.0, 0.0, 0.0], "x": [9.0, 9.0]}
    assert rule.should_stop_run("x", histories, "minimize") is None  # iteration 2 <= 2
    histories["x"] = [9.0, 9.0, 9.0]
    assert rule.should_stop_run("x", histories, "minimize") is not None


def test_maximize() -> None:
    rule = MedianRule(n_startup_runs=2)
    histories = {"a": [0.5], "b": [0.7], "x": [0.55]}
    decision = rule.should_stop_run("x", histories, "maximize")
    assert decision is not None and decision.threshold == pytest.approx(0.6)
    assert rule.should_stop_run("x", histories, "minimize") is None


def test_nan_runs_are_worst_and_count_as_others() -> None:
    rule = MedianRule(n_startup_runs=3)
    histories = {"a": [1.0], "b": [math.nan], "c": [math.nan], "x": [math.nan]}
    # x is NaN: worst. Others 1, NaN, NaN -> median NaN (worst): x is not worse than it.
    assert rule.should_stop_run("x", histories, "minimize") is None
    histories["b"] = [0.5]
    decision = rule.should_stop_run("x", histories, "maximize")
    assert decision is not None and decision.value == -math.inf  # NaN shows as the worst


def test_only_running_runs_are_stopped() -> None:
    rule = MedianRule(n_startup_runs=1)
    histories = {"a": [1.0], "b": [2.0]}
    assert [d.run_id for d in rule.should_stop(histories, {"a", "b"}, "minimize")] == ["b"]
    assert rule.should_stop(histories, {"a"}, "minimize") == []


@pytest.mark.parametrize("goal", ["minimize", "maximize"])
def test_batch_and_per_run_forms_agree(goal: Goal) -> None:
    rng = random.Random(5)
    rule = MedianRule(n_startup_runs=2, n_warmup_iters=1)
    for _ in range(50):
        histories = {f"r{i}": [rng.choice([rng.random(), math.nan, 0.5])
                               for _ in range(rng.randint(0, 8))] for i in range(20)}
        running = {r for r in histories if rng.random() < 0.6}
        batch = rule.should_stop(histories, running, goal)
        single = [rule.should_stop_run(r, histories, goal) for r in sorted(running)]
        assert batch == [d for d in single if d is not None]


@pytest.mark.parametrize("kwargs", [{"n_startup_runs": 0}, {"n_warmup_iters": -1}])
def test_invalid_rules_are_refused(kwargs: dict[str, int]) -> None:
    with pytest.raises(ValueError):
        MedianRule(**kwargs)
