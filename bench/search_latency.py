"""Search latency: time of one suggestion with n finished runs already in the sweep.

Run (from the repository root, after ``bench/README.md``'s one-time set-up)::

    bench/.venv/bin/python bench/search_latency.py
    bench/.venv/bin/python bench/search_latency.py --sizes 10,100,1000 --repeats 3

A 10-parameter mixed space (2 log-uniform, 3 uniform, 2 int, 3 categorical) with n finished
runs at random points and a synthetic loss; each method is asked for one more point several
times (``--repeats``, the median is reported), for n = 10, 100, 1000, 5000. sweepd's methods
are called through their pure ``suggest(config, trials, rng)``; W&B's engine through
``sweeps.next_run``; Optuna's samplers through ``study.ask`` on a study that already holds the
n trials. A competitor whose one call is predicted (linearly from its time at the previous n)
to exceed 60 s is skipped there; Optuna's GP, an exact GP over all n trials, is run up to
n = 1000 only (see ``MAX_N``). The process runs one BLAS thread, like the coordinator's
executor on a 2-core machine.
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import time
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np
from methods import make_optimizer, optuna_distributions

SPACE: dict[str, dict[str, Any]] = {
    "lr": {"distribution": "log_uniform_values", "min": 1e-5, "max": 1e-1},
    "weight_decay": {"distribution": "log_uniform_values", "min": 1e-7, "max": 1e-2},
    "dropout": {"distribution": "uniform", "min": 0.0, "max": 0.6},
    "momentum": {"distribution": "uniform", "min": 0.8, "max": 0.999},
    "warmup": {"distribution": "uniform", "min": 0.0, "max": 0.2},
    "layers": {"distribution": "int_uniform", "min": 1, "max": 8},
    "width": {"distribution": "int_uniform", "min": 32, "max": 1024},
    "batch_size": {"values": [16, 32, 64, 128, 256]},
    "optimizer": {"values": ["sgd", "adam", "adamw", "rmsprop"]},
    "activation": {"values": ["relu", "gelu", "tanh"]},
}
DEFAULT_METHODS = ("bayes", "sobol", "wandb_bayes", "optuna_tpe", "optuna_gp", "random")
# A call predicted to take longer than this is skipped (and reported as such). The prediction
# is linear in n from the previous size: every method here is at least linear, and up to
# n = 1000 even Optuna's exact GP grows sub-linearly (fixed costs dominate), so a cubic
# extrapolation from n = 10 (what this used to do) skipped it from n = 100 on.
SKIP_SECONDS = 60.0
# Largest n a method is run at. Optuna's GPSampler conditions an exact GP on all n trials:
# O(n²) kernel work per acquisition step plus O(n³) factorisations, ~10 s per call at n = 1000
# on 2 cores, so at n = 5000 one call would take many minutes (25× the O(n²) part alone).
MAX_N = {"optuna_gp": 1000}


def loss(p: dict[str, Any]) -> float:
    return (
        (math.log10(p["lr"]) + 3) ** 2
        + 0.3 * (math.log10(p["weight_decay"]) + 4) ** 2
        + (p["dropout"] - 0.2) ** 2
        + 0.01 * (p["layers"] - 4) ** 2
        + {"sgd": 0.3, "adam": 0.0, "adamw": -0.05, "rmsprop": 0.1}[p["optimizer"]]
    )


def history(n: int, seed: int = 0) -> list[tuple[dict[str, Any], float]]:
    """n random finished runs (prior samples) with their losses."""
    rnd = make_optimizer("random", SPACE, seed)
    out = []
    for _ in range(n):
        p = rnd.ask()
        out.append((p, loss(p)))
    return out


def prepared(method: str, hist: list[tuple[dict[str, Any], float]]) -> Any:
    """An optimiser that already holds ``hist``, built without timing its own suggestions."""
    opt: Any = make_optimizer(method, SPACE, 0)
    if method == "optuna_tpe" or method == "optuna_gp":
        import optuna

        dists = optuna_distributions(SPACE)
        opt.study.add_trials(
            [optuna.trial.create_trial(params=p, distributions=dists, value=v) for p, v in hist]
        )
    else:
        for p, v in hist:
            opt.tell(p, v)
    return opt


def time_one(method: str, opt: Any) -> float:
    """Seconds for one suggestion; the suggestion is not added to the history."""
    t0 = time.perf_counter()
    opt.ask()
    elapsed = time.perf_counter() - t0
    if method in ("optuna_tpe", "optuna_gp"):
        import optuna

        # Close the asked trial as failed: both samplers ignore failed trials, so n stays.
        opt.study.tell(opt._trial, state=optuna.trial.TrialState.FAIL)
    return elapsed


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--sizes", default="10,100,1000,5000")
    ap.add_argument("--methods", default=",".join(DEFAULT_METHODS))
    ap.add_argument("--repeats", type=int, default=7)
    args = ap.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    methods = args.methods.split(",")
    print(f"search latency: 10-parameter mixed space, median of {args.repeats} calls", flush=True)
    table: dict[tuple[str, int], float | str | None] = {}
    last: dict[str, tuple[int, float]] = {}
    for n in sizes:
        hist = history(n)
        for m in methods:
            if n > MAX_N.get(m, n):
                table[(m, n)] = f"not run (n>{MAX_N[m]})"
                print(f"  n={n:5d} {m:12s} not run (n > {MAX_N[m]}: exact GP)")
                continue
            if m in last:
                n0, t0 = last[m]
                predicted = t0 * n / n0
                if predicted > SKIP_SECONDS:
                    table[(m, n)] = None
                    print(f"  n={n:5d} {m:12s} skipped (>60 s predicted: {predicted:.0f} s)")
                    continue
            opt = prepared(m, hist)
            if n == sizes[0]:
                time_one(m, opt)  # warm-up: lazy imports, first-call set-up
            times = []
            for _ in range(args.repeats):
                times.append(time_one(m, opt))
                if times[-1] > SKIP_SECONDS / 4:
                    break  # slow enough: fewer repeats
            med = statistics.median(times)
            table[(m, n)] = med
            last[m] = (n, med)
            print(f"  n={n:5d} {m:12s} {1e3 * med:9.1f} ms  ({len(times)} calls)", flush=True)
    print_table(sizes, methods, table)


def _fmt(t: float | str | None) -> str:
    if t is None:
        return "skipped (>60 s)"
    if isinstance(t, str):
        return t
    return f"{1e3 * t:.1f} ms" if t < 10 else f"{t:.1f} s"


def print_table(
    sizes: list[int], methods: list[str], table: dict[tuple[str, int], float | str | None]
) -> None:
    w = 17
    print("\nmedian time per suggestion")
    print("n".rjust(6) + "".join(m.rjust(w) for m in methods))
    for n in sizes:
        print(f"{n:6d}" + "".join(_fmt(table.get((m, n))).rjust(w) for m in methods))
    ours = "bayes"
    if ours in methods:
        others = [m for m in methods if m != ours]
        print(f"\nratio: competitor time / {ours} time (>1: {ours} is faster)")
        print("n".rjust(6) + "".join(m.rjust(w) for m in others))
        for n in sizes:
            mine = table.get((ours, n))
            cells = []
            for m in others:
                t = table.get((m, n))
                if isinstance(t, float) and isinstance(mine, float) and mine > 0:
                    cells.append(f"{t / mine:.2f}×")
                else:
                    cells.append("—")
            print(f"{n:6d}" + "".join(c.rjust(w) for c in cells))


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
