#!/usr/bin/env bash
# Local training on a CUDA GPU: bf16, QLoRA (quantize_4bit), a 2-process launch, and tokens/s
# against a raw PyTorch + PEFT loop. Needs torch (CUDA build), the hf extra and bitsandbytes:
#   pip install torch==2.13.0 && pip install -e ".[hf]" bitsandbytes
# On a machine without internet, carry wheels and set PYTHONPATH first (see docs/performance.md).
# Prints one table; record it in docs/performance.md ("GPU").
set -euo pipefail
cd "$(dirname "$0")/.."
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv || true
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
python3 -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 'no CUDA GPU')"
python3 -c "import bitsandbytes" || echo "bitsandbytes missing: the QLoRA row will fail"
python3 benchmarks/gpu_check.py "$@"
