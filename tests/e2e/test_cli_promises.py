"""The small promises of issue #15, through the real CLI: `sweep create -`, `--version`,
`sweep show SWEEP_ID RUN_ID` (as the README writes it), `sweep logs --format json`, the hint
that names `--count`, and an example at the end of every command's --help."""

from __future__ import annotations

import json
import re
import subprocess
import textwrap
from pathlib import Path

import pytest

from .harness import DEFAULT_TIMEOUT_S, Cluster, command

pytestmark = pytest.mark.e2e

CONFIG = ("program: train.py\nmethod: grid\nmetric: {name: score, goal: maximize}\n"
          "parameters:\n  a: {values: [1, 2]}\n")


def _finished_sweep(cluster: Cluster, tmp_path: Path) -> str:
    workdir = tmp_path / "work"
    workdir.mkdir()
    (workdir / "train.py").write_text(textwrap.dedent("""
        from sweepd.client import run
        print("first line")
        print("second line \\u00e9 \\x1b[31m")
        run.log({"score": run.config.a})
    """))
    cluster.start_coordinator()
    created = subprocess.run(
        command("sweep") + ["create", "-", "--coordinator", cluster.address], input=CONFIG,
        capture_output=True, text=True, env=cluster.env, timeout=DEFAULT_TIMEOUT_S)
    assert created.returncode == 0, created.stderr
    sweep_id = created.stdout.strip().splitlines()[0]
    assert f"worker join --coordinator {cluster.address} --sweep {sweep_id} --count 5" in (
        created.stderr)
    worker = cluster.start_worker("--sweep", sweep_id, workdir=workdir)
    assert worker.wait() == 0, worker.output()
    return sweep_id


def test_create_from_stdin_show_by_sweep_and_run_and_logs_as_json(cluster: Cluster,
                                                                  tmp_path: Path) -> None:
    sweep_id = _finished_sweep(cluster, tmp_path)
    assert cluster.sweep_json("show", sweep_id)["state"] == "FINISHED"

    # `sweep show SWEEP_ID RUN_ID`, as the README says, and with the run's number.
    by_id = cluster.sweep_json("show", sweep_id, f"{sweep_id}-2")
    by_number = cluster.sweep_json("show", sweep_id, "2")
    assert by_id["id"] == by_number["id"] == f"{sweep_id}-2"
    assert by_id["summary"]["score"] == 2
    wrong = cluster.sweep("show", sweep_id, "other-1", check=False)
    assert wrong.returncode == 2
    assert f"'other-1' is not a run of sweep {sweep_id}" in wrong.stderr

    result = cluster.sweep("logs", f"{sweep_id}-1", "--format", "json")
    docs = [json.loads(line) for line in result.stdout.splitlines()]
    assert {"run_id": f"{sweep_id}-1", "line": "first line"} in docs
    assert {"run_id": f"{sweep_id}-1", "line": "second line \u00e9 \x1b[31m"} in docs


def test_version_on_every_command(cluster: Cluster) -> None:
    for name in ("sweep", "coordinator"):
        result = subprocess.run(command(name) + ["--version"], capture_output=True, text=True,
                                timeout=DEFAULT_TIMEOUT_S)
        assert result.returncode == 0, result.stderr
        assert re.fullmatch(rf"{name}, version \d+\.\d+\.\d+\S*\n", result.stdout)


def test_every_help_ends_with_an_example() -> None:
    from click.testing import CliRunner
    from sweepd.client.cli import main as sweep_main
    from sweepd.coordinator.cli import main as coordinator_main

    runner = CliRunner()
    for group, prog in ((sweep_main, "sweep"), (coordinator_main, "coordinator")):
        for name in group.commands:
            out = runner.invoke(group, [name, "--help"], prog_name=prog)
            assert out.exit_code == 0, out.output
            tail = out.output.rstrip().split("\n\n")[-1].splitlines()
            assert tail[0].strip().startswith("Example"), (name, out.output)
            assert all(line.strip().startswith(("sweep ", "coordinator ", "cat "))
                       for line in tail[1:]), (name, tail)
