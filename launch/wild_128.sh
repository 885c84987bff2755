#!/usr/bin/env bash
# The 128 px model trained on the faces the tool meets (configs/shipped.py:stage=wild), and its reference.
#   launch/wild_128.sh MINUTES
# 1. data: ../shared/data/celeba + celeba_extra and the training part of the in-the-wild faces
#    (maskinpaint_jax.photo_sets: nomask half A + nomask_more "train"), each linked three times
#    into data/mix128/ so that about a fifth of the draws are faces in the wild,
#    built at 128 px with the MediaPipe finder, so each face is framed as inpaint frames it;
#    CelebA alone built as launch/shipped_128.sh builds it;
# 2. both variants trained for MINUTES each at once, one CPU core each (equal CPU time), from
#    pretrained/face_mask_128; SIGTERM saves a checkpoint, and running this again resumes.
set -euo pipefail
PY=${PY:-.venv/bin/python}
SHARED=${SHARED:-../shared/data}
MINUTES=${1:?give the minutes of training per variant}
for d in celeba celeba_extra; do  # file links: the build does not follow folder links
  mkdir -p "data/mix128/$d" "data/celeba12k/$d"
  ln -sf "$(realpath "$SHARED/$d")"/* "data/mix128/$d/"
  ln -sf "$(realpath "$SHARED/$d")"/* "data/celeba12k/$d/"
done
$PY -m maskinpaint_jax.tools.link_photos --src "$SHARED/nomask,$SHARED/nomask_more" --split train \
    --out data/mix128/wild --repeat 3
$PY -m maskinpaint_jax.tools.build --src data/mix128 --data_dir data/tfds_mix128 \
    --occlusions face_mask --size 128 --workers "$(nproc)" --min_face_size 24 --face_finder mesh
$PY -m maskinpaint_jax.tools.build --src data/celeba12k --data_dir data/tfds12k_128 \
    --occlusions face_mask --size 128 --workers "$(nproc)"
train() {  # core, variant, workdir
  taskset -c "$1" timeout -s TERM "${MINUTES}m" $PY -m maskinpaint_jax.tools.train \
      --config "configs/shipped.py:stage=wild,data=$2" --workdir "$3" || [ $? -eq 124 ]
}
train 0 celeba runs/celeba_128 > runs/celeba_128.log 2>&1 &
train 1 mix runs/wild_128 > runs/wild_128.log 2>&1 &
wait
