#!/usr/bin/env bash
# The shipped 128 px model (pretrained/face_mask_128): the 64 px model fine-tuned at 128 px,
# for the faces whose crop in the photo is 128 px or more (inpaint --large_model).
#   launch/shipped_128.sh STEPS      (export that step; needs data/celeba12k from launch/shipped.sh)
# 1. data: the same 12,000 photos built at 128 px, face masks only;
# 2. train configs/shipped.py:stage=finetune,res=128 (from pretrained/face_mask_64) and export STEPS in float16;
# 3. which model serves which face size, on the validation split (where the choice is made)
#    and on the test split (docs/benchmarks.md, "Face size").
set -euo pipefail
PY=${PY:-.venv/bin/python}
STEPS=${1:?give the step to export}
$PY -m maskinpaint_jax.tools.build --src data/celeba12k --data_dir data/tfds12k_128 \
    --occlusions face_mask --size 128 --workers "$(nproc)"
$PY -m maskinpaint_jax.tools.train --config configs/shipped.py:stage=finetune,res=128 --workdir runs/shipped_128 \
    --config.num_train_steps="$STEPS"
$PY -m maskinpaint_jax.tools.export --workdir runs/shipped_128 --out pretrained/face_mask_128 \
    --step "$STEPS" --storage float16 \
    --note "pretrained/face_mask_64 fine-tuned at 128 px by configs/shipped.py:stage=finetune,res=128 on data/tfds12k_128 (../shared/data/celeba + celeba_extra), launch/shipped_128.sh $STEPS"
for split_limit in validation:512 test:1201; do
  $PY -m maskinpaint_jax.tools.bench_sizes --data_dir data/tfds12k_128 --split "${split_limit%:*}" \
      --models pretrained/face_mask_64,pretrained/face_mask_64@128,pretrained/face_mask_128 \
      --limit "${split_limit#*:}" --write docs/benchmarks.md
done
