"""The spine end to end: a real coordinator, real workers, the sweep CLI, on loopback."""

from __future__ import annotations

import collections
import json
import textwrap
from pathlib import Path

import pytest

from .harness import Cluster, wait_for

pytestmark = pytest.mark.e2e

TRAIN = textwrap.dedent('''
    import argparse, os, sys, time
    from sweepd.client import run

    p = argparse.ArgumentParser()
    p.add_argument("--a", type=int)
    p.add_argument("--b", type=float)
    p.add_argument("--fail", default="no")
    args, _ = p.parse_known_args()
    assert run.config["a"] == args.a, (run.config, args)
    with open(os.environ["SWEEPD_RUN_DIR"] + "/times", "w") as f:
        f.write(str(time.time()))
    for step in range(3):
        run.log({"score": args.a * 10 + args.b + step, "step_seen": step})
    time.sleep(float(os.environ.get("TRAIN_SLEEP", "0")))
    if args.fail == "yes" and args.a == 2:
        sys.exit(3)
''')


def write(tmp: Path, name: str, text: str) -> Path:
    path = tmp / name
    path.write_text(textwrap.dedent(text))
    return path


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    wd = tmp_path / "work"
    wd.mkdir()
    (wd / "train.py").write_text(TRAIN)
    return wd


def test_grid_runs_every_point_once_across_three_workers(
    cluster: Cluster, workdir: Path, tmp_path: Path
) -> None:
    cluster.start_coordinator()
    config = write(tmp_path, "grid.yaml", """
        program: train.py
        method: grid
        metric: {name: score, goal: maximize}
        parameters:
          a: {values: [1, 2, 3]}
          b: {values: [0.1, 0.2, 0.3, 0.4]}
    """)
    sweep_id = cluster.create(config)
    workers = [cluster.start_worker("--sweep", sweep_id, workdir=workdir) for _ in range(3)]
    for w in workers:
        assert w.wait() == 0, w.output()
    runs = cluster.runs(sweep_id)
    points = collections.Counter((r["params"]["a"], r["params"]["b"]) for r in runs)
    assert len(runs) == 12
    assert set(points.values()) == {1}
    assert {a for a, _ in points} == {1, 2, 3}
    for r in runs:
        assert r["state"] == "FINISHED", r
        assert r["summary"]["score"] == pytest.approx(r["params"]["a"] * 10 + r["params"]["b"] + 2)
        assert r["argv"][-2:] == [f"--a={r['params']['a']}", f"--b={r['params']['b']}"]
    sweep = cluster.sweep_json("show", sweep_id)
    assert sweep["state"] == "FINISHED"
    assert sweep["best_run"]["params"] == {"a": 3, "b": 0.4}
    # The history of each run is what it logged, in order.
    detail = json.loads(cluster.sweep("runs", sweep_id, "--format", "json").stdout)
    assert len(detail) == 12


def test_random_run_cap_with_two_workers_of_two_slots(
    cluster: Cluster, workdir: Path, tmp_path: Path
) -> None:
    cluster.start_coordinator()
    config = write(tmp_path, "random.yaml", """
        program: train.py
        method: random
        run_cap: 20
        metric: {name: score}
        parameters:
          a: {min: 1, max: 5}
          b: {distribution: log_uniform_values, min: 0.001, max: 1.0}
    """)
    sweep_id = cluster.create(config)
    workers = [cluster.start_worker("--sweep", sweep_id, "--slots", "2", workdir=workdir)
               for _ in range(2)]
    for w in workers:
        assert w.wait() == 0, w.output()
    runs = cluster.runs(sweep_id)
    assert len(runs) == 20
    assert all(r["state"] == "FINISHED" for r in runs)
    assert all(1 <= r["params"]["a"] <= 5 and isinstance(r["params"]["a"], int) for r in runs)
    assert all(0.001 <= r["params"]["b"] <= 1.0 for r in runs)
    assert cluster.sweep_state(sweep_id) == "FINISHED"


def test_failing_run_is_failed_with_exit_code_and_sweep_goes_on(
    cluster: Cluster, workdir: Path, tmp_path: Path
) -> None:
    cluster.start_coordinator()
    config = write(tmp_path, "fail.yaml", """
        program: train.py
        method: grid
        parameters:
          a: {values: [1, 2, 3]}
          b: {value: 0.5}
          fail: {value: "yes"}
    """)
    sweep_id = cluster.create(config)
    assert cluster.start_worker("--sweep", sweep_id, workdir=workdir).wait() == 0
    by_a = {r["params"]["a"]: r for r in cluster.runs(sweep_id)}
    assert by_a[2]["state"] == "FAILED"
    assert by_a[2]["exit_code"] == 3
    assert "exited with code 3" in by_a[2]["reason"]
    assert by_a[1]["state"] == by_a[3]["state"] == "FINISHED"
    assert cluster.sweep_state(sweep_id) == "FINISHED"


def test_pause_holds_new_runs_and_resume_continues(
    cluster: Cluster, workdir: Path, tmp_path: Path
) -> None:
    cluster.start_coordinator()
    config = write(tmp_path, "pause.yaml", """
        program: train.py
        method: grid
        parameters:
          a: {values: [1, 2, 3, 4]}
          b: {value: 0.0}
    """)
    sweep_id = cluster.create(config)
    worker = cluster.start_worker("--sweep", sweep_id, workdir=workdir,
                                  env={"TRAIN_SLEEP": "1.0"})
    wait_for(lambda: any(r["state"] == "RUNNING" for r in cluster.runs(sweep_id)),
             what="a run to start")
    assert "PAUSED" in cluster.sweep("pause", sweep_id).stdout
    wait_for(lambda: not any(r["state"] in ("RUNNING", "ASSIGNED")
                             for r in cluster.runs(sweep_id)),
             what="the running run to finish")
    paused_count = len(cluster.runs(sweep_id))
    assert paused_count == 1
    assert worker.poll() is None  # paused, not ended: the worker waits
    cluster.sweep("resume", sweep_id)
    assert worker.wait() == 0, worker.output()
    runs = cluster.runs(sweep_id)
    assert len(runs) == 4 and all(r["state"] == "FINISHED" for r in runs)


def test_bad_config_is_refused_naming_the_field(cluster: Cluster, tmp_path: Path) -> None:
    cluster.start_coordinator()
    cases = {
        "method": "method: bayesian\nparameters: {a: {values: [1]}}\n",
        "parameters.a.max": "method: random\nparameters: {a: {min: 5, max: 1}}\n",
        "parameters": "method: grid\n",
    }
    for field, text in cases.items():
        path = tmp_path / "bad.yaml"
        path.write_text(text)
        result = cluster.sweep("create", str(path), check=False)
        assert result.returncode != 0
        assert field in result.stderr, (field, result.stderr)
    assert cluster.sweep_json("list") == []


NESTED = textwrap.dedent('''
    import json, os
    from sweepd.client import run
    with open(os.environ["SWEEPD_RUN_DIR"] + "/config.seen", "w") as f:
        json.dump(run.config.as_dict(), f)
''')


def test_grid_over_nested_parameters_and_categoricals_runs_every_point_once(
    cluster: Cluster, tmp_path: Path
) -> None:
    workdir = tmp_path / "nested"
    workdir.mkdir()
    (workdir / "nested.py").write_text(NESTED)
    cluster.start_coordinator()
    config = write(tmp_path, "nested.yaml", """
        program: nested.py
        method: grid
        parameters:
          act: {values: [relu, gelu]}
          optimizer:
            parameters:
              name: {values: [adam, sgd]}
              lr: {values: [0.1, 0.01, 0.001]}
              momentum: {value: 0.9}
          dropout: {values: [true, false]}
    """)
    sweep_id = cluster.create(config)
    workers = [cluster.start_worker("--sweep", sweep_id, "--slots", "2", workdir=workdir)
               for _ in range(2)]
    for w in workers:
        assert w.wait() == 0, w.output()
    runs = cluster.runs(sweep_id)
    assert len(runs) == 2 * 2 * 3 * 2
    points = collections.Counter(
        (r["params"]["act"], r["params"]["dropout"], r["params"]["optimizer"]["name"],
         r["params"]["optimizer"]["lr"]) for r in runs)
    assert set(points.values()) == {1}
    assert len(points) == 24
    for r in runs:
        assert r["state"] == "FINISHED", r
        seen = json.loads((workdir / ".sweepd" / "runs" / f"{r['id']}.1" / "config.seen")
                          .read_text())
        # Nested values arrive nested, with their types, the constant included.
        assert seen == r["params"]
        assert seen["optimizer"]["momentum"] == 0.9
        assert isinstance(seen["dropout"], bool)
        # W&B's ${args}: top-level names sorted, a nested group as Python's str() of a dict.
        opt = seen["optimizer"]
        assert r["argv"][-3:] == [
            f"--act={seen['act']}", f"--dropout={seen['dropout']}",
            f"--optimizer={{'lr': {opt['lr']}, 'momentum': 0.9, 'name': '{opt['name']}'}}"]
    assert cluster.sweep_json("show", sweep_id)["state"] == "FINISHED"
