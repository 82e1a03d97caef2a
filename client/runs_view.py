"""What `sweep runs` shows: the runs sorted, cut, and laid out as rows for a table or CSV.

Pure functions over the run dictionaries the client returns, so every option is tested
without a coordinator.
"""

from __future__ import annotations

import csv
import difflib
import io
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

# Sort keys that name a field of the run rather than a parameter or a metric.
RUN_FIELDS = {"id": "id", "state": "state", "attempt": "attempt", "worker": "worker_id",
              "created": "created_at", "started": "started_at", "ended": "ended_at"}


Run = TypeVar("Run", bound=Mapping[str, Any])


class RunsViewError(ValueError):
    """A --sort or --metrics value that names nothing in this sweep."""


def flatten(params: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested parameters as dotted paths, in the order given (W&B's sorted order)."""
    flat: dict[str, Any] = {}
    for key, value in params.items():
        if isinstance(value, Mapping):
            flat.update(flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def param_names(runs: Sequence[Mapping[str, Any]]) -> list[str]:
    names: dict[str, None] = {}
    for run in runs:
        for name in flatten(run["params"]):
            names.setdefault(name, None)
    return sorted(names)


def metric_names(runs: Sequence[Mapping[str, Any]]) -> list[str]:
    return sorted({name for run in runs for name in run["summary"]})


@dataclass(frozen=True)
class SortKey:
    kind: str  # "param", "metric" or "field"
    name: str
    descending: bool

    def value(self, run: Mapping[str, Any]) -> Any:
        if self.kind == "param":
            return flatten(run["params"]).get(self.name)
        if self.kind == "metric":
            return run["summary"].get(self.name)
        return run.get(RUN_FIELDS[self.name])


def parse_sort(text: str, runs: Sequence[Mapping[str, Any]], sweep_metric: str | None
               ) -> SortKey:
    """``lr``, ``-loss``, ``state``...: a parameter path first, then a logged metric (or the
    sweep's metric, even before any run logged it), then a run field."""
    descending = text.startswith("-")
    name = text[1:] if descending else text
    if name in param_names(runs):
        return SortKey("param", name, descending)
    if name in metric_names(runs) or name == sweep_metric:
        return SortKey("metric", name, descending)
    if name in RUN_FIELDS:
        return SortKey("field", name, descending)
    known = param_names(runs) + metric_names(runs) + sorted(RUN_FIELDS)
    close = nearest(name, known)
    hint = f"; did you mean '{close}'?" if close else ""
    raise RunsViewError(f"--sort: no parameter, metric or run field '{name}' in this sweep"
                        f"{hint} (choose from: {', '.join(known)}; prefix '-' to descend)")


def _order(value: Any) -> tuple[int, Any]:
    """Numbers before text, missing and NaN values out of the way (handled by the caller)."""
    if isinstance(value, bool):
        return (0, float(value))
    if isinstance(value, int | float):
        return (0, float(value))
    return (1, str(value))


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def sort_runs(runs: Sequence[Run], key: SortKey) -> list[Run]:
    """Stable sort by ``key``; runs without the value come last in either direction."""
    present = [r for r in runs if not _missing(key.value(r))]
    absent = [r for r in runs if _missing(key.value(r))]
    present.sort(key=lambda r: _order(key.value(r)), reverse=key.descending)
    return present + absent


def check_metrics(requested: Sequence[str], runs: Sequence[Mapping[str, Any]]) -> list[str]:
    """Notices for requested metrics that no run has logged (the column is still shown: the
    runs may not have got there yet)."""
    logged = metric_names(runs)
    notices = []
    for name in requested:
        if name not in logged:
            close = nearest(name, logged)
            hint = f" (did you mean '{close}'?)" if close else ""
            notices.append(f"--metrics: no run has logged '{name}' yet{hint}")
    return notices


def nearest(name: str, known: Sequence[str]) -> str | None:
    """The known name the user most likely meant: one that begins like it (``acc`` for
    ``accuracy``), else the closest spelling."""
    prefixed = [k for k in known if k.startswith(name) or name.startswith(k)]
    if prefixed:
        return max(prefixed, key=len)
    close = difflib.get_close_matches(name, known, n=1, cutoff=0.5)
    return close[0] if close else None


def to_csv(runs: Sequence[Mapping[str, Any]], sweep_metric: str | None,
           metrics: Sequence[str]) -> str:
    """Every run with one column per parameter and per metric, for spreadsheets and pandas."""
    params = param_names(runs)
    logged = [m for m in metric_names(runs) if m != sweep_metric]
    metric_columns = list(dict.fromkeys(
        ([sweep_metric] if sweep_metric else []) + list(metrics) + logged))
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["run", "state", "attempt", "worker", "created_at", "started_at",
                     "ended_at", "exit_code", "reason", *params, *metric_columns])
    for run in runs:
        flat = flatten(run["params"])
        writer.writerow([
            run["id"], run["state"], run["attempt"], run["worker_id"], run["created_at"],
            _blank(run["started_at"]), _blank(run["ended_at"]), _blank(run["exit_code"]),
            run["reason"], *(_blank(flat.get(p)) for p in params),
            *(_blank(run["summary"].get(m)) for m in metric_columns),
        ])
    return out.getvalue()


def _blank(value: Any) -> Any:
    return "" if value is None else value
