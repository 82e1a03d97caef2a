"""Issue #13, bayes under concurrency: several points from one model fit (``suggest_batch``),
and the dispatcher that hands them to the takers waiting, in order, without polling."""

from __future__ import annotations

import asyncio
import math
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sweepd.coordinator import search
from sweepd.coordinator.config.model import MetricSpec, Parameter, SweepConfig
from sweepd.coordinator.dispatcher import Dispatcher, Hello
from sweepd.coordinator.dispatcher import suggestions as suggestions_module
from sweepd.coordinator.domain import MetricRecord, RunState
from sweepd.coordinator.search import bayes, gp
from sweepd.coordinator.search.base import Suggestion, Trial
from sweepd.coordinator.store import Store

X = Parameter(("x",), "uniform", min=-2.0, max=2.0)
LR = Parameter(("lr",), "log_uniform_values", min=1e-4, max=1e-1)
N = Parameter(("n",), "int_uniform", min=1, max=12)
C = Parameter(("c",), "categorical", values=("a", "b", "c"))
METRIC = MetricSpec(name="loss", goal="minimize")


def _config(*params: Parameter, method: str = "bayes") -> SweepConfig:
    return SweepConfig(method=method, parameters=params, metric=METRIC)


def _loss(p: Any) -> float:
    return ((p[("x",)] - 0.5) ** 2 + (math.log10(p.get(("lr",), 0.01)) + 2) ** 2
            + abs(p[("n",)] - 4) / 4 + {"a": 0.3, "b": 0.0, "c": 0.6}[p[("c",)]])


def _history(config: SweepConfig, n: int, pending: int = 0, seed: int = 0) -> list[Trial]:
    rng = np.random.default_rng(seed)
    trials: list[Trial] = []
    for i in range(n + pending):
        point = search.random.suggest(config, trials, rng).params
        if i < n:
            trials.append(Trial(params=point, state="finished", value=_loss(point)))
        else:
            trials.append(Trial(params=point, state="pending"))
    return trials


MIXED = _config(X, LR, N, C)


def _key(s: Suggestion) -> tuple[Any, ...]:
    return tuple(sorted(s.params.items()))


@pytest.mark.parametrize("n", [0, 3, 30, 200])
def test_k_points_distinct_in_their_support_and_unlike_every_run(n: int) -> None:
    trials = _history(MIXED, n, pending=2)
    batch = search.suggest_batch(MIXED, trials, np.random.default_rng(1), 8)
    assert len(batch.suggestions) == 8
    keys = {_key(s) for s in batch.suggestions}
    assert len(keys) == 8
    assert not keys & {tuple(sorted(t.params.items())) for t in trials}
    for s in batch.suggestions:
        n_value = s.params[("n",)]
        assert isinstance(n_value, int) and 1 <= n_value <= 12
        assert s.params[("c",)] in ("a", "b", "c")
        assert -2.0 <= s.params[("x",)] <= 2.0
        assert 1e-4 <= s.params[("lr",)] <= 1e-1
    assert (batch.warm is None) == (n < bayes.n_init(MIXED))


@pytest.mark.parametrize("n", [0, 3, 30, 200])
def test_a_batch_of_one_is_suggest(n: int) -> None:
    trials = _history(MIXED, n, pending=1)
    alone = search.suggest(MIXED, trials, np.random.default_rng(7))
    batch = search.suggest_batch(MIXED, trials, np.random.default_rng(7), 1)
    assert batch.suggestions == (alone,)


def test_deterministic_for_a_seed_and_a_warm_start() -> None:
    trials = _history(MIXED, 40)
    first = search.suggest_batch(MIXED, trials, np.random.default_rng(3), 6)
    again = search.suggest_batch(MIXED, trials, np.random.default_rng(3), 6)
    assert first.suggestions == again.suggestions
    warm = search.suggest_batch(MIXED, trials, np.random.default_rng(3), 6, first.warm)
    rerun = search.suggest_batch(MIXED, trials, np.random.default_rng(3), 6, first.warm)
    assert warm.suggestions == rerun.suggestions
    assert len({_key(s) for s in warm.suggestions}) == 6


def test_points_stream_to_on_point_in_order() -> None:
    seen: list[Suggestion] = []
    batch = search.suggest_batch(MIXED, _history(MIXED, 30), np.random.default_rng(0), 5,
                                 on_point=seen.append)
    assert tuple(seen) == batch.suggestions


def test_a_batch_ends_rather_than_repeat_in_a_small_discrete_space() -> None:
    config = _config(Parameter(("n",), "int_uniform", min=1, max=3), C)  # 9 points
    trials = [Trial(params={("n",): n, ("c",): c}, state="finished", value=float(n))
              for n, c in [(1, "a"), (2, "b"), (3, "c"), (1, "b"), (2, "c"), (3, "a")]]
    batch = search.suggest_batch(config, trials, np.random.default_rng(0), 8)
    keys = [_key(s) for s in batch.suggestions]
    assert len(keys) == len(set(keys)) == 3  # exactly the three unseen points, each once
    assert not set(keys) & {tuple(sorted(t.params.items())) for t in trials}


@pytest.mark.parametrize("method", ["random", "sobol"])
def test_other_methods_give_distinct_points(method: str) -> None:
    config = _config(X, N, C, method=method)
    batch = search.suggest_batch(config, _history(config, 10), np.random.default_rng(0), 6)
    assert len({_key(s) for s in batch.suggestions}) == 6


def test_a_failing_method_falls_back_to_random_for_the_points_left(
        monkeypatch: pytest.MonkeyPatch) -> None:
    def half_then_fail(config: SweepConfig, trials: Any, rng: Any, k: int, warm: Any,
                       on_point: Any) -> Any:
        on_point(Suggestion(params={("x",): 0.0, ("lr",): 0.01, ("n",): 3, ("c",): "a"}))
        raise RuntimeError("boom")

    monkeypatch.setattr(bayes, "suggest_batch", half_then_fail)
    batch = search.suggest_batch(MIXED, _history(MIXED, 30), np.random.default_rng(0), 4)
    assert len({_key(s) for s in batch.suggestions}) == 4
    assert not batch.suggestions[0].notice
    assert all("RuntimeError: boom" in s.notice for s in batch.suggestions[1:])


def test_k_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="k: must be at least 1"):
        search.suggest_batch(MIXED, [], np.random.default_rng(0), 0)


def test_the_rank_one_fantasy_update_equals_conditioning() -> None:
    rng = np.random.default_rng(0)
    x = rng.random((30, 3))
    y = np.sin(3 * x[:, 0]) + x[:, 1] ** 2
    post = gp.fit(x, (y - y.mean()) / y.std())
    cand = rng.random((50, 3))
    mean, var, v = post.predict_factors(cand)
    star = 7  # a candidate observed as a fantasy, as bayes._more_points does
    s_star = var[star] + bayes.FANTASY_NOISE
    k_n = gp.matern52(cand, cand[star : star + 1], post.params)[:, 0] - v.T @ v[:, star]
    lie = mean[star] + 0.3
    full_mean, full_std = post.condition_on(cand[star : star + 1], np.array([lie]),
                                            noise_var=bayes.FANTASY_NOISE).predict(cand)
    np.testing.assert_allclose(mean + k_n * (lie - mean[star]) / s_star, full_mean, atol=1e-6)
    new_var = np.maximum(var - k_n**2 / s_star, 1e-12)
    np.testing.assert_allclose(np.sqrt(new_var), full_std, atol=1e-5)


def test_a_warm_start_reaches_the_same_fit() -> None:
    rng = np.random.default_rng(1)
    x = rng.random((40, 4))
    y = np.cos(4 * x[:, 0]) + 0.5 * x[:, 2]
    y = (y - y.mean()) / y.std()
    cold = gp.fit_hyperparameters(x, y)
    warm = gp.fit_hyperparameters(x[:-1], y[:-1])  # the fit before one more run arrived
    rewarmed = gp.fit_hyperparameters(x, y, start=warm)
    np.testing.assert_allclose(np.log(rewarmed.lengthscales), np.log(cold.lengthscales),
                               atol=0.1)
    assert math.isclose(math.log(rewarmed.noise_var), math.log(cold.noise_var), abs_tol=0.2)


# -- the dispatcher: takers in line, one fit for all of them ---------------------------------

SWEEP = """
method: bayes
program: train.py
metric: {name: loss, goal: minimize}
parameters:
  x: {min: -2.0, max: 2.0}
  lr: {distribution: log_uniform_values, min: 0.0001, max: 0.1}
  n: {distribution: int_uniform, min: 1, max: 12}
  c: {values: [a, b, c]}
"""


class _Gate:
    """Wraps the dispatcher's ``suggest_batch``: counts calls, records each k, and can hold a
    fit until released (to change the sweep while it runs)."""

    def __init__(self) -> None:
        self.ks: list[int] = []
        self.open = threading.Event()
        self.open.set()
        self.entered = threading.Event()

    def __call__(self, *args: Any) -> search.Batch:
        self.ks.append(args[3])
        self.entered.set()
        assert self.open.wait(30)
        return search.suggest_batch(*args)


@pytest.fixture
def gate(monkeypatch: pytest.MonkeyPatch) -> Iterator[_Gate]:
    g = _Gate()
    monkeypatch.setattr(suggestions_module, "suggest_batch", g)
    yield g
    g.open.set()


def _finish(d: Dispatcher, run_id: str, attempt: int, client: str, value: float) -> None:
    d.report_from_client(run_id, attempt, [MetricRecord(0, 0, 0.0, {"loss": value})], client)
    d.finish_from_client(run_id, attempt, RunState.FINISHED, 0, "", client)


async def _seeded(tmp_path: Path, executor: ThreadPoolExecutor, runs: int) -> tuple[
        Dispatcher, str]:
    d = Dispatcher(Store(tmp_path / "db.sqlite3"), executor=executor)
    sweep_id = d.create_sweep(SWEEP).sweep.id
    for i in range(runs):
        run, _ = await d.suggest_for_client(sweep_id, "seed")
        assert run is not None
        _finish(d, run.id, run.attempt, "seed", float(i % 5))
    return d, sweep_id


def test_clients_waiting_together_share_one_fit_first_come_first_served(
        tmp_path: Path, gate: _Gate) -> None:
    async def main() -> None:
        with ThreadPoolExecutor(max_workers=1) as executor:
            d, sweep_id = await _seeded(tmp_path, executor, 10)
            gate.ks.clear()
            answers = await asyncio.gather(
                *(d.suggest_for_client(sweep_id, f"c{i}") for i in range(6)))
            runs = [run for run, _ in answers]
            assert all(run is not None for run in runs)
            assert gate.ks == [6]  # one fit for the six clients waiting together
            numbers = [run.number for run in runs if run is not None]
            assert numbers == sorted(numbers)  # in the order they asked
            points = [tuple(sorted(run.point.items())) for run in runs if run is not None]
            assert len(set(points)) == 6

    asyncio.run(main())


def test_a_fit_is_used_though_a_run_finished_while_it_ran(tmp_path: Path, gate: _Gate) -> None:
    async def main() -> None:
        with ThreadPoolExecutor(max_workers=1) as executor:
            d, sweep_id = await _seeded(tmp_path, executor, 10)
            held, _ = await d.suggest_for_client(sweep_id, "other")
            assert held is not None
            gate.ks.clear()
            gate.open.clear()
            gate.entered.clear()
            waiter = asyncio.ensure_future(d.suggest_for_client(sweep_id, "waiter"))
            await asyncio.get_running_loop().run_in_executor(None, gate.entered.wait, 30)
            _finish(d, held.id, held.attempt, "other", 0.5)  # the sweep changes meanwhile
            gate.open.set()
            run, _ = await asyncio.wait_for(waiter, 30)
            assert run is not None
            assert len(gate.ks) == 1  # the fit was used, not thrown away and redone
            assert run.point != held.point

    asyncio.run(main())


def test_a_client_that_gives_up_leaves_its_point_to_the_next(tmp_path: Path,
                                                             gate: _Gate) -> None:
    async def main() -> None:
        with ThreadPoolExecutor(max_workers=1) as executor:
            d, sweep_id = await _seeded(tmp_path, executor, 10)
            gate.open.clear()
            gate.entered.clear()
            quitter = asyncio.ensure_future(d.suggest_for_client(sweep_id, "quitter"))
            await asyncio.get_running_loop().run_in_executor(None, gate.entered.wait, 30)
            quitter.cancel()
            gate.open.set()
            with pytest.raises(asyncio.CancelledError):
                await quitter
            view = d.get_sweep(sweep_id)
            await asyncio.sleep(0)
            while view.preparing:
                await asyncio.sleep(0.01)
            run, _ = await d.suggest_for_client(sweep_id, "next")
            assert run is not None
            assert not view.in_hand and not view.waiters
            assert view.sweep.run_count == 11  # the quitter took no run

    asyncio.run(main())


def test_free_worker_slots_share_one_fit(tmp_path: Path, gate: _Gate) -> None:
    async def main() -> None:
        with ThreadPoolExecutor(max_workers=1) as executor:
            d, sweep_id = await _seeded(tmp_path, executor, 10)
            queue = d.get_sweep(sweep_id).sweep.queue
            gate.ks.clear()
            sessions = [d.attach_worker(Hello(
                worker_id=f"w{i}", incarnation="i1", host="h", slots=1, labels={},
                held_runs={}, sweep_id="", heartbeat_interval_s=2.0, max_runs=0,
                runs_assigned=0, queues=[queue]))[0] for i in range(4)]
            for _ in range(3000):  # the fit runs in the executor: up to 30 s
                if all(s.active_runs for s in sessions):
                    break
                await asyncio.sleep(0.01)
            assert all(len(s.active_runs) == 1 for s in sessions)
            assert gate.ks == [4]  # the four slots free at once: one fit of four points
            runs = [d.get_run(next(iter(s.active_runs))) for s in sessions]
            assert len({tuple(sorted(r.point.items())) for r in runs}) == 4

    asyncio.run(main())
