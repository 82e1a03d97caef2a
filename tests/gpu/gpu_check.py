"""The GPU check behind tests/gpu/check.sh (which skips first where there is no GPU).

Starts a coordinator and `worker join --gpus auto` in a temporary directory, runs a grid
sweep of tests/gpu/train_gpu.py with more runs than GPUs (so every GPU is used again after a
run, and the children it left, ended there), then checks what the runs saw: all FINISHED,
each with exactly its own GPU(s), no two runs at once on one GPU, and every GPU's memory back
to its level before the sweep. With 2 GPUs or more, a second sweep uses --gpus-per-run 2.
Prints a summary; exit 0 passed or skipped, 1 failed.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from train_gpu import MARGIN_MIB, RELEASE_WAIT_S, smi  # noqa: E402

# Generous: the first CUDA context of each run may take seconds; a sweep is a few minutes.
COORDINATOR_START_S = 60.0
SWEEP_TIMEOUT_S = 900.0


def say(text: str) -> None:
    print(f"gpu check: {text}", flush=True)


def torch_problem() -> str:
    """Why PyTorch cannot be used on the GPUs here, or "" when it can."""
    probe = subprocess.run(
        [sys.executable, "-c", "import torch; print(torch.__version__, torch.cuda.is_available(),"
         " torch.cuda.device_count())"], capture_output=True, text=True, timeout=300)
    if probe.returncode != 0:
        return "PyTorch is not installed (pip install torch)"
    version, available, count = probe.stdout.split()
    if available != "True" or count == "0":
        return f"PyTorch {version} sees no CUDA device"
    say(f"PyTorch {version}, {count} CUDA device(s)")
    return ""


class Coordinator:
    def __init__(self, root: Path) -> None:
        self.state = root / "state"
        self.log = root / "coordinator.log"
        self.proc = subprocess.Popen(
            ["coordinator", "serve", "--port", "0", "--dashboard-port", "0",
             "--state-dir", str(self.state)],
            stdout=self.log.open("w"), stderr=subprocess.STDOUT)
        deadline = time.monotonic() + COORDINATOR_START_S
        while True:
            match = re.search(r"listening on (\S+):(\d+)", self.log.read_text())
            if match:
                self.address = f"127.0.0.1:{match.group(2)}"
                return
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"coordinator did not start:\n{self.log.read_text()}")
            time.sleep(0.2)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()


def sweep_runs(env: dict[str, str], sweep_id: str) -> list[dict[str, Any]]:
    out = subprocess.run(["sweep", "runs", sweep_id, "--format", "json"], env=env,
                         capture_output=True, text=True, check=True, timeout=60).stdout
    runs: list[dict[str, Any]] = json.loads(out)
    return runs


def run_phase(root: Path, env: dict[str, str], gpus: int, per_run: int,
              baseline: dict[str, float]) -> list[str]:
    """One sweep with `--gpus-per-run per_run`; the problems found (empty: passed).
    ``baseline``: each GPU's memory in use before the first sweep, in MiB."""
    slots = gpus // per_run
    total = 2 * slots + 1
    workdir = root / f"work-{per_run}"
    results = root / f"results-{per_run}"
    workdir.mkdir()
    results.mkdir()
    shutil.copy(HERE / "train_gpu.py", workdir / "train_gpu.py")
    (results / "baseline.json").write_text(json.dumps(baseline))
    config = workdir / "sweep.yaml"
    config.write_text(
        "program: train_gpu.py\nmethod: grid\nmetric: {name: loss, goal: minimize}\n"
        f"parameters:\n  seed: {{values: {list(range(total))}}}\n"
        f"  gpus_per_run: {{value: {per_run}}}\n")
    created = subprocess.run(["sweep", "create", str(config)], env=env, capture_output=True,
                             text=True, check=True, timeout=60)
    sweep_id = created.stdout.split()[0]
    say(f"sweep {sweep_id}: {total} runs, {slots} at once with {per_run} GPU(s) each")
    worker_env = dict(env, SWEEPD_GPU_CHECK_DIR=str(results))
    started = time.monotonic()
    worker = subprocess.run(
        ["worker", "join", "--gpus", "auto", "--gpus-per-run", str(per_run), "--sweep",
         sweep_id, "--workdir", str(workdir), "--stop-grace", "10"],
        env=worker_env, capture_output=True, text=True, timeout=SWEEP_TIMEOUT_S)
    took = time.monotonic() - started
    problems = []
    if worker.returncode != 0:
        problems.append(f"worker exited {worker.returncode}:\n{worker.stderr[-3000:]}")
    runs = sweep_runs(env, sweep_id)
    for r in runs:
        if r["state"] != "FINISHED":
            log = subprocess.run(["sweep", "logs", r["id"]], env=env, capture_output=True,
                                 text=True, timeout=60).stdout
            problems.append(f"run {r['id']} {r['state']} ({r.get('reason')}):\n{log[-2000:]}")
    records = [json.loads(p.read_text()) for p in sorted(results.glob("*.json"))
               if p.name != "baseline.json"]
    problems += check_records(records, per_run)
    for r in records:
        say(f"  {r['run_id']}: CUDA_VISIBLE_DEVICES={','.join(r['visible'])}"
            f" torch sees {r['device_count']}, waited {r['release_wait_s']} s for its GPU's"
            f" memory, {r['used_after_alloc_mib']} MiB after allocating")
    say(f"sweep {sweep_id}: {len(runs)} runs in {took:.0f} s")
    return problems


def check_records(records: list[dict[str, Any]], per_run: int) -> list[str]:
    problems = []
    for r in records:
        if len(set(r["uuids"])) != per_run or r["device_count"] != per_run:
            problems.append(f"{r['run_id']} saw {r['uuids']} ({r['device_count']} in torch)")
    # No GPU held by two runs at once.
    for i, a in enumerate(records):
        for b in records[i + 1:]:
            overlap = a["start"] < b["end"] and b["start"] < a["end"]
            shared = set(a["uuids"]) & set(b["uuids"])
            if overlap and shared:
                problems.append(f"{a['run_id']} and {b['run_id']} ran at once on {shared}")
    # Every GPU was used again after a run: the memory check of the later run means something.
    uses: dict[str, int] = {}
    for r in records:
        for u in r["uuids"]:
            uses[u] = uses.get(u, 0) + 1
    if records and max(uses.values()) < 2:
        problems.append(f"no GPU was used twice ({uses}): the sweep was too small to check reuse")
    return problems


def memory_back(baseline: dict[str, float]) -> list[str]:
    """Waits for every GPU's memory to return to its level before the sweep."""
    deadline = time.monotonic() + RELEASE_WAIT_S
    while True:
        now = {u: g["used_mib"] for u, g in smi().items()}
        over = {u: now[u] - baseline[u] for u in baseline if now[u] > baseline[u] + MARGIN_MIB}
        if not over:
            return []
        if time.monotonic() > deadline:
            return [f"GPU memory not released after the sweep (MiB over the start): {over}"]
        time.sleep(0.5)


def main() -> int:
    problem = torch_problem()
    if problem:
        say(f"SKIP: {problem}")
        return 0
    gpus = len(smi())
    if os.environ.get("CUDA_VISIBLE_DEVICES", "").strip() not in ("", "all"):
        gpus = len(os.environ["CUDA_VISIBLE_DEVICES"].split(","))
    baseline = {u: g["used_mib"] for u, g in smi().items()}
    say(f"{gpus} GPU(s): " + ", ".join(f"{u} {m:.0f} MiB used" for u, m in baseline.items()))
    root = Path(tempfile.mkdtemp(prefix="sweepd-gpu-check-"))
    coordinator = Coordinator(root)
    env = dict(os.environ, SWEEPD_STATE_DIR=str(coordinator.state),
               SWEEPD_COORDINATOR=coordinator.address)
    problems: list[str] = []
    try:
        for per_run in [1, 2] if gpus >= 2 else [1]:
            problems += run_phase(root, env, gpus, per_run, baseline)
            # The runs' processes, children included, are gone once the worker has exited.
            problems += memory_back(baseline)
    finally:
        coordinator.stop()
    if problems:
        for p in problems:
            say(f"FAILED: {p}")
        say(f"logs and results kept in {root}")
        return 1
    shutil.rmtree(root, ignore_errors=True)
    say("PASSED")
    return 0


if __name__ == "__main__":
    sys.exit(main())
