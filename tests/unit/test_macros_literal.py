"""Macros belong to the command template, never to a parameter value (issue #11 item 17)."""

from __future__ import annotations

import pytest
from sweepd.common.macros import resolve_worker_macros
from sweepd.coordinator.config import parse_config, render_argv

ENV = {"HOME": "/home/u"}


def _resolve(argv: list[str], literal: tuple[int, ...]) -> list[str]:
    return resolve_worker_macros(argv, interpreter="/py", env=ENV,
                                 args_json_file=lambda: "/run/args.json", windows=False,
                                 literal=literal)


@pytest.mark.parametrize("macro", ["${args}", "${args_no_equals}", "${args_json}",
                                   "${args_no_hyphens}", "${args_override_hydra}"])
def test_values_pass_unchanged_and_template_items_are_resolved(macro: str) -> None:
    config = parse_config({
        "program": "train.py", "method": "grid",
        "command": ["${env}", "${interpreter}", "${program}", "--home=${envvar:HOME}", macro],
        "parameters": {"v": {"value": "${envvar:HOME}"}, "w": {"value": "${interpreter}"}},
    })
    rendered = render_argv(config, {("v",): "${envvar:HOME}", ("w",): "${interpreter}"})
    argv = _resolve(rendered.argv, rendered.literal)
    assert argv[:4] == ["/usr/bin/env", "/py", "train.py", "--home=/home/u"]
    # Every value item is exactly as the coordinator rendered it.
    assert argv[4:] == rendered.argv[4:]
    assert "${envvar:HOME}" in " ".join(argv[4:]) and "${interpreter}" in " ".join(argv[4:])
    assert "/home/u" not in " ".join(argv[4:])


def test_without_marks_every_item_is_resolved_as_before() -> None:
    # An older coordinator sends no literal_argv: the worker resolves everything, as it did.
    assert _resolve(["${interpreter}", "--v=${envvar:HOME}"], ()) == ["/py", "--v=/home/u"]


def test_marks_follow_the_rendered_items() -> None:
    config = parse_config({
        "program": "train.py", "method": "grid",
        "command": ["${args}", "${program}", "${args_json_file}", "${args_no_equals}"],
        "parameters": {"a": {"value": 1}, "b": {"value": 2}},
    })
    rendered = render_argv(config, {("a",): 1, ("b",): 2})
    assert rendered.argv == ["--a=1", "--b=2", "train.py", "${args_json_file}",
                             "--a", "1", "--b", "2"]
    assert rendered.literal == (0, 1, 4, 5, 6, 7)
