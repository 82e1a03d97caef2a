"""``agent()`` against a coordinator whose disk fills up mid-trial (hostile tester's finding F3
on issue #11): the coordinator answers RESOURCE_EXHAUSTED, keeps nothing and asks for the same
batch again; the agent waits for space as it waits for a restart, and loses nothing."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from .harness import DEFAULT_TIMEOUT_S, Cluster, fill, wait_for

pytestmark = pytest.mark.e2e

SCRIPT = textwrap.dedent('''
    import os, sys, time
    from sweepd.client import agent, run

    freed = sys.argv[3]

    def train():
        i = 0
        # Logs until the disk was full and is freed again, then a little more.
        while not os.path.exists(freed) and i < 3000:
            run.log({"loss": 1.0 / (i + 1), "i": i})
            i += 1
            time.sleep(0.01)
        for _ in range(20):
            run.log({"loss": 1.0 / (i + 1), "i": i})
            i += 1
        print("LOGGED", i, flush=True)

    print("RAN", agent(sys.argv[1], function=train, count=1, coordinator=sys.argv[2]),
          flush=True)
''')


def test_agent_waits_out_a_full_disk_and_loses_no_record(
        small_disk: Path, cluster: Cluster, tmp_path: Path) -> None:
    coordinator = cluster.start_coordinator()
    config = tmp_path / "grid.yaml"
    config.write_text("method: grid\nmetric: {name: loss, goal: minimize}\n"
                      "parameters:\n  a: {values: [1]}\n")
    sweep_id = cluster.create(config)
    script = tmp_path / "nb.py"
    script.write_text(SCRIPT)
    freed = tmp_path / "freed"
    out = tmp_path / "agent.log"
    with open(out, "wb") as log:
        agent = subprocess.Popen(
            [sys.executable, str(script), sweep_id, cluster.address, str(freed)],
            stdout=log, stderr=subprocess.STDOUT, cwd=tmp_path, env=cluster.env)
        try:
            wait_for(lambda: any(r["summary"].get("i", 0) >= 20 for r in cluster.runs(sweep_id)),
                     what="the trial to report metrics")
            filler = fill(small_disk)
            try:
                wait_for(lambda: coordinator.output().count("full disk") >= 2, timeout=60,
                         what="reports to be refused on the full disk")
            finally:
                filler.unlink()
                freed.touch()
            code = agent.wait(DEFAULT_TIMEOUT_S * 2)
        finally:
            agent.kill()
    text = out.read_text()
    assert code == 0 and "RAN 1" in text, text
    logged = int(text.split("LOGGED ")[1].split()[0])
    (run,) = cluster.runs(sweep_id)
    assert run["state"] == "FINISHED" and run["attempt"] == 1, (run, text)
    history = cluster.sweep_json("show", run["id"])["history"]
    assert [h["index"] for h in history] == list(range(logged))
    assert [h["i"] for h in history] == list(range(logged))
