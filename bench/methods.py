"""Adapters shared by the benchmarks: one ``ask(n_done) -> params`` / ``tell`` loop per method.

Every method sees the same W&B ``parameters`` mapping. sweepd's methods go through the pure
``suggest(config, trials, rng)`` with a ``SweepConfig`` from sweepd's own config parser; W&B's
engine through ``sweeps.next_run``; Optuna through ``study.ask(distributions)``/``tell``.
"""

from __future__ import annotations

import os

# One BLAS/OpenMP thread per process: the benchmarks parallelise across processes, and
# oversubscribed BLAS threads distort every timing on a 2-core machine.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import logging  # noqa: E402
import math  # noqa: E402
import warnings  # noqa: E402
from collections.abc import Mapping  # noqa: E402
from typing import Any, Protocol  # noqa: E402

import numpy as np  # noqa: E402

SWEEPD_METHODS = ("bayes", "sobol", "tpe")
COMPETITORS = ("wandb_bayes", "optuna_tpe", "optuna_gp", "random")


class Optimizer(Protocol):
    def ask(self) -> dict[str, Any]: ...

    def tell(self, params: Mapping[str, Any], value: float) -> None: ...


def sweep_config(method: str, parameters: Mapping[str, Any], seed: int = 0) -> dict[str, Any]:
    return {
        "name": f"bench-{seed}",  # one sweep per seed (sobol's scramble is per sweep)
        "method": method,
        "metric": {"name": "loss", "goal": "minimize"},
        "parameters": dict(parameters),
    }


def sweepd_config(method: str, parameters: Mapping[str, Any], seed: int) -> dict[str, Any]:
    """The sweep as a sweepd user would write it: with sweepd's own ``seed`` key."""
    return {**sweep_config(method, parameters, seed), "seed": seed}


class SweepdOptimizer:
    """sweepd's pure ``suggest``; the whole history is passed on every call (no state), with
    the generator the coordinator would make for the call (the config's ``seed`` and the
    number of runs so far)."""

    def __init__(self, method: str, parameters: Mapping[str, Any], seed: int) -> None:
        from sweepd.coordinator.config import parse_config
        from sweepd.coordinator.search import METHODS, rng_for

        self.config = parse_config(sweepd_config(method, parameters, seed))
        self.fn = METHODS[method]
        self.rng_for = rng_for
        self.trials: list[Any] = []

    def ask(self) -> dict[str, Any]:
        rng = self.rng_for(self.config, "bench", len(self.trials))
        s = self.fn(self.config, self.trials, rng)
        assert s is not None
        return {".".join(path): v for path, v in s.params.items()}

    def tell(self, params: Mapping[str, Any], value: float) -> None:
        from sweepd.coordinator.search.base import Trial

        self.trials.append(
            Trial(
                params={tuple(k.split(".")): v for k, v in params.items()},
                state="finished",
                value=value,
                best_value=value,
            )
        )


class WandbOptimizer:
    """W&B's engine (``sweeps.next_run``), method bayes, given every run each call."""

    def __init__(self, parameters: Mapping[str, Any], seed: int) -> None:
        import sweeps

        warnings.filterwarnings("ignore")
        logging.getLogger("sweeps").setLevel(logging.ERROR)
        self.sweeps = sweeps
        self.config = sweep_config("bayes", parameters)
        self.runs: list[Any] = []
        # The engine draws from numpy's global generator.
        np.random.seed(seed)

    def ask(self) -> dict[str, Any]:
        run = self.sweeps.next_run(self.config, self.runs, validate=False)
        self._pending = run
        return {k: v["value"] for k, v in run.config.items()}

    def tell(self, params: Mapping[str, Any], value: float) -> None:
        from sweeps import RunState, SweepRun

        self.runs.append(
            SweepRun(
                name=f"run-{len(self.runs)}",
                state=RunState.finished,
                config={k: {"value": v} for k, v in params.items()},
                summary_metrics={"loss": value},
            )
        )


def optuna_distributions(parameters: Mapping[str, Any]) -> dict[str, Any]:
    import optuna.distributions as od

    out: dict[str, Any] = {}
    for name, spec in parameters.items():
        if "values" in spec:
            out[name] = od.CategoricalDistribution(list(spec["values"]))
        elif spec.get("distribution") == "int_uniform":
            out[name] = od.IntDistribution(int(spec["min"]), int(spec["max"]))
        elif spec.get("distribution") == "log_uniform_values":
            out[name] = od.FloatDistribution(float(spec["min"]), float(spec["max"]), log=True)
        elif spec.get("distribution", "uniform") == "uniform":
            out[name] = od.FloatDistribution(float(spec["min"]), float(spec["max"]))
        else:
            raise ValueError(f"no Optuna equivalent for {name}: {spec}")
    return out


class OptunaOptimizer:
    """Optuna's TPE or GP sampler with their default settings (ask/tell)."""

    def __init__(self, sampler: str, parameters: Mapping[str, Any], seed: int) -> None:
        import optuna

        optuna.logging.set_verbosity(optuna.logging.ERROR)
        warnings.filterwarnings("ignore")
        if sampler == "tpe":
            s: Any = optuna.samplers.TPESampler(seed=seed)
        else:
            s = optuna.samplers.GPSampler(seed=seed)
        self.study = optuna.create_study(sampler=s, direction="minimize")
        self.dists = optuna_distributions(parameters)
        self._trial: Any = None

    def ask(self) -> dict[str, Any]:
        self._trial = self.study.ask(self.dists)
        return dict(self._trial.params)

    def tell(self, params: Mapping[str, Any], value: float) -> None:
        self.study.tell(self._trial, value)


class RandomOptimizer:
    """Independent prior samples (W&B's ``random`` for these distributions)."""

    def __init__(self, parameters: Mapping[str, Any], seed: int) -> None:
        self.parameters = parameters
        self.rng = np.random.default_rng(seed)

    def ask(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name, spec in self.parameters.items():
            if "values" in spec:
                out[name] = spec["values"][int(self.rng.integers(len(spec["values"])))]
            elif spec.get("distribution") == "int_uniform":
                out[name] = int(self.rng.integers(spec["min"], spec["max"] + 1))
            elif spec.get("distribution") == "log_uniform_values":
                lo, hi = math.log(spec["min"]), math.log(spec["max"])
                out[name] = math.exp(self.rng.uniform(lo, hi))
            else:
                out[name] = float(self.rng.uniform(spec["min"], spec["max"]))
        return out

    def tell(self, params: Mapping[str, Any], value: float) -> None:
        pass


def make_optimizer(method: str, parameters: Mapping[str, Any], seed: int) -> Optimizer:
    if method in SWEEPD_METHODS:
        return SweepdOptimizer(method, parameters, seed)
    if method == "wandb_bayes":
        return WandbOptimizer(parameters, seed)
    if method in ("optuna_tpe", "optuna_gp"):
        return OptunaOptimizer(method.split("_", 1)[1], parameters, seed)
    if method == "random":
        return RandomOptimizer(parameters, seed)
    raise ValueError(f"unknown method {method}")
