"""parse_config: inference, defaults, nesting, order, every refusal with its path and fix."""

from __future__ import annotations

from typing import Any

import pytest
from sweepd.coordinator.config import ConfigError, nest, parse_config
from sweepd.coordinator.config.model import SweepConfig


def _parse(parameters: Any, **top: Any) -> SweepConfig:
    raw = {"method": "random", "program": "t.py", "parameters": parameters, **top}
    return parse_config(raw)


def _problems(source: Any) -> list[str]:
    with pytest.raises(ConfigError) as err:
        parse_config(source)
    return [str(p) for p in err.value.problems]


@pytest.mark.parametrize(
    ("spec", "distribution"),
    [
        ({"values": [1, 2]}, "categorical"),
        ({"values": [1, 2], "probabilities": [0.5, 0.5]}, "categorical_w_probabilities"),
        ({"value": 3}, "constant"),
        ({"min": 1, "max": 10}, "int_uniform"),
        ({"min": 0.1, "max": 1.0}, "uniform"),
        ({"min": 1, "max": 10.0}, "uniform"),
        ({"min": 1.0, "max": 10.0}, "uniform"),
    ],
)
def test_inference(spec: dict[str, Any], distribution: str) -> None:
    config = _parse({"x": spec})
    assert config.parameters[0].distribution == distribution
    if "min" in spec:
        assert any("no distribution given" in n for n in config.notices)


def test_defaults_filled() -> None:
    config = _parse(
        {
            "n": {"distribution": "normal"},
            "q": {"distribution": "q_uniform", "min": 1, "max": 6},
            "b": {"distribution": "beta"},
        }
    )
    by = {p.name: p for p in config.parameters}
    assert (by["n"].mu, by["n"].sigma) == (0.0, 1.0)
    assert by["q"].q == 1.0 and isinstance(by["q"].q, float)
    assert (by["b"].a, by["b"].b) == (1.0, 1.0)


def test_nested_parameters_flatten_sort_and_nest() -> None:
    config = _parse(
        {
            "opt": {
                "parameters": {"lr": {"value": 0.1}, "deep": {"parameters": {"k": {"value": 1}}}}
            },
            "a.b": {"value": 2},
            "opt-x": {"value": 3},
        }
    )
    paths = [p.path for p in config.parameters]
    # W&B sorts flattened names joined with its nesting delimiter (".wbnest[...].").
    assert paths == [("a.b",), ("opt-x",), ("opt", "deep", "k"), ("opt", "lr")]
    point = {p.path: p.value for p in config.parameters}
    assert nest(point) == {"a.b": 2, "opt-x": 3, "opt": {"deep": {"k": 1}, "lr": 0.1}}


def test_yaml_e_notation_and_duplicates() -> None:
    text = (
        "method: random\nprogram: t.py\nparameters:\n  lr:\n    min: 1e-5\n    max: 1e-1\n"
        "  lr:\n    values: [1e-4, '1e-3']\n"
    )
    config = parse_config(text)
    (lr,) = config.parameters
    assert lr.values == (0.0001, "1e-3")
    assert any("written twice" in n and "parameters.lr" in n for n in config.notices)
    assert any("1e-4" in n and "number" in n for n in config.notices)


def test_metric_and_run_cap() -> None:
    config = _parse(
        {"x": {"value": 1}},
        metric={
            "name": "loss",
            "goal": "maximize",
            "target": 0.9,
            "impute": "best",
            "impute_while_running": "false",
        },
        run_cap=5,
        max_retries=0,
    )
    assert config.max_retries == 0
    assert config.metric is not None
    assert (config.metric.goal, config.metric.target, config.metric.impute) == (
        "maximize",
        0.9,
        "best",
    )
    assert config.metric.impute_while_running is None
    assert config.run_cap == 5


@pytest.mark.parametrize(
    ("top", "path", "text"),
    [
        ({"method": "bayesian"}, "method", "'bayes'"),
        ({"method": "custom"}, "method", "no meaning"),
        ({"metric": {"name": "l", "goal": "maximum"}}, "metric.goal", "'maximize'"),
        ({"metric": {"name": "l", "impute": "wrost"}}, "metric.impute", "'worst'"),
        ({"metric": {"goal": "minimize"}}, "metric.name", "name"),
        ({"run_cap": 0}, "run_cap", "> 0"),
        ({"run_cap": 2.5}, "run_cap", "whole"),
        ({"max_retries": -1}, "max_retries", "0 to 100"),
        ({"max_retries": True}, "max_retries", "whole"),
        ({"max_retry": 3}, "max_retry", "'max_retries'"),
        ({"paramters": {}}, "paramters", "'parameters'"),
        ({"entity": "me", "metrc": {}}, "metrc", "'metric'"),
        ({"command": ["${program}", "${args}"], "program": None}, "program", "${program}"),
        ({"command": "python t.py"}, "command", "list"),
    ],
)
def test_top_level_refusals(top: dict[str, Any], path: str, text: str) -> None:
    raw = {"method": "random", "program": "t.py", "parameters": {"x": {"value": 1}}}
    raw.update(top)
    raw = {k: v for k, v in raw.items() if v is not None}
    with pytest.raises(ConfigError) as err:
        parse_config(raw)
    assert any(p.path == path and text in str(p) for p in err.value.problems), err.value.problems


@pytest.mark.parametrize(
    ("spec", "path", "text"),
    [
        ({"min": 2, "max": 1}, "parameters.x.max", "greater than"),
        ({"min": 1, "max": 1}, "parameters.x.max", "greater than"),
        ({"values": []}, "parameters.x.values", "empty"),
        ({"values": 3}, "parameters.x.values", "not a list"),
        ({"values": [1, 2], "probabilities": [0.5, 0.6]}, "parameters.x.probabilities", "sum"),
        (
            {"values": [1, 2], "probabilities": [1.0]},
            "parameters.x.probabilities",
            "1 probabilities",
        ),
        ({"distribution": "log_uniform_values", "min": 0, "max": 1}, "parameters.x.min", "> 0"),
        ({"distribution": "normal", "sigma": -1}, "parameters.x.sigma", ">= 0"),
        ({"distribution": "int_uniform", "min": 2.0, "max": 8}, "parameters.x.min", "non-integer"),
        ({"distribution": "uniform", "values": [1]}, "parameters.x.values", "may not have"),
        ({"distribution": "unifrom", "min": 0, "max": 1}, "parameters.x.distribution", "'uniform'"),
        ({"min": 0}, "parameters.x", "no max"),
        ({"vals": [1]}, "parameters.x.vals", "'values'"),
        ({"min": "abc", "max": 1}, "parameters.x.min", "not a number"),
        ({"mu": 0}, "parameters.x", "distribution"),
    ],
)
def test_parameter_refusals(spec: dict[str, Any], path: str, text: str) -> None:
    with pytest.raises(ConfigError) as err:
        _parse({"x": spec})
    assert any(p.path == path and text in str(p) for p in err.value.problems), err.value.problems


def test_every_problem_is_reported_at_once() -> None:
    problems = _problems(
        {
            "method": "bayes",
            "parameters": {"a": 3, "b": None, "c": {"min": 1}, "1bad": {"value": 1}},
            "bogus": 1,
        }
    )
    joined = "\n".join(problems)
    for needle in ("parameters.a", "parameters.b", "parameters.c", "1bad", "bogus", "metric"):
        assert needle in joined
    assert len(problems) >= 6


def test_string_number_bounds_are_read_with_notice() -> None:
    config = _parse({"lr": {"distribution": "uniform", "min": "1e-5", "max": 0.1}})
    assert config.parameters[0].min == 1e-5
    assert any("read as the number" in n for n in config.notices)


def test_kept_and_launch_keys_are_notices() -> None:
    config = _parse(
        {"x": {"value": 1}}, entity="e", project="p", job="j:latest", controller={"type": "local"}
    )
    assert any(n.startswith("entity") for n in config.notices)
    assert any("Launch" in n for n in config.notices)
    assert config.raw["job"] == "j:latest"


def test_launch_only_config_is_refused_with_reason() -> None:
    problems = _problems({"method": "random", "job": "j", "scheduler": {"num_workers": 2}})
    assert any("Launch" in p for p in problems)


def test_no_program_no_command_is_accepted_with_notice() -> None:
    config = parse_config({"method": "random", "parameters": {"x": {"value": 1}}})
    assert any("agent(function=...)" in n for n in config.notices)


def test_grid_with_continuous_reports_size() -> None:
    problems = _problems(
        {"method": "grid", "parameters": {"a": {"min": 0.0, "max": 1.0}, "b": {"values": [1, 2]}}}
    )
    assert any("parameters.a" in p and "continuous" in p for p in problems)
    assert any("grid of 2 points" in p for p in problems)


def test_early_terminate_goes_through_stopping() -> None:
    config = _parse(
        {"x": {"value": 1}},
        metric={"name": "loss"},
        early_terminate={"type": "hyperband", "min_iter": 3},
    )
    assert config.early_terminate is not None
    problems = _problems(
        {
            "method": "random",
            "parameters": {"x": {"value": 1}},
            "early_terminate": {"type": "hyperbnd"},
        }
    )
    assert any("early_terminate" in p for p in problems)


def test_invalid_yaml_is_a_config_error() -> None:
    problems = _problems("method: [unclosed\n")
    assert any("YAML" in p for p in problems)
    assert _problems("- a\n- b\n")
