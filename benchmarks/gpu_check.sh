#!/usr/bin/env bash
# GPU check (issue 21): what a GPU user needs before training the paper's settings, as one JSON:
# samples/s and peak memory of the training step at the paper's widths (32^3 x 128 and 128^3 x 2, bf16
# and fp32, baseline / CoordConv / LocBAM), whether the data loading keeps the GPU busy (real batches
# against one cached batch), and 200 iterations of a paper preset on a synthetic cohort.
# About 5 minutes on one H100 (8 at most). Exit 0: every part ran; 1: a part failed (the JSON says
# which, with its error); 3: no CUDA. `--cpu-smoke` runs the same parts at tiny sizes on CPU.
#
#   benchmarks/gpu_check.sh [--cpu-smoke] [OUT.json] [more gpu_check.py options, e.g. --iterations 50]
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-.venv/bin/python}"
[ -x "$PY" ] || PY=python3
SMOKE=()
if [ "${1:-}" = "--cpu-smoke" ]; then SMOKE=(--cpu-smoke); shift; fi
OUT="${1:-bench-out/gpu_check${SMOKE:+-cpu-smoke}.json}"
[ $# -gt 0 ] && shift
exec "$PY" benchmarks/gpu_check.py --out "$OUT" ${SMOKE[@]+"${SMOKE[@]}"} "$@"
