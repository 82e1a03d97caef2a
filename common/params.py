"""Typed parameter values on the wire (``sweepd.v1.ParamValue``) to and from Python values."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sweepd.v1 import common_pb2

_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1


def value_from_proto(pv: common_pb2.ParamValue) -> Any:
    kind = pv.WhichOneof("kind")
    if kind is None or kind == "null_value":
        return None
    if kind == "map_value":
        return params_from_proto(pv.map_value)
    if kind == "list_value":
        return [value_from_proto(item) for item in pv.list_value.items]
    return getattr(pv, kind)


def params_from_proto(pm: common_pb2.ParamMap) -> dict[str, Any]:
    """The values in W&B's canonical order, sorted by name at every level: a protobuf map
    keeps no order, and this is the order W&B's agent shows and renders them in."""
    return {key: value_from_proto(pm.fields[key]) for key in sorted(pm.fields)}


def value_to_proto(value: Any) -> common_pb2.ParamValue:
    pv = common_pb2.ParamValue()
    if value is None:
        pv.null_value = True
    elif isinstance(value, bool):  # before int: bool is an int subclass
        pv.bool_value = value
    elif isinstance(value, int) and _INT64_MIN <= value <= _INT64_MAX:
        pv.int_value = value
    elif isinstance(value, (int, float)):
        pv.double_value = float(value)
    elif isinstance(value, str):
        pv.string_value = value
    elif isinstance(value, Mapping):
        pv.map_value.CopyFrom(params_to_proto(value))
    elif isinstance(value, (list, tuple)):
        pv.list_value.items.extend(value_to_proto(v) for v in value)
    else:
        pv.string_value = str(value)
    return pv


def params_to_proto(params: Mapping[str, Any]) -> common_pb2.ParamMap:
    pm = common_pb2.ParamMap()
    for key, value in params.items():
        pm.fields[str(key)].CopyFrom(value_to_proto(value))
    return pm
