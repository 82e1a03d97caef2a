"""Analysis of a sweep's results: pure functions over runs, shared by the CLI, the dashboard and
the offline report."""

from .importance import (
    ImportanceResult,
    NotEnoughRuns,
    ParamImportance,
    RunPoint,
    flatten,
    param_importance,
)

__all__ = [
    "ImportanceResult",
    "NotEnoughRuns",
    "ParamImportance",
    "RunPoint",
    "flatten",
    "param_importance",
]
