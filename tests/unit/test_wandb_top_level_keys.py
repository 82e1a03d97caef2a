"""Every top-level key W&B knows is accepted (issue #15), a key sweepd does not act on with a
notice naming it.

W&B's published sweep-config JSON schema (wandb/sweeps, src/sweeps/config/schema.json) lists its
top-level `properties` with `additionalProperties: false`; the names below are those facts,
written out here (the schema itself is not copied). Two more keys reach a sweep file through
W&B's own tools: `launch` (read and removed by `wandb launch-sweep`) and `settings` (written by
`wandb sweep --settings`).
"""

from __future__ import annotations

from typing import Any

import pytest
from sweepd.coordinator.config import parse_config
from sweepd.coordinator.config.schema import TOP_LEVEL_KEYS

WANDB_SCHEMA_TOP_LEVEL = (
    "apiVersion", "kind", "controller", "description", "program", "job", "image_uri",
    "entity", "project", "method", "command", "name", "run_cap", "metric", "metrics",
    "scheduler", "early_terminate", "parameters",
)
WANDB_TOOL_KEYS = ("launch", "settings")
# A value of the kind each key takes in W&B's schema.
SAMPLE: dict[str, Any] = {
    "apiVersion": "v1", "kind": "sweep", "controller": {"type": "cloud"},
    "description": "d", "program": "train.py", "job": "entity/project/job:v0",
    "image_uri": "registry/image:tag", "entity": "team", "project": "proj",
    "command": ["${env}", "${interpreter}", "${program}", "${args}"], "name": "n",
    "run_cap": 3, "metric": {"name": "loss", "goal": "minimize"},
    "metrics": [{"name": "loss", "goal": "minimize"}, {"name": "acc", "goal": "maximize"}],
    "scheduler": {"engine": "wandb"},
    "early_terminate": {"type": "hyperband", "min_iter": 3},
    "launch": {"queue": "default"}, "settings": {"console": "off"},
}
BASE = {"method": "random", "program": "train.py",
        "parameters": {"lr": {"min": 0.001, "max": 0.1}}}
# What sweepd reads; every other key is kept with a notice.
USED = {"method", "parameters", "program", "command", "metric", "early_terminate", "run_cap",
        "name", "description"}


def test_sweepd_knows_every_top_level_key_wandb_knows() -> None:
    missing = set(WANDB_SCHEMA_TOP_LEVEL + WANDB_TOOL_KEYS) - set(TOP_LEVEL_KEYS)
    assert missing == set()


@pytest.mark.parametrize("key", [k for k in WANDB_SCHEMA_TOP_LEVEL + WANDB_TOOL_KEYS
                                 if k not in ("method", "parameters")])
def test_each_wandb_key_is_accepted(key: str) -> None:
    extra = {"metric": SAMPLE["metric"]} if key == "early_terminate" else {}
    config = parse_config({**BASE, **extra, key: SAMPLE[key]})
    if key not in USED:
        assert any(n.startswith(f"{key}:") or f" {key}" in n or f"{key}," in n
                   for n in config.notices), config.notices
