"""tests/gpu/check.sh (#16) runs only where there are NVIDIA GPUs and a CUDA PyTorch; anywhere
else it says why and exits 0, so it can sit in any test command."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

CHECK = Path(__file__).resolve().parents[2] / "tests" / "gpu" / "check.sh"


def _run(path: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PATH=path)
    return subprocess.run(["bash", str(CHECK)], env=env, capture_output=True, text=True,
                          timeout=300)


def test_skips_without_nvidia_smi(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "python").symlink_to(sys.executable)
    done = _run(f"{bin_dir}:/usr/bin:/bin")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("SKIP: no nvidia-smi")


def test_skips_when_nvidia_smi_finds_no_gpu(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    smi = bin_dir / "nvidia-smi"
    # What nvidia-smi does on a machine whose driver finds no device.
    smi.write_text("#!/bin/sh\necho 'No devices were found' >&2\nexit 6\n")
    smi.chmod(0o755)
    (bin_dir / "python").symlink_to(sys.executable)
    done = _run(f"{bin_dir}:/usr/bin:/bin")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("SKIP: nvidia-smi finds no usable GPU")


def test_skips_without_a_cuda_pytorch(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    smi = bin_dir / "nvidia-smi"
    smi.write_text("#!/bin/sh\necho '0, GPU-00000000-0000-0000-0000-000000000000, 1'\n")
    smi.chmod(0o755)
    (bin_dir / "python").symlink_to(sys.executable)
    done = _run(f"{bin_dir}:{os.environ['PATH']}")
    assert done.returncode == 0, done.stdout + done.stderr
    # This machine has no GPU: either no torch at all, or one that sees no CUDA device.
    assert "SKIP: PyTorch" in done.stdout, done.stdout
