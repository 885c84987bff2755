#!/usr/bin/env bash
# Short fine-tuning runs from the shipped generator that chose the looks recipe (the perceptual
# term, feature matching, adversarial weight, masks drawn fresh every epoch) by quality per CPU
# time: each run gets about the same training time, so slower steps get fewer of them (the
# steps below follow each recipe's measured speed on 2 CPU cores). All are validated on the same
# 256 validation images (128 face masks, 128 rectangles): hole PSNR and composite LPIPS per mask
# style, tabulated by `python -m maskinpaint_jax.tools.recipes` (docs/recipes.md, "Looks").
#   launch/looks.sh          (about 30 minutes on 2 CPU cores)
# Needs data/tfds12k, built by launch/shipped.sh's first step (from ../shared/data), and the
# first-stage model to start from (INIT; launch/shipped.sh exports it to runs/shipped_base; the
# table in docs/recipes.md was made from the same weights, then at pretrained/face_mask_64).
set -euo pipefail
INIT=${INIT:-runs/shipped_base}
OUT=${OUT:-runs/looks}
PY=${PY:-.venv/bin/python}
SCALE=${SCALE:-1}   # multiplies every run's steps (same ratios: equal time stays equal)
run() {
  local name=$1 steps=$2; shift 2
  steps=$((steps * SCALE))
  $PY -m maskinpaint_jax.tools.train --config configs/shipped.py --workdir "$OUT/$name" \
    --config.init_generator="$INIT" --config.optim.learning_rate=1e-4 \
    --config.num_train_steps="$steps" --config.eval_every_steps=$((steps / 2)) \
    --config.checkpoint_every_steps="$steps" --config.keep_checkpoints=1 "$@"
}
run pixel             330
run fresh_masks       330 --config.data.fresh_masks=True
run lpips_vgg         200 --config.data.fresh_masks=True --config.loss.perceptual_weight=1.0
run lpips_vgg_x3      200 --config.data.fresh_masks=True --config.loss.perceptual_weight=3.0
run lpips_vgg_fm_adv  190 --config.data.fresh_masks=True --config.loss.perceptual_weight=1.0 \
    --config.loss.feature_matching_weight=1.0 --config.loss.adv_weight=0.05
$PY -m maskinpaint_jax.tools.recipes --runs "$OUT" --looks --write docs/recipes.md
