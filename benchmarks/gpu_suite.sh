#!/usr/bin/env bash
# The GPU suite in one command, from the repository root on a CUDA machine:
#   OUT=/path/for/json [BUDGET_S=420] [PYTHON=python3] bash benchmarks/gpu_suite.sh [gpu_suite.py options]
# Nothing is installed when torch and this package's imports already work with $PYTHON
# (a device machine may have no package index: pip there only fails, slowly). Otherwise a
# venv that sees the system's packages (.venv-gpu) gets torch 2.13.0 (the CUDA build,
# which brings the triton it needs) and this package; install failures are reported, not
# fatal. The suite stops its sections at BUDGET_S; `timeout` kills it 50 s later (a hang
# inside one CUDA call), and the JSON written after each section stays.
set -euo pipefail
OUT="${OUT:-benchmarks/results/gpu}"
BUDGET_S="${BUDGET_S:-420}"
PY="${PYTHON:-python3}"
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"  # this checkout, installed or not
IMPORTS='import torch, numpy, yaml, safetensors, tqdm, huggingface_hub, av'
if ! "$PY" -c "$IMPORTS" 2>/dev/null; then
  if [ ! -x .venv-gpu/bin/python ]; then
    python3 -m venv --system-site-packages .venv-gpu \
      || { rm -rf .venv-gpu; python3 -m venv --system-site-packages --without-pip .venv-gpu; }
  fi
  PY=.venv-gpu/bin/python
  if ! "$PY" -c 'import torch' 2>/dev/null; then
    "$PY" -m pip install -q torch==2.13.0 || echo "gpu_suite.sh: pip could not install torch==2.13.0"
  fi
  "$PY" -c "$IMPORTS" 2>/dev/null || "$PY" -m pip install -q -e . \
    || echo "gpu_suite.sh: pip could not install the package; using what is there"
fi
"$PY" -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda,
  "gpu", torch.cuda.is_available(), flush=True)'
"$PY" -c 'import triton; print("triton", triton.__version__)' 2>/dev/null \
  || echo "gpu_suite.sh: triton does not import; the Triton rows will fail and the loop is used"
exec timeout --kill-after=10 "$((${BUDGET_S%.*} + 50))" \
  "$PY" benchmarks/gpu_suite.py --out "$OUT" --budget-s "$BUDGET_S" "$@"
