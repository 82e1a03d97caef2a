"""`worker join` as a W&B user expects it (issue #15): the sweep id as an argument (also as
`entity/project/ID`), a mistyped sweep or a wrong token ending the worker with a clear message,
and a sweep with no program never handed to command workers (and finishing when agent() has
run its last point)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from .harness import DEFAULT_TIMEOUT_S, Cluster

pytestmark = pytest.mark.e2e

GRID = ("program: train.py\nmethod: grid\nmetric: {name: score, goal: maximize}\n"
        "parameters:\n  a: {values: [1, 2]}\n")
TRAIN = "from sweepd.client import run\nrun.log({'score': run.config.a})\n"


def test_the_sweep_id_as_an_argument_also_in_wandb_form(cluster: Cluster,
                                                        tmp_path: Path) -> None:
    workdir = tmp_path / "work"
    workdir.mkdir()
    (workdir / "train.py").write_text(TRAIN)
    config = tmp_path / "grid.yaml"
    config.write_text(GRID)
    cluster.start_coordinator()
    first = cluster.create(config)
    worker = cluster.start_worker(first, "--count", "1", workdir=workdir)
    assert worker.wait() == 0, worker.output()
    second = cluster.create(config)
    worker = cluster.start_worker(f"my-team/my-project/{second}", workdir=workdir)
    assert worker.wait() == 0, worker.output()
    assert cluster.sweep_state(second) == "FINISHED"
    assert [r["state"] for r in cluster.runs(first)].count("FINISHED") == 1
    both = cluster.start_worker(first, "--sweep", second, workdir=workdir)
    assert both.wait() == 2
    assert "two different sweeps" in both.output()


def test_no_such_sweep_and_a_wrong_token_end_the_worker(cluster: Cluster) -> None:
    cluster.start_coordinator()
    missing = cluster.start_worker("--sweep", "nosuchid")
    assert missing.wait() == 3, missing.output()
    assert "has no sweep 'nosuchid'" in missing.output()
    assert "sweep list" in missing.output()
    wrong = cluster.start_worker(env={"SWEEPD_TOKEN": "not-the-token"})
    assert wrong.wait() == 3, wrong.output()
    assert "refused this worker's token" in wrong.output()
    assert "--token" in wrong.output()


def test_an_unreachable_coordinator_is_still_retried(cluster: Cluster, tmp_path: Path) -> None:
    cluster.address = "127.0.0.1:1"  # nothing listens there
    worker = cluster.start_worker("--sweep", "someid")
    with pytest.raises(AssertionError, match="did not exit"):
        worker.wait(timeout=3)
    assert "unavailable" in worker.output()


def test_a_sweep_without_program_goes_to_agents_only(cluster: Cluster, tmp_path: Path) -> None:
    cluster.start_coordinator()
    config = tmp_path / "noprog.yaml"
    config.write_text("method: grid\nmetric: {name: score, goal: maximize}\n"
                      "parameters:\n  a: {values: [1, 2]}\n")
    created = cluster.sweep("create", str(config))
    sweep_id = created.stdout.strip().splitlines()[0]
    assert "ask/tell client" in created.stderr and "agent(function=...)" in created.stderr
    # A command worker serving every sweep gets none of its runs.
    idle = cluster.start_worker("--exit-when-idle", "2")
    assert idle.wait() == 0, idle.output()
    assert "started" not in idle.output()
    assert cluster.runs(sweep_id) == []
    # Bound to it, a worker is told why and leaves.
    bound = cluster.start_worker(sweep_id)
    assert bound.wait() == 0, bound.output()
    assert f"sweep {sweep_id} has no program" in bound.output()
    # agent() with count = the grid's size: the sweep finishes with its last run.
    script = tmp_path / "nb.py"
    script.write_text(textwrap.dedent("""
        import sys
        from sweepd.client import agent, run
        def train():
            run.log({"score": run.config.a})
        print("RAN", agent(sys.argv[1], function=train, count=2, coordinator=sys.argv[2]))
    """))
    result = subprocess.run([sys.executable, str(script), sweep_id, cluster.address],
                            capture_output=True, text=True, cwd=tmp_path, env=cluster.env,
                            timeout=DEFAULT_TIMEOUT_S)
    assert result.returncode == 0, result.stderr
    assert "RAN 2" in result.stdout
    assert cluster.sweep_state(sweep_id) == "FINISHED"
