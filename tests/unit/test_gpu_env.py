"""A run given GPUs counts them as nvidia-smi does (hostile tester's small finding on #11)."""

from __future__ import annotations

from sweepd.worker.gpus import gpu_env


def test_a_run_counts_gpus_by_pci_bus_as_nvidia_smi_does() -> None:
    assert gpu_env(["2", "3"], env={}) == {
        "CUDA_VISIBLE_DEVICES": "2,3", "CUDA_DEVICE_ORDER": "PCI_BUS_ID"}


def test_the_workers_own_device_order_is_kept() -> None:
    # Its own CUDA_VISIBLE_DEVICES (which --gpus auto hands out) is counted that way.
    env = gpu_env(["0"], env={"CUDA_DEVICE_ORDER": "FASTEST_FIRST"})
    assert env["CUDA_DEVICE_ORDER"] == "FASTEST_FIRST"
