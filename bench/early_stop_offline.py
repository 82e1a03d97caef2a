"""Replays synthetic curves through each early-stopping rule, offline (no coordinator, no
workers), and prints what each rule costs and what it finds, against no stopping.

    python bench/early_stop_offline.py [--runs 200] [--steps 81] [--parallel 8] [--seed 0]

The sweep is simulated as sweepd runs it: ``--parallel`` runs train at once, each logs one
value per tick, the rule judges the run after every value (``should_stop_run``), a stopped or
finished run frees its slot for the next configuration. Reported per rule: iterations spent
(the compute), runs stopped, the best final loss among runs that ran to the end, and whether
the configuration that would have been best was kept.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from curves import curve
from sweepd.coordinator.stopping import StopRule, describe_rule, parse_rule

RULES: dict[str, dict[str, object] | None] = {
    "none": None,
    "hyperband min_iter 3": {"type": "hyperband", "min_iter": 3},
    "hyperband min_iter 3 non-strict": {"type": "hyperband", "min_iter": 3, "strict": False},
    "hyperband max_iter 81 s 3": {"type": "hyperband", "max_iter": 81, "s": 3},
    "asha 1..81": {"type": "asha", "min_iter": 1, "max_iter": 81},
    "median": {"type": "median"},
    "median warm-up 9": {"type": "median", "n_warmup_iters": 9},
}


def simulate(rule: StopRule | None, seeds: list[int], n_steps: int, parallel: int
             ) -> tuple[int, int, float, set[int], float]:
    """(iterations spent, runs stopped, best final loss of completed runs, completed seeds,
    seconds spent inside the rule)."""
    curves = {f"run-{s}": curve(s, n_steps) for s in seeds}
    queue = list(curves)
    active: list[str] = []
    histories: dict[str, list[float]] = {}
    completed: set[int] = set()
    spent, stopped, rule_seconds = 0, 0, 0.0
    while queue or active:
        while queue and len(active) < parallel:
            run = queue.pop(0)
            active.append(run)
            histories[run] = []
        for run in list(active):
            history = histories[run]
            history.append(curves[run][len(history)])
            spent += 1
            if rule is not None:
                start = time.perf_counter()
                decision = rule.should_stop_run(run, histories, "minimize")
                rule_seconds += time.perf_counter() - start
                if decision is not None:
                    active.remove(run)
                    stopped += 1
                    continue
            if len(history) == n_steps:
                active.remove(run)
                completed.add(int(run.removeprefix("run-")))
    finals = [_final(curves[f"run-{s}"]) for s in completed]
    return spent, stopped, min(finals, default=math.inf), completed, rule_seconds


def _final(values: list[float]) -> float:
    return math.inf if math.isnan(values[-1]) else values[-1]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--steps", type=int, default=81)
    parser.add_argument("--parallel", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    seeds = list(range(args.seed, args.seed + args.runs))
    truth = {s: _final(curve(s, args.steps)) for s in seeds}
    best_seed = min(truth, key=truth.__getitem__)
    print(f"{args.runs} curves of {args.steps} iterations, {args.parallel} in parallel; "
          f"best possible final loss {truth[best_seed]:.4f} (run-{best_seed})\n")
    print(f"{'rule':34} {'iterations':>10} {'share':>6} {'stopped':>7} "
          f"{'best final':>10} {'regret':>7} {'kept best':>9} {'ms/judge':>8}")
    baseline = args.runs * args.steps
    for name, raw in RULES.items():
        rule, problems = parse_rule(raw)
        assert not problems, problems
        spent, stopped, best, completed, seconds = simulate(rule, seeds, args.steps,
                                                            args.parallel)
        per_judge = 1000 * seconds / spent if rule is not None else 0.0
        print(f"{name:34} {spent:>10} {spent / baseline:>6.0%} {stopped:>7} {best:>10.4f} "
              f"{best - truth[best_seed]:>7.4f} {'yes' if best_seed in completed else 'no':>9} "
              f"{per_judge:>8.3f}")
    print()
    for name, raw in RULES.items():
        print(f"  {name}: {describe_rule(parse_rule(raw)[0])}")


if __name__ == "__main__":
    main()
