"""The Ctrl+C cascade of a real worker process: first drain, second SIGTERM to the runs,
third SIGKILL; and SIGTERM to the worker forwarded to its runs."""

from __future__ import annotations

import signal
import textwrap
from pathlib import Path

import pytest

from .harness import Cluster, wait_for

pytestmark = pytest.mark.e2e

# Traps SIGTERM: writes a marker and, with TRAP_EXIT=1, exits cleanly (a checkpointing run);
# otherwise keeps running (a run that ignores SIGTERM).
TRAP = textwrap.dedent('''
    import os, signal, sys, time
    run_dir = os.environ["SWEEPD_RUN_DIR"]
    def on_term(signum, frame):
        open(os.path.join(run_dir, "sigterm"), "w").close()
        if os.environ.get("TRAP_EXIT") == "1":
            sys.exit(0)
    signal.signal(signal.SIGTERM, on_term)
    open(os.path.join(run_dir, "started"), "w").close()
    deadline = time.time() + 120
    while time.time() < deadline:
        time.sleep(0.05)
''')


def write(tmp: Path, name: str, text: str) -> Path:
    path = tmp / name
    path.write_text(textwrap.dedent(text))
    return path


def markers(workdir: Path, name: str) -> list[Path]:
    return list(workdir.glob(f".sweepd/runs/*/{name}"))


@pytest.fixture
def setup(cluster: Cluster, tmp_path: Path) -> tuple[str, Path]:
    workdir = tmp_path / "work"
    workdir.mkdir()
    (workdir / "trap.py").write_text(TRAP)
    cluster.start_coordinator()
    sweep_id = cluster.create(write(tmp_path, "two.yaml", """
        program: trap.py
        method: grid
        parameters:
          i: {values: [1, 2, 3, 4]}
    """))
    return sweep_id, workdir


def test_ctrl_c_cascade(cluster: Cluster, setup: tuple[str, Path]) -> None:
    sweep_id, workdir = setup
    worker = cluster.start_worker("--sweep", sweep_id, "--slots", "2", workdir=workdir)
    wait_for(lambda: len(markers(workdir, "started")) == 2, what="two runs to start")

    worker.signal(signal.SIGINT)  # 1: no new runs; the runs go on untouched
    wait_for(lambda: "waiting for 2 run(s)" in worker.output(), what="the worker to drain")
    assert worker.poll() is None
    assert not markers(workdir, "sigterm")
    assert sorted(r["state"] for r in cluster.runs(sweep_id)) == ["RUNNING", "RUNNING"]

    worker.signal(signal.SIGINT)  # 2: SIGTERM to the runs (which ignore it)
    wait_for(lambda: len(markers(workdir, "sigterm")) == 2, what="the runs to get SIGTERM")
    assert worker.poll() is None

    worker.signal(signal.SIGINT)  # 3: SIGKILL
    assert worker.wait() == 130, worker.output()
    runs = cluster.runs(sweep_id)
    assert len(runs) == 2  # no new run was taken after the first Ctrl+C
    for r in runs:
        assert r["state"] == "FAILED" and "SIGKILL" in r["reason"], r


def test_sigterm_is_forwarded_to_runs(cluster: Cluster, setup: tuple[str, Path]) -> None:
    sweep_id, workdir = setup
    worker = cluster.start_worker("--sweep", sweep_id, "--slots", "2", workdir=workdir,
                                  env={"TRAP_EXIT": "1"})
    wait_for(lambda: len(markers(workdir, "started")) == 2, what="two runs to start")
    worker.signal(signal.SIGTERM)
    # The runs checkpoint (marker) and exit cleanly; the worker reports them and leaves.
    assert worker.wait() == 130, worker.output()
    assert len(markers(workdir, "sigterm")) == 2
    runs = cluster.runs(sweep_id)
    assert len(runs) == 2
    # Issue #11 item 16: a run the worker sent SIGTERM ends STOPPED with why, even when it
    # then exits 0 (it did not run to its end: no result for the best run or the search).
    for r in runs:
        assert r["state"] == "STOPPED" and "received SIGTERM" in r["reason"], r
        assert r["exit_code"] == 0, r
