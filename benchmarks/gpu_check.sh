#!/usr/bin/env bash
# GPU check (issue 11): the paper's large (128^3 x 2, AMP) and small (32^3 x 128, AMP) settings for
# baseline, CoordConv and LocBAM, a fixed number of iterations each; iterations/s and peak GPU
# memory as JSON. About a minute or two on one H100; exits 3 with one line when CUDA is absent.
#
#   benchmarks/gpu_check.sh [OUT.json] [extra gpu_check.py options, e.g. --iterations 50]
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-.venv/bin/python}"
[ -x "$PY" ] || PY=python3
OUT="${1:-bench-out/gpu_check.json}"
shift || true
exec "$PY" benchmarks/gpu_check.py --out "$OUT" "$@"
