#!/usr/bin/env bash
# The shipped model (pretrained/face_mask_64), end to end on one machine; every step resumes.
#   launch/shipped.sh [STEPS]       (STEPS: stop the fine-tune there and export that step;
#                                    without it, configs/shipped.py:stage=finetune's steps)
# 1. data: ../shared/data/celeba + celeba_extra (12,000 photos) linked into data/celeba12k/ and
#    built at 64 px (face_mask with the realistic mask styles, and rect); the hash split keeps
#    10 % validation and 10 % test out of training.
# 2. first stage: train configs/shipped.py to step 3750 (pixel losses; 0.9 CPU hours) and export
#    it to runs/shipped_base;
# 3. second stage: fine-tune it with configs/shipped.py:stage=finetune (LPIPS-VGG16 perceptual term,
#    masks drawn anew every epoch) and export to pretrained/face_mask_64;
# 4. evaluate it on the test split; 5. write docs/shipped_results.json, the README results
#    block, the learning curves (docs/recipes.md) and a picture grid per mask style.
set -euo pipefail
PY=${PY:-.venv/bin/python}
SHARED=${SHARED:-../shared/data}
STEPS=${1:-}
for d in celeba celeba_extra; do  # file links: the build does not follow folder links
  mkdir -p "data/celeba12k/$d"
  ln -sf "$(realpath "$SHARED/$d")"/* "data/celeba12k/$d/"
done
$PY -m maskinpaint_jax.tools.build --src data/celeba12k --data_dir data/tfds12k --occlusions face_mask,rect \
    --size 64 --workers "$(nproc)"
$PY -m maskinpaint_jax.tools.train --config configs/shipped.py --workdir runs/shipped \
    --config.num_train_steps=3750
$PY -m maskinpaint_jax.tools.export --workdir runs/shipped --out runs/shipped_base --step 3750 \
    --note "configs/shipped.py on data/tfds12k (../shared/data/celeba + celeba_extra), step 3750"
$PY -m maskinpaint_jax.tools.train --config configs/shipped.py:stage=finetune \
    --workdir runs/shipped_finetune ${STEPS:+--config.num_train_steps=$STEPS}
# With STEPS, export exactly that step (the workdir may hold later ones: a workdir already past
# STEPS trains no further); without it, the newest.
$PY -m maskinpaint_jax.tools.export --workdir runs/shipped_finetune --out pretrained/face_mask_64 \
    ${STEPS:+--step "$STEPS"} \
    --note "runs/shipped_base fine-tuned by configs/shipped.py:stage=finetune on data/tfds12k (../shared/data/celeba + celeba_extra), launch/shipped.sh${STEPS:+ $STEPS}"
# Scores the exported folder, which holds exactly one step (STEPS when given; evaluate reports it
# and refuses --step for an exported model), so the results are those of the step just exported.
$PY -m maskinpaint_jax.tools.evaluate --config.data.eval_datasets=face_mask,rect \
    --identity=false --out runs/eval/finetune_test  # identity: make demo, on a subset (slow)
cp runs/eval/finetune_test/results.json docs/shipped_results.json
$PY -m maskinpaint_jax.tools.report --readme docs/shipped_results.json \
    --targets docs/shipped_results.json --write docs/recipes.md
$PY -m maskinpaint_jax.tools.recipes --curve runs/shipped --curve runs/recipes/blind --write docs/recipes.md
$PY -m maskinpaint_jax.tools.recipes --curve runs/shipped_finetune --write docs/recipes.md
mkdir -p docs/images
for f in runs/eval/finetune_test/samples_*.png; do cp "$f" "docs/images/shipped_$(basename "$f")"; done
