r"""The 128 px model trained on the faces the tool meets: in-the-wild faces mixed with CelebA.

  launch/wild_128.sh          (links the photos, builds both datasets, trains both variants)
  python -m maskinpaint_jax.tools.train --config configs/wild_128.py:mix --workdir runs/wild_128
  python -m maskinpaint_jax.tools.train --config configs/wild_128.py:celeba \
      --workdir runs/celeba_128

Variants by argument:
- "mix" (default): data/tfds_mix128, built from ../shared/data/celeba + celeba_extra and the
  training part of the in-the-wild unmasked faces (nomask/ half A + nomask_more/ "train",
  `maskinpaint_jax.photo_sets.wild_split`), every face framed by `faces.align.crop_matrix` as
  inpaint frames it; face masks drawn by Algorithm 1 anew every epoch from the landmarks.
- "celeba": the same recipe on CelebA alone (data/tfds12k_128): the equal-CPU-time reference.

Both continue pretrained/face_mask_128 with configs/shipped_128.py's recipe (LPIPS-VGG16 of the
composite in the hole, weight 3; Adam 1e-4, batch 16; a fresh spectral-norm PatchGAN).
"""

import pathlib

from maskinpaint_jax import cli

DATA_DIRS = {"mix": "data/tfds_mix128", "celeba": "data/tfds12k_128"}


def get_config(arg: str = "mix"):
  if arg not in DATA_DIRS:
    raise ValueError(f"configs/wild_128.py: variant {arg!r}, expected one of {sorted(DATA_DIRS)}")
  config = cli.load_config(pathlib.Path(__file__).with_name("shipped_128.py"))
  config.init_generator = "pretrained/face_mask_128"
  config.data.data_dir = DATA_DIRS[arg]
  config.num_train_steps = 20000     # stopped by time; every checkpoint resumes exactly
  config.eval_every_steps = 100
  config.checkpoint_every_steps = 50
  config.keep_checkpoints = 100
  return config
