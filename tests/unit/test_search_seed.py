"""Issue #12, part 3: ``seed:``, sweepd's own top-level key, makes search reproducible.

Two sweeps with the same config, the same seed and the same told history suggest the same
points; without a seed each sweep is seeded by its own id.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sweepd.coordinator.config import ConfigError, parse_config
from sweepd.coordinator.dispatcher import Dispatcher, Hello
from sweepd.coordinator.domain import AssignOrder
from sweepd.coordinator.search import rng_for, suggest
from sweepd.coordinator.search.base import Trial
from sweepd.coordinator.store import Store

BAYES = """
method: bayes
metric: {name: loss, goal: minimize}
program: train.py
parameters:
  x: {min: -5.0, max: 5.0}
  y: {min: -5, max: 5}
  act: {values: [relu, gelu, tanh]}
"""


def _loss(params: dict) -> float:
    return (params[("x",)] - 0.3) ** 2 + (params[("y",)] - 2) ** 2 + len(params[("act",)])


def _sweep(text: str, sweep_id: str, runs: int) -> list[dict]:
    """What a sweep suggests over ``runs`` sequential runs told their loss, with the generator
    the coordinator makes for each call."""
    config = parse_config(text)
    trials: list[Trial] = []
    points = []
    for n in range(runs):
        s = suggest(config, trials, rng_for(config, sweep_id, n))
        assert s is not None
        points.append(dict(s.params))
        trials.append(Trial(params=dict(s.params), state="finished", value=_loss(s.params)))
    return points


def test_same_config_seed_and_history_give_the_same_suggestions() -> None:
    # 12 runs: past the initial design, so the model's suggestions are compared too.
    seeded = BAYES + "seed: 42\n"
    assert _sweep(seeded, "sweep-a", 12) == _sweep(seeded, "sweep-b", 12)
    assert _sweep(seeded, "sweep-a", 12) != _sweep(BAYES + "seed: 43\n", "sweep-a", 12)


def test_without_a_seed_each_sweep_differs() -> None:
    assert _sweep(BAYES, "sweep-a", 3) != _sweep(BAYES, "sweep-b", 3)


def test_two_coordinator_sweeps_with_one_seed_assign_the_same_point(tmp_path: Path) -> None:
    d = Dispatcher(Store(tmp_path / "db.sqlite3"))
    text = "method: random\nprogram: t.py\nseed: 7\nparameters:\n  lr: {min: 0.0, max: 1.0}\n"
    a = d.create_sweep(text)
    b = d.create_sweep(text)
    orders: list[AssignOrder] = []
    for worker in ("w1", "w2"):  # one slot each: fair share gives each sweep one run
        session, _ = d.attach_worker(Hello(
            worker_id=worker, incarnation="i1", host="h", slots=1, labels={}, held_runs={},
            sweep_id="", heartbeat_interval_s=1.0, max_runs=0, runs_assigned=0,
        ))
        while not session.outbox.empty():
            order = session.outbox.get_nowait()
            if isinstance(order, AssignOrder):
                orders.append(order)
    by_sweep = {o.sweep_id: o.params for o in orders}
    assert set(by_sweep) == {a.sweep.id, b.sweep.id}
    assert by_sweep[a.sweep.id] == by_sweep[b.sweep.id]
    assert a.config.seed == 7


@pytest.mark.parametrize("bad", ["-1", "1.5", "true", "'42'", str(2**63)])
def test_a_bad_seed_names_the_key_and_the_fix(bad: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_config(BAYES + f"seed: {bad}\n")
    text = str(err.value)
    assert "seed" in text and "whole number" in text and "seed: 42" in text


def test_seed_makes_the_generator_independent_of_the_sweep_id() -> None:
    config = parse_config(BAYES + "seed: 5\n")
    a = rng_for(config, "one", 3).random(4)
    b = rng_for(config, "two", 3).random(4)
    assert np.array_equal(a, b)
    assert not np.array_equal(a, rng_for(config, "one", 4).random(4))
