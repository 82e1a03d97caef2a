"""Early termination through a real coordinator and real workers.

    python bench/early_stop.py [--runs 40] [--steps 27] [--step-seconds 0.05]

A synthetic learning-curve workload: run ``seed`` logs ``loss`` for ``--steps`` steps,
``final(seed) + a(seed) * exp(-t / tau(seed)) + noise``, so the early part of a curve predicts
its end only in part (curves cross). Each rule gets the same seeds, on a coordinator with two
workers of two slots each. For no stopping, hyperband, ASHA and median it prints the steps
spent, the best final loss found (among runs that ran to the end), and the median time from
the metric report that triggered a stop to the run's process receiving SIGTERM.

Targets: the stop reaches the process within 100 ms median on loopback; ASHA or hyperband
spends at most half the steps of no stopping and finds a final value within the noise of the
best.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any

BIN = Path(sys.executable).parent
NOISE_SD = 0.02

TRAIN = textwrap.dedent('''
    import math, os, random, signal, sys, time
    from sweepd.client import run

    seed = run.config["seed"]
    steps = run.config["steps"]
    pause = run.config["step_seconds"]
    rng = random.Random(seed)
    final = rng.gauss(0.0, 1.0)
    a = rng.uniform(0.5, 3.0)
    tau = rng.uniform(2.0, 12.0)
    noise = random.Random(seed + 10**6)

    def on_term(signum, frame):
        with open(os.path.join(os.environ["SWEEPD_RUN_DIR"], "sigterm_at"), "w") as f:
            f.write(repr(time.time()))
        sys.exit(0)

    signal.signal(signal.SIGTERM, on_term)
    for t in range(steps):
        loss = final + a * math.exp(-t / tau) + noise.gauss(0.0, NOISE_SD)
        run.log({"loss": loss, "step": t})
        time.sleep(pause)
''').replace("NOISE_SD", repr(NOISE_SD))

RULES: dict[str, dict[str, Any] | None] = {
    "none": None,
    "hyperband": {"type": "hyperband", "min_iter": 3, "eta": 3},
    "asha": {"type": "asha", "min_iter": 3, "max_iter": 27, "eta": 3},
    "median": {"type": "median", "n_startup_runs": 5, "n_warmup_iters": 3},
}


def tool(name: str) -> list[str]:
    script = BIN / name
    return [str(script)] if script.exists() else [sys.executable, "-m", {
        "coordinator": "sweepd.coordinator", "worker": "sweepd.worker",
        "sweep": "sweepd.client"}[name]]


def run_one(rule: str, args: argparse.Namespace, root: Path) -> dict[str, Any]:
    state = root / rule / "state"
    work = root / rule / "work"
    work.mkdir(parents=True)
    (work / "train.py").write_text(TRAIN)
    config: dict[str, Any] = {
        "program": "train.py", "method": "grid",
        "metric": {"name": "loss", "goal": "minimize"},
        "parameters": {
            "seed": {"values": list(range(args.runs))},
            "steps": {"value": args.steps},
            "step_seconds": {"value": args.step_seconds},
        },
    }
    if RULES[rule] is not None:
        config["early_terminate"] = RULES[rule]
    (work / "sweep.json").write_text(json.dumps(config))
    env = {**os.environ, "SWEEPD_STATE_DIR": str(state), "PYTHONUNBUFFERED": "1"}
    coord_log = open(root / rule / "coordinator.log", "wb")  # noqa: SIM115
    coordinator = subprocess.Popen(
        tool("coordinator") + ["serve", "--port", "0", "--state-dir", str(state)],
        stdout=coord_log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    procs = [coordinator]
    try:
        deadline = time.monotonic() + 30
        match = None
        while match is None and time.monotonic() < deadline:
            time.sleep(0.05)
            match = re.search(r"listening on \S+:(\d+)",
                              (root / rule / "coordinator.log").read_text())
        if match is None:
            raise SystemExit("coordinator did not start:\n"
                             + (root / rule / "coordinator.log").read_text())
        env["SWEEPD_COORDINATOR"] = f"127.0.0.1:{match.group(1)}"
        created = subprocess.run(tool("sweep") + ["create", str(work / "sweep.json")],
                                 env=env, capture_output=True, text=True, check=True)
        sweep_id = created.stdout.split()[0]
        started = time.monotonic()
        workers = [subprocess.Popen(
            tool("worker") + ["join", "--sweep", sweep_id, "--slots", "2", "--workdir",
                              str(work), "--stop-grace", "5"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env,
            start_new_session=True) for _ in range(2)]
        procs += workers
        for w in workers:
            w.wait(timeout=600)
        elapsed = time.monotonic() - started
        runs = json.loads(subprocess.run(
            tool("sweep") + ["runs", sweep_id, "--format", "json"], env=env,
            capture_output=True, text=True, check=True).stdout)
    finally:
        for p in procs:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()
        coord_log.close()
    return summarize(rule, runs, work, args, elapsed)


def summarize(rule: str, runs: list[dict[str, Any]], work: Path, args: argparse.Namespace,
              elapsed: float) -> dict[str, Any]:
    steps = sum(int(r["summary"].get("step", -1)) + 1 for r in runs)
    finals = [r["summary"]["loss"] for r in runs
              if r["state"] == "FINISHED" and r["summary"].get("step") == args.steps - 1]
    latencies = []
    for r in runs:
        if r["state"] != "STOPPED" or not r["stop"] or r["stop"]["band"] is None:
            continue
        run_dir = work / ".sweepd" / "runs" / f"{r['id']}.{r['attempt']}"
        sigterm = run_dir / "sigterm_at"
        if not sigterm.exists():
            continue
        lines = (run_dir / "metrics.jsonl").read_text().splitlines()
        trigger = json.loads(lines[r["stop"]["band"] - 1])["_timestamp"]
        latencies.append(float(sigterm.read_text()) - trigger)
    return {
        "rule": rule, "runs": len(runs), "stopped": sum(r["state"] == "STOPPED" for r in runs),
        "steps": steps, "best_final": min(finals) if finals else float("nan"),
        "latency_ms": statistics.median(latencies) * 1000 if latencies else float("nan"),
        "latency_p90_ms": (sorted(latencies)[int(0.9 * (len(latencies) - 1))] * 1000
                           if latencies else float("nan")),
        "wall_s": elapsed,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=40)
    parser.add_argument("--steps", type=int, default=27)
    parser.add_argument("--step-seconds", type=float, default=0.05)
    parser.add_argument("--rules", default=",".join(RULES))
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="sweepd-early-stop-"))
    results = []
    try:
        for rule in args.rules.split(","):
            print(f"running {rule} ...", file=sys.stderr, flush=True)
            results.append(run_one(rule, args, root))
    finally:
        shutil.rmtree(root, ignore_errors=True)
    base = next((r for r in results if r["rule"] == "none"), None)
    print(f"{args.runs} runs x {args.steps} steps, {args.step_seconds * 1000:.0f} ms per step,"
          f" 2 workers x 2 slots, noise sd {NOISE_SD}")
    print(f"{'rule':<10} {'stopped':>7} {'steps':>6} {'vs none':>8} {'best final':>11}"
          f" {'gap':>7} {'stop latency p50':>17} {'p90':>7} {'wall':>6}")
    for r in results:
        ratio = r["steps"] / base["steps"] if base else float("nan")
        gap = r["best_final"] - base["best_final"] if base else float("nan")
        print(f"{r['rule']:<10} {r['stopped']:>7} {r['steps']:>6} {ratio:>8.2f}"
              f" {r['best_final']:>11.4f} {gap:>7.3f} {r['latency_ms']:>14.1f} ms"
              f" {r['latency_p90_ms']:>4.0f} ms {r['wall_s']:>5.1f}s")


if __name__ == "__main__":
    main()
