"""Search quality: sweepd's model-based search beside W&B's engine, Optuna and random search.

Run (from the repository root, after ``bench/README.md``'s one-time set-up)::

    bench/.venv/bin/python bench/search_quality.py                   # full: 31 functions × 10 seeds
    bench/.venv/bin/python bench/search_quality.py --seeds 3 --budget 30 --functions branin,lr_wd
    bench/.venv/bin/python bench/search_quality.py --cache /tmp/q.json --fresh bayes  # reuse

For every function in ``bench/functions.py`` (each a W&B sweep: parameters with
distributions), every method runs ``--budget`` sequential runs for each of ``--seeds`` seeds.
The regret of one run is ``f(x*) − f_min`` where ``x*`` is the point with the best *reported*
value (reported values carry noise in the noisy variants; the regret uses the noise-free f).
Prints the median regret per function per method, each method's mean rank over the functions
(rank of the median regret; ties share the mean rank), on how many functions ``bayes`` beats
W&B's bayes, and the mean time per suggestion. Seeds × functions × methods run in parallel
processes (``--jobs``, default the number of cores).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import sys
import time
import zlib

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np
from functions import FAMILIES, PROBLEMS
from methods import COMPETITORS, make_optimizer

DEFAULT_METHODS = ("bayes", "sobol", "wandb_bayes", "optuna_tpe", "optuna_gp", "random")
# Slow methods first so that the pool's tail is made of short tasks.
COST_ORDER = {"optuna_gp": 0, "wandb_bayes": 1, "bayes": 2, "tpe": 3, "optuna_tpe": 4}


def run_task(task: tuple[str, str, int, int]) -> tuple[str, str, int, float, float]:
    """One (function, method, seed) sequential sweep → (…, regret, seconds per suggestion)."""
    fname, method, seed, budget = task
    problem = PROBLEMS[fname]
    opt = make_optimizer(method, problem.parameters, seed)
    noise_rng = np.random.default_rng(seed * 7919 + zlib.crc32(fname.encode()))
    best_reported = np.inf
    best_true = np.inf
    spent = 0.0
    for _ in range(budget):
        t0 = time.perf_counter()
        params = opt.ask()
        spent += time.perf_counter() - t0
        reported = problem.observe(params, noise_rng)
        if reported < best_reported:
            best_reported = reported
            best_true = problem.objective(params)
        t0 = time.perf_counter()
        opt.tell(params, reported)
        spent += time.perf_counter() - t0
    return fname, method, seed, float(best_true - problem.f_min), spent / budget


def _key(task: tuple[str, str, int, int]) -> str:
    return "/".join(map(str, task))


def _ranks(values: list[float]) -> list[float]:
    order = sorted(range(len(values)), key=lambda i: values[i])
    ranks = [0.0] * len(values)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
            j += 1
        for k in range(i, j + 1):
            ranks[order[k]] = (i + j) / 2 + 1
        i = j + 1
    return ranks


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--budget", type=int, default=60)
    ap.add_argument("--functions", default=",".join(PROBLEMS))
    ap.add_argument("--methods", default=",".join(DEFAULT_METHODS))
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    ap.add_argument(
        "--cache",
        help="JSON file of finished (function, method, seed, budget) results: read, skipped,"
        " appended to (competitors do not change while sweepd's methods are iterated on)",
    )
    ap.add_argument("--fresh", default="", help="methods to recompute even if cached")
    ap.add_argument(
        "--report",
        action="store_true",
        help="print the tables from --cache only, running nothing (missing results are shown"
        " as such)",
    )
    args = ap.parse_args(argv)
    fnames = [f for f in args.functions.split(",") if f]
    methods = [m for m in args.methods.split(",") if m]
    tasks = [(f, m, s, args.budget) for f in fnames for m in methods for s in range(args.seeds)]
    tasks.sort(key=lambda t: COST_ORDER.get(t[1], 9))
    cache: dict[str, list[float]] = {}
    if args.cache and os.path.exists(args.cache):
        with open(args.cache) as fh:
            cache = json.load(fh)
    fresh = set(args.fresh.split(","))
    cached = [t for t in tasks if _key(t) in cache and t[1] not in fresh]
    tasks = [t for t in tasks if t not in cached]
    if args.report:
        tasks = []
    print(
        f"search quality: {len(fnames)} functions × {len(methods)} methods × {args.seeds} seeds,"
        f" budget {args.budget}, {args.jobs} processes",
        flush=True,
    )
    results: dict[tuple[str, str], list[float]] = {}
    times: dict[str, list[float]] = {m: [] for m in methods}
    for t in cached:
        regret, per_call = cache[_key(t)]
        results.setdefault((t[0], t[1]), []).append(regret)
        times[t[1]].append(per_call)
    if cached:
        print(f"  {len(cached)} results from {args.cache}", flush=True)
    start = time.time()
    ctx = mp.get_context("spawn")
    with ctx.Pool(args.jobs, maxtasksperchild=20) as pool:
        for n, (f, m, _seed, regret, per_call) in enumerate(
            pool.imap_unordered(run_task, tasks), 1
        ):
            results.setdefault((f, m), []).append(regret)
            times[m].append(per_call)
            if args.cache:
                cache[_key((f, m, _seed, args.budget))] = [regret, per_call]
                with open(args.cache, "w") as fh:
                    json.dump(cache, fh)
            if n % max(1, len(tasks) // 20) == 0 or n == len(tasks):
                print(f"  {n}/{len(tasks)} done, {time.time() - start:.0f} s", flush=True)
    print_tables(fnames, methods, results, times, args.seeds, args.budget)


def print_tables(
    fnames: list[str],
    methods: list[str],
    results: dict[tuple[str, str], list[float]],
    times: dict[str, list[float]],
    seeds: int,
    budget: int,
) -> None:
    # A cell counts only with all its seeds (an interrupted run leaves some out); a function
    # with an incomplete cell is shown but left out of every rank and count.
    med = {k: float(np.median(v)) for k, v in results.items() if len(v) >= seeds}
    incomplete = [f for f in fnames if any((f, m) not in med for m in methods)]
    fnames = [f for f in fnames if f not in incomplete]
    width = max(12, *(len(m) + 2 for m in methods))
    print(f"\nmedian regret after {budget} runs over {seeds} seeds (lower is better)")
    print("function".ljust(18) + "".join(m.rjust(width) for m in methods))
    rank_sum = {m: 0.0 for m in methods}
    for f in fnames:
        row = [med[(f, m)] for m in methods]
        for m, r in zip(methods, _ranks(row), strict=True):
            rank_sum[m] += r
        best = min(row)
        cells = [(f"{v:.3g}" + ("*" if v == best else " ")).rjust(width) for v in row]
        print(f.ljust(18) + "".join(cells))
    for f in incomplete:
        cells = [(f"{med[(f, m)]:.3g} " if (f, m) in med else "— ").rjust(width) for m in methods]
        print(f.ljust(18) + "".join(cells))
    if incomplete:
        print(f"(incomplete, not ranked: {', '.join(incomplete)})")
    if not fnames:
        return
    print(
        "mean rank".ljust(18)
        + "".join(f"{rank_sum[m] / len(fnames):.2f} ".rjust(width) for m in methods)
    )
    print(
        "ms/suggestion".ljust(18)
        + "".join(f"{1e3 * np.mean(times[m] or [np.nan]):.1f} ".rjust(width) for m in methods)
    )
    ours = [m for m in methods if m in ("bayes", "tpe", "sobol")]
    for mine in ours:
        if "wandb_bayes" in methods:
            wins = sum(med[(f, mine)] < med[(f, "wandb_bayes")] for f in fnames)
            ties = sum(med[(f, mine)] == med[(f, "wandb_bayes")] for f in fnames)
            print(f"{mine} beats wandb_bayes on {wins}/{len(fnames)} functions ({ties} ties)")
    print("(* = best median on that function)")
    print_families(fnames, methods, med)


def print_families(
    fnames: list[str], methods: list[str], med: dict[tuple[str, str], float]
) -> None:
    """Mean rank per function family, among ``bayes`` and the competitors only (sweepd's other
    methods left out, as the issue ranks them), and bayes's wins over W&B's bayes."""
    ranked = [m for m in methods if m == "bayes" or m in COMPETITORS]
    if len(ranked) < 2:
        return
    ranks: dict[str, dict[str, float]] = {}
    for f in fnames:
        ranks[f] = dict(zip(ranked, _ranks([med[(f, m)] for m in ranked]), strict=True))
    width = max(12, *(len(m) + 2 for m in ranked))
    extra = "  bayes>wandb" if "bayes" in ranked and "wandb_bayes" in ranked else ""
    print(f"\nmean rank per family among {', '.join(ranked)}")
    print("family".ljust(18) + "n".rjust(3) + "".join(m.rjust(width) for m in ranked) + extra)
    groups = [(fam, [f for f in fnames if PROBLEMS[f].family == fam]) for fam in FAMILIES]
    for fam, fs in [*groups, ("all", fnames)]:
        if not fs:
            continue
        cells = "".join(
            f"{sum(ranks[f][m] for f in fs) / len(fs):.2f} ".rjust(width) for m in ranked
        )
        wins = ""
        if extra:
            won = sum(med[(f, "bayes")] < med[(f, "wandb_bayes")] for f in fs)
            wins = f"{won}/{len(fs)}".rjust(len(extra))
        print(fam.ljust(18) + str(len(fs)).rjust(3) + cells + wins)


if __name__ == "__main__":
    main()
