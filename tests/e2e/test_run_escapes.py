"""A run's processes that leave its process group, and a run killed by SIGKILL, with a real
worker (hostile tester's findings F7 and F8 on issue #11)."""

from __future__ import annotations

import os
import signal
import textwrap
import time
from pathlib import Path

import pytest

from .harness import Cluster, alive, wait_for

pytestmark = pytest.mark.e2e


def _write(tmp: Path, name: str, text: str) -> Path:
    path = tmp / name
    path.write_text(textwrap.dedent(text))
    return path


# One child in a session of its own, one in a process group of its own, one grandchild that
# the setpgid child leaves behind as an orphan: none is in the run's process group.
ESCAPES = textwrap.dedent('''
    import os, signal, subprocess, sys, time
    run_dir = os.environ["SWEEPD_RUN_DIR"]
    if os.path.exists("ignore_sigterm"):  # inherited by every child, through exec too
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    setsid = subprocess.Popen(["setsid", "sleep", "40"])
    own_group = subprocess.Popen([sys.executable, "own_group.py", run_dir])
    deadline = time.monotonic() + 30
    while not os.path.exists(os.path.join(run_dir, "orphan")) and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.2)
    with open(os.path.join(run_dir, "pids.tmp"), "w") as f:
        f.write(f"{os.getpid()} {setsid.pid} {own_group.pid}")
    os.rename(os.path.join(run_dir, "pids.tmp"), os.path.join(run_dir, "pids"))
    time.sleep(40)
''')
OWN_GROUP = textwrap.dedent('''
    import os, subprocess, sys, time
    os.setpgid(0, 0)
    orphan = subprocess.Popen(["sleep", "41"], start_new_session=True)
    with open(os.path.join(sys.argv[1], "orphan.tmp"), "w") as f:
        f.write(str(orphan.pid))
    os.rename(os.path.join(sys.argv[1], "orphan.tmp"), os.path.join(sys.argv[1], "orphan"))
    time.sleep(40)
''')


def _escaping_run(cluster: Cluster, tmp_path: Path) -> tuple[str, Path]:
    cluster.start_coordinator()
    workdir = tmp_path / "work"
    workdir.mkdir()
    (workdir / "escapes.py").write_text(ESCAPES)
    (workdir / "own_group.py").write_text(OWN_GROUP)
    sweep_id = cluster.create(_write(tmp_path, "s.yaml", """
        program: escapes.py
        method: grid
        parameters:
          a: {values: [1]}
    """))
    return sweep_id, workdir


def _pids(workdir: Path) -> list[int]:
    (pid_file,) = wait_for(lambda: list(workdir.glob(".sweepd/runs/*/pids")),
                           what="the run to start its children")
    assert (pid_file.parent / "orphan").exists()
    orphan = pid_file.parent / "orphan"
    pids = [int(p) for p in pid_file.read_text().split()] + [int(orphan.read_text())]
    assert len(pids) == 4 and all(alive(pid) for pid in pids), pids
    # The setsid child and the orphan left the run's process group.
    assert os.getpgid(pids[1]) != os.getpgid(pids[0])
    assert os.getpgid(pids[3]) != os.getpgid(pids[0])
    return pids


def test_kill_9_of_the_worker_takes_children_that_left_the_group(
        cluster: Cluster, tmp_path: Path) -> None:
    sweep_id, workdir = _escaping_run(cluster, tmp_path)
    worker = cluster.start_worker("--sweep", sweep_id, workdir=workdir)
    pids = _pids(workdir)
    try:
        os.kill(worker.pid, signal.SIGKILL)  # the worker only, as the OOM killer would
        killed = time.monotonic()
        wait_for(lambda: not any(alive(pid) for pid in pids), 10, 0.05,
                 "the run and every process it started to die")
        print(f"all gone {time.monotonic() - killed:.2f} s after kill -9")
    finally:
        for pid in pids:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)


@pytest.mark.parametrize("ignores_sigterm", [False, True], ids=["sigterm", "sigkill"])
def test_a_stop_takes_children_that_left_the_group(
        cluster: Cluster, tmp_path: Path, ignores_sigterm: bool) -> None:
    """SIGTERM reaches them; so does the SIGKILL that follows the grace period, which also
    kills the supervisor that holds them."""
    sweep_id, workdir = _escaping_run(cluster, tmp_path)
    if ignores_sigterm:
        (workdir / "ignore_sigterm").touch()
    worker = cluster.start_worker("--sweep", sweep_id, "--stop-grace", "1", workdir=workdir)
    pids = _pids(workdir)
    try:
        cluster.sweep("cancel", sweep_id)
        wait_for(lambda: not any(alive(pid) for pid in pids), 30, 0.05,
                 "the stopped run and every process it started to die")
        (run,) = wait_for(lambda: [r for r in cluster.runs(sweep_id)
                                   if r["state"] not in ("PENDING", "ASSIGNED", "RUNNING")],
                          what="the run to end")
        assert run["state"] == "STOPPED", run
        # The cancel is a stop decision of its own, stored and sent without figures.
        assert run["stop"] == {"rule": "cancel", "reason": "sweep canceled", "band": None,
                               "threshold": None, "value": None}, run
        assert ("SIGKILL" in worker.output()) == ignores_sigterm, worker.output()
    finally:
        for pid in pids:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)


def test_a_run_killed_by_sigkill_is_reported_as_such(cluster: Cluster, tmp_path: Path) -> None:
    cluster.start_coordinator()
    workdir = tmp_path / "work"
    workdir.mkdir()
    # As the OOM killer would: SIGKILL from outside, which no handler can catch.
    (workdir / "oom.py").write_text(
        "import os, signal\nos.kill(os.getpid(), signal.SIGKILL)\n")
    sweep_id = cluster.create(_write(tmp_path, "s.yaml", """
        program: oom.py
        method: grid
        parameters:
          a: {values: [1]}
    """))
    worker = cluster.start_worker("--sweep", sweep_id, "--count", "1", workdir=workdir)
    assert worker.wait() == 0, worker.output()
    (run,) = cluster.runs(sweep_id)
    assert run["state"] == "FAILED", run
    assert run["reason"].startswith("killed by SIGKILL"), run
    assert run["exit_code"] == -signal.SIGKILL, run
    log = next(workdir.glob(".sweepd/runs/*/output.log")).read_text()
    assert "Traceback" not in log, log
