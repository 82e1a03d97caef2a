"""`sweep watch`: a sweep followed live through WatchSweep until it ends."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from .harness import Cluster

pytestmark = pytest.mark.e2e

ORDER = ["PENDING", "ASSIGNED", "RUNNING", "FINISHED"]


def test_watch_follows_every_run_to_the_end(cluster: Cluster, tmp_path: Path) -> None:
    workdir = tmp_path / "work"
    workdir.mkdir()
    (workdir / "train.py").write_text(textwrap.dedent("""
        import time
        from sweepd.client import run
        for step in range(3):
            run.log({"score": run.config.a * 10 + step})
            time.sleep(0.1)
    """))
    config = tmp_path / "grid.yaml"
    config.write_text("program: train.py\nmethod: grid\nmetric: {name: score, goal: maximize}\n"
                      "parameters:\n  a: {values: [1, 2, 3, 4]}\n")
    cluster.start_coordinator()
    sweep_id = cluster.create(config)
    as_json = cluster.start_sweep("watch", sweep_id, "--format", "json")
    as_table = cluster.start_sweep("watch", sweep_id)
    worker = cluster.start_worker("--sweep", sweep_id, "--slots", "2", workdir=workdir)
    assert worker.wait() == 0, worker.output()
    # Both end by themselves once the sweep ended and its last run is over.
    assert as_json.wait() == 0, as_json.output()
    assert as_table.wait() == 0, as_table.output()

    updates = [json.loads(line) for line in as_json.output().splitlines()]
    assert updates[0]["sweep"]["id"] == sweep_id
    sweeps = [u["sweep"] for u in updates if "sweep" in u]
    assert sweeps[-1]["state"] == "FINISHED"
    states: dict[str, list[str]] = {}
    last: dict[str, dict] = {}
    for u in updates:
        if "run" in u:
            states.setdefault(u["run"]["id"], []).append(u["run"]["state"])
            last[u["run"]["id"]] = u["run"]
    assert sorted(last) == sorted(r["id"] for r in cluster.runs(sweep_id))
    assert len(last) == 4
    for run_id, seen in states.items():
        # Each run's updates follow its lifecycle and end with its final state and metric.
        assert [ORDER.index(s) for s in seen] == sorted(ORDER.index(s) for s in seen), seen
        assert seen[-1] == "FINISHED"
        assert last[run_id]["summary"]["score"] == last[run_id]["params"]["a"] * 10 + 2

    table = as_table.output()
    assert table.count("FINISHED") >= 4
    assert f"sweep {sweep_id} FINISHED" in table.splitlines()[-1]
    assert f"{sweep_id}-4" in table


def test_watch_of_an_unknown_sweep_fails_naming_it(cluster: Cluster) -> None:
    cluster.start_coordinator()
    result = cluster.sweep("watch", "nosuch", check=False)
    assert result.returncode != 0
    assert "nosuch" in result.stderr
