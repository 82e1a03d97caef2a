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
from sweepd.common.transport import Security

from .harness import Cluster, Process, alive, fill, wait_for

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
                if text and alive(int(text)):
                    live.append((d.name, int(text)))
        return live

    held = wait_for(victim_live_runs, DEADLINE_S, 0.02, "worker 0 to hold a live run")
    os.kill(workers[0].pid, signal.SIGKILL)
    workers[0].wait(10)
    # Its runs die with it (their supervisor's PR_SET_PDEATHSIG): nothing keeps training, or a
    # GPU, for nobody.
    pids = [pid for _, pid in held]
    wait_for(lambda: not any(alive(pid) for pid in pids), 10, 0.05, f"run processes {pids}"
             " to die")

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


# -- a frozen worker, and programs that write bad metric lines -------------------------------

FROZEN_POINTS = 4
FROZEN_RECORDS = 20
FROZEN_LEASE_S = 3
# Lines no metric store can take, written between the good ones (issue #11 item 3): each is
# counted and reported, none hangs its run or costs another record.
BAD_LINES = [
    '{"k": -1, "_timestamp": 1732000000000}',
    '{"k": -1, "_step": 100000000000000000000}',
    '{"k": %s}' % ("9" * 400),
    'not json',
]

FROZEN_TRAIN = textwrap.dedent(f'''
    import os, time
    from sweepd.client import run

    a = run.config["a"]
    bad = {BAD_LINES!r}
    for k in range({FROZEN_RECORDS}):
        run.log({{"k": k, "a": a}})
        if k < len(bad):
            with open(os.environ["SWEEPD_METRICS_FILE"], "a") as f:
                f.write(bad[k] + "\\n")
        time.sleep(0.1)
''')


@pytest.mark.parametrize("n_workers", [1, 2], ids=["same-worker-retries", "other-worker"])
def test_frozen_worker_past_its_lease_loses_nothing(cluster: Cluster, tmp_path: Path,
                                                    n_workers: int) -> None:
    """Issue #11 item 2: a worker SIGSTOPped past its lease, then SIGCONTed. Its run went LOST
    and was handed out again (to itself or to another worker); the stop order for the old
    attempt must not kill the new one. Every point ends FINISHED once, with all its records."""
    cluster.start_coordinator("--lease-seconds", str(FROZEN_LEASE_S))
    config = tmp_path / "grid.yaml"
    config.write_text(f"program: train.py\nmethod: grid\nparameters:\n"
                      f"  a: {{values: {list(range(FROZEN_POINTS))}}}\n")
    sweep_id = cluster.create(config)
    workdirs = [tmp_path / f"w{i}" for i in range(n_workers)]
    workers = []
    for i, wd in enumerate(workdirs):
        wd.mkdir()
        (wd / "train.py").write_text(FROZEN_TRAIN)
        workers.append(cluster.start_worker("--sweep", sweep_id, "--worker-id", f"w{i}",
                                            workdir=wd))
    seen = Observer(cluster)

    def frozen_run() -> str:
        for d in (workdirs[0] / ".sweepd" / "runs").glob("*"):
            metrics = d / "metrics.jsonl"
            if metrics.exists() and 3 <= metrics.read_text().count('"k"') < 10:
                return d.name.rsplit(".", 1)[0]
        return ""

    run_id = wait_for(frozen_run, DEADLINE_S, 0.02, "worker 0 to be mid-run")
    os.kill(workers[0].pid, signal.SIGSTOP)
    try:
        def retried() -> bool:
            runs = seen.runs(sweep_id)
            # LOST and queued again (PENDING, while its only worker is frozen), or already
            # handed out again as attempt 2.
            return runs is not None and any(
                r["id"] == run_id and (r["state"] == "PENDING" or r["attempt"] >= 2)
                for r in runs)

        wait_for(retried, DEADLINE_S, 0.1, f"{run_id} to be lost and queued again")
    finally:
        os.kill(workers[0].pid, signal.SIGCONT)

    for w in workers:
        assert w.wait(DEADLINE_S) == 0, w.output()
    runs = seen.runs(sweep_id)
    assert runs is not None and len(runs) == FROZEN_POINTS
    assert sorted(r["params"]["a"] for r in runs) == list(range(FROZEN_POINTS))
    assert all(r["state"] == "FINISHED" for r in runs), [
        (r["id"], r["state"], r["attempt"], r["reason"]) for r in runs]
    with Client(cluster.address, security=Security(token=cluster.token)) as client:
        for r in runs:
            detail = client.get_run(r["id"], history=True)
            history = [(h["index"], h["k"], h["a"]) for h in detail["history"]]
            assert history == [(k, k, r["params"]["a"]) for k in range(FROZEN_RECORDS)], (
                r["id"], r["attempt"], history)
            assert r["reason"].startswith(f"{len(BAD_LINES)} metrics line(s) could not be"
                                          " used"), r
    assert next(r for r in runs if r["id"] == run_id)["attempt"] >= 2


# -- a failing store: the coordinator's disk fills up mid-sweep, and it is killed meanwhile -----

STORE_POINTS = 8
STORE_RECORDS = 60


def test_full_disk_and_a_kill_mid_sweep_lose_nothing(small_disk: Path, cluster: Cluster,
                                                     tmp_path: Path) -> None:
    """Issue #11 item 1 inside the chaos run: the state directory's filesystem fills while
    runs report, the coordinator is SIGKILLed while writes are failing, and restarted once
    space returns. Every point ends FINISHED exactly once with every record it logged."""
    cluster.start_coordinator("--lease-seconds", str(LEASE_S))
    train = textwrap.dedent(f'''
        import time
        from sweepd.client import run

        a = run.config["a"]
        for k in range({STORE_RECORDS}):
            run.log({{"k": k, "a": a}})
            time.sleep(0.03)
    ''')
    config = tmp_path / "grid.yaml"
    config.write_text(f"program: train.py\nmethod: grid\nparameters:\n"
                      f"  a: {{values: {list(range(STORE_POINTS))}}}\n")
    sweep_id = cluster.create(config)
    workers = []
    for i in range(2):
        wd = tmp_path / f"w{i}"
        wd.mkdir()
        (wd / "train.py").write_text(train)
        workers.append(cluster.start_worker("--sweep", sweep_id, "--worker-id", f"w{i}",
                                            "--slots", "2", workdir=wd))
    seen = Observer(cluster)
    wait_for(lambda: seen.finished(sweep_id, 2), DEADLINE_S, 0.05, "2 finished runs")
    filler = fill(small_disk)
    try:
        coordinator = cluster.coordinator
        assert coordinator is not None
        wait_for(lambda: "full disk" in coordinator.output(), 60, 0.05,
                 "a write to fail on the full disk")
        os.kill(coordinator.pid, signal.SIGKILL)
        coordinator.wait(10)
    finally:
        filler.unlink()
    cluster.start_coordinator("--lease-seconds", str(LEASE_S), port=cluster.port)

    for w in workers:
        assert w.wait(DEADLINE_S) == 0, w.output()
    runs = seen.runs(sweep_id)
    assert runs is not None and len(runs) == STORE_POINTS
    assert sorted(r["params"]["a"] for r in runs) == list(range(STORE_POINTS))
    assert all(r["state"] == "FINISHED" for r in runs), [
        (r["id"], r["state"], r["attempt"], r["reason"]) for r in runs]
    with Client(cluster.address, security=Security(token=cluster.token)) as client:
        for r in runs:
            history = [(h["index"], h["k"], h["a"])
                       for h in client.get_run(r["id"], history=True)["history"]]
            assert history == [(k, k, r["params"]["a"]) for k in range(STORE_RECORDS)], (
                r["id"], r["attempt"], history)
