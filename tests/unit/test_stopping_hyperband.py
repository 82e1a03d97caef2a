"""Hyperband: W&B's bands, threshold and strict mode, on hand-built histories."""

from __future__ import annotations

import math
import random
import time

import pytest
from sweepd.coordinator.config.model import Goal
from sweepd.coordinator.stopping import HyperbandRule, StopDecision, hyperband_bands


@pytest.mark.parametrize(
    ("kwargs", "bands"),
    [
        ({"max_iter": 27, "s": 2, "eta": 3}, [3, 9]),
        ({"max_iter": 27, "s": 3, "eta": 3}, [1, 3, 9]),
        ({"max_iter": 27, "s": 5, "eta": 3}, [1, 3, 9]),  # stops below 1
        ({"max_iter": 10, "s": 2, "eta": 3}, [1, 3]),  # 3.33 -> 3, 1.11 -> 1
        ({"max_iter": 150, "s": 4, "eta": 3}, [1, 5, 16, 50]),  # 50, 16.7, 5.6, 1.85
        ({"max_iter": 150, "s": 4}, [1, 5, 16, 50]),  # eta defaults to 3
        ({"max_iter": 81, "s": 2, "eta": 2}, [20, 40]),
        ({"max_iter": 2, "s": 2, "eta": 3}, []),
        ({"max_iter": 27, "s": 2, "min_iter": 1}, [3, 9]),  # the max_iter form wins, as in W&B
    ],
)
def test_bands_max_iter_form(kwargs: dict[str, int], bands: list[int]) -> None:
    assert hyperband_bands(**kwargs) == bands


@pytest.mark.parametrize(
    ("kwargs", "first"),
    [
        ({"min_iter": 3}, [3, 9, 27, 81, 243]),
        ({"min_iter": 2, "eta": 2}, [2, 4, 8, 16]),
        ({"min_iter": 1, "eta": 3}, [1, 3, 9, 27]),
        ({"min_iter": 1, "eta": 1.5}, [1, 2, 3, 5, 7, 11]),  # 1, 1.5, 2.25, 3.4, 5.1, ...
    ],
)
def test_bands_min_iter_form(kwargs: dict[str, float], first: list[int]) -> None:
    bands = hyperband_bands(**kwargs)
    assert bands[: len(first)] == first
    assert bands == sorted(set(bands))
    assert bands[-1] <= 10**9  # unreachable bands are dropped, nothing overflows


def test_min_iter_form_has_at_most_100_bands_like_wandb() -> None:
    assert len(hyperband_bands(min_iter=1, eta=1.01)) <= 100


def _band_histories(values_at_9: list[float], length: int = 9) -> dict[str, list[float]]:
    return {f"r{i}": [1.0] * 8 + [v] + [v] * (length - 9) for i, v in enumerate(values_at_9)}


def test_threshold_is_the_one_over_eta_quantile_of_all_runs_at_the_band() -> None:
    rule = HyperbandRule(max_iter=27, s=2)  # bands 3, 9
    values = [0.1 * i for i in range(1, 12)] + [0.93]  # 12 runs reached iteration 9
    histories = _band_histories(values)
    threshold, reached = rule.threshold(9, histories, "minimize")
    assert reached == 12
    assert threshold == pytest.approx(0.5)  # sorted[int(12 / 3)] = the 5th best
    decision = rule.should_stop_run("r11", histories, "minimize", metric="loss")
    assert decision == StopDecision(
        "r11",
        "hyperband: loss=0.93 at iteration 9 is worse than the band threshold 0.5 "
        "(top 1/3 of 12 runs)",
        "hyperband", 9, pytest.approx(0.5), 0.93,
    )
    # The five best (threshold included) continue, the rest stop.
    stopped = {d.run_id for d in rule.should_stop(histories, set(histories), "minimize")}
    assert stopped == {f"r{i}" for i in range(5, 12)}


def test_only_running_runs_are_stopped_but_all_inform_the_threshold() -> None:
    rule = HyperbandRule(max_iter=27, s=2)
    histories = _band_histories([0.1, 0.2, 0.3, 0.9])
    assert rule.threshold(9, histories, "minimize")[0] == pytest.approx(0.2)
    assert [d.run_id for d in rule.should_stop(histories, {"r3"}, "minimize")] == ["r3"]
    assert rule.should_stop(histories, {"r0", "r1", "missing"}, "minimize") == []


def test_judged_at_the_largest_band_reached_and_not_before_the_first() -> None:
    rule = HyperbandRule(max_iter=27, s=2)  # bands 3, 9
    histories = {"good": [1.0, 1.0, 0.1, 0.1], "bad": [0.0, 0.0, 0.9, 0.0, 0.0],
                 "early": [9.0, 9.0]}
    # "bad" has 5 values: band 3; its 3rd value 0.9 is worse than sorted([0.1, 0.9])[0].
    decision = rule.should_stop_run("bad", histories, "minimize")
    assert decision is not None and decision.band == 3 and decision.value == 0.9
    assert rule.should_stop_run("early", histories, "minimize") is None  # before band 3
    assert rule.band_for(2) is None and rule.band_for(8) == 3 and rule.band_for(100) == 9


def test_strict_and_non_strict_differ_on_the_same_history() -> None:
    # W&B's measured case: history [5, 12, 12] is stopped under strict, kept under non-strict.
    histories = {"x": [5.0, 12.0, 12.0], "f1": [8.0, 8.0, 8.0], "f2": [9.0, 9.0, 9.0],
                 "f3": [20.0, 20.0, 20.0]}
    strict = HyperbandRule(max_iter=10, s=2)  # bands 1, 3
    lenient = HyperbandRule(max_iter=10, s=2, strict=False)
    # Values at iteration 3: 8, 9, 12, 20 -> threshold sorted[int(4/3)] = 9.
    decision = strict.should_stop_run("x", histories, "minimize")
    assert decision is not None and decision.threshold == 9 and decision.value == 12
    assert lenient.should_stop_run("x", histories, "minimize") is None  # best so far 5 <= 9
    # Non-strict still stops a run whose best so far is worse.
    histories["y"] = [10.0, 11.0, 12.0]
    decision = lenient.should_stop_run("y", histories, "minimize", metric="loss")
    assert decision is not None and decision.value == 10
    assert decision.reason.startswith("hyperband: best loss=10 in 3 iterations is worse than")


def test_maximize_flips_the_comparison() -> None:
    rule = HyperbandRule(max_iter=27, s=2)
    histories = _band_histories([0.1, 0.2, 0.3, 0.9])
    stopped_min = {d.run_id for d in rule.should_stop(histories, set(histories), "minimize")}
    stopped_max = {d.run_id for d in rule.should_stop(histories, set(histories), "maximize")}
    assert stopped_min == {"r2", "r3"}  # threshold 0.2: keep 0.1 and 0.2
    assert stopped_max == {"r0", "r1"}  # threshold 0.3 (in accuracy units): keep 0.9 and 0.3
    decision = rule.should_stop_run("r0", histories, "maximize", metric="acc")
    assert decision is not None and decision.threshold == pytest.approx(0.3)
    assert decision.value == pytest.approx(0.1)


def test_nan_is_worst_and_inf_keeps_its_order() -> None:
    rule = HyperbandRule(max_iter=27, s=2)
    histories = _band_histories([0.1, 0.2, 0.3, math.nan, math.inf, -math.inf])
    stopped = {d.run_id for d in rule.should_stop(histories, set(histories), "minimize")}
    assert stopped == {"r2", "r3", "r4"}  # threshold sorted[2] = 0.2; -inf, 0.1, 0.2 continue
    decision = rule.should_stop_run("r3", histories, "maximize")
    assert decision is not None  # a NaN is worst whichever the goal


def test_a_band_where_every_value_is_nan_stops_nobody() -> None:
    rule = HyperbandRule(min_iter=1)
    histories = {"a": [math.nan], "b": [math.nan], "c": [math.nan]}
    assert rule.should_stop(histories, set(histories), "minimize") == []


def test_inputs_are_not_modified() -> None:
    rule = HyperbandRule(min_iter=1, strict=False)
    histories = {"a": (3.0, 2.0), "b": (1.0, 1.0), "c": (2.0, 5.0)}
    snapshot = dict(histories)
    rule.should_stop(histories, frozenset(histories), "maximize")
    assert histories == snapshot


@pytest.mark.parametrize("strict", [True, False])
@pytest.mark.parametrize("goal", ["minimize", "maximize"])
def test_batch_and_per_run_forms_agree(strict: bool, goal: Goal) -> None:
    rng = random.Random(7)
    rule = HyperbandRule(min_iter=1, eta=2, strict=strict)
    for _ in range(50):
        histories = {f"r{i}": [rng.choice([rng.random(), math.nan, 0.5])
                               for _ in range(rng.randint(0, 12))] for i in range(20)}
        running = {r for r in histories if rng.random() < 0.6}
        batch = rule.should_stop(histories, running, goal)
        single = [rule.should_stop_run(r, histories, goal) for r in sorted(running)]
        assert batch == [d for d in single if d is not None]


@pytest.mark.parametrize("kwargs", [{"eta": 1}, {"min_iter": 0}, {"max_iter": 2, "s": 1},
                                    {}, {"max_iter": 27}])
def test_invalid_rules_are_refused(kwargs: dict[str, int]) -> None:
    with pytest.raises(ValueError):
        HyperbandRule(**kwargs)


def test_describe() -> None:
    assert (HyperbandRule(min_iter=3).describe()
            == "hyperband, bands at iterations 3, 9, 27, 81 …, eta 3, strict")
    assert (HyperbandRule(max_iter=150, s=4, strict=False).describe()
            == "hyperband, bands at iterations 1, 5, 16, 50, eta 3, non-strict (best value so far)")


def test_per_report_cost_stays_in_milliseconds_for_1000_runs_of_100_values() -> None:
    rng = random.Random(1)
    histories = {f"r{i}": [rng.random() for _ in range(100)] for i in range(1000)}
    rule = HyperbandRule(min_iter=1, strict=False)
    start = time.perf_counter()
    for _ in range(20):
        rule.should_stop_run("r0", histories, "minimize")
    per_call = (time.perf_counter() - start) / 20
    assert per_call < 0.005  # measured ~0.2 ms; generous for slow CI machines
    start = time.perf_counter()
    rule.should_stop(histories, set(histories), "minimize")
    assert time.perf_counter() - start < 0.25  # every run judged at once
