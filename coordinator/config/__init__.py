"""Sweep configuration: parse and validate a W&B sweep.yaml into a typed SweepConfig."""

from ..errors import ConfigError, Problem
from ._fallback import nest, parse_config, render_command
from .model import MetricSpec, Parameter, ParamPath, Point, SweepConfig, Value

__all__ = ["ConfigError", "MetricSpec", "ParamPath", "Parameter", "Point", "Problem",
           "SweepConfig", "Value", "nest", "parse_config", "render_command"]
