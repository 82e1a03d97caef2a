"""GPUs of a worker node and their allocation to runs (pure, apart from ``detect_gpus``).

A worker with ``--gpus`` makes one slot per ``gpus_per_run`` GPUs; each run gets a disjoint
group of GPU ids, which it sees as ``CUDA_VISIBLE_DEVICES`` (numbered as nvidia-smi numbers
them: ``CUDA_DEVICE_ORDER=PCI_BUS_ID``), and gives them back when it ends.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Mapping, Sequence

# nvidia-smi answers in well under a second; a wedged driver must not hang the worker's start.
NVIDIA_SMI_TIMEOUT_S = 10.0
ENV_VISIBLE = "CUDA_VISIBLE_DEVICES"
# CUDA numbers GPUs fastest first unless told otherwise, nvidia-smi (and so --gpus auto, and
# the ids an operator reads off nvidia-smi) by PCI bus: on a node with mixed GPUs, id 0 would
# be two different cards. A run is told to count as nvidia-smi does.
ENV_ORDER = "CUDA_DEVICE_ORDER"
PCI_BUS_ORDER = "PCI_BUS_ID"


class GpuError(ValueError):
    """A bad --gpus / --gpus-per-run combination, or no GPU where one was asked for."""


def parse_gpu_list(text: str) -> list[str]:
    """``"0,1, 2"`` -> ``["0", "1", "2"]``; ids may be indexes or UUIDs, kept as given."""
    ids = [part.strip() for part in text.split(",") if part.strip()]
    if len(set(ids)) != len(ids):
        raise GpuError(f"--gpus {text!r}: a GPU is named twice")
    return ids


def detect_gpus(env: Mapping[str, str] | None = None) -> list[str]:
    """The GPUs this process may use: its own ``CUDA_VISIBLE_DEVICES`` when set (a worker
    started inside a GPU allocation must stay within it), else what nvidia-smi lists."""
    env = os.environ if env is None else env
    visible = env.get(ENV_VISIBLE)
    if visible is not None and visible.strip() not in ("", "all"):
        return parse_gpu_list(visible)
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return []
    try:
        out = subprocess.run([smi, "--query-gpu=index", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=NVIDIA_SMI_TIMEOUT_S,
                             check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return [line.strip() for line in out.splitlines() if line.strip()]


def resolve_gpus(spec: str, env: Mapping[str, str] | None = None) -> list[str]:
    """``--gpus`` as given: ``""`` none, ``"auto"`` detected, else a comma-separated list."""
    if not spec:
        return []
    if spec == "auto":
        found = detect_gpus(env)
        if not found:
            raise GpuError("--gpus auto: found no GPU (no nvidia-smi and no"
                           f" {ENV_VISIBLE}); name them, e.g. --gpus 0,1")
        return found
    return parse_gpu_list(spec)


def gpu_env(gpus: Sequence[str], env: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment that gives a run ``gpus``. A ``CUDA_DEVICE_ORDER`` of the worker's own
    is kept: the ids it was given (its own ``CUDA_VISIBLE_DEVICES``) are counted that way."""
    env = os.environ if env is None else env
    return {ENV_VISIBLE: ",".join(gpus), ENV_ORDER: env.get(ENV_ORDER) or PCI_BUS_ORDER}


class GpuAllocator:
    """Disjoint groups of ``per_run`` GPUs, handed out and given back by run id."""

    def __init__(self, gpus: Sequence[str], per_run: int = 1) -> None:
        if per_run < 1:
            raise GpuError(f"--gpus-per-run {per_run}: must be at least 1")
        if gpus and len(gpus) < per_run:
            raise GpuError(f"--gpus-per-run {per_run} but only {len(gpus)} GPU(s):"
                           f" {','.join(gpus)}")
        self.gpus = list(gpus)
        self.per_run = per_run
        # Fixed groups (0,1), (2,3) ...: runs get neighbouring GPUs, which on most nodes
        # share a switch; a leftover GPU that cannot make a group stays unused.
        self._groups = [tuple(self.gpus[i:i + per_run])
                        for i in range(0, len(self.gpus) - per_run + 1, per_run)]
        self._holder: dict[tuple[str, ...], str] = {}

    @property
    def slots(self) -> int:
        return len(self._groups)

    def acquire(self, run_id: str) -> list[str]:
        """A free group for ``run_id`` (the same one if it holds one already)."""
        for group, holder in self._holder.items():
            if holder == run_id:
                return list(group)
        for group in self._groups:
            if group not in self._holder:
                self._holder[group] = run_id
                return list(group)
        raise GpuError(f"no free GPU group for run {run_id}: all {self.slots} are in use")

    def release(self, run_id: str) -> None:
        for group, holder in list(self._holder.items()):
            if holder == run_id:
                del self._holder[group]

    def in_use(self) -> dict[str, list[str]]:
        return {holder: list(group) for group, holder in self._holder.items()}
