"""Limits are looked up in a typed table, not in the module's globals by a free string, and
the stopping rules compare a goal with the domain's name for it (issue #17)."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import get_args

import pytest
from sweepd.coordinator import limits
from sweepd.coordinator.domain import MAXIMIZE
from sweepd.coordinator.errors import InvalidArgument
from sweepd.coordinator.stopping._common import cost, from_cost

STOPPING = Path(__file__).resolve().parents[2] / "coordinator" / "stopping"


@pytest.mark.parametrize("name", get_args(limits.TextLimit))
def test_each_text_limit_is_its_constant_and_named_in_the_refusal(name: str) -> None:
    most = getattr(limits, name)
    assert limits.check_text("f", "x" * most, name) == "x" * most
    with pytest.raises(InvalidArgument, match=rf"^f: {most + 1} characters.*\({name}\)"):
        limits.check_text("f", "x" * (most + 1), name)
    clipped = limits.clip_text("x" * (most + 10), name)
    assert len(clipped) == most and clipped.endswith(f"cut, {name})")


@pytest.mark.parametrize("name", get_args(limits.CountLimit))
def test_each_count_limit_is_its_constant_and_named_in_the_refusal(name: str) -> None:
    most = getattr(limits, name)
    limits.check_count("f", most, name)
    with pytest.raises(InvalidArgument, match=rf"^f: {most + 1} items.*\({name}\)"):
        limits.check_count("f", most + 1, name)


def test_limits_are_not_looked_up_in_globals() -> None:
    source = (Path(limits.__file__)).read_text()
    assert "globals()" not in source


def test_the_stopping_rules_compare_goals_by_name() -> None:
    literal = []
    for path in sorted(STOPPING.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Compare):
                literal += [f"{path.name}:{node.lineno}" for part in [node.left, *node.comparators]
                            if isinstance(part, ast.Constant)
                            and part.value in ("maximize", "minimize")]
    assert literal == []
    assert cost(2.0, MAXIMIZE) == -2.0 and from_cost(-2.0, MAXIMIZE) == 2.0
    assert cost(2.0, "minimize") == 2.0
