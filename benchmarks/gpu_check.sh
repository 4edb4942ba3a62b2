#!/usr/bin/env bash
# One-shot GPU check (run on a CUDA machine from the repository root, venv already installed):
# the GPU-marked tests, then sliding-window timings against MONAI on the GPU, then the demo on the GPU.
set -euo pipefail
PY=${PY:-.venv/bin/python}
"$PY" -c "import torch; assert torch.cuda.is_available(), 'no CUDA device'; print(torch.cuda.get_device_name(0))"
"$PY" -m pytest -q -m gpu tests
"$PY" benchmarks/bench_sliding_window.py --device cuda --repeat 3 --batch-size 8
"$PY" -m medseg demo --out "${OUT:-/tmp}/medseg-demo-gpu" --no-progress --set train.device=cuda --set infer.device=cuda
