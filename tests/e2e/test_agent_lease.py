"""An ``agent()`` whose trial's lease expired (issue #11 item 9, client side): the coordinator
answers its report FAILED_PRECONDITION; the agent drops that trial, says why, and asks again,
instead of ending. Real coordinator with a 2 s lease; the agent is frozen (SIGSTOP) mid-trial
so that it renews nothing, and continued once the coordinator has given the run up."""

from __future__ import annotations

import signal
import sys
import textwrap
from pathlib import Path

import pytest

from .harness import Cluster, Process, wait_for

pytestmark = pytest.mark.e2e

AGENT = textwrap.dedent('''
    import os, signal, sys, time
    from pathlib import Path
    from sweepd.client import agent, run

    frozen = Path(sys.argv[3])

    def train():
        run.log({"score": float(run.config["a"])})
        if not frozen.exists():
            # Freeze the agent (the trial's parent, or this very process with isolate=False):
            # no report renews the run's lease until the test continues it.
            agent_pid = os.getppid() if sys.argv[4] == "isolate" else os.getpid()
            frozen.write_text(str(agent_pid))
            os.kill(agent_pid, signal.SIGSTOP)
            # Then a long trial: the agent must end it once it learns the run is not its own
            # (killed in a child process; told through run.should_stop() in its own process).
            for _ in range(1200):
                if run.should_stop():
                    return
                run.log({"score": 0.0})
                time.sleep(0.1)

    n = agent(sys.argv[1], function=train, count=1, coordinator=sys.argv[2],
              isolate=sys.argv[4] == "isolate")
    print(f"agent ran {n}")
''')


@pytest.mark.parametrize("mode", ["isolate", "in-process"])
def test_an_agent_drops_a_trial_whose_lease_expired_and_asks_again(
        cluster: Cluster, tmp_path: Path, mode: str) -> None:
    cluster.start_coordinator("--lease-seconds", "2")
    config = tmp_path / "one.yaml"
    config.write_text("method: grid\nmetric: {name: score, goal: maximize}\n"
                      "parameters:\n  a: {values: [3]}\n")
    sweep_id = cluster.create(config)
    script = tmp_path / "nb.py"
    script.write_text(AGENT)
    frozen = tmp_path / "frozen"
    agent = Process([sys.executable, str(script), sweep_id, cluster.address, str(frozen), mode],
                    tmp_path / "agent.log", env=cluster.env, cwd=tmp_path)
    cluster.processes.append(agent)
    wait_for(lambda: frozen.exists() and frozen.read_text(), what="the trial to freeze the agent")
    assert int(frozen.read_text()) == agent.pid

    def lost() -> bool:
        (run,) = cluster.runs(sweep_id)
        detail = cluster.sweep_json("show", run["id"])
        return any(e["reason"].startswith("lost") for e in detail["events"])

    wait_for(lost, what="the coordinator to give up the frozen agent's run")
    agent.signal(signal.SIGCONT)
    assert agent.wait(60) == 0, agent.output()  # far less than the long trial's 120 s
    out = agent.output()
    assert "agent ran 1" in out, out
    # One line says which trial was dropped and the coordinator's reason.
    dropped = [line for line in out.splitlines() if "dropped" in line]
    assert len(dropped) == 1, out
    assert "attempt 1" in dropped[0] and "lease of attempt 1 expired" in dropped[0], dropped
    assert "asking for another run" in dropped[0], dropped
    # The retry of the same point ran to its end, reported by the same agent.
    (run,) = cluster.runs(sweep_id)
    assert run["state"] == "FINISHED" and run["attempt"] == 2, run
    assert run["summary"]["score"] == 3.0, run
