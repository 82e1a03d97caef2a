"""Early termination end to end: decided on each metric report, delivered as SIGTERM to the
run's process group, SIGKILL after the grace period, the run ending STOPPED with its reason."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from .harness import Cluster

pytestmark = pytest.mark.e2e

TRAIN = textwrap.dedent('''
    import os, signal, sys, time
    from sweepd.client import run

    q = run.config["q"]
    marker = os.path.join(os.environ["SWEEPD_RUN_DIR"], "sigterm")

    def on_term(signum, frame):
        with open(marker, "w") as f:
            f.write(str(os.getpid()))
        if q != 3:          # q=3 ignores SIGTERM: the worker must SIGKILL it
            sys.exit(0)

    signal.signal(signal.SIGTERM, on_term)
    for step in range(8):
        run.log({"loss": q + 1.0 / (step + 1)})
        time.sleep(0.3)
''')

CONFIG = """
program: train.py
method: grid
metric: {name: loss, goal: minimize}
early_terminate: {type: hyperband, min_iter: 2, eta: 2}
parameters:
  q: {values: [0, 1, 2, 3]}
"""


def test_poor_runs_are_stopped_by_sigterm_and_sigkill_after_grace(
    cluster: Cluster, tmp_path: Path
) -> None:
    workdir = tmp_path / "work"
    workdir.mkdir()
    (workdir / "train.py").write_text(TRAIN)
    config = tmp_path / "sweep.yaml"
    config.write_text(CONFIG)
    cluster.start_coordinator()
    sweep_id = cluster.create(config)
    worker = cluster.start_worker("--sweep", sweep_id, "--stop-grace", "1", workdir=workdir)
    assert worker.wait() == 0, worker.output()

    runs = {r["params"]["q"]: r for r in cluster.runs(sweep_id)}
    assert runs[0]["state"] == runs[1]["state"] == "FINISHED"
    for q in (2, 3):
        r = runs[q]
        assert r["state"] == "STOPPED", r
        assert r["reason"].startswith("hyperband:"), r["reason"]
        assert "iteration 2" in r["reason"]
        # The decision's figures reach the client from the stored record (stop_json).
        stop = r["stop"]
        assert (stop["rule"], stop["band"], stop["reason"]) == ("hyperband", 2, r["reason"])
        assert stop["value"] > stop["threshold"], stop
        run_dir = workdir / ".sweepd" / "runs" / f"{r['id']}.{r['attempt']}"
        assert (run_dir / "sigterm").exists(), "the run's process did not receive SIGTERM"
        # Metrics up to the stop are kept: iteration 2 (q + 1/2) or a step or two past it.
        assert q < r["summary"]["loss"] <= q + 0.5 + 1e-9
    assert runs[2]["exit_code"] == 0          # trapped SIGTERM and exited by itself
    assert runs[3]["exit_code"] == -9         # ignored SIGTERM: killed after --stop-grace
    listing = cluster.sweep("runs", sweep_id).stdout
    assert "hyperband: loss=" in listing       # `sweep runs` shows why
