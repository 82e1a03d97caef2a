"""No server to start by hand (issue #15): in a real Jupyter kernel (nbclient running a
notebook), on a machine where no coordinator was started, ``sweep()`` starts one in the
background, ``agent()`` uses it, re-running the notebook reuses it, it outlives the kernel,
and ``coordinator stop`` ends it.

The coordinator listens on the default address (127.0.0.1:50051): that is the point. The test
is skipped when something already answers there (another coordinator of this machine), and it
always stops what it started."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from .harness import DEFAULT_TIMEOUT_S, command, wait_for

nbformat = pytest.importorskip("nbformat")
pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

pytestmark = pytest.mark.e2e

STARTED = "no coordinator was running, so one was started in the background"

CELLS = [
    """
    from sweepd.client import agent, run, sweep

    sweep_id = sweep({"method": "grid", "metric": {"name": "score", "goal": "maximize"},
                      "parameters": {"a": {"values": [1, 2, 3]}}})
    print("SWEEP", sweep_id)
    """,
    """
    def train():
        for step in range(3):
            run.log({"score": run.config.a * 10 + step})

    print("RAN", agent(sweep_id, function=train, count=3))
    """,
    # The first cell again, as a user re-running it would: no second coordinator.
    """
    again = sweep({"method": "random", "parameters": {"b": {"min": 0.0, "max": 1.0}}})
    print("AGAIN", again)
    """,
]

RUNNER = textwrap.dedent("""
    import sys
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(sys.argv[1], as_version=4)
    NotebookClient(nb, timeout=240, kernel_name="python3",
                   resources={"metadata": {"path": sys.argv[3]}}).execute()
    nbformat.write(nb, sys.argv[2])
""")


def _answers(port: int) -> bool:
    from sweepd.common.local import answers

    return answers(f"127.0.0.1:{port}")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.fixture
def home(tmp_path: Path) -> Iterator[dict[str, str]]:
    """A fresh HOME and state dir; whatever coordinator the test started is stopped after."""
    if _answers(50051):
        pytest.skip("a coordinator (or something else) already answers on 127.0.0.1:50051")
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("SWEEPD_", "WANDB_", "JUPYTER", "IPYTHON"))}
    env.update({"HOME": str(tmp_path / "home"), "SWEEPD_STATE_DIR": str(tmp_path / "state"),
                "PYTHONUNBUFFERED": "1"})
    (tmp_path / "home").mkdir()
    try:
        yield env
    finally:
        subprocess.run(command("coordinator") + ["stop"], env=env, capture_output=True,
                       timeout=DEFAULT_TIMEOUT_S)
        lock = tmp_path / "state" / "coordinator.lock"
        with contextlib.suppress(OSError, ValueError, IndexError):  # stop failed: be sure
            os.kill(int(lock.read_text().split()[1].rstrip(",")), signal.SIGKILL)


def _execute(tmp_path: Path, env: dict[str, str], name: str) -> str:
    """Runs the notebook in a fresh kernel; returns the text of every cell's output."""
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(textwrap.dedent(c)) for c in CELLS]
    source, done = tmp_path / f"{name}.ipynb", tmp_path / f"{name}.out.ipynb"
    nbformat.write(nb, source)
    runner = tmp_path / "run_notebook.py"
    runner.write_text(RUNNER)
    work = tmp_path / "work"
    work.mkdir(exist_ok=True)
    result = subprocess.run([sys.executable, str(runner), str(source), str(done), str(work)],
                            env=env, capture_output=True, text=True,
                            timeout=DEFAULT_TIMEOUT_S * 5)
    assert result.returncode == 0, result.stdout + result.stderr
    executed = nbformat.read(done, as_version=4)
    texts = []
    for cell in executed.cells:
        for out in cell.get("outputs", []):
            texts.append(out.get("text", "") or json.dumps(out.get("data", {})))
    return "\n".join(texts)


def test_a_notebook_needs_no_coordinator_started_by_hand(tmp_path: Path,
                                                         home: dict[str, str]) -> None:
    state = tmp_path / "state"
    first = _execute(tmp_path, home, "first")
    # Said once, in one line, by the first call only.
    assert first.count(STARTED) == 1, first
    assert "coordinator stop" in first
    assert "SWEEP " in first and "RAN 3" in first and "AGAIN " in first
    # The agent said what each trial did.
    assert first.count("agent: trial ") == 3, first
    # The notebook shows a progress bar too, updated in place to its end.
    assert '<progress value=\\"3\\" max=\\"3\\"' in first, first
    assert "3/3 trials" in first and "done" in first
    pid = int((state / "coordinator.lock").read_text().split()[1].rstrip(","))

    # The kernel is gone; the coordinator is not. A new kernel re-running the notebook
    # reuses it.
    assert _answers(50051)
    second = _execute(tmp_path, home, "second")
    assert STARTED not in second, second
    assert int((state / "coordinator.lock").read_text().split()[1].rstrip(",")) == pid
    assert "listening on 127.0.0.1:50051" in (state / "coordinator.log").read_text()
    assert (state / "token").exists()

    stopped = subprocess.run(command("coordinator") + ["stop"], env=home, capture_output=True,
                             text=True, timeout=DEFAULT_TIMEOUT_S)
    assert stopped.returncode == 0, stopped.stderr
    assert f"pid {pid}" in stopped.stdout
    wait_for(lambda: not _answers(50051), what="the port to be free")
    wait_for(lambda: not _alive(pid), what=f"pid {pid} to be gone")
    again = subprocess.run(command("coordinator") + ["stop"], env=home, capture_output=True,
                           text=True, timeout=DEFAULT_TIMEOUT_S)
    assert again.returncode == 0 and "no coordinator is running" in again.stdout


def test_sweep_create_starts_one_too_and_names_the_keyword_when_it_cannot(
        tmp_path: Path, home: dict[str, str]) -> None:
    config = tmp_path / "sweep.yaml"
    config.write_text("method: random\nparameters:\n  b: {min: 0.0, max: 1.0}\n")
    sweep = command("sweep")
    first = subprocess.run(sweep + ["create", str(config)], env=home, capture_output=True,
                           text=True, timeout=DEFAULT_TIMEOUT_S * 2)
    assert first.returncode == 0, first.stderr
    assert first.stderr.count(STARTED) == 1
    second = subprocess.run(sweep + ["create", str(config)], env=home, capture_output=True,
                            text=True, timeout=DEFAULT_TIMEOUT_S)
    assert second.returncode == 0 and STARTED not in second.stderr, second.stderr
    listed = subprocess.run(sweep + ["list", "--format", "json"], env=home,
                            capture_output=True, text=True, timeout=DEFAULT_TIMEOUT_S)
    assert len(json.loads(listed.stdout)) == 2
    # Named explicitly and unreachable: nothing is started, and the message names all three
    # ways to name a coordinator.
    named = subprocess.run(sweep + ["list", "--coordinator", "127.0.0.1:1"], env=home,
                           capture_output=True, text=True, timeout=DEFAULT_TIMEOUT_S)
    assert named.returncode == 3
    for way in ("coordinator=", "--coordinator", "SWEEPD_COORDINATOR"):
        assert way in named.stderr, named.stderr
