"""Run output through the real CLI: `sweep logs`, `--follow`, `sweep show RUN_ID`, and a run
whose program cannot start."""

from __future__ import annotations

import subprocess
import textwrap
import time
from pathlib import Path

import pytest

from .harness import DEFAULT_TIMEOUT_S, Cluster, command, wait_for

pytestmark = pytest.mark.e2e

NOISY = textwrap.dedent('''
    import os, sys, time
    n = int(os.environ.get("NOISY_LINES", "1"))
    for i in range(n):
        print(f"line {i} of {os.environ['SWEEPD_RUN_ID']}", flush=True)
        if n > 1:
            time.sleep(0.4)
    print("something went wrong", file=sys.stderr, flush=True)
    sys.exit(int(os.environ.get("NOISY_EXIT", "1")))
''')


def write(tmp: Path, name: str, text: str) -> Path:
    path = tmp / name
    path.write_text(textwrap.dedent(text))
    return path


def one_run(tmp: Path, program: str = "noisy.py") -> Path:
    return write(tmp, "one.yaml", f"""
        program: {program}
        method: grid
        parameters:
          x: {{value: 1}}
    """)


def test_logs_of_a_failed_run(cluster: Cluster, tmp_path: Path) -> None:
    workdir = tmp_path / "work"
    workdir.mkdir()
    (workdir / "noisy.py").write_text(NOISY)
    cluster.start_coordinator()
    sweep_id = cluster.create(one_run(tmp_path))
    worker = cluster.start_worker("--sweep", sweep_id, workdir=workdir)
    assert worker.wait() == 0, worker.output()
    (run,) = cluster.runs(sweep_id)
    assert run["state"] == "FAILED"
    out = cluster.sweep("logs", run["id"]).stdout
    assert f"line 0 of {run['id']}" in out
    assert "something went wrong" in out
    shown = cluster.sweep("show", run["id"]).stdout
    assert "FAILED" in shown and "something went wrong" in shown
    # The command it ran and its lifecycle, one event per line.
    assert "noisy.py --x=1" in shown
    events = [line.split()[3] for line in shown.splitlines() if line.startswith("event")]
    assert events == ["ASSIGNED", "RUNNING", "FAILED"], shown


def test_logs_follow_streams_a_live_run(cluster: Cluster, tmp_path: Path) -> None:
    workdir = tmp_path / "work"
    workdir.mkdir()
    (workdir / "noisy.py").write_text(NOISY)
    cluster.start_coordinator()
    sweep_id = cluster.create(one_run(tmp_path))
    cluster.start_worker("--sweep", sweep_id, workdir=workdir,
                         env={"NOISY_LINES": "8", "NOISY_EXIT": "0"})
    run = wait_for(lambda: [r for r in cluster.runs(sweep_id) if r["state"] == "RUNNING"],
                   what="the run to start")[0]
    follow = subprocess.Popen(
        command("sweep") + ["logs", "--coordinator", cluster.address, "--follow", run["id"]],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=cluster.env)
    try:
        out, err = follow.communicate(timeout=DEFAULT_TIMEOUT_S)
    finally:
        follow.kill()
    assert follow.returncode == 0, err
    # It returned on its own when the run ended, with every line the run printed.
    for i in range(8):
        assert f"line {i} of {run['id']}" in out, out
    wait_for(lambda: cluster.runs(sweep_id)[0]["state"] == "FINISHED", what="FINISHED")


def test_program_that_cannot_start_fails_at_once(cluster: Cluster, tmp_path: Path) -> None:
    workdir = tmp_path / "work"
    workdir.mkdir()
    cluster.start_coordinator()
    config = write(tmp_path, "missing.yaml", """
        method: grid
        command: ["./no-such-program", "${args}"]
        parameters:
          x: {value: 1}
    """)
    sweep_id = cluster.create(config)
    started = time.monotonic()
    worker = cluster.start_worker("--sweep", sweep_id, workdir=workdir)
    assert worker.wait() == 0, worker.output()
    (run,) = cluster.runs(sweep_id)
    assert run["state"] == "FAILED"
    assert "cannot start" in run["reason"] and "no-such-program" in run["reason"], run
    assert time.monotonic() - started < 30
    assert "cannot start" in cluster.sweep("logs", run["id"]).stdout
