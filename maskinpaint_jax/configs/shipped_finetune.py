r"""The shipped model's second stage: configs/shipped.py's model fine-tuned for looks.

  python -m maskinpaint_jax.tools.train --config configs/shipped_finetune.py \
      --workdir runs/shipped_finetune

Starts from the first stage (configs/shipped.py at step 3750, exported to runs/shipped_base by
launch/shipped.sh) and adds what the equal-time runs of launch/looks.sh chose (docs/recipes.md,
"Looks"): LPIPS-VGG16 of the composite as a perceptual term (pixel losses alone settle on a
blur), and masks drawn anew every epoch. Learning rate 1e-4: a fine-tune, as in those runs.
The tables headline LPIPS-AlexNet, which nothing here trains on.
"""

import pathlib

from maskinpaint_jax import cli


def get_config():
  config = cli.load_config(pathlib.Path(__file__).with_name("shipped.py"))
  config.init_generator = "runs/shipped_base"
  config.optim.learning_rate = 1e-4
  config.data.fresh_masks = True
  config.loss.perceptual_weight = 3.0
  config.loss.perceptual_net = "lpips_vgg"
  config.loss.perceptual_region = "hole"
  config.num_train_steps = 2500
  config.eval_every_steps = 250
  config.checkpoint_every_steps = 250
  return config
