"""parse_rule: every problem reported, each at its path with a fix; describe_rule."""

from __future__ import annotations

from typing import Any

import pytest
from sweepd.coordinator.errors import Problem
from sweepd.coordinator.stopping import (
    AshaRule,
    HyperbandRule,
    MedianRule,
    describe_rule,
    parse_rule,
)


def _problems(raw: Any) -> dict[str, Problem]:
    rule, problems = parse_rule(raw)
    assert rule is None
    assert problems
    return {p.path: p for p in problems}


@pytest.mark.parametrize(
    ("raw", "rule"),
    [
        ({"type": "hyperband", "min_iter": 3}, HyperbandRule(min_iter=3)),
        ({"type": "hyperband", "max_iter": 27, "s": 2, "eta": 3, "strict": False},
         HyperbandRule(max_iter=27, s=2, eta=3, strict=False)),
        # W&B accepts both forms at once and uses max_iter; a stray s beside min_iter too.
        ({"type": "hyperband", "min_iter": 1, "max_iter": 27, "s": 2},
         HyperbandRule(min_iter=1, max_iter=27, s=2)),
        ({"type": "hyperband", "min_iter": 2, "s": 3}, HyperbandRule(min_iter=2, s=3)),
        ({"type": "hyperband", "min_iter": 2, "eta": 1.5}, HyperbandRule(min_iter=2, eta=1.5)),
        ({"type": "asha"}, AshaRule()),
        ({"type": "asha", "min_iter": 2, "max_iter": 50, "eta": 4},
         AshaRule(min_iter=2, max_iter=50, eta=4)),
        ({"type": "median"}, MedianRule()),
        ({"type": "median", "n_startup_runs": 3, "n_warmup_iters": 0},
         MedianRule(n_startup_runs=3, n_warmup_iters=0)),
    ],
)
def test_valid(raw: dict[str, Any], rule: Any) -> None:
    assert parse_rule(raw) == (rule, [])


def test_defaults() -> None:
    rule, _ = parse_rule({"type": "hyperband", "min_iter": 3})
    assert isinstance(rule, HyperbandRule) and rule.eta == 3 and rule.strict is True


def test_absent_means_no_rule() -> None:
    assert parse_rule(None) == (None, [])
    assert describe_rule(None) == "no early termination"


@pytest.mark.parametrize("raw", ["hyperband", [1, 2], 3])
def test_not_a_mapping(raw: Any) -> None:
    problems = _problems(raw)
    assert list(problems) == ["early_terminate"]
    assert "mapping" in problems["early_terminate"].message


def test_missing_type() -> None:
    problem = _problems({"min_iter": 3})["early_terminate.type"]
    assert problem.message == "is missing" and "hyperband" in problem.fix


@pytest.mark.parametrize(("typo", "nearest"),
                         [("hyperbnd", "hyperband"), ("Hyperband", "hyperband"),
                          ("ahsa", "asha"), ("medain", "median")])
def test_misspelled_type_suggests_the_nearest(typo: str, nearest: str) -> None:
    problem = _problems({"type": typo, "min_iter": 3})["early_terminate.type"]
    assert problem.fix == f"did you mean type: {nearest}?"


def test_unrelated_type_lists_the_types() -> None:
    problem = _problems({"type": "bandit"})["early_terminate.type"]
    assert problem.fix == "use one of hyperband, asha, median"


def test_unknown_keys_suggest_the_nearest_valid_key() -> None:
    problems = _problems({"type": "hyperband", "min_itr": 3, "etaa": 2, "color": "red"})
    assert problems["early_terminate.min_itr"].fix == "did you mean min_iter?"
    assert problems["early_terminate.etaa"].fix == "did you mean eta?"
    assert problems["early_terminate.color"].fix.startswith("remove it; hyperband takes")
    # min_iter is missing in effect, which is its own problem.
    assert "min_iter" in problems["early_terminate"].message


def test_a_key_of_another_type_says_which() -> None:
    problems = _problems({"type": "asha", "strict": True})
    assert "belongs to type: hyperband" in problems["early_terminate.strict"].message


def test_unknown_keys_are_reported_even_when_the_type_is_wrong() -> None:
    problems = _problems({"type": "hyperbnd", "mn_iter": 3})
    assert set(problems) == {"early_terminate.type", "early_terminate.mn_iter"}
    assert problems["early_terminate.mn_iter"].fix == "did you mean min_iter?"


def test_every_bad_value_is_reported_at_once() -> None:
    problems = _problems({"type": "hyperband", "min_iter": 0, "max_iter": 2.5, "s": True,
                          "eta": 1, "strict": "yes"})
    assert set(problems) == {"early_terminate.min_iter", "early_terminate.max_iter",
                             "early_terminate.s", "early_terminate.eta",
                             "early_terminate.strict"}
    assert problems["early_terminate.min_iter"].message == "must be an integer >= 1, got 0"
    assert problems["early_terminate.eta"].message == "must be a number > 1, got 1"
    assert problems["early_terminate.strict"].message == "must be true or false, got 'yes'"
    assert all(p.fix for p in problems.values())


@pytest.mark.parametrize("eta", [1, 0.5, "3", float("inf"), float("nan"), None, False])
def test_eta_must_be_a_number_above_one(eta: Any) -> None:
    assert "early_terminate.eta" in _problems({"type": "hyperband", "min_iter": 3, "eta": eta})


def test_hyperband_needs_a_form() -> None:
    problem = _problems({"type": "hyperband", "eta": 3})["early_terminate"]
    assert problem.message == "hyperband needs min_iter, or both max_iter and s"
    problem = _problems({"type": "hyperband", "max_iter": 27})["early_terminate.s"]
    assert "required with max_iter" in problem.message


def test_hyperband_without_any_band() -> None:
    problem = _problems({"type": "hyperband", "max_iter": 2, "s": 3})["early_terminate.max_iter"]
    assert "no band" in problem.message


def test_asha_and_median_ranges() -> None:
    problems = _problems({"type": "asha", "min_iter": 10, "max_iter": 5})
    assert "below min_iter" in problems["early_terminate.max_iter"].message
    problems = _problems({"type": "median", "n_startup_runs": 0, "n_warmup_iters": -1})
    assert set(problems) == {"early_terminate.n_startup_runs", "early_terminate.n_warmup_iters"}


def test_path_prefix_is_used() -> None:
    _, problems = parse_rule({"type": "hyperband", "min_iter": 3, "eta": 0},
                             path="sweep.early_terminate")
    assert [p.path for p in problems] == ["sweep.early_terminate.eta"]


def test_describe_rule() -> None:
    assert describe_rule(parse_rule({"type": "hyperband", "min_iter": 3})[0]) == (
        "hyperband, bands at iterations 3, 9, 27, 81 …, eta 3, strict")
    assert describe_rule(parse_rule({"type": "hyperband", "max_iter": 27, "s": 2})[0]) == (
        "hyperband, bands at iterations 3, 9, eta 3, strict")
    assert describe_rule(parse_rule({"type": "median"})[0]).startswith("median, stop a run")
