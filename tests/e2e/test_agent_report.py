"""What ``agent()`` tells its user (issue #15): a line per trial and a summary, the traceback
of a trial that raised, and a stop with an exception when its first trials all fail (W&B's
``WANDB_AGENT_MAX_INITIAL_FAILURES``)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from .harness import DEFAULT_TIMEOUT_S, Cluster

pytestmark = pytest.mark.e2e

SCRIPT = textwrap.dedent('''
    import sys
    from sweepd.client import agent, run
    from sweepd.client.agent import AgentFailedError

    def train():
        if run.config.a in BAD:
            undefined_name_in_train  # NameError, as in the issue
        run.config.update({"derived": run.config.a * 2})
        run.log({"score": run.config.a * 10 + run.config.derived})

    BAD = {int(x) for x in sys.argv[4].split(",") if x}
    try:
        n = agent(sys.argv[1], function=train, count=int(sys.argv[5]),
                  coordinator=sys.argv[2], isolate=sys.argv[3] == "1")
    except AgentFailedError as exc:
        print("GAVE UP:", exc)
        sys.exit(7)
    print("RAN", n)
''')


def _run(cluster: Cluster, tmp_path: Path, *, isolate: bool, bad: str, count: int,
         env: dict[str, str] | None = None) -> tuple[str, subprocess.CompletedProcess[str]]:
    config = tmp_path / "grid.yaml"
    config.write_text("method: grid\nmetric: {name: score, goal: maximize}\n"
                      "parameters:\n  a: {values: [1, 2, 3, 4, 5, 6, 7, 8]}\n")
    if cluster.coordinator is None:
        cluster.start_coordinator()
    sweep_id = cluster.create(config)
    script = tmp_path / "nb.py"
    script.write_text(SCRIPT)
    result = subprocess.run(
        [sys.executable, str(script), sweep_id, cluster.address, "1" if isolate else "0", bad,
         str(count)],
        capture_output=True, text=True, cwd=tmp_path, env={**cluster.env, **(env or {})},
        timeout=DEFAULT_TIMEOUT_S * 2)
    return sweep_id, result


@pytest.mark.parametrize("isolate", [True, False], ids=["isolated", "in-process"])
def test_agent_prints_each_trial_and_a_summary(cluster: Cluster, tmp_path: Path,
                                               isolate: bool) -> None:
    sweep_id, result = _run(cluster, tmp_path, isolate=isolate, bad="2", count=4)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = [line for line in result.stdout.splitlines() if line.startswith("agent: trial")]
    assert len(lines) == 4, result.stdout
    assert f"agent: trial {sweep_id}-1  a=1  FINISHED  score=12" in lines[0]
    assert f"{sweep_id}-2  a=2  FAILED" in lines[1] and "raised NameError" in lines[1]
    # The failing trial's traceback, with the line that failed, once.
    assert result.stderr.count("NameError: name 'undefined_name_in_train'") == 1, result.stderr
    assert "undefined_name_in_train  # NameError" in result.stderr
    summary = result.stdout.splitlines()[-2]
    assert summary == (f"agent: 4 trial(s) of sweep {sweep_id}: 1 failed, 3 finished; best"
                       f" {sweep_id}-4 score=48 (a=4)"), result.stdout
    assert result.stdout.splitlines()[-1] == "RAN 4"
    failed = [r for r in cluster.runs(sweep_id) if r["state"] == "FAILED"]
    assert [r["reason"] for r in failed] == [
        "raised NameError: name 'undefined_name_in_train' is not defined"]


@pytest.mark.parametrize("isolate", [True, False], ids=["isolated", "in-process"])
def test_agent_stops_when_its_first_trials_all_fail(cluster: Cluster, tmp_path: Path,
                                                    isolate: bool) -> None:
    sweep_id, result = _run(cluster, tmp_path, isolate=isolate, bad="1,2,3,4,5,6,7,8",
                            count=8)
    assert result.returncode == 7, result.stdout + result.stderr
    assert "GAVE UP: the first 5 trials of sweep" in result.stdout
    assert "WANDB_AGENT_MAX_INITIAL_FAILURES" in result.stdout
    assert sum(r["state"] == "FAILED" for r in cluster.runs(sweep_id)) == 5


def test_agent_honours_wandb_max_initial_failures(cluster: Cluster, tmp_path: Path) -> None:
    sweep_id, result = _run(cluster, tmp_path, isolate=True, bad="1,2,3,4,5,6,7,8", count=8,
                            env={"WANDB_AGENT_MAX_INITIAL_FAILURES": "2"})
    assert result.returncode == 7, result.stdout + result.stderr
    assert "the first 2 trials" in result.stdout
    assert sum(r["state"] == "FAILED" for r in cluster.runs(sweep_id)) == 2
    # A success first: later failures in a row no longer stop it (W&B counts the start only).
    _, result = _run(cluster, tmp_path, isolate=True, bad="3,4,5,6", count=4,
                     env={"WANDB_AGENT_MAX_INITIAL_FAILURES": "2"})
    assert result.returncode == 0, result.stdout + result.stderr


def test_agent_refuses_a_bad_max_initial_failures(cluster: Cluster, tmp_path: Path) -> None:
    _, result = _run(cluster, tmp_path, isolate=True, bad="", count=1,
                     env={"WANDB_AGENT_MAX_INITIAL_FAILURES": "five"})
    assert result.returncode != 0
    assert "$WANDB_AGENT_MAX_INITIAL_FAILURES='five'" in result.stderr
