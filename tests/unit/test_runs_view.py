"""`sweep runs` options as pure functions: sorting, metric columns, CSV, safe cells."""

from __future__ import annotations

import csv
import io
import math
from typing import Any

import pytest
from sweepd.client.format import cell_text
from sweepd.client.runs_view import (
    RunsViewError,
    check_metrics,
    param_names,
    parse_sort,
    sort_runs,
    to_csv,
)


def _run(i: int, lr: float | None, loss: float | None, state: str = "FINISHED",
         name: str = "adam") -> dict[str, Any]:
    params: dict[str, Any] = {"opt": {"name": name}}
    if lr is not None:
        params["lr"] = lr
    summary = {} if loss is None else {"loss": loss, "acc": 1 - loss}
    return {"id": f"s-{i}", "state": state, "attempt": 1, "worker_id": "w", "created_at": i,
            "started_at": i, "ended_at": i + 1, "exit_code": 0, "reason": "",
            "params": params, "summary": summary}


RUNS = [_run(1, 0.1, 0.5), _run(2, 0.01, 0.2), _run(3, None, None, "RUNNING"),
        _run(4, 0.001, math.nan, name="sgd"), _run(5, 0.05, 0.9)]


def test_sort_by_metric_ascending_and_descending_missing_last() -> None:
    up = sort_runs(RUNS, parse_sort("loss", RUNS, "loss"))
    assert [r["id"] for r in up] == ["s-2", "s-1", "s-5", "s-3", "s-4"]
    down = sort_runs(RUNS, parse_sort("-loss", RUNS, "loss"))
    assert [r["id"] for r in down] == ["s-5", "s-1", "s-2", "s-3", "s-4"]


def test_sort_by_nested_parameter_and_run_field() -> None:
    by_name = sort_runs(RUNS, parse_sort("-opt.name", RUNS, "loss"))
    assert by_name[0]["id"] == "s-4"
    by_lr = sort_runs(RUNS, parse_sort("lr", RUNS, "loss"))
    assert [r["id"] for r in by_lr] == ["s-4", "s-2", "s-5", "s-1", "s-3"]
    by_state = sort_runs(RUNS, parse_sort("state", RUNS, "loss"))
    assert by_state[-1]["state"] == "RUNNING"


def test_an_unknown_sort_key_names_the_choices_and_the_nearest() -> None:
    with pytest.raises(RunsViewError) as err:
        parse_sort("-los", RUNS, "loss")
    message = str(err.value)
    assert "--sort" in message and "did you mean 'loss'" in message and "opt.name" in message


def test_metrics_nobody_logged_get_a_notice() -> None:
    assert check_metrics(["acc"], RUNS) == []
    assert check_metrics(["accuracy"], RUNS) == [
        "--metrics: no run has logged 'accuracy' yet (did you mean 'acc'?)"]


def test_csv_has_a_column_per_parameter_and_metric_and_survives_commas() -> None:
    runs = [*RUNS[:2], _run(6, 0.2, 0.3, name='a,"b"\nc')]
    text = to_csv(runs, "loss", ["acc"])
    rows = list(csv.reader(io.StringIO(text)))
    header = rows[0]
    assert header[-len(param_names(runs)) - 2:] == ["lr", "opt.name", "loss", "acc"]
    assert len(rows) == 4
    assert rows[3][header.index("opt.name")] == 'a,"b"\nc'
    assert float(rows[2][header.index("loss")]) == 0.2


def test_cells_show_control_characters_as_text() -> None:
    assert cell_text("a\nb") == "a\\nb"
    assert cell_text("\x1b[2J") == "\\x1b[2J"
    assert cell_text("naïve 日本") == "naïve 日本"
