"""The worker's GPU allocator and --gpus parsing (pure, no GPU needed)."""

from __future__ import annotations

import pytest
from sweepd.worker.gpus import GpuAllocator, GpuError, detect_gpus, parse_gpu_list, resolve_gpus


def test_groups_are_disjoint_and_given_back() -> None:
    alloc = GpuAllocator(["0", "1", "2", "3"], per_run=2)
    assert alloc.slots == 2
    a = alloc.acquire("r1")
    b = alloc.acquire("r2")
    assert len(a) == len(b) == 2 and not set(a) & set(b)
    with pytest.raises(GpuError):
        alloc.acquire("r3")
    alloc.release("r1")
    assert alloc.acquire("r3") == a
    assert alloc.in_use() == {"r3": a, "r2": b}


def test_acquire_is_idempotent_per_run() -> None:
    alloc = GpuAllocator(["0", "1"])
    assert alloc.acquire("r1") == alloc.acquire("r1") == ["0"]
    assert alloc.acquire("r2") == ["1"]


def test_leftover_gpu_makes_no_slot() -> None:
    assert GpuAllocator(["0", "1", "2"], per_run=2).slots == 1


def test_bad_combinations_are_refused() -> None:
    with pytest.raises(GpuError):
        GpuAllocator(["0"], per_run=2)
    with pytest.raises(GpuError):
        GpuAllocator(["0"], per_run=0)
    with pytest.raises(GpuError):
        parse_gpu_list("0,1,0")


def test_parse_and_resolve() -> None:
    assert parse_gpu_list(" 0, 1,,GPU-abc ") == ["0", "1", "GPU-abc"]
    assert resolve_gpus("") == []
    assert resolve_gpus("2,3") == ["2", "3"]
    assert resolve_gpus("auto", {"CUDA_VISIBLE_DEVICES": "4,5"}) == ["4", "5"]


def test_detect_prefers_own_visible_devices(monkeypatch: pytest.MonkeyPatch) -> None:
    assert detect_gpus({"CUDA_VISIBLE_DEVICES": "1,3"}) == ["1", "3"]
    monkeypatch.setenv("PATH", "/nonexistent")  # no nvidia-smi
    assert detect_gpus({}) == []
    with pytest.raises(GpuError):
        resolve_gpus("auto", {})
