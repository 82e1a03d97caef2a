from __future__ import annotations

from pathlib import Path

from sweepd.client.run import Run
from sweepd.common.runfile import MetricsFollower, parse_metric_line


def test_parse_metric_line_keeps_numbers_and_reads_step() -> None:
    values, step, _ = parse_metric_line('{"loss": 0.5, "acc": 1, "name": "x", "ok": true,'
                                        ' "_step": 7}')  # type: ignore[misc]
    assert values == {"loss": 0.5, "acc": 1.0}
    assert step == 7
    assert parse_metric_line("not json") is None
    assert parse_metric_line("[1, 2]") is None


def test_follower_reads_only_complete_lines(tmp_path: Path) -> None:
    path = tmp_path / "metrics.jsonl"
    path.write_text('{"loss": 1}\n{"loss": 2')
    follower = MetricsFollower(path)
    first = follower.read_new()
    assert [r.values for r in first] == [{"loss": 1.0}]
    with open(path, "a") as f:
        f.write('}\ngarbage\n{"loss": 3}\n')
    second = follower.read_new()
    assert [(r.index, r.values["loss"]) for r in second] == [(1, 2.0), (2, 3.0)]
    assert follower.bad_lines == 1


def test_in_run_api_writes_lines_the_follower_reads(tmp_path: Path) -> None:
    config = tmp_path / "config.json"
    config.write_text('{"lr": 0.1, "opt": {"name": "adam"}}')
    metrics = tmp_path / "metrics.jsonl"
    run = Run({"SWEEPD_RUN_ID": "r-1", "SWEEPD_CONFIG_FILE": str(config),
               "SWEEPD_METRICS_FILE": str(metrics), "SWEEPD_STOP_FILE": str(tmp_path / "stop")})
    assert run.config.lr == 0.1 and run.config["opt"].name == "adam"
    run.log({"loss": 0.3})
    run.log({"loss": 0.2}, step=10)
    run.log({"loss": float("nan")})
    records = MetricsFollower(metrics).read_new()
    assert [r.step for r in records] == [0, 10, 11]
    assert records[1].values == {"loss": 0.2}
    assert records[2].values["loss"] != records[2].values["loss"]  # NaN kept
    assert not run.should_stop()
    (tmp_path / "stop").write_text("stop")
    assert run.should_stop()
