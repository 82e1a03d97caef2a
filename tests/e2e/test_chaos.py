"""Chaos end to end: a 40-point grid on 4 workers while the coordinator is SIGKILLed and
restarted twice (same state dir, same port) and one worker is SIGKILLed once.

At the end every point is FINISHED exactly once, the killed worker's runs were retried (their
attempt counts the LOST one), every run's stored history is exactly the sequence it logged,
and end times and exit codes are the runs' own, also for runs that ended while the coordinator
was away.
"""

from __future__ import annotations

import collections
import json
import os
import signal
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest
from sweepd.client.api import Client, SweepdClientError
from sweepd.client.transport import Security

from .harness import Cluster, Process, wait_for

pytestmark = pytest.mark.e2e

POINTS = 40
RECORDS = 5
# Lease short enough that the killed worker's runs come back within seconds.
LEASE_S = 3
# Every wait below is a poll with this deadline: generous for 2 shared cores.
DEADLINE_S = 120.0

TRAIN = textwrap.dedent(f'''
    import json, os, time
    from sweepd.client import run

    run_dir = os.environ["SWEEPD_RUN_DIR"]
    with open(os.path.join(run_dir, "pid"), "w") as f:
        f.write(str(os.getpid()))
    a = run.config["a"]
    for k in range({RECORDS}):
        run.log({{"k": k, "a": a}})
        time.sleep(0.12)
    with open(os.path.join(run_dir, "end"), "w") as f:
        f.write(repr(time.time()))
''')

CONFIG = f"""
program: train.py
method: grid
parameters:
  a: {{values: {list(range(POINTS))}}}
"""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is dead for our purpose (its parent may be gone and not yet reaped it).
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


class Observer:
    """In-process client that tolerates the coordinator being away."""

    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster

    def runs(self, sweep_id: str) -> list[dict[str, Any]] | None:
        try:
            with Client(self.cluster.address, timeout=5,
                        security=Security(token=self.cluster.token)) as client:
                return client.runs(sweep_id)
        except SweepdClientError:
            return None

    def finished(self, sweep_id: str, at_least: int) -> bool:
        runs = self.runs(sweep_id)
        return runs is not None and sum(r["state"] == "FINISHED" for r in runs) >= at_least


def _restart_coordinator(cluster: Cluster) -> None:
    assert cluster.coordinator is not None
    os.kill(cluster.coordinator.pid, signal.SIGKILL)
    cluster.coordinator.wait(10)
    time.sleep(1.0)  # an outage long enough for runs to end and report while it is away
    cluster.start_coordinator("--lease-seconds", str(LEASE_S), port=cluster.port)


def test_coordinator_and_worker_killed_mid_sweep(cluster: Cluster, tmp_path: Path) -> None:
    cluster.start_coordinator("--lease-seconds", str(LEASE_S))
    config = tmp_path / "grid.yaml"
    config.write_text(CONFIG)
    sweep_id = cluster.create(config)
    workdirs = [tmp_path / f"w{i}" for i in range(4)]
    workers: list[Process] = []
    for i, wd in enumerate(workdirs):
        wd.mkdir()
        (wd / "train.py").write_text(TRAIN)
        workers.append(cluster.start_worker("--sweep", sweep_id, "--worker-id", f"w{i}",
                                            workdir=wd))
    seen = Observer(cluster)

    wait_for(lambda: seen.finished(sweep_id, 6), DEADLINE_S, 0.1, "6 finished runs")
    _restart_coordinator(cluster)

    wait_for(lambda: seen.finished(sweep_id, 14), DEADLINE_S, 0.1, "14 finished runs")
    # Kill worker 0 (the process only, as the OOM killer would) while it holds a live run.
    victim_dir = workdirs[0] / ".sweepd" / "runs"

    def victim_live_runs() -> list[tuple[str, int]]:
        live = []
        for d in victim_dir.glob("*"):
            pid_file = d / "pid"
            if pid_file.exists() and not (d / "end").exists():
                text = pid_file.read_text()
                if text and _alive(int(text)):
                    live.append((d.name, int(text)))
        return live

    held = wait_for(victim_live_runs, DEADLINE_S, 0.02, "worker 0 to hold a live run")
    os.kill(workers[0].pid, signal.SIGKILL)
    workers[0].wait(10)
    # Its runs die with it (PR_SET_PDEATHSIG): nothing keeps training, or a GPU, for nobody.
    for _, pid in held:
        wait_for(lambda pid=pid: not _alive(pid), 10, 0.05, f"run process {pid} to die")

    wait_for(lambda: seen.finished(sweep_id, 24), DEADLINE_S, 0.1, "24 finished runs")
    _restart_coordinator(cluster)

    for w in workers[1:]:
        assert w.wait(DEADLINE_S) == 0, w.output()

    runs = seen.runs(sweep_id)
    assert runs is not None
    assert len(runs) == POINTS
    points = collections.Counter(r["params"]["a"] for r in runs)
    assert sorted(points) == list(range(POINTS)) and set(points.values()) == {1}
    assert all(r["state"] == "FINISHED" for r in runs), [
        (r["id"], r["state"], r["reason"]) for r in runs if r["state"] != "FINISHED"]
    retried = {name.rsplit(".", 1)[0] for name, _ in held}
    by_id = {r["id"]: r for r in runs}
    for run_id in retried:
        assert by_id[run_id]["attempt"] >= 2, by_id[run_id]  # the LOST attempt counted
        assert by_id[run_id]["worker_id"] != "w0", by_id[run_id]

    with Client(cluster.address, security=Security(token=cluster.token)) as client:
        for r in runs:
            detail = client.get_run(r["id"], history=True)
            history = [(h["index"], h["k"], h["a"]) for h in detail["history"]]
            assert history == [(k, k, r["params"]["a"]) for k in range(RECORDS)], (r["id"],
                                                                                   history)
            assert detail["exit_code"] == 0, detail
            # The run's own end time, not when the coordinator heard of it.
            run_dirs = [wd / ".sweepd" / "runs" / f"{r['id']}.{r['attempt']}"
                        for wd in workdirs]
            end_file = next(d / "end" for d in run_dirs if (d / "end").exists())
            ended = float(end_file.read_text())
            assert detail["ended_at"] == pytest.approx(ended, abs=0.5), (r["id"], detail)
    assert json.loads(cluster.sweep("show", sweep_id, "--format", "json").stdout)[
        "state"] == "FINISHED"
