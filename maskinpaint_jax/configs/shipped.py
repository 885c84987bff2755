r"""The shipped model (pretrained/): what the CPU could train best, for restoring real photos.

  python -m maskinpaint_jax.tools.build --src data/celeba12k --data_dir data/tfds12k --occlusions face_mask,rect \
      --size 64 --workers 2
  python -m maskinpaint_jax.tools.train --config configs/shipped.py --workdir runs/shipped

(data/celeba12k = ../shared/data/celeba + ../shared/data/celeba_extra, 12,000 photos; the
build's hash split keeps 10 % validation and 10 % test out of training.)

The demo's model family (configs/demo.py: 64 px, width 16, lr 1e-3, batch 16), chosen by quality per CPU hour on short runs (docs/recipes.md):
non-blind (hole map as a 4th input, hole pixels zeroed), 4 U-Net levels, trained on the face-mask
styles and rectangles together, with extra L1 inside the hole. Not the paper's configuration: see
configs/default.py for that.
"""

import pathlib

from maskinpaint_jax import cli


def get_config():
  config = cli.load_config(pathlib.Path(__file__).with_name("demo.py"))
  config.data.data_dir = "data/tfds12k"
  config.num_train_steps = 12000
  config.model.width_multipliers = (1, 2, 4, 8)  # 4 levels: a 4 px bottleneck sees the hole
  config.model.non_blind = True
  config.loss.hole_l1_weight = 4.0
  config.log_every_steps = 50
  config.eval_every_steps = 250
  config.checkpoint_every_steps = 250
  config.keep_checkpoints = 100      # every checkpoint is kept for the learning curve
  config.num_eval_images = 256       # 128 face-mask + 128 rectangle validation images
  return config
