r"""CPU-sized configuration: what `make demo` trains on the bundled CelebA sample.

  python -m maskinpaint_jax.tools.train --config configs/demo.py --workdir runs/demo/train

Same model family and losses as configs/default.py, at 64 px with a narrow 3-level U-Net, sized
to train in about five minutes on 2 CPU cores: 300 steps of 16 images (~7.5 epochs of the
320 + 320 training examples of the face_mask and rect demo datasets, trained together). The
learning rate is 5x the paper's to make those few steps count. Not a paper configuration.
"""

import pathlib

from maskinpaint_jax import cli


def get_config():
  config = cli.load_config(pathlib.Path(__file__).with_name("default.py"))
  config.data.data_dir = "runs/demo/tfds"
  config.data.image_size = 64
  config.data.train_datasets = "face_mask,rect"
  config.data.num_workers = 0
  config.batch_size = 16
  config.num_train_steps = 300
  config.model.base_width = 16
  config.model.width_multipliers = (1, 2, 4)
  config.disc.widths = (16, 32, 64)
  config.optim.learning_rate = 1e-3
  config.log_every_steps = 25
  config.eval_every_steps = 100
  config.checkpoint_every_steps = 100
  config.num_eval_images = 16
  return config
