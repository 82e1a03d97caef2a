"""The notebook agent: trials of a sweep as calls of a Python function, each in its own child
process, driven from a plain script (as a notebook cell would)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from .harness import DEFAULT_TIMEOUT_S, Cluster

pytestmark = pytest.mark.e2e

# `train` is defined in __main__, as in a notebook: only fork can run it in a child.
SCRIPT = textwrap.dedent('''
    import json, os, sys
    from sweepd.client import agent, run

    def train():
        for step in range(3):
            run.log({"score": run.config["a"] * 10 + step})
        with open(os.path.join(os.environ["SWEEPD_RUN_DIR"], "trial.json"), "w") as f:
            json.dump({"pid": os.getpid(), "ppid": os.getppid(), "run": run.id,
                       "a": run.config.a}, f)

    n = agent(sys.argv[1], function=train, count=5, coordinator=sys.argv[2],
              isolate=sys.argv[3] == "1")
    print(json.dumps({"ran": n, "agent_pid": os.getpid()}))
''')


def write(tmp: Path, name: str, text: str) -> Path:
    path = tmp / name
    path.write_text(textwrap.dedent(text))
    return path


@pytest.mark.parametrize("isolate", [True, False], ids=["isolated", "in-process"])
def test_agent_runs_five_trials(cluster: Cluster, tmp_path: Path, isolate: bool) -> None:
    cluster.start_coordinator()
    sweep_id = cluster.create(write(tmp_path, "grid.yaml", """
        method: grid
        metric: {name: score, goal: maximize}
        parameters:
          a: {values: [1, 2, 3, 4, 5, 6, 7]}
    """))
    script = write(tmp_path, "nb.py", SCRIPT)
    result = subprocess.run(
        [sys.executable, str(script), sweep_id, cluster.address, "1" if isolate else "0"],
        capture_output=True, text=True, cwd=tmp_path, env=cluster.env,
        timeout=DEFAULT_TIMEOUT_S)
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["ran"] == 5
    trials = [json.loads(p.read_text())
              for p in tmp_path.glob(".sweepd/runs/*/trial.json")]
    assert len(trials) == 5
    pids = {t["pid"] for t in trials}
    if isolate:
        assert len(pids) == 5 and summary["agent_pid"] not in pids
        assert {t["ppid"] for t in trials} == {summary["agent_pid"]}
    else:
        assert pids == {summary["agent_pid"]}
    runs = [r for r in cluster.runs(sweep_id) if r["state"] != "PENDING"]
    assert len(runs) == 5
    for r in runs:
        assert r["state"] == "FINISHED", r
        assert r["summary"]["score"] == r["params"]["a"] * 10 + 2, r
    assert {t["run"] for t in trials} == {r["id"] for r in runs}
