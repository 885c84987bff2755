#!/usr/bin/env bash
# The GPU check on one GPU node, every result in one folder (on a GPU only its bench phase has
# run, once on an H100: docs/benchmarks.md, "GPU: ..."; for all phases plan on BENCH_BUDGET_S +
# BUDGET_S + the build, start-ups and evaluation, an estimate of 10-12 minutes):
#   1. `bench train`, 128 px default config, float32 and bfloat16, each at the largest
#      per-device batch that fits (found by doubling until out of memory): img/s, step and
#      compile time, peak device memory, MFU, and the top ops of one profiled step;
#   2. the face_mask and rect datasets at 128 px from the photo folders of SRC on every core
#      (default ../shared/data/celeba + celeba_extra, 12,000 photos of a development tree, not in
#      the repository: set SRC, e.g. SRC=/data/celeba/img_align_celeba LIMIT=12000);
#   3. 300 s of training in the faster dtype (then SIGTERM: train saves and exits), the generator
#      exported to OUT/generator and scored on the test split next to Telea / Navier-Stokes.
#
#   launch/gpu_check.sh [OUT]          (default: $OUT if set, else runs/gpu_check/out)
#   TOY=1 launch/gpu_check.sh OUT      the same on CPU at toy size, end to end in minutes:
#       configs/tiny.py at 32 px, 48 photos of sample_data/celeba, 8 fake CPU devices, 20 s of
#       training, per-device batches 1-2 (tests/test_gpu_check.py runs it with BATCH_MAX=1,
#       BUDGET_S=5).
#
# Knobs (environment; TOY=1 changes the defaults shown in brackets): CONFIG (configs/default.py
# [configs/tiny.py]), SIZE (128 [32]), SRC (comma-separated photo folders,
# ../shared/data/celeba,../shared/data/celeba_extra [sample_data/celeba]), LIMIT (all [48]),
# WORKERS (nproc), BUDGET_S (300 [20]), BATCH_START (64 [1]), BATCH_MAX (2048 [2]),
# BENCH_BUDGET_S (200: both dtypes' searches, float32 half of it and bfloat16 the rest; no probe
# that would end past it, judged by the probe before), BENCH_STEPS (10 [3]), BENCH_WARMUP (2),
# PROBE_TIMEOUT_S (600: one bench probe, then it counts as failed), DTYPE and
# TRAIN_BATCH (default: from the bench), TRAIN_DATASETS (face_mask), PHASES
# (bench,build,train,evaluate), LOG_EVERY (20 [2]) and EVAL_EVERY (200 [5]) training steps
# between logs / validations, EVAL_ARGS (more evaluate flags [--noidentity]), WORK
# (scratch: photos, datasets, checkpoints; runs/gpu_check/work), PY
# (.venv/bin/python if present, else python3). CONFIG and SRC are relative to the repo root,
# OUT and WORK to the current folder. Exit status 1 if any phase failed (the others still run);
# summary.md says which and why, and how long each phase took.
set -euo pipefail
OUT=$(realpath -m "${1:-${OUT:-$(dirname "$0")/../runs/gpu_check/out}}")
WORK=$(realpath -m "${WORK:-$(dirname "$0")/../runs/gpu_check/work}")
cd "$(dirname "$0")/.."  # CONFIG and SRC are relative to the repo root
if [ -z "${PY:-}" ]; then
  if [ -x .venv/bin/python ]; then PY=.venv/bin/python; else PY=python3; fi
fi
if [ "${TOY:-0}" = 1 ]; then
  # 8 fake CPU devices: the data-parallel layout of a GPU node, on any machine.
  export JAX_PLATFORMS=cpu
  export XLA_FLAGS="${XLA_FLAGS:-} --xla_force_host_platform_device_count=8"
  : "${CONFIG:=configs/tiny.py}" "${SIZE:=32}" "${SRC:=sample_data/celeba}" "${LIMIT:=48}"
  : "${BUDGET_S:=20}" "${BATCH_START:=1}" "${BATCH_MAX:=2}" "${BENCH_STEPS:=3}"
  : "${LOG_EVERY:=2}" "${EVAL_EVERY:=5}"
  : "${EVAL_ARGS:=--noidentity}"
fi
ARGS=(--out "$OUT" --work "$WORK"
      --config "${CONFIG:-configs/default.py}" --size "${SIZE:-128}"
      --src "${SRC:-../shared/data/celeba,../shared/data/celeba_extra}"
      --workers "${WORKERS:-$(nproc)}" --budget_s "${BUDGET_S:-300}"
      --batch_start "${BATCH_START:-64}" --batch_max "${BATCH_MAX:-2048}"
      --bench_budget_s "${BENCH_BUDGET_S:-200}" --bench_steps "${BENCH_STEPS:-10}"
      --bench_warmup "${BENCH_WARMUP:-2}" --probe_timeout_s "${PROBE_TIMEOUT_S:-600}"
      --train_datasets "${TRAIN_DATASETS:-face_mask}"
      --phases "${PHASES:-bench,build,train,evaluate}"
      --log_every "${LOG_EVERY:-20}" --eval_every "${EVAL_EVERY:-200}"
      "--eval_args=${EVAL_ARGS:-}")
[ -n "${LIMIT:-}" ] && ARGS+=(--limit "$LIMIT")
[ -n "${DTYPE:-}" ] && ARGS+=(--dtype "$DTYPE")
[ -n "${TRAIN_BATCH:-}" ] && ARGS+=(--train_batch "$TRAIN_BATCH")
mkdir -p "$OUT"
if command -v nvidia-smi >/dev/null; then nvidia-smi >"$OUT/nvidia-smi.txt" 2>&1 || true; fi
exec "$PY" -m maskinpaint_jax.tools.gpu_check "${ARGS[@]}"
