r"""The shipped 64 px model fine-tuned at 128 px (the paper's size), for faces whose crop in the
photo is 128 px or more: the U-Net is fully convolutional, so the same weights start at 128 px.

  python -m maskinpaint_jax.tools.build --src data/celeba12k --data_dir data/tfds12k_128 \
      --occlusions face_mask --size 128 --workers 2
  python -m maskinpaint_jax.tools.train --config configs/shipped_128.py --workdir runs/shipped_128

The recipe of configs/shipped_finetune.py (LPIPS-VGG16 of the composite, masks drawn anew every
epoch, learning rate 1e-4) on the same photos built at 128 px, face masks only. Whether it
serves large faces better than the 64 px model enlarged: `tools/bench_sizes`.
"""

import pathlib

from maskinpaint_jax import cli


def get_config():
  config = cli.load_config(pathlib.Path(__file__).with_name("shipped_finetune.py"))
  config.init_generator = "pretrained/face_mask_64"
  config.data.data_dir = "data/tfds12k_128"
  config.data.image_size = 128
  config.data.train_datasets = "face_mask"
  config.data.eval_datasets = "face_mask"
  config.num_eval_images = 128
  config.num_train_steps = 3000
  config.eval_every_steps = 200
  config.checkpoint_every_steps = 100
  return config
