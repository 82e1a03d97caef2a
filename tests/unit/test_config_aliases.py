"""YAML aliases in sweep configs: linear to check, bounded once expanded (issue #11 item 6)."""

from __future__ import annotations

import time

import pytest
from sweepd.coordinator.config import ConfigError, parse_config
from sweepd.coordinator.config.loader import MAX_EXPANDED_NODES, load_text


def _nested_bomb(depth: int, width: int = 9, leaf: str = "1e5") -> str:
    items = ["&a0 [" + ",".join([leaf] * width) + "]"]
    for i in range(1, depth):
        items.append(f"&a{i} [" + ",".join([f"*a{i - 1}"] * width) + "]")
    return "method: grid\nparameters:\n  x:\n    values: [" + ", ".join(items) + "]\n"


def test_a_billion_value_bomb_is_refused_in_milliseconds() -> None:
    text = _nested_bomb(depth=10)  # 9**10 values in under 600 bytes
    assert len(text) < 600
    start = time.perf_counter()
    with pytest.raises(ConfigError) as err:
        parse_config(text)
    assert time.perf_counter() - start < 0.5
    assert "MAX_EXPANDED_NODES" in str(err.value) and "alias" in str(err.value)


def test_merge_key_bomb_is_refused() -> None:
    # Each level merges the previous one twice: the merged mappings double per level.
    lines = ["b0: &b0 {k0: 1, k1: 2}"]
    for i in range(1, 40):
        lines.append(f"b{i}: &b{i} {{<<: [*b{i - 1}, *b{i - 1}], z{i}: 1}}")
    with pytest.raises(ConfigError, match="MAX_EXPANDED_NODES"):
        parse_config("\n".join(lines) + "\n")


def test_recursive_alias_is_refused_with_its_line() -> None:
    with pytest.raises(ConfigError, match=r"anchor at line 4 .*endless"):
        parse_config("method: grid\nparameters:\n  x:\n    values: &v [1, *v]\n")


def test_ordinary_anchors_still_work_and_notices_name_the_first_path() -> None:
    config = parse_config(
        "method: random\n"
        "parameters:\n"
        "  lr: &range {min: 1e-4, max: 1e-1}\n"
        "  wd: *range\n"
        "  extra: {<<: *range, distribution: log_uniform_values}\n"
    )
    assert [p.path for p in config.parameters] == [("extra",), ("lr",), ("wd",)]
    e_notices = [n for n in config.notices if "read as the number" in n]
    # Two e-numbers, each reported once although three parameters use them.
    assert len(e_notices) == 2, config.notices
    assert all(n.startswith("parameters.lr.") for n in e_notices), e_notices


def test_just_under_the_budget_is_accepted() -> None:
    # 9**6 = 531,441 values plus the lists: under MAX_EXPANDED_NODES.
    assert MAX_EXPANDED_NODES > 9 ** 6
    start = time.perf_counter()
    loaded = load_text(_nested_bomb(depth=6, leaf="1"))
    assert time.perf_counter() - start < 2.0
    assert loaded.data["method"] == "grid"


def test_deep_nesting_is_a_refusal_not_a_crash() -> None:
    text = "method: grid\nparameters:\n  x:\n    values: " + "[" * 5000 + "]" * 5000 + "\n"
    with pytest.raises(ConfigError):
        parse_config(text)


def test_notices_of_the_reader_are_bounded() -> None:
    values = ", ".join(["1e5"] * 5000)
    config = parse_config(f"method: random\nparameters:\n  x:\n    values: [{values}]\n")
    reader = [n for n in config.notices if "read as the number" in n or "more like these" in n]
    assert len(reader) == 21, len(reader)
    assert reader[-1].startswith("... and 4980 more"), reader[-1]
