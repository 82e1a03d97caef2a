"""The program of the GPU check's sweep (tests/gpu/gpu_check.py starts it through a worker).

It checks, and exits 1 with the reason if any check fails:
1. CUDA_VISIBLE_DEVICES names exactly `gpus_per_run` GPUs, and PyTorch sees exactly those
   (the same UUIDs as nvidia-smi, in the same order);
2. before it touches CUDA, its GPUs' memory is back to what it was before the sweep: nothing
   of an earlier run, nor of a child an earlier run left behind, holds memory there;
3. it can allocate memory on each of its GPUs and train a small model there.
Then it starts a child that allocates memory on its first GPU and sleeps, and exits without
waiting for it: the worker must end that child with the run, or check 2 of the next run on
that GPU fails. What it saw goes to $SWEEPD_GPU_CHECK_DIR/<run id>.json.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from sweepd.client import run

# The memory a GPU may show above its level before the sweep, in MiB: the driver's own
# bookkeeping moves by a few MiB; one run's allocation (ALLOC_MIB) is far above it.
MARGIN_MIB = 64
ALLOC_MIB = 512
CHILD_ALLOC_MIB = 1024
# A process's GPU memory is released shortly after it exits, not at once.
RELEASE_WAIT_S = 30.0

CHILD = f"""
import sys, time, torch
block = torch.empty({CHILD_ALLOC_MIB} * 2**20 // 4, dtype=torch.float32, device="cuda:0")
torch.cuda.synchronize()
open(sys.argv[1], "w").write("allocated")
time.sleep(3600)
"""


def smi() -> dict[str, dict[str, Any]]:
    """nvidia-smi's GPUs by UUID: index, uuid, memory used (MiB). It ignores
    CUDA_VISIBLE_DEVICES and always lists every GPU."""
    out = subprocess.run(
        ["nvidia-smi", "--query-gpu=index,uuid,memory.used", "--format=csv,noheader,nounits"],
        capture_output=True, text=True, check=True, timeout=30).stdout
    gpus = {}
    for line in out.splitlines():
        if line.strip():
            index, uuid, used = (x.strip() for x in line.split(","))
            gpus[uuid] = {"index": index, "uuid": uuid, "used_mib": float(used)}
    return gpus


def fail(why: str) -> None:
    print(f"GPU CHECK FAILED in run {os.environ.get('SWEEPD_RUN_ID')}: {why}", file=sys.stderr)
    sys.exit(1)


def main() -> None:
    out_dir = Path(os.environ["SWEEPD_GPU_CHECK_DIR"])
    baseline: dict[str, float] = json.loads((out_dir / "baseline.json").read_text())
    per_run = int(run.config["gpus_per_run"])
    record: dict[str, Any] = {"run_id": os.environ["SWEEPD_RUN_ID"], "start": time.time(),
                              "pid": os.getpid()}

    visible = [v.strip() for v in os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",")
               if v.strip()]
    record["visible"] = visible
    if len(visible) != per_run:
        fail(f"CUDA_VISIBLE_DEVICES={visible} names {len(visible)} GPUs, not {per_run}")
    gpus = smi()
    by_index = {g["index"]: g for g in gpus.values()}
    mine = [by_index.get(v) or gpus.get(v) for v in visible]
    if None in mine:
        fail(f"CUDA_VISIBLE_DEVICES={visible} names GPUs nvidia-smi does not list: {gpus}")
    uuids = [g["uuid"] for g in mine if g]
    record["uuids"] = uuids

    # 2: before this process creates a CUDA context, its GPUs hold nothing of anyone.
    waited = time.monotonic()
    while True:
        used = {u: smi()[u]["used_mib"] for u in uuids}
        over = {u: used[u] - baseline[u] for u in uuids if used[u] > baseline[u] + MARGIN_MIB}
        if not over or time.monotonic() - waited > RELEASE_WAIT_S:
            break
        time.sleep(0.25)
    record["release_wait_s"] = round(time.monotonic() - waited, 2)
    record["used_at_start_mib"] = used
    if over:
        fail(f"memory still in use on its GPU(s) {RELEASE_WAIT_S:.0f} s after the start, MiB"
             f" over the level before the sweep: {over} (an earlier run, or a child it left,"
             " still holds it)")

    import torch  # after the check above: importing may already create a context

    count = torch.cuda.device_count()
    record["device_count"] = count
    if count != per_run:
        fail(f"PyTorch sees {count} GPUs, not {per_run}")
    seen = []
    for i in range(count):
        uuid = getattr(torch.cuda.get_device_properties(i), "uuid", None)
        seen.append(f"GPU-{uuid}" if uuid is not None else None)
    record["torch_uuids"] = seen
    if None not in seen and seen != uuids:
        fail(f"PyTorch's devices {seen} are not CUDA_VISIBLE_DEVICES' {uuids} (in order)")

    # 3: allocate on each GPU, and train a little on the first.
    blocks = [torch.empty(ALLOC_MIB * 2**20 // 4, dtype=torch.float32, device=f"cuda:{i}")
              for i in range(count)]
    torch.cuda.synchronize()
    after = smi()
    record["used_after_alloc_mib"] = {u: after[u]["used_mib"] for u in uuids}
    for u in uuids:
        if after[u]["used_mib"] < baseline[u] + ALLOC_MIB * 0.9:
            fail(f"allocated {ALLOC_MIB} MiB but nvidia-smi shows {after[u]['used_mib']} MiB"
                 f" on {u} (before the sweep {baseline[u]}): the memory is on another GPU")
    torch.manual_seed(int(run.config["seed"]))
    x = torch.randn(4096, 64, device="cuda:0")
    y = x @ torch.randn(64, 1, device="cuda:0")
    model = torch.nn.Sequential(torch.nn.Linear(64, 64), torch.nn.ReLU(),
                                torch.nn.Linear(64, 1)).to("cuda:0")
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for step in range(60):
        loss = torch.nn.functional.mse_loss(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % 10 == 9:
            run.log({"loss": float(loss)}, step=step)
    del blocks

    # A child left behind, holding memory on this run's first GPU.
    flag = out_dir / f"{record['run_id']}.child"
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(flag)])
    deadline = time.monotonic() + 120
    while not flag.exists():
        if child.poll() is not None or time.monotonic() > deadline:
            fail(f"the child could not allocate on the GPU (exit {child.poll()})")
        time.sleep(0.1)
    record["child_pid"] = child.pid
    record["end"] = time.time()
    (out_dir / f"{record['run_id']}.json").write_text(json.dumps(record, indent=1))
    # Exit without waiting for the child.


if __name__ == "__main__":
    main()
