"""A parameter value that looks like a macro reaches the program literally, in argv and in
run.config; the command template's own macros are still resolved (issue #11 item 17)."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from .harness import Cluster

pytestmark = pytest.mark.e2e

TRAIN = textwrap.dedent('''
    import json, os, sys
    from sweepd.client import run

    seen = {"argv": sys.argv[1:], "config": dict(run.config),
            "file": json.load(open(os.environ["SWEEPD_CONFIG_FILE"]))}
    with open(os.path.join(os.environ["SWEEPD_RUN_DIR"], "seen.json"), "w") as f:
        json.dump(seen, f)
''')


def test_parameter_value_envvar_is_not_expanded(cluster: Cluster, tmp_path: Path) -> None:
    workdir = tmp_path / "work"
    workdir.mkdir()
    (workdir / "train.py").write_text(TRAIN)
    config = tmp_path / "sweep.yaml"
    config.write_text(textwrap.dedent('''
        program: train.py
        method: grid
        command: ["${env}", "${interpreter}", "${program}", "--home=${envvar:HOME}", "${args}"]
        parameters:
          v: {value: "${envvar:HOME}"}
          w: {value: "${interpreter}"}
    '''))
    cluster.start_coordinator()
    sweep_id = cluster.create(config)
    worker = cluster.start_worker("--sweep", sweep_id, "--count", "1", workdir=workdir,
                                  env={"HOME": "/home/sweepd-test"})
    assert worker.wait() == 0, worker.output()
    [run] = cluster.runs(sweep_id)
    assert run["state"] == "FINISHED", run
    [seen_file] = (workdir / ".sweepd" / "runs").glob("*/seen.json")
    seen = json.loads(seen_file.read_text())
    # The template's macro is resolved; the values are exactly what the sweep says.
    assert seen["argv"] == ["--home=/home/sweepd-test", "--v=${envvar:HOME}",
                            "--w=${interpreter}"], seen
    assert seen["config"] == {"v": "${envvar:HOME}", "w": "${interpreter}"}, seen
    assert seen["file"] == seen["config"]
    # And the argv the coordinator keeps for the run says the same.
    assert run["argv"][-3:] == seen["argv"], run["argv"]
