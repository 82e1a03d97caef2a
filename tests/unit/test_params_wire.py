"""Typed parameter values on the wire: round trips and W&B's canonical key order."""

from __future__ import annotations

from typing import Any

import pytest
from sweepd.common.params import params_from_proto, params_to_proto


@pytest.mark.parametrize(
    "params",
    [
        {"lr": 1e-05, "bs": 32, "opt": "adam", "bn": True, "none": None},
        {"big": 2**63 - 1, "small": -(2**63), "huge": 2**64},
        {"opt": {"name": "sgd", "lr": 0.1}, "layers": [[2, 2], {"k": 3}]},
    ],
)
def test_round_trip_keeps_types(params: dict[str, Any]) -> None:
    back = params_from_proto(params_to_proto(params))
    expected = dict(params)
    if "huge" in expected:
        expected["huge"] = float(expected["huge"])  # beyond int64: a double on the wire
    assert back == expected
    for key, value in expected.items():
        assert type(back[key]) is type(value), key


def test_keys_come_back_sorted_at_every_level() -> None:
    # A protobuf map keeps no order; W&B shows and renders parameters sorted by name.
    back = params_from_proto(params_to_proto({"z": 1, "a": {"y": 2, "b": [{"d": 1, "c": 2}]}}))
    assert list(back) == ["a", "z"]
    assert list(back["a"]) == ["b", "y"]
    assert list(back["a"]["b"][0]) == ["c", "d"]
