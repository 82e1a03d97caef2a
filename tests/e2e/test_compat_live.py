"""Every accepted config of the public W&B corpus, created on a live coordinator: the first
run a worker is handed has the argv and ``run.config`` that W&B's agent would give.

The worker here is a real ``worker join`` whose ``--interpreter`` is a recorder script: the
program path and arguments it is started with are exactly the argv the worker built, and it
saves what ``run.config`` holds, then exits.
"""

from __future__ import annotations

import csv
import json
import stat
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
import yaml

from .harness import Cluster, wait_for

pytestmark = pytest.mark.e2e

CORPUS = Path(__file__).resolve().parents[1] / "data" / "wandb-configs"
ACCEPTED = [
    r["file"] for r in csv.DictReader((CORPUS / "EXPECTED.tsv").open(encoding="utf-8"),
                                       delimiter="\t")
    if r["expected"] == "accept"
]

RECORDER = textwrap.dedent(f'''\
    #!{sys.executable}
    import json, os, sys
    from sweepd.client import run
    out = os.path.join(os.environ["SWEEPD_RUN_DIR"], "seen.json")
    with open(out, "w") as f:
        json.dump({{"argv": sys.argv[1:], "config": dict(run.config.as_dict())}}, f)
''')


def wandb_order(value: Any) -> Any:
    """W&B flattens nested parameters, sorts the flat names and re-nests them: every level of
    a nested value comes out sorted by name."""
    if isinstance(value, dict):
        return {k: wandb_order(v) for k, v in sorted(value.items())}
    return value


def wandb_args(params: dict[str, Any]) -> list[str]:
    """W&B's ``${args}``: ``--name=str(value)`` per top-level parameter, sorted by name."""
    return [f"--{k}={v}" for k, v in wandb_order(params).items()]


def test_first_run_of_every_accepted_config(cluster: Cluster, tmp_path: Path) -> None:
    recorder = tmp_path / "recorder"
    recorder.write_text(RECORDER)
    recorder.chmod(recorder.stat().st_mode | stat.S_IEXEC)
    cluster.start_coordinator()
    workdir = tmp_path / "work"
    checked = 0
    for name in ACCEPTED:
        config_text = (CORPUS / name).read_text(encoding="utf-8")
        if "${interpreter}" not in config_text and "command" in config_text:
            continue  # commands that do not start the program through ${interpreter}
        raw = yaml.safe_load(config_text)
        if isinstance(raw, dict) and raw.get("program") is None and "command" not in raw:
            continue  # agent()/ask-tell only: never sent to a worker (issue #15)
        sweep_id = cluster.create(CORPUS / name)
        worker = cluster.start_worker("--sweep", sweep_id, "--count", "1", "--interpreter",
                                      str(recorder), workdir=workdir)
        assert worker.wait() == 0, worker.output()
        [run] = [r for r in cluster.runs(sweep_id) if r["attempt"] == 1][:1]
        seen_path = workdir / ".sweepd" / "runs" / f"{run['id']}.1" / "seen.json"
        seen = json.loads(wait_for(lambda p=seen_path: p.exists() and p.read_text(),
                                   what=f"{name}'s run"))
        assert seen["config"] == run["params"], name
        if "${args}" in config_text or "command" not in config_text:
            args = wandb_args(run["params"])
            assert seen["argv"][-len(args):] == args or set(args) <= set(seen["argv"]), name
        cluster.sweep("cancel", sweep_id, check=False)
        checked += 1
    assert checked >= 20
