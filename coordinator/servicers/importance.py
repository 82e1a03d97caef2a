"""GetParamImportance: the sweep's finished runs to analysis.param_importance and back.

The forest and GP fits take up to seconds, so they run in an executor, never on the event loop,
and their answer is cached until the set of finished runs changes: a dashboard refreshing the
panel, or `sweep importance` run twice, costs one computation.
"""

from __future__ import annotations

import asyncio
import math
from collections import OrderedDict
from collections.abc import Iterable

from sweepd.v1 import sweeps_pb2

from ..analysis import ImportanceResult, NotEnoughRuns, RunPoint, param_importance
from ..domain import Run, RunState
from ..errors import FailedPrecondition

# Answers kept for this many sweeps at once (each is a few KiB).
CACHED_SWEEPS = 64

_cache: OrderedDict[str, tuple[tuple[object, ...], ImportanceResult]] = OrderedDict()


def points_of(runs: Iterable[Run], metric_name: str) -> list[RunPoint]:
    """The FINISHED runs with a finite value of the sweep metric, as analysis inputs.

    Stopped runs are left out: their value is of a shorter training, and would read as the
    parameters' fault.
    """
    points = []
    for run in runs:
        value = run.summary.get(metric_name)
        if run.state is RunState.FINISHED and value is not None and math.isfinite(value):
            points.append(RunPoint(run.params, value))
    return points


async def importance_response(sweep_id: str, runs: Iterable[Run], metric_name: str
                              ) -> sweeps_pb2.GetParamImportanceResponse:
    if not metric_name:
        raise FailedPrecondition(
            "importance: this sweep has no metric (set `metric: {name: ..., goal: ...}` in its "
            "configuration)"
        )
    finished = sorted((r for r in runs), key=lambda r: r.id)
    points = points_of(finished, metric_name)
    key = (metric_name, len(points), tuple(p.value for p in points))
    cached = _cache.get(sweep_id)
    if cached is not None and cached[0] == key:
        result = cached[1]
    else:
        try:
            result = await asyncio.get_running_loop().run_in_executor(
                None, param_importance, points
            )
        except NotEnoughRuns as err:
            raise FailedPrecondition(f"importance: {err}") from None
        _cache[sweep_id] = (key, result)
        _cache.move_to_end(sweep_id)
        while len(_cache) > CACHED_SWEEPS:
            _cache.popitem(last=False)
    return _to_proto(result)


def _to_proto(result: ImportanceResult) -> sweeps_pb2.GetParamImportanceResponse:
    return sweeps_pb2.GetParamImportanceResponse(
        params=[
            sweeps_pb2.ParamImportance(
                param=p.param, importance=p.importance, importance_std=p.importance_std,
                correlation=p.correlation, kind=p.kind,
                by_value=[
                    sweeps_pb2.ValueCorrelation(value=v.value, correlation=v.correlation,
                                                runs=v.runs)
                    for v in p.by_value
                ],
            )
            for p in result.params
        ],
        runs_used=result.runs_used, model=result.model, model_r2=result.model_r2,
        notices=list(result.notices),
    )
