#!/usr/bin/env bash
# One GPU node, all its GPUs, one process: build the full CelebA masked-face datasets, then train
# the paper configuration (configs/default.py, Table I).
#
#   launch/gpu_node.sh /data/celeba/img_align_celeba /data/celeba/list_eval_partition.txt [WORKDIR]
#
# Environment knobs: DATA_DIR (default data/tfds), LIMIT (default 40000, the paper's subset size;
# 0 = all 202,599 photos), WORKERS (default: all cores), EXTRA (more --config.x=y overrides).
# Re-running the script resumes: complete datasets are kept, training continues from the newest
# checkpoint in WORKDIR.
set -euo pipefail
SRC=${1:?usage: $0 IMG_ALIGN_CELEBA_DIR LIST_EVAL_PARTITION_TXT [WORKDIR]}
PARTITION=${2:?usage: $0 IMG_ALIGN_CELEBA_DIR LIST_EVAL_PARTITION_TXT [WORKDIR]}
WORKDIR=${3:-runs/paper}
DATA_DIR=${DATA_DIR:-data/tfds}
LIMIT=${LIMIT:-40000}
WORKERS=${WORKERS:-$(nproc)}
cd "$(dirname "$0")/.."

# Install once: the CUDA build of JAX, and face_recognition without compiling dlib.
if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
  .venv/bin/pip install -q "pip>=24" "setuptools<81" wheel
  .venv/bin/pip install -q -c constraints.txt -e ".[cuda12]"
  .venv/bin/pip install -q -c constraints.txt --no-deps face_recognition
fi
PY=.venv/bin/python

# 1. Data (CPU): both datasets at 128 px; faces are found once and shared by the two builds.
LIMIT_ARG=(); [ "$LIMIT" != 0 ] && LIMIT_ARG=(--limit "$LIMIT")
$PY -m data_prep.build --src "$SRC" --partition "$PARTITION" --data_dir "$DATA_DIR" \
    --config face_mask,rect --size 128 --workers "$WORKERS" --no_face fixed_box \
    "${LIMIT_ARG[@]}" --preview 16

# 2. Train. The global batch must split evenly over the GPUs: the paper's 1500 is rounded up.
NGPU=$($PY -c "import jax; print(jax.device_count())")
BATCH=$(( (1500 + NGPU - 1) / NGPU * NGPU ))
echo "training on $NGPU GPU(s), global batch $BATCH"
export XLA_PYTHON_CLIENT_MEM_FRACTION=${XLA_PYTHON_CLIENT_MEM_FRACTION:-0.92}
$PY -m maskinpaint_jax.train --config configs/default.py --workdir "$WORKDIR" \
    --config.data.data_dir="$DATA_DIR" --config.batch_size=$BATCH ${EXTRA:-}

# 3. Evaluate (Tables II / III, baselines, identity).
$PY -m maskinpaint_jax.evaluate --workdir "$WORKDIR" --config configs/default.py \
    --config.data.data_dir="$DATA_DIR"
