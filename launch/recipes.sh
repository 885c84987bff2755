#!/usr/bin/env bash
# Short runs that chose the shipped model's recipe by quality per CPU hour (docs/recipes.md).
# Each variant trains configs/shipped.py with a few overrides for STEPS steps on the same data
# and is validated on the same 256 validation images (face-mask styles and rectangles), then
# `python -m maskinpaint_jax.tools.recipes` tabulates the runs' own metrics.jsonl.
#   STEPS=400 launch/recipes.sh            (about 30 minutes on 2 CPU cores: the CPU h column of
#                                          docs/recipes.md, "Recipes: quality per CPU hour")
# Needs data/tfds12k, built by launch/shipped.sh's first step (from ../shared/data).
set -euo pipefail
STEPS=${STEPS:-400}
OUT=${OUT:-runs/recipes}
PY=${PY:-.venv/bin/python}
# name, U-Net levels, then overrides of configs/shipped.py (the winner, with 4 levels).
run() {
  local name=$1 levels=$2; shift 2
  $PY -m maskinpaint_jax.tools.train --config configs/shipped.py --workdir "$OUT/$name" \
    --config.num_train_steps="$STEPS" --config.eval_every_steps=100 \
    --config.checkpoint_every_steps="$STEPS" --config.keep_checkpoints=1 \
    --config.model.width_multipliers="$levels" "$@"
}
run blind             "(1, 2, 4)" --config.model.non_blind=False --config.loss.hole_l1_weight=0.0
run non_blind         "(1, 2, 4)" --config.loss.hole_l1_weight=0.0
run non_blind_hole_l1 "(1, 2, 4)"
run hole_l1_4_levels  "(1, 2, 4, 8)"
run hole_l1_lr_2e-3   "(1, 2, 4)" --config.optim.learning_rate=2e-3
$PY -m maskinpaint_jax.tools.recipes --runs "$OUT" --write docs/recipes.md
