"""What the dashboard's JSON says: pure functions from the dispatcher's views to plain dicts.

The browser draws every figure from these (static/figures.js), so the same documents serve
the first load, the live updates (one changed run at a time) and, later, the offline report.
Values a user controls (names, parameter values, metric names, output) go out as JSON data,
never as markup: the pages put them into the document with textContent.
"""

from __future__ import annotations

import math
from typing import Any

from ..config.describe import grid_size
from ..config.model import Parameter
from ..dispatcher import SweepView
from ..domain import MetricRecord, Run, RunEvent, RunState, StopDecision

# Numeric distributions drawn on a log axis (parallel coordinates, slices).
_LOG_DISTRIBUTIONS = frozenset({
    "log_uniform", "log_uniform_values", "q_log_uniform", "q_log_uniform_values",
    "inv_log_uniform", "inv_log_uniform_values", "log_normal", "q_log_normal",
})
_CATEGORICAL = frozenset({"categorical", "categorical_w_probabilities", "constant"})


def _finite(value: Any) -> Any:
    """JSON has no NaN or infinity: such a value goes out as null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def param_spec(p: Parameter) -> dict[str, Any]:
    spec: dict[str, Any] = {"name": p.name, "distribution": p.distribution,
                            "categorical": p.distribution in _CATEGORICAL,
                            "log": p.distribution in _LOG_DISTRIBUTIONS}
    if p.values is not None:
        spec["values"] = [_finite(v) for v in p.values]
    elif p.distribution == "constant":
        spec["values"] = [_finite(p.value)]
    return spec


def run_row(run: Run) -> dict[str, Any]:
    """One run as the runs table, the figures and the live updates see it."""
    return {
        "id": run.id, "number": run.number, "state": run.state.value, "attempt": run.attempt,
        "params": {".".join(path): _finite(v) for path, v in run.point.items()},
        "metrics": {k: _finite(v) for k, v in run.summary.items()
                    if isinstance(v, (int, float))},
        "reason": run.reason, "worker_id": run.worker_id,
        "created_at": run.created_at, "started_at": run.started_at, "ended_at": run.ended_at,
        "stop": None if run.stop is None else stop_row(run.stop),
    }


def stop_row(stop: StopDecision) -> dict[str, Any]:
    """Why the run was stopped; the run's id is the row's own."""
    return {"rule": stop.rule, "reason": stop.reason, "band": stop.band,
            "threshold": _finite(stop.threshold), "value": _finite(stop.value)}


def event_row(event: RunEvent) -> dict[str, Any]:
    """One line of the run's events table."""
    return {"attempt": event.attempt, "time": event.time, "state": event.state.value,
            "reason": event.reason, "worker_id": event.worker_id}


def sweep_summary(view: SweepView, best: Run | None) -> dict[str, Any]:
    """The sweep without its runs: the sweeps page's row and the sweep page's header."""
    sweep, config = view.sweep, view.config
    counts: dict[str, int] = {}
    for run in view.runs.values():
        counts[run.state.value] = counts.get(run.state.value, 0) + 1
    ended = sum(n for state, n in counts.items() if RunState(state).is_ended)
    # Progress is counted against run_cap, else the grid's size; a random or bayes sweep
    # without a cap has no end to count towards (null).
    planned = config.run_cap or (grid_size(config) if config.method == "grid" else None)
    metric = config.metric
    return {
        "id": sweep.id, "name": sweep.name, "state": sweep.state.value,
        "state_reason": sweep.state_reason, "method": config.method,
        "metric": metric.name if metric else "", "goal": metric.goal if metric else "",
        "counts": counts, "ended": ended, "planned": planned, "total": len(view.runs),
        "best": ({"run_id": best.id, "number": best.number,
                  "value": _finite(best.summary.get(metric.name))}
                 if best is not None and metric is not None else None),
        "created_at": sweep.created_at, "updated_at": sweep.updated_at,
        "queue": sweep.queue, "params": [param_spec(p) for p in config.parameters],
        "early_terminate": config.early_terminate is not None,
    }


def sweep_document(view: SweepView, best: Run | None) -> dict[str, Any]:
    runs = sorted(view.runs.values(), key=lambda r: r.number)
    return {"sweep": sweep_summary(view, best), "runs": [run_row(r) for r in runs]}


def history_document(records: list[MetricRecord], metrics: set[str] | None = None
                     ) -> dict[str, list[list[float | None]]]:
    """Per metric, its ``[step, value]`` points; only ``metrics`` when given."""
    curves: dict[str, list[list[float | None]]] = {}
    for record in records:
        for name, value in record.values.items():
            if metrics is not None and name not in metrics:
                continue
            if isinstance(value, (int, float)):
                curves.setdefault(name, []).append([record.step, _finite(float(value))])
    return curves


def importance_document(response: Any) -> dict[str, Any]:
    """GetParamImportanceResponse as JSON (the fields `sweep importance --format json` shows
    and the panel's extras: spread, per-value correlations, the model and its notices)."""
    return {
        "params": [{
            "param": p.param, "importance": _finite(p.importance),
            "importance_std": _finite(p.importance_std), "correlation": _finite(p.correlation),
            "kind": p.kind,
            "by_value": [{"value": v.value, "correlation": _finite(v.correlation),
                          "runs": v.runs} for v in p.by_value],
        } for p in response.params],
        "runs_used": response.runs_used, "model": response.model,
        "model_r2": _finite(response.model_r2), "notices": list(response.notices),
    }
