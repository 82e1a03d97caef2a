"""ASHA: rungs, the top-1/eta cut at each rung, final verdicts, fewer-than-eta rungs."""

from __future__ import annotations

import math
import random

import pytest
from sweepd.coordinator.config.model import Goal
from sweepd.coordinator.stopping import AshaRule


@pytest.mark.parametrize(
    ("kwargs", "rungs"),
    [
        ({"min_iter": 1, "max_iter": 27}, (1, 3, 9, 27)),  # max_iter is a rung when it lands
        ({"min_iter": 1, "max_iter": 26}, (1, 3, 9)),
        ({"min_iter": 2, "max_iter": 20, "eta": 2}, (2, 4, 8, 16)),
        ({"min_iter": 1, "max_iter": 6, "eta": 1.5}, (1, 2, 3, 5)),  # repeats listed once
        ({"min_iter": 5, "max_iter": 5}, (5,)),
    ],
)
def test_rungs(kwargs: dict[str, float], rungs: tuple[int, ...]) -> None:
    assert AshaRule(**kwargs).rungs == rungs


def test_without_max_iter_rungs_go_on() -> None:
    assert AshaRule(min_iter=3).rungs[:5] == (3, 9, 27, 81, 243)


def test_fewer_than_eta_values_at_a_rung_continue() -> None:
    rule = AshaRule(min_iter=1, eta=3)
    # Two runs at rung 1, the newcomer far worse: 2 < eta values, the top 1/3 is not a run yet.
    histories = {"a": [0.1, 0.1], "b": [5.0]}
    assert rule.should_stop_run("b", histories, "minimize") is None


def test_the_top_one_over_eta_of_values_so_far_continue() -> None:
    rule = AshaRule(min_iter=1, max_iter=9, eta=3)
    histories = {"a": [0.5, 0.5], "b": [0.6, 0.6], "c": [0.7]}
    decision = rule.should_stop_run("c", histories, "minimize", metric="loss")
    assert decision is not None
    assert decision.band == 1 and decision.threshold == 0.5 and decision.value == 0.7
    assert decision.reason == ("asha: loss=0.7 at rung 1 is worse than the rung threshold 0.5 "
                               "(top 1 of 3 runs, 1/3)")
    histories["c"] = [0.4]  # the best so far continues
    assert rule.should_stop_run("c", histories, "minimize") is None
    histories["c"] = [0.5]  # a tie with the threshold continues
    assert rule.should_stop_run("c", histories, "minimize") is None


def test_six_values_keep_two() -> None:
    rule = AshaRule(min_iter=1, eta=3)
    histories = {"a": [0.1, 0.0], "b": [0.2, 0.0], "c": [0.3, 0.0], "d": [0.4, 0.0],
                 "e": [0.5, 0.0], "x": [0.25]}
    decision = rule.should_stop_run("x", histories, "minimize")
    assert decision is not None and decision.threshold == 0.2  # floor(6/3) = 2 continue
    histories["x"] = [0.15]
    assert rule.should_stop_run("x", histories, "minimize") is None


def test_a_verdict_is_final_runs_are_not_rejudged_between_rungs() -> None:
    rule = AshaRule(min_iter=1, eta=3)  # rungs 1, 3, 9
    # "early" passed rung 1 alone; better runs arrived since, but it is now at iteration 2.
    histories = {"early": [0.9, 0.9], "b": [0.1], "c": [0.2], "d": [0.3]}
    assert rule.should_stop(histories, {"early"}, "minimize") == []
    # At rung 3 it is judged again, against the values recorded there so far.
    histories = {"early": [0.9, 0.9, 0.9], "b": [0.1, 0.1, 0.1], "c": [0.2, 0.2, 0.2]}
    decision = rule.should_stop_run("early", histories, "minimize")
    assert decision is not None and decision.band == 3


def test_arrived_judges_every_rung_the_new_values_crossed() -> None:
    rule = AshaRule(min_iter=1, eta=3)  # rungs 1, 3, 9
    histories = {"a": [0.1] * 3, "b": [0.2] * 3, "x": [0.9, 0.0, 0.0]}  # bad at 1, best at 3
    # Called once per value, x would have been stopped at rung 1; a batch of 3 must be too.
    assert rule.should_stop_run("x", histories, "minimize") is None  # only rung 3 is new
    decision = rule.should_stop_run("x", histories, "minimize", arrived=3)
    assert decision is not None and decision.band == 1


def test_maximize_and_nan() -> None:
    rule = AshaRule(min_iter=1, eta=2)
    histories = {"a": [0.9], "b": [0.1]}
    assert rule.should_stop_run("b", histories, "maximize") is not None
    assert rule.should_stop_run("b", histories, "minimize") is None
    histories["b"] = [math.nan]
    for goal in ("minimize", "maximize"):
        assert rule.should_stop_run("b", histories, goal) is not None


def test_only_running_runs_are_stopped() -> None:
    rule = AshaRule(min_iter=1, eta=2)
    histories = {"a": [0.1], "b": [0.9], "c": [0.8]}
    assert [d.run_id for d in rule.should_stop(histories, {"a", "b"}, "minimize")] == ["b"]


@pytest.mark.parametrize("goal", ["minimize", "maximize"])
def test_batch_and_per_run_forms_agree(goal: Goal) -> None:
    rng = random.Random(3)
    rule = AshaRule(min_iter=1, eta=2)
    for _ in range(50):
        histories = {f"r{i}": [rng.random() for _ in range(rng.randint(0, 9))]
                     for i in range(20)}
        running = {r for r in histories if rng.random() < 0.6}
        batch = rule.should_stop(histories, running, goal)
        single = [rule.should_stop_run(r, histories, goal) for r in sorted(running)]
        assert batch == [d for d in single if d is not None]


def test_replaying_values_one_by_one_matches_asha() -> None:
    """Runs report in turns; each value is judged once as it arrives, like ASHA proper."""
    rule = AshaRule(min_iter=1, max_iter=9, eta=3)
    curves = {"a": [0.5] * 9, "b": [0.4] * 9, "c": [0.6] * 9, "d": [0.1] * 9}
    histories: dict[str, list[float]] = {r: [] for r in curves}
    stopped: dict[str, int] = {}
    for step in range(9):
        for run, curve in curves.items():
            if run in stopped:
                continue
            histories[run].append(curve[step])
            decision = rule.should_stop_run(run, histories, "minimize")
            if decision is not None:
                stopped[run] = step + 1
    # Rung 1: a, b continue (fewer than 3 values), c is third and worst, d is best so far.
    # Rung 3: a, b again < 3 values; d (best) continues. Rung 9: a, b continue alone, d best.
    assert stopped == {"c": 1}


@pytest.mark.parametrize("kwargs", [{"eta": 1.0}, {"min_iter": 0}, {"min_iter": 5, "max_iter": 4}])
def test_invalid_rules_are_refused(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        AshaRule(**kwargs)


def test_describe() -> None:
    assert (AshaRule(max_iter=27).describe()
            == "asha, rungs at iterations 1, 3, 9, 27, eta 3, top 1/3 continue at each rung")
