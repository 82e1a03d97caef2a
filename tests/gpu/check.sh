#!/usr/bin/env bash
# sweepd on real NVIDIA GPUs: a coordinator and `worker join --gpus auto` run a small PyTorch
# sweep whose runs check that they see exactly their own GPU(s) in CUDA_VISIBLE_DEVICES,
# allocate and train there, and find their GPU's memory as it was before the sweep (nothing
# left by an earlier run or by the children it left behind). With 2 GPUs or more, a second
# sweep does the same with --gpus-per-run 2.
#
#   bash tests/gpu/check.sh        # exit 0: passed or skipped (says which); 1: failed
#
# Skips (exit 0, "SKIP: ...") without nvidia-smi, without a GPU, or without a CUDA PyTorch
# (pip install torch). Needs sweepd installed (`pip install -e .`).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
if ! command -v nvidia-smi >/dev/null 2>&1; then
    echo "SKIP: no nvidia-smi on this machine"
    exit 0
fi
if ! nvidia-smi --query-gpu=index --format=csv,noheader >/dev/null 2>&1; then
    echo "SKIP: nvidia-smi finds no usable GPU"
    exit 0
fi
exec python "$here/gpu_check.py" "$@"
