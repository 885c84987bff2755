r"""The smallest configuration: smoke tests, CI and the layout/scaling checks (seconds per run).

  python -m maskinpaint_jax.tools.build --src sample_data/celeba --data_dir runs/tiny/tfds --occlusions face_mask \
      --size 32 --limit 48
  python -m maskinpaint_jax.tools.train --config configs/tiny.py --workdir runs/tiny/train

32 px, a 1-level U-Net of width 4 (every kind of block once: MMRM with both attentions, down-
and up-sampling, a skip with channel attention), batch 8. It learns nothing useful; it exercises
everything, and compiles about 40 % faster than two levels (the test tiers compile it often).
"""

import pathlib

from maskinpaint_jax import cli


def get_config():
  config = cli.load_config(pathlib.Path(__file__).with_name("default.py"))
  config.data.data_dir = "runs/tiny/tfds"
  config.data.image_size = 32
  config.data.num_workers = 0
  config.data.prefetch_batches = 2
  config.batch_size = 8
  config.num_train_steps = 6
  config.model.base_width = 4
  config.model.width_multipliers = (1,)
  config.model.spatial_attention_kernel = 3
  config.disc.widths = (4, 8, 8)
  config.log_every_steps = 2
  config.eval_every_steps = 3
  config.checkpoint_every_steps = 2
  config.keep_checkpoints = 10
  config.num_eval_images = 8
  return config
