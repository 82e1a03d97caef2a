"""The environment a real worker gives a run on GPUs: its own ids, counted in nvidia-smi's
order (CUDA_DEVICE_ORDER=PCI_BUS_ID), so that the ids in --gpus mean the same cards to CUDA."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from .harness import Cluster

pytestmark = pytest.mark.e2e

ENV = textwrap.dedent('''
    import json, os
    with open(os.path.join(os.environ["SWEEPD_RUN_DIR"], "env.json"), "w") as f:
        json.dump({k: os.environ.get(k) for k in ("CUDA_VISIBLE_DEVICES", "CUDA_DEVICE_ORDER")}, f)
''')


def test_a_run_on_gpus_counts_them_as_nvidia_smi_does(cluster: Cluster, tmp_path: Path) -> None:
    cluster.start_coordinator()
    workdir = tmp_path / "work"
    workdir.mkdir()
    (workdir / "env.py").write_text(ENV)
    config = tmp_path / "s.yaml"
    config.write_text("program: env.py\nmethod: grid\nparameters:\n  a: {values: [1]}\n")
    sweep_id = cluster.create(config)
    cluster.env.pop("CUDA_DEVICE_ORDER", None)
    worker = cluster.start_worker("--sweep", sweep_id, "--gpus", "2,3", "--gpus-per-run", "2",
                                  "--count", "1", workdir=workdir)
    assert worker.wait() == 0, worker.output()
    (env_file,) = workdir.glob(".sweepd/runs/*/env.json")
    assert json.loads(env_file.read_text()) == {
        "CUDA_VISIBLE_DEVICES": "2,3", "CUDA_DEVICE_ORDER": "PCI_BUS_ID"}
