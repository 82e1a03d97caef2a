"""A run's command and what its worker started are two fields, shown apart; a state dir a
version-1 coordinator wrote is upgraded when a new one starts on it, and its runs go on
(issue #17)."""

from __future__ import annotations

import json
import shlex
import textwrap
from pathlib import Path

import pytest

from ..unit.v1_database import write_v1_database
from .harness import Cluster

pytestmark = pytest.mark.e2e

TRAIN = textwrap.dedent('''
    import json, os, sys
    with open(os.path.join(os.environ["SWEEPD_RUN_DIR"], "seen.json"), "w") as f:
        json.dump(sys.argv[1:], f)
''')
CONFIG = textwrap.dedent('''\
    program: train.py
    method: grid
    command: ["${env}", "${interpreter}", "${program}", "--home=${envvar:HOME}", "${args}"]
    parameters:
      a: {values: [1, 2, 3]}
      tag: {value: "${envvar:HOME}"}
''')
SWEEP = "v1sweep0"
HOME = "/home/sweepd-test"


def command(a: int) -> list[str]:
    return ["${env}", "${interpreter}", "train.py", "--home=${envvar:HOME}", f"--a={a}",
            "--tag=${envvar:HOME}"]


def test_an_upgraded_state_dir_shows_command_and_argv_and_runs_on(cluster: Cluster,
                                                                  tmp_path: Path) -> None:
    cluster.state_dir.mkdir(mode=0o700)
    old_started = ["/usr/bin/env", "/old/venv/bin/python", "train.py", "--home=/home/old",
                   "--a=1", "--tag=${envvar:HOME}"]
    point = {("a",): 1, ("tag",): "${envvar:HOME}"}
    write_v1_database(cluster.state_dir / "sweepd.sqlite3", sweeps=[
        {"id": SWEEP, "config_text": CONFIG, "run_count": 2},
    ], runs=[
        {"sweep_id": SWEEP, "number": 1, "point": point, "state": "FINISHED", "attempt": 1,
         "worker_id": "gone", "argv": old_started, "started_at": 3.0, "ended_at": 4.0,
         "exit_code": 0},
        # Lost and waiting for a retry; version 1 kept the lost attempt's argv in argv_json.
        {"sweep_id": SWEEP, "number": 2, "point": {**point, ("a",): 2}, "attempt": 1,
         "argv": old_started},
    ])
    cluster.start_coordinator()

    first = cluster.sweep_json("show", SWEEP, "1")
    assert (first["command"], first["argv"]) == (command(1), old_started)
    assert first["params"] == {"a": 1, "tag": "${envvar:HOME}"}
    waiting = cluster.sweep_json("show", SWEEP, "2")
    assert (waiting["state"], waiting["command"], waiting["argv"]) == ("PENDING", command(2), [])
    text = cluster.sweep("show", SWEEP, "2").stdout
    assert "command  '${env}' '${interpreter}' train.py" in text and "started" not in text

    workdir = tmp_path / "work"
    workdir.mkdir()
    (workdir / "train.py").write_text(TRAIN)
    worker = cluster.start_worker("--sweep", SWEEP, workdir=workdir, env={"HOME": HOME})
    assert worker.wait() == 0, worker.output()

    runs = {r["number"]: r for r in cluster.runs(SWEEP)}
    assert sorted(runs) == [1, 2, 3]  # the waiting run retried, and a new one created
    for n in (2, 3):
        run = runs[n]
        assert run["state"] == "FINISHED", run
        assert run["params"] == {"a": n, "tag": "${envvar:HOME}"}
        assert run["command"] == command(n)
        # The worker resolved the template's macros (its own Python for ${interpreter}), and
        # only those: the value stays data.
        argv = run["argv"]
        assert argv[0] == "/usr/bin/env" and Path(argv[1]).name.startswith("python"), argv
        assert argv[2:] == ["train.py", f"--home={HOME}", f"--a={n}", "--tag=${envvar:HOME}"]
        seen = json.loads((workdir / ".sweepd" / "runs" / f"{run['id']}.{run['attempt']}"
                           / "seen.json").read_text())
        assert seen == argv[3:]
    assert runs[2]["attempt"] == 2
    text = cluster.sweep("show", SWEEP, "2").stdout
    assert "command  '${env}' '${interpreter}' train.py '--home=${envvar:HOME}' --a=2" in text
    assert f"started  {shlex.join(runs[2]['argv'])}\n" in text
