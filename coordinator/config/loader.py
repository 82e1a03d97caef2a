"""Sweep configuration text (YAML or JSON) to a plain mapping, with two YAML pitfalls fixed.

1. PyYAML implements YAML 1.1, where a float needs a dot and a signed exponent: ``1e-4`` and
   ``3e6`` are *strings*. W&B reads them that way and then refuses or misreads the bound. Here an
   unquoted scalar that YAML 1.2 (and every author) reads as a number becomes that number, and
   the conversion is reported as a notice. A quoted ``"1e-4"`` stays a string.
2. A key written twice in one mapping silently keeps the last value in PyYAML. Here duplicates
   are found and reported; the last value is still the one used, as in W&B.

Aliases (``*name``) let a few hundred bytes stand for billions of values (an "alias bomb"), and
a recursive alias for an endless structure. Before anything is constructed, the size of the
document with every alias expanded is counted, visiting each node once, and a document over
:data:`MAX_EXPANDED_NODES` or one that contains itself is refused.
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
# Nodes (scalars, lists, mappings, keys included) a document may stand for once its aliases are
# expanded. A config of 1 MiB (limits.MAX_CONFIG_BYTES) written out without aliases has at most
# about 500,000 ("1," per value); twice that leaves room for anchors in generated configs,
# while validation of the expanded data stays below a few seconds (off the event loop).
MAX_EXPANDED_NODES = 1_000_000
# Notices the reader reports one by one; the rest are counted in one more. Every sweep message
# carries its notices, so a config of 200,000 `1e5` values must not make each one megabytes.
MAX_READER_NOTICES = 20


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
        _check_expansion(node, where)
        notices: list[str] = []
        _walk(node, "", notices, set())
        if len(notices) > MAX_READER_NOTICES:
            more = len(notices) - MAX_READER_NOTICES
            notices[MAX_READER_NOTICES:] = [
                f"... and {more} more like these (duplicate keys, e-notation read as numbers)"]
        data = loader.construct_document(node)
    except yaml.YAMLError as exc:
        json_data = _try_json(text)
        if json_data is not None:
            return Loaded(json_data)
        raise TextError([Problem("", f"{where}not valid YAML: {_one_line(exc)}")]) from exc
    except RecursionError:  # PyYAML composes recursively: a few hundred levels of [[[...]]]
        raise TextError([Problem("", f"{where}nested too deeply for a sweep configuration",
                                 "a parameter is at most a few levels deep")]) from None
    finally:
        loader.dispose()
    return Loaded(data, tuple(notices))


class TextError(ValueError):
    """The configuration text could not be read; ``problems`` says where and why."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("; ".join(str(p) for p in problems))


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [n for pair in node.value for n in pair]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []


def _check_expansion(root: yaml.Node, where: str) -> None:
    """Refuses a document whose aliases expand it past :data:`MAX_EXPANDED_NODES` or make it
    contain itself.

    Each distinct node is visited once (an alias is the same node object as its anchor), so
    the count costs time linear in the text however far the aliases would expand. Iterative,
    so that nesting depth cannot exhaust the stack.
    """
    size: dict[int, int] = {}
    open_nodes: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        key = id(node)
        if children_done:
            open_nodes.discard(key)
            total = 1 + sum(size[id(child)] for child in _children(node))
            if total > MAX_EXPANDED_NODES:
                raise TextError([Problem("", (
                    f"{where}the document's aliases (*name) expand it to more than"
                    f" {MAX_EXPANDED_NODES:,} values (MAX_EXPANDED_NODES); refused as an alias"
                    " bomb"), "write the values out, or repeat anchors less")])
            size[key] = total
            continue
        if key in size:
            continue
        if key in open_nodes:
            line = node.start_mark.line + 1
            raise TextError([Problem("", (
                f"{where}the anchor at line {line} (&name) is used inside its own value (*name),"
                " which would be an endless structure"),
                "a sweep configuration has no recursive values")])
        open_nodes.add(key)
        stack.append((node, True))
        stack.extend((child, False) for child in _children(node) if id(child) not in size)


def _walk(node: yaml.Node, path: str, notices: list[str], seen_nodes: set[int]) -> None:
    """Finds duplicate keys and converted e-notation scalars, naming each by its path.

    A node reached again through an alias is not walked again: its notices name the path where
    it was first met, and the walk stays linear in the text.
    """
    if id(node) in seen_nodes:
        return
    seen_nodes.add(id(node))
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
            _walk(value_node, child, notices, seen_nodes)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _walk(item, f"{path}[{i}]", notices, seen_nodes)
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
