"""Sweep configuration: W&B ``sweep.yaml`` parsed and validated into typed, frozen data.

Public surface: :func:`parse_config`, :func:`describe`, :func:`nest`, :func:`render_command`,
the model classes and the errors. Modules: ``loader`` (text to mapping), ``parameters`` (one
parameter spec), ``schema`` (top-level keys), ``command`` (macros), ``distributions`` (sampling
maths), ``points`` (nesting).
"""

from __future__ import annotations

from ..errors import ConfigError, Problem
from .command import WORKER_MACROS, RenderedArgv, render_argv, render_command
from .describe import describe
from .model import MetricSpec, Parameter, ParamPath, Point, SweepConfig, Value
from .points import nest
from .schema import parse_config, valid_methods

__all__ = [
    "WORKER_MACROS",
    "ConfigError",
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
    "render_argv",
    "render_command",
    "valid_methods",
]
