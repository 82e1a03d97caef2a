"""Command macros rendered exactly as W&B's agent renders them."""

from __future__ import annotations

import json
from typing import Any

import pytest
from sweepd.common.macros import resolve_worker_macros
from sweepd.coordinator.config import ConfigError, SweepConfig, parse_config, render_command

# W&B's own documented example: args {a: True, b: False, c: 1, d: None}.
WANDB_EXAMPLE = {("a",): True, ("b",): False, ("c",): 1, ("d",): None}


def _config(command: list[Any]) -> SweepConfig:
    return parse_config(
        {
            "program": "train.py",
            "method": "random",
            "command": command,
            "parameters": {k: {"value": None} for k in "abcd"},
        }
    )


@pytest.mark.parametrize(
    ("macro", "expected"),
    [
        ("${args}", ["--a=True", "--b=False", "--c=1", "--d=None"]),
        ("${args_no_equals}", ["--a", "True", "--b", "False", "--c", "1", "--d", "None"]),
        ("${args_no_hyphens}", ["a=True", "b=False", "c=1", "d=None"]),
        ("${args_append_hydra}", ["+a=True", "+b=False", "+c=1", "+d=None"]),
        ("${args_override_hydra}", ["++a=True", "++b=False", "++c=1", "++d=None"]),
        ("${args_no_boolean_flags}", ["--a", "--c=1", "--d=None"]),
        ("${args_json}", ['{"a": true, "b": false, "c": 1, "d": null}']),
    ],
)
def test_args_macros_match_wandb(macro: str, expected: list[str]) -> None:
    config = _config(["${program}", macro])
    assert render_command(config, WANDB_EXAMPLE) == ["train.py", *expected]


def test_default_command_leaves_worker_macros() -> None:
    config = parse_config(
        {"program": "train.py", "method": "random", "parameters": {"lr": {"value": 1e-5}}}
    )
    assert render_command(config, {("lr",): 1e-5}) == [
        "${env}",
        "${interpreter}",
        "train.py",
        "--lr=1e-05",
    ]


def test_nested_value_renders_as_python_dict_and_json_nests() -> None:
    config = parse_config(
        {
            "program": "t.py",
            "method": "random",
            "command": ["${args}", "${args_json}", "${args_json_file}", "x${envvar:HOME}y"],
            "parameters": {
                "opt": {"parameters": {"name": {"value": "sgd"}, "lr": {"value": 0.1}}},
                "bs": {"value": 16},
            },
        }
    )
    point = {p.path: p.value for p in config.parameters}
    argv = render_command(config, point)
    assert argv[:2] == ["--bs=16", "--opt={'lr': 0.1, 'name': 'sgd'}"]
    assert json.loads(argv[2]) == {"bs": 16, "opt": {"lr": 0.1, "name": "sgd"}}
    assert argv[3:] == ["${args_json_file}", "x${envvar:HOME}y"]


@pytest.mark.parametrize(
    ("item", "named"),
    [("--lr=${lr}", "${lr}"), ("${nope}", "${nope}"), ("--p=${program}", "${program}")],
)
def test_unknown_or_embedded_macros_are_refused(item: str, named: str) -> None:
    with pytest.raises(ConfigError) as err:
        _config(["${program}", item, "${args}"])
    assert any(named in p.message and p.path == "command[1]" for p in err.value.problems)


def test_non_string_items_are_converted_with_notice() -> None:
    config = _config(["${program}", "--epochs", 40, 0.5, "${args}"])
    assert config.command[1:4] == ("--epochs", "40", "0.5")
    assert any("not strings" in n for n in config.notices)


def test_resolve_worker_macros() -> None:
    calls: list[int] = []

    def json_file() -> str:
        calls.append(1)
        return "/tmp/run/args.json"

    argv = ["${env}", "${interpreter}", "t.py", "${args_json_file}", "${envvar:A}/${envvar:B}"]
    out = resolve_worker_macros(
        argv,
        interpreter="/venv/bin/python",
        env={"A": "x"},
        args_json_file=json_file,
        windows=False,
    )
    assert out == ["/usr/bin/env", "/venv/bin/python", "t.py", "/tmp/run/args.json", "x/B"]
    assert calls == [1]
    on_windows = resolve_worker_macros(
        ["${env}", "${interpreter}"],
        interpreter="py",
        env={},
        args_json_file=json_file,
        windows=True,
    )
    assert on_windows == ["py"]
