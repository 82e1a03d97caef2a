"""How a run's end becomes its outcome, and where its files lie: written once in
sweepd.common for the worker daemon and the notebook agent alike (issue 17)."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import pytest
from sweepd.common.outcome import FAILED, FINISHED, STOPPED, outcome, signal_name, with_bad_lines
from sweepd.common.rundir import RunFiles
from sweepd.common.runfile import ENV_RUN_DIR, MetricsFollower

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("code", "kwargs", "expected"),
    [
        (0, {}, (FINISHED, "")),
        (3, {}, (FAILED, "exited with code 3")),
        (1, {}, (FAILED, "exited with code 1")),
        (-signal.SIGSEGV, {}, (FAILED, "killed by SIGSEGV")),
        (-signal.SIGKILL, {}, (FAILED, "killed by SIGKILL")),  # by the OOM killer, say
        # Asked to stop: STOPPED with our reason however it exited.
        (-signal.SIGTERM, {"stop_reason": "hyperband: worse"}, (STOPPED, "hyperband: worse")),
        (0, {"stop_reason": "sweep canceled"}, (STOPPED, "sweep canceled")),
        (-signal.SIGKILL, {"stop_reason": "sweep canceled"}, (STOPPED, "sweep canceled")),
        # Killed outright by its starter: FAILED, and why, even if a stop was asked first.
        (-signal.SIGKILL, {"kill_reason": "third Ctrl+C", "stop_reason": "x"},
         (FAILED, "killed by SIGKILL (third Ctrl+C)")),
        (0, {"kill_reason": "third Ctrl+C"}, (FINISHED, "")),  # it exited before the kill
        (None, {"start_error": "cannot start ['trian.py']: no such file"},
         (FAILED, "cannot start ['trian.py']: no such file")),
        (None, {}, (FAILED, "ended without an exit code")),
    ],
)
def test_the_outcome_rule(code: int | None, kwargs: dict[str, str],
                          expected: tuple[str, str]) -> None:
    assert outcome(code, **kwargs) == expected


def test_a_signal_without_a_name_is_its_number() -> None:
    assert signal_name(signal.SIGTERM) == "SIGTERM"
    assert signal_name(200) == "200"
    # A real-time signal is valid but has no name of its own (the old rule raised here).
    realtime = int(getattr(signal, "SIGRTMIN", 34)) + 3
    assert outcome(-realtime) == (FAILED, f"killed by {realtime}")


def test_bad_metric_lines_are_added_to_the_reason(tmp_path: Path) -> None:
    path = tmp_path / "metrics.jsonl"
    path.write_text('{"loss": 1}\nnot json\n[1]\n')
    follower = MetricsFollower(path)
    assert with_bad_lines("exited with code 1", follower) == "exited with code 1"
    follower.read_new(final=True)
    reason = with_bad_lines("exited with code 1", follower)
    assert reason.startswith("exited with code 1; 2 metrics line(s) could not be used (first:"
                             " line 2: not JSON")
    assert with_bad_lines("", follower).startswith("2 metrics line(s)")


def test_the_run_directory_layout(tmp_path: Path) -> None:
    files = RunFiles.at(tmp_path, "abcdefgh-3", 2)
    assert files.dir == tmp_path / ".sweepd" / "runs" / "abcdefgh-3.2"
    files.dir.mkdir(parents=True)
    files.write_stop("left from an earlier start")
    files.prepare({"opt": {"lr": 0.1}})
    assert json.loads(files.config.read_text()) == {"opt": {"lr": 0.1}}
    assert files.metrics.read_text() == "" and not files.stop.exists()
    env = files.env("abcdefgh-3", "abcdefgh", 2)
    assert env == {
        "SWEEPD_RUN_ID": "abcdefgh-3", "SWEEPD_SWEEP_ID": "abcdefgh", "SWEEPD_ATTEMPT": "2",
        ENV_RUN_DIR: str(files.dir), "SWEEPD_CONFIG_FILE": str(files.config),
        "SWEEPD_METRICS_FILE": str(files.metrics), "SWEEPD_STOP_FILE": str(files.stop),
    }
    files.write_stop("hyperband: worse")
    assert files.stop.read_text() == "hyperband: worse\n"
    assert files.output.name == "output.log"


@pytest.mark.parametrize("path", ["worker/runner.py", "worker/supervision.py",
                                  "client/agent.py"])
def test_the_worker_and_the_agent_do_not_write_the_rule_or_layout_again(path: str) -> None:
    text = (ROOT / path).read_text()
    for written_once in ('f"exited with code', 'f"killed by', "valid_signals", '".sweepd"',
                         '"metrics.jsonl"', '"output.log"', '"config.json"', "metrics line(s)"):
        assert written_once not in text, f"{path} writes {written_once} again: use common"
