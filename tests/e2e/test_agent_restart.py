"""A notebook agent across a coordinator restart (issue #11 item 21): `agent()` runs trials in a
subprocess while the coordinator is SIGKILLed and restarted on the same port and state dir;
the agent waits for it instead of dying, and every trial ends FINISHED with every metric. Each
trial also writes one unusable metrics line (item 3): counted in its end reason, nothing lost."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from sweepd.client.api import Client, SweepdClientError
from sweepd.common.transport import Security

from .harness import DEFAULT_TIMEOUT_S, Cluster, wait_for

pytestmark = pytest.mark.e2e

TRIALS = 4
STEPS = 12
STEP_S = 0.15
# Long enough for reports and a finish to fall into it: the agent must wait, not fail.
OUTAGE_S = 2.0

SCRIPT = textwrap.dedent(f'''
    import json, os, sys, time
    from sweepd.client import agent, run

    def train():
        for step in range({STEPS}):
            run.log({{"v": run.config["a"] * 100 + step}})
            if step == 1:  # one line no store can take: counted and reported, nothing lost
                with open(os.environ["SWEEPD_METRICS_FILE"], "a") as f:
                    f.write('{{"v": 1, "_step": 100000000000000000000}}\\n')
            time.sleep({STEP_S})

    n = agent(sys.argv[1], function=train, count={TRIALS}, coordinator=sys.argv[2])
    print(json.dumps({{"ran": n}}))
''')


def _runs(cluster: Cluster, sweep_id: str) -> list[dict[str, object]] | None:
    try:
        with Client(cluster.address, timeout=5, restart_wait_s=0,
                    security=Security(token=cluster.token)) as client:
            return client.runs(sweep_id)
    except SweepdClientError:
        return None


@pytest.mark.parametrize("kills", [1, 2], ids=["one-restart", "two-restarts"])
def test_agent_keeps_going_across_coordinator_restarts(
        cluster: Cluster, tmp_path: Path, kills: int) -> None:
    cluster.start_coordinator()
    config = tmp_path / "grid.yaml"
    config.write_text(textwrap.dedent(f"""
        method: grid
        metric: {{name: v, goal: maximize}}
        parameters:
          a: {{values: {list(range(1, TRIALS + 1))}}}
    """))
    sweep_id = cluster.create(config)
    script = tmp_path / "nb.py"
    script.write_text(SCRIPT)
    agent_log = open(tmp_path / "agent.log", "w+")  # noqa: SIM115 - closed below
    agent = subprocess.Popen([sys.executable, str(script), sweep_id, cluster.address],
                             stdout=agent_log, stderr=subprocess.STDOUT, cwd=tmp_path,
                             env=cluster.env, start_new_session=True)
    try:
        for k in range(kills):
            # Mid-trial: a run RUNNING with part of its history stored.
            def mid_trial(k: int = k) -> bool:
                runs = _runs(cluster, sweep_id)
                return runs is not None and sum(r["state"] == "FINISHED" for r in runs) >= k \
                    and any(r["state"] == "RUNNING" and r["summary"] for r in runs)

            wait_for(mid_trial, DEFAULT_TIMEOUT_S, 0.05, "a trial under way")
            assert cluster.coordinator is not None
            os.kill(cluster.coordinator.pid, signal.SIGKILL)
            cluster.coordinator.wait(10)
            time.sleep(OUTAGE_S)
            cluster.start_coordinator(port=cluster.port)
        code = agent.wait(DEFAULT_TIMEOUT_S * 2)
        agent_log.seek(0)
        output = agent_log.read()
        assert code == 0, output
        assert json.loads(output.strip().splitlines()[-1]) == {"ran": TRIALS}, output
    finally:
        if agent.poll() is None:
            os.killpg(agent.pid, signal.SIGKILL)
            agent.wait(10)
        agent_log.close()

    with Client(cluster.address, security=Security(token=cluster.token)) as client:
        runs = client.runs(sweep_id)
        assert len(runs) == TRIALS
        assert sorted(r["params"]["a"] for r in runs) == list(range(1, TRIALS + 1))
        for r in runs:
            assert r["state"] == "FINISHED", r
            assert r["reason"].startswith("1 metrics line(s) could not be used (first: line 3:"
                                          " _step"), r
            history = client.get_run(r["id"], history=True)["history"]
            a = r["params"]["a"]
            assert [h["v"] for h in history] == [a * 100 + s for s in range(STEPS)], (
                r["id"], history)
