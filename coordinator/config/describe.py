"""A JSON-ready summary of a parsed configuration, for ``sweep validate`` and the API."""

from __future__ import annotations

from typing import Any

import numpy as np

from . import distributions as dist
from .command import render_command
from .model import Parameter, SweepConfig

# Fixed seed: `sweep validate` shows the same sample point every time for the same file.
SAMPLE_SEED = 0


def describe(config: SweepConfig) -> dict[str, Any]:
    """Each parameter with its distribution and range, the grid size, a sample command, notices.

    The sample command still holds the worker-side macros (``${env}``, ``${interpreter}``...).
    """
    rng = np.random.default_rng(SAMPLE_SEED)
    point = {p.path: dist.sample(p, rng) for p in config.parameters}
    return {
        "method": config.method,
        "metric": None
        if config.metric is None
        else {"name": config.metric.name, "goal": config.metric.goal},
        "parameters": [_param(p) for p in config.parameters],
        "grid_size": grid_size(config),
        "run_cap": config.run_cap,
        "sample_point": {p.name: v for p, v in zip(config.parameters, point.values())},
        "command": render_command(config, point),
        "notices": list(config.notices),
    }


def grid_size(config: SweepConfig) -> int | None:
    """Number of grid points when every parameter is enumerable, else ``None``."""
    size = 1
    for p in config.parameters:
        try:
            size *= dist.grid_axis_size(p)
        except dist.GridError:
            return None
    return size


def describe_range(p: Parameter) -> str:
    d = p.distribution
    if d == "constant":
        return repr(p.value)
    if d == "categorical":
        return f"{len(p.values or ())} values: " + ", ".join(map(repr, p.values or ()))
    if d == "categorical_w_probabilities":
        pairs = zip(p.values or (), p.probabilities or ())
        return ", ".join(f"{v!r} (p={w:g})" for v, w in pairs)
    if p.mu is not None or p.sigma is not None:
        text = f"mu={p.mu!r}, sigma={p.sigma!r}"
    elif p.a is not None or p.b is not None:
        text = f"a={p.a!r}, b={p.b!r}"
    else:
        lo, hi = dist.ppf(p, 0.0), dist.ppf(p, 1.0 - 1e-16)
        text = f"[{p.min!r}, {p.max!r}]"
        if d in ("log_uniform", "q_log_uniform", "inv_log_uniform"):
            text += f" (exponents: values {lo:.4g}..{hi:.4g})"
    if p.q is not None:
        text += f", q={p.q!r}"
    kind = "int" if d == "int_uniform" or isinstance(p.q, int) else "float"
    return f"{text} ({kind})"


def _param(p: Parameter) -> dict[str, Any]:
    return {
        "name": p.name,
        "path": list(p.path),
        "distribution": p.distribution,
        "range": describe_range(p),
        "support_size": dist.support_size(p),
    }
