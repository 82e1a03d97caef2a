"""A misnamed metric does not pass in silence (issue #15): a run that finished without logging
the sweep's metric while logging others carries a notice with "did you mean", and so does the
sweep; `sweep runs`, `sweep show`, the agent, the worker's log and the run's output show it."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from .harness import DEFAULT_TIMEOUT_S, Cluster

pytestmark = pytest.mark.e2e

CONFIG = ("program: train.py\nmethod: grid\nmetric: {name: accuracy, goal: maximize}\n"
          "parameters:\n  a: {values: [1, 2]}\n")
TRAIN = "from sweepd.client import run\nrun.log({'acc': run.config.a / 10, 'loss': 1.0})\n"


def test_a_misnamed_metric_gets_a_notice_everywhere(cluster: Cluster, tmp_path: Path) -> None:
    workdir = tmp_path / "work"
    workdir.mkdir()
    (workdir / "train.py").write_text(TRAIN)
    config = tmp_path / "sweep.yaml"
    config.write_text(CONFIG)
    cluster.start_coordinator()
    sweep_id = cluster.create(config)
    worker = cluster.start_worker("--sweep", sweep_id, workdir=workdir)
    assert worker.wait() == 0, worker.output()

    runs = cluster.runs(sweep_id)
    assert [r["state"] for r in runs] == ["FINISHED", "FINISHED"]
    for r in runs:
        assert r["reason"] == ("notice: never logged the sweep's metric 'accuracy' (it logged"
                               " acc, loss); did you mean 'acc'?")
    table = cluster.sweep("runs", sweep_id).stdout
    assert table.count("did you mean 'acc'?") == 2
    shown = cluster.sweep("show", sweep_id).stdout
    assert f"notice   metric 'accuracy': run {sweep_id}-1 finished without logging it; did" \
           " you mean 'acc'?" in shown
    assert "did you mean 'acc'?" in cluster.sweep("show", f"{sweep_id}-2").stdout
    assert "never logged the sweep's metric 'accuracy'" in cluster.coordinator.output()  # type: ignore[union-attr]
    # The worker's log, and the run's own output (`sweep logs`).
    assert worker.output().count("did you mean 'acc'?") == 2
    assert "sweepd: notice: never logged the sweep's metric 'accuracy'" in cluster.sweep(
        "logs", f"{sweep_id}-1").stdout

    # The agent prints it on the trial's line.
    sweep2 = cluster.create(config)
    script = tmp_path / "nb.py"
    script.write_text(textwrap.dedent("""
        import sys
        from sweepd.client import agent, run
        def train():
            run.log({"acc": 0.5})
        agent(sys.argv[1], function=train, count=1, coordinator=sys.argv[2])
    """))
    result = subprocess.run([sys.executable, str(script), sweep2, cluster.address],
                            capture_output=True, text=True, cwd=tmp_path, env=cluster.env,
                            timeout=DEFAULT_TIMEOUT_S)
    assert result.returncode == 0, result.stderr
    assert "FINISHED" in result.stdout and "did you mean 'acc'?" in result.stdout


def test_no_notice_when_the_metric_was_logged_or_nothing_was(cluster: Cluster,
                                                             tmp_path: Path) -> None:
    workdir = tmp_path / "work"
    workdir.mkdir()
    (workdir / "train.py").write_text(
        "from sweepd.client import run\nif run.config.a == 1:\n"
        "    run.log({'accuracy': 0.9, 'loss': 1.0})\n")
    config = tmp_path / "sweep.yaml"
    config.write_text(CONFIG)
    cluster.start_coordinator()
    sweep_id = cluster.create(config)
    worker = cluster.start_worker("--sweep", sweep_id, workdir=workdir)
    assert worker.wait() == 0, worker.output()
    assert [r["reason"] for r in cluster.runs(sweep_id)] == ["", ""]
    assert not any("did you mean" in n for n in cluster.sweep_json("show", sweep_id)["notices"])
