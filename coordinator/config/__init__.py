"""Sweep configuration: W&B ``sweep.yaml`` parsed and validated into typed, frozen data.

Public surface: :func:`parse_config`, :func:`describe`, :func:`nest`, :func:`render_command`,
the model classes and the errors. Modules: ``loader`` (text to mapping), ``parameters`` (one
parameter spec), ``schema`` (top-level keys), ``early_terminate`` (the stopping
settings), ``command`` (macros), ``distributions`` (sampling maths), ``points`` (nesting).
"""

from __future__ import annotations

from ..errors import ConfigError, Problem
from .command import (
    WORKER_MACROS,
    RenderedArgv,
    render_argv,
    render_command,
    run_command,
    runs_on_workers,
)
from .describe import describe
from .early_terminate import (
    AshaSettings,
    EarlyTerminate,
    HyperbandSettings,
    MedianSettings,
    parse_early_terminate,
)
from .model import MetricSpec, Parameter, ParamPath, Point, SweepConfig, Value
from .points import nest
from .schema import METHODS, parse_config

__all__ = [
    "METHODS",
    "WORKER_MACROS",
    "AshaSettings",
    "ConfigError",
    "EarlyTerminate",
    "HyperbandSettings",
    "MedianSettings",
    "MetricSpec",
    "ParamPath",
    "Parameter",
    "Point",
    "Problem",
    "RenderedArgv",
    "SweepConfig",
    "Value",
    "describe",
    "nest",
    "parse_config",
    "parse_early_terminate",
    "render_argv",
    "render_command",
    "run_command",
    "runs_on_workers",
]
