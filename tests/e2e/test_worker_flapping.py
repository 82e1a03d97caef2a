"""The flapping guard: a worker whose runs keep failing at start backs off, then resumes."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from .harness import Cluster, wait_for

pytestmark = pytest.mark.e2e


def test_worker_backs_off_after_three_quick_failures(cluster: Cluster, tmp_path: Path) -> None:
    workdir = tmp_path / "work"
    workdir.mkdir()
    (workdir / "crash.py").write_text("import sys\nsys.exit(1)\n")
    config = tmp_path / "crash.yaml"
    config.write_text(textwrap.dedent("""
        program: crash.py
        method: grid
        parameters:
          i: {values: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]}
    """))
    cluster.start_coordinator()
    sweep_id = cluster.create(config)
    worker = cluster.start_worker("--sweep", sweep_id, "--failure-backoff", "4", workdir=workdir)

    def failed() -> int:
        return sum(r["state"] == "FAILED" for r in cluster.runs(sweep_id))

    wait_for(lambda: "pausing for 4 s" in worker.output(), what="the worker to back off")
    # While it backs off, no run is taken: exactly the three failures so far (the third's
    # report may still be on its way when the worker prints the notice).
    wait_for(lambda: failed() == 3, what="the third failure to be recorded")
    assert len(cluster.runs(sweep_id)) == 3
    wait_for(lambda: "resuming" in worker.output(), what="the worker to resume")
    wait_for(lambda: failed() >= 6, what="runs to be taken again")
    # The second pause is twice as long.
    wait_for(lambda: "pausing for 8 s" in worker.output(), what="the second, longer back-off")
    assert worker.poll() is None
