"""`sweep watch` as a person sees it (issue #15): a live screen on a terminal (through a real
pseudo-terminal), plain lines into a pipe, JSON lines with --format json, and Ctrl+C as a
normal way out (exit 130, no "Aborted!"), for `sweep logs -f` too."""

from __future__ import annotations

import json
import re
import signal
import textwrap
import time
from pathlib import Path

import pexpect
import pytest

from .harness import DEFAULT_TIMEOUT_S, Cluster, command, wait_for

pytestmark = pytest.mark.e2e

# Slow enough that the screen is caught mid-sweep with runs running, fast enough for CI.
TRAIN = textwrap.dedent("""
    import time
    from sweepd.client import run
    for step in range(8):
        run.log({"score": run.config.a * 10 + step})
        time.sleep(0.25)
""")
GRID = ("program: train.py\nmethod: grid\nmetric: {name: score, goal: maximize}\n"
        "parameters:\n  a: {values: [1, 2, 3, 4, 5, 6]}\n")
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def _sweep(cluster: Cluster, tmp_path: Path) -> tuple[str, Path]:
    workdir = tmp_path / "work"
    workdir.mkdir()
    (workdir / "train.py").write_text(TRAIN)
    config = tmp_path / "grid.yaml"
    config.write_text(GRID)
    cluster.start_coordinator()
    return cluster.create(config), workdir


def _spawn(cluster: Cluster, *args: str) -> pexpect.spawn:
    argv = command("sweep") + [args[0], "--coordinator", cluster.address, *args[1:]]
    env = {**cluster.env, "TERM": "xterm-256color", "COLUMNS": "120", "LINES": "40"}
    return pexpect.spawn(argv[0], argv[1:], env=env, dimensions=(40, 120), encoding="utf-8",
                         timeout=DEFAULT_TIMEOUT_S)


class Screen:
    """What a pty child printed so far, escape codes removed, searched as it grows."""

    def __init__(self, child: pexpect.spawn) -> None:
        self.child = child
        self.raw = ""

    @property
    def text(self) -> str:
        return ANSI.sub("", self.raw)

    def wait(self, pattern: str, timeout: float = DEFAULT_TIMEOUT_S) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        while True:
            match = re.search(pattern, self.text)
            if match:
                return match
            if time.monotonic() > deadline:
                raise AssertionError(f"no {pattern!r} on the screen within {timeout:.0f} s:\n"
                                     f"{self.text[-3000:]}")
            try:
                self.raw += self.child.read_nonblocking(65536, timeout=0.2)
            except pexpect.TIMEOUT:
                continue
            except pexpect.EOF:
                match = re.search(pattern, self.text)
                if match:
                    return match
                raise AssertionError(f"ended without {pattern!r}:\n{self.text[-3000:]}"
                                     ) from None


def test_watch_on_a_terminal_is_a_live_screen(cluster: Cluster, tmp_path: Path) -> None:
    sweep_id, workdir = _sweep(cluster, tmp_path)
    child = _spawn(cluster, "watch", sweep_id)
    try:
        worker = cluster.start_worker("--sweep", sweep_id, "--slots", "2", workdir=workdir)
        # Mid-sweep: the running runs' table (with a step read from their history), a best
        # run, and the progress out of the grid's 6 points.
        screen = Screen(child)
        screen.wait(r"RUNNING\s+STEP\s+score\s+PARAMS")
        screen.wait(r"[1-5]/6 done")
        screen.wait(r"best\s+" + re.escape(sweep_id) + r"-\d+\s+score=")
        screen.wait(re.escape(sweep_id) + r"-\d+\s+[1-7]\s+\d+\s+a=\d")  # a step shown
        screen.wait(f"sweep {sweep_id} FINISHED", timeout=DEFAULT_TIMEOUT_S * 2)
        child.expect(pexpect.EOF)
        screen.raw += child.before or ""
    finally:
        child.close(force=True)
    assert child.exitstatus == 0, screen.text
    assert worker.wait() == 0, worker.output()
    assert "6/6 done" in screen.text
    # Redrawn in place: the cursor moved back up over the previous frame.
    assert re.search(r"\x1b\[\d*A", screen.raw)


def test_watch_into_a_pipe_prints_plain_lines_and_json(cluster: Cluster,
                                                       tmp_path: Path) -> None:
    sweep_id, workdir = _sweep(cluster, tmp_path)
    plain = cluster.start_sweep("watch", sweep_id)
    as_json = cluster.start_sweep("watch", sweep_id, "--format", "json")
    worker = cluster.start_worker("--sweep", sweep_id, "--slots", "3", workdir=workdir)
    assert worker.wait() == 0, worker.output()
    assert plain.wait() == 0, plain.output()
    assert as_json.wait() == 0, as_json.output()
    text = plain.output()
    assert "\x1b[" not in text
    assert f"watching sweep {sweep_id}" in text.splitlines()[0]
    assert re.search(r"new best: " + re.escape(sweep_id) + r"-\d+ score=", text)
    assert f"{sweep_id}-6" in text and text.count("FINISHED") >= 6
    assert text.splitlines()[-1].startswith(f"sweep {sweep_id} FINISHED")
    updates = [json.loads(line) for line in as_json.output().splitlines()]
    assert updates[0]["sweep"]["id"] == sweep_id
    assert {u["run"]["id"] for u in updates if "run" in u} == {
        f"{sweep_id}-{n}" for n in range(1, 7)}


def test_ctrl_c_on_watch_exits_130_without_aborted(cluster: Cluster, tmp_path: Path) -> None:
    sweep_id, _ = _sweep(cluster, tmp_path)
    child = _spawn(cluster, "watch", sweep_id)
    try:
        screen = Screen(child)
        screen.wait("best")  # the screen is up; no worker, so the sweep waits for ever
        child.sendintr()
        child.expect(pexpect.EOF)
        output = screen.text + (child.before or "")
    finally:
        child.close(force=True)
    assert child.exitstatus == 130, (child.exitstatus, child.signalstatus, output)
    assert "Aborted" not in output


def test_ctrl_c_on_plain_watch_and_logs_follow_exits_130(cluster: Cluster,
                                                         tmp_path: Path) -> None:
    sweep_id, workdir = _sweep(cluster, tmp_path)
    (workdir / "train.py").write_text(
        "import time\nprint('started', flush=True)\ntime.sleep(120)\n")
    watcher = cluster.start_sweep("watch", sweep_id)
    worker = cluster.start_worker("--sweep", sweep_id, "--count", "1", workdir=workdir)
    run_id = f"{sweep_id}-1"
    wait_for(lambda: any(r["state"] == "RUNNING" for r in cluster.runs(sweep_id)),
             what="a run to start")
    follower = cluster.start_sweep("logs", run_id, "-f")
    wait_for(lambda: "started" in follower.output(), what="the log to be followed")
    wait_for(lambda: "watching sweep" in watcher.output(), what="watch to start")
    for proc in (watcher, follower):
        proc.signal(signal.SIGINT)
        assert proc.wait() == 130, proc.output()
        assert "Aborted" not in proc.output()
    worker.kill()
