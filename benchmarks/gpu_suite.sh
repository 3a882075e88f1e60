#!/usr/bin/env bash
# The GPU suite in one command, from the repository root on a CUDA machine:
#   OUT=/path/for/json bash benchmarks/gpu_suite.sh [extra gpu_suite.py options]
# A venv that sees the system's packages (a torch 2.13.0 already there is reused), torch
# 2.13.0 from PyPI (the CUDA build, which brings triton 3.7.1), this package, then the suite.
set -euo pipefail
OUT="${OUT:-benchmarks/results/gpu}"
[ -x .venv-gpu/bin/python ] || python3 -m venv --system-site-packages .venv-gpu
PY=.venv-gpu/bin/python
$PY -m pip install -q torch==2.13.0
$PY -m pip install -q -e '.[triton]' || $PY -m pip install -q numpy safetensors 'triton>=3.7,<3.9'
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"  # the checkout, installed or not
$PY -c 'import torch, triton; print("torch", torch.__version__, "cuda", torch.version.cuda,
  "triton", triton.__version__, "gpu", torch.cuda.is_available())'
exec $PY benchmarks/gpu_suite.py --out "$OUT" --budget-s "${BUDGET_S:-420}" "$@"
