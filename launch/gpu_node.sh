#!/usr/bin/env bash
# One GPU node (all its GPUs, one process) or one GPU: build the masked-face datasets from a seeded
# random 40,000-photo subset of CelebA, then train and score one model per occlusion the paper
# reports, each trained on that occlusion only: face_mask (Table II) and rect (Table III).
#
#   launch/gpu_node.sh /data/celeba/img_align_celeba /data/celeba/list_eval_partition.txt [WORKDIR]
#
# The subset is drawn per CelebA split in proportion to its size (maskinpaint_jax/tools/build.py --limit), so
# train, validation and test all keep photos. Results: WORKDIR/<occlusion>/full/eval/test-step*/
# results.md (Tables II / III layout, baselines) and WORKDIR/ablations.md (every run scored).
# Environment knobs: DATA_DIR (default data/tfds), LIMIT (default 40000, the paper's subset size;
# 0 = all 202,599 photos), SUBSET_SEED (default 0), WORKERS (default: all cores), OCCLUSIONS
# (default face_mask,rect), VARIANTS (default full; all = + the four ablations of Tables IV / V,
# see launch/ablations.sh), CONFIG (default configs/default.py), BATCH (default: the config's
# batch rounded up to a multiple of the GPU count), EXTRA (--config.x=y overrides for every run),
# EVAL_ARGS (more flags of maskinpaint_jax.tools.ablations, e.g. --identity or --eval_limit N).
# A PARTITION of "" splits by a hash of the file name instead. Re-running the script resumes:
# complete datasets are kept, finished runs skipped, an interrupted run continues from its newest
# checkpoint, a scored checkpoint is not scored again.
set -euo pipefail
USAGE="usage: $0 IMG_ALIGN_CELEBA_DIR LIST_EVAL_PARTITION_TXT [WORKDIR]"
SRC=$(realpath "${1:?$USAGE}")
PARTITION=${2?$USAGE}
[ -n "$PARTITION" ] && PARTITION=$(realpath "$PARTITION")
WORKDIR=$(realpath -m "${3:-runs/paper}")
DATA_DIR=$(realpath -m "${DATA_DIR:-data/tfds}")
LIMIT=${LIMIT:-40000}
SUBSET_SEED=${SUBSET_SEED:-0}
WORKERS=${WORKERS:-$(nproc)}
OCCLUSIONS=${OCCLUSIONS:-face_mask,rect}
VARIANTS=${VARIANTS:-full}
CONFIG=$(realpath "${CONFIG:-$(dirname "$0")/../configs/default.py}")
cd "$(dirname "$0")/.."

# Install once: the CUDA build of JAX, and face_recognition without compiling dlib.
if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
  .venv/bin/pip install -q "pip>=24" "setuptools<81" wheel
  .venv/bin/pip install -q -c constraints.txt -e ".[cuda12]"
  .venv/bin/pip install -q -c constraints.txt --no-deps face_recognition
fi
PY=.venv/bin/python
CONFIG_VALUES=$($PY -c "import sys, jax; from maskinpaint_jax import cli
c = cli.load_config(sys.argv[1]); print(c.data.image_size, c.batch_size, jax.device_count())" \
    "$CONFIG")
read -r SIZE CONFIG_BATCH NGPU <<< "$CONFIG_VALUES"

# 1. Data (CPU): both datasets at the config's size; faces are found once, shared by the builds.
LIMIT_ARG=(); [ "$LIMIT" != 0 ] && LIMIT_ARG=(--limit "$LIMIT" --subset_seed "$SUBSET_SEED")
PART_ARG=(); [ -n "$PARTITION" ] && PART_ARG=(--partition "$PARTITION")
$PY -m maskinpaint_jax.tools.build --src "$SRC" "${PART_ARG[@]}" --data_dir "$DATA_DIR" \
    --occlusions "$OCCLUSIONS" --size "$SIZE" --workers "$WORKERS" --no_face fixed_box \
    "${LIMIT_ARG[@]}" --preview 16

# 2. Train and score one model per (occlusion, variant). The global batch must split evenly over
# the GPUs: the paper's 1500 is rounded up.
BATCH=${BATCH:-$(( (CONFIG_BATCH + NGPU - 1) / NGPU * NGPU ))}
echo "training on $NGPU device(s), global batch $BATCH: $OCCLUSIONS x $VARIANTS"
export XLA_PYTHON_CLIENT_MEM_FRACTION=${XLA_PYTHON_CLIENT_MEM_FRACTION:-0.92}
# shellcheck disable=SC2086  # EXTRA and EVAL_ARGS are lists of flags
$PY -m maskinpaint_jax.tools.ablations --config "$CONFIG" --workdir "$WORKDIR" \
    --occlusions "$OCCLUSIONS" --variants "$VARIANTS" --config.data.data_dir="$DATA_DIR" \
    --config.batch_size="$BATCH" ${EXTRA:-} ${EVAL_ARGS:-}
