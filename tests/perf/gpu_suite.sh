#!/usr/bin/env bash
# The GPU suite under a hard time limit, with CPU threads set (data prep must not oversubscribe the host).
#   tests/perf/gpu_suite.sh [--budget-s 460] [any gpu_suite.py option]
# GPU_SUITE_LIMIT_S (default 480): the wall-clock kill limit; the script's own --budget-s (default 460)
# stops it starting new work before that. Exit status: the script's, or 124 when the limit killed it.
set -euo pipefail
cd "$(dirname "$0")/../.."
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-8}" MKL_NUM_THREADS="${MKL_NUM_THREADS:-8}"
export TOKENIZERS_PARALLELISM=false PYTHONUNBUFFERED=1
PY="${PYTHON:-.venv/bin/python}"
[ -x "$PY" ] || PY=python3
exec timeout --signal=INT --kill-after=15 "${GPU_SUITE_LIMIT_S:-480}" "$PY" tests/perf/gpu_suite.py "$@"
