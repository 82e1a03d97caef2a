"""Sweep configuration text (YAML or JSON) to a plain mapping, with two YAML pitfalls fixed.

1. PyYAML implements YAML 1.1, where a float needs a dot and a signed exponent: ``1e-4`` and
   ``3e6`` are *strings*. W&B reads them that way and then refuses or misreads the bound. Here an
   unquoted scalar that YAML 1.2 (and every author) reads as a number becomes that number, and
   the conversion is reported as a notice. A quoted ``"1e-4"`` stays a string.
2. A key written twice in one mapping silently keeps the last value in PyYAML. Here duplicates
   are found and reported; the last value is still the one used, as in W&B.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import yaml

from ..errors import Problem

# What YAML 1.2's core schema reads as a float but YAML 1.1 (PyYAML) reads as a string: a number
# with an exponent and either no dot or an unsigned exponent (``1e-4``, ``3e6``, ``1.0e5``).
_E_NUMBER = re.compile(r"^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9_]+)[eE][-+]?[0-9]+$")
_E_NUMBER_TAG = "tag:sweepd.dev,2024:e-number"


@dataclass(frozen=True)
class Loaded:
    """A parsed document plus what the reader noticed about it."""

    data: Any
    notices: tuple[str, ...] = ()


class _Loader(yaml.SafeLoader):
    """SafeLoader that reads ``1e-4``-style scalars as floats (see the module docstring)."""


def _construct_e_number(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> float:
    return float(str(loader.construct_scalar(node)).replace("_", ""))


_Loader.add_implicit_resolver(_E_NUMBER_TAG, _E_NUMBER, list("-+0123456789."))
_Loader.add_constructor(_E_NUMBER_TAG, _construct_e_number)


def load_text(text: str, filename: str | None = None) -> Loaded:
    """Parses YAML (or JSON, which is read as YAML) into plain Python data.

    Raises ``ValueError`` carrying a :class:`Problem` list when the text is not YAML at all.
    """
    where = f"{filename}: " if filename else ""
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return Loaded(None)
        notices: list[str] = []
        _walk(node, "", notices)
        data = loader.construct_document(node)
    except yaml.YAMLError as exc:
        json_data = _try_json(text)
        if json_data is not None:
            return Loaded(json_data)
        raise TextError([Problem("", f"{where}not valid YAML: {_one_line(exc)}")]) from exc
    finally:
        loader.dispose()
    return Loaded(data, tuple(notices))


class TextError(ValueError):
    """The configuration text could not be read; ``problems`` says where and why."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("; ".join(str(p) for p in problems))


def _walk(node: yaml.Node, path: str, notices: list[str]) -> None:
    """Finds duplicate keys and converted e-notation scalars, naming each by its path."""
    if isinstance(node, yaml.MappingNode):
        seen: dict[str, int] = {}
        for key_node, value_node in node.value:
            key = str(key_node.value) if isinstance(key_node, yaml.ScalarNode) else "?"
            line = key_node.start_mark.line + 1
            child = f"{path}.{key}" if path else key
            if key != "<<" and key in seen:
                notices.append(
                    f"{child}: key written twice (lines {seen[key]} and {line}); the later one "
                    "is used, as W&B would (YAML keeps the last) - delete the one you did not mean"
                )
            seen[key] = line
            _walk(value_node, child, notices)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _walk(item, f"{path}[{i}]", notices)
    elif isinstance(node, yaml.ScalarNode) and node.tag == _E_NUMBER_TAG:
        number = float(str(node.value).replace("_", ""))
        notices.append(
            f"{path}: {node.value} read as the number {number!r} (YAML 1.1, which W&B uses, "
            "reads it as a string)"
        )


def _try_json(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return None


def _one_line(exc: Exception) -> str:
    return " ".join(str(exc).split())


def is_mapping(value: Any) -> bool:
    return isinstance(value, Mapping)
