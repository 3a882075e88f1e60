#!/usr/bin/env bash
# The GPU suite in one command, from the repository root on a CUDA machine:
#   OUT=/path/for/json [BUDGET_S=420] bash benchmarks/gpu_suite.sh [more gpu_suite.py options]
# A venv that sees the system's packages (a torch 2.13.0 already there is reused), torch
# 2.13.0 from PyPI (the CUDA build, which brings triton 3.7.1), this package, then the suite.
# Install failures are reported, not fatal: the suite then runs on what is there.
set -euo pipefail
OUT="${OUT:-benchmarks/results/gpu}"
if [ ! -x .venv-gpu/bin/python ]; then
  python3 -m venv --system-site-packages .venv-gpu \
    || { rm -rf .venv-gpu; python3 -m venv --system-site-packages --without-pip .venv-gpu; }
fi
PY=.venv-gpu/bin/python
$PY -m pip install -q torch==2.13.0 || echo "gpu_suite.sh: pip could not install torch==2.13.0"
$PY -m pip install -q -e '.[triton]' || $PY -m pip install -q numpy safetensors 'triton>=3.7,<3.9' \
  || echo "gpu_suite.sh: pip could not install the package; using what is there"
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"  # this checkout, installed or not
$PY -c 'import torch, triton; print("torch", torch.__version__, "cuda", torch.version.cuda,
  "triton", triton.__version__, "gpu", torch.cuda.is_available(), flush=True)'
exec $PY benchmarks/gpu_suite.py --out "$OUT" --budget-s "${BUDGET_S:-420}" "$@"
