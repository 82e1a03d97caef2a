"""`run.config.update(...)` as in W&B (issue #15): new keys are added, a sweep parameter keeps
the sweep's value (with a warning), and changing an added key needs allow_val_change."""

from __future__ import annotations

import argparse

import pytest
from sweepd.client.run import Config


def test_update_adds_keys_and_keeps_sweep_parameters(capsys: pytest.CaptureFixture[str]
                                                     ) -> None:
    config = Config({"lr": 0.1, "opt": {"name": "adam"}})
    config.update({"epochs": 10, "lr": 0.1})  # the same value: silent
    config.update(argparse.Namespace(batch=32), seed=1)
    config.note = "x"
    config["other"] = 2
    assert dict(config) == {"lr": 0.1, "opt": {"name": "adam"}, "epochs": 10, "batch": 32,
                            "seed": 1, "note": "x", "other": 2}
    assert capsys.readouterr().err == ""
    config.update({"lr": 0.5})
    assert config.lr == 0.1
    assert "run.config.lr is a sweep parameter (value 0.1); the update to 0.5 is ignored" in (
        capsys.readouterr().err)


def test_changing_an_added_key_needs_allow_val_change() -> None:
    config = Config({"lr": 0.1})
    config.update({"epochs": 10})
    with pytest.raises(ValueError, match="allow_val_change=True"):
        config.update({"epochs": 20})
    config.update({"epochs": 20}, allow_val_change=True)
    assert config.epochs == 20
    with pytest.raises(TypeError, match="takes a dict"):
        config.update(42)  # type: ignore[arg-type]
