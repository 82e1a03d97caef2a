"""Points of a search space: flattened ``{path: value}`` mappings and the nested run config."""

from __future__ import annotations

from typing import Any

from .model import Point


def nest(params: Point) -> dict[str, Any]:
    """The run's config: ``{("opt", "lr"): 0.1, ("bs",): 16}`` -> ``{"opt": {"lr": 0.1}, "bs": 16}``

    Keys keep the order of ``params`` (W&B's canonical order when the point came from search), so
    ``str()`` of a nested value and ``${args}`` render in the order W&B's agent uses.
    """
    config: dict[str, Any] = {}
    for path, value in params.items():
        node = config
        for part in path[:-1]:
            child = node.get(part)
            if not isinstance(child, dict):
                child = {}
                node[part] = child
            node = child
        node[path[-1]] = value
    return config
