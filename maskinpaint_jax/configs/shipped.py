r"""The shipped models (pretrained/): what the CPU could train best, for restoring real photos.

One family, its stages chosen by argument (big_vision's `get_config(arg)`: "KEY=VALUE,..."):

  configs/shipped.py                          stage 1: face_mask_64 from scratch (the default)
  configs/shipped.py:stage=finetune           stage 2: stage 1 fine-tuned for looks
  configs/shipped.py:stage=finetune,res=128   stage 2 at 128 px from face_mask_64: face_mask_128
  configs/shipped.py:stage=wild               face_mask_128 on in-the-wild faces with CelebA
  configs/shipped.py:stage=wild,data=celeba   the same recipe on CelebA alone (its reference)

  python -m maskinpaint_jax.tools.build --src data/celeba12k --data_dir data/tfds12k --occlusions face_mask,rect \
      --size 64 --workers 2
  python -m maskinpaint_jax.tools.train --config configs/shipped.py --workdir runs/shipped

(data/celeba12k = ../shared/data/celeba + ../shared/data/celeba_extra, 12,000 photos; the
build's hash split keeps 10 % validation and 10 % test out of training; launch/shipped.sh,
launch/shipped_128.sh and launch/wild_128.sh run each stage with its build.)

Stage 1, "base": the demo's model family (configs/demo.py: 64 px, width 16, lr 1e-3, batch 16),
chosen by quality per CPU hour on short runs (docs/recipes.md): non-blind (hole map as a 4th
input, hole pixels zeroed), 4 U-Net levels, trained on the face-mask styles and rectangles
together, with extra L1 inside the hole. Not the paper's configuration: see configs/default.py.

Stage 2, "finetune": starts from stage 1 (at step 3750, exported to runs/shipped_base by
launch/shipped.sh) and adds what the equal-time runs of launch/looks.sh chose (docs/recipes.md,
"Looks"): LPIPS-VGG16 of the composite as a perceptual term (pixel losses alone settle on a
blur), and masks drawn anew every epoch. Learning rate 1e-4: a fine-tune, as in those runs.
The tables headline LPIPS-AlexNet, which nothing here trains on.

"res=128": stage 2's recipe on the same photos built at 128 px (data/tfds12k_128, face masks
only), from the shipped 64 px model: the U-Net is fully convolutional, so the same weights start
at 128 px. For faces whose crop in the photo is 128 px or more; whether it serves them better
than the 64 px model enlarged: `tools/bench_sizes`.

Stage "wild" (always 128 px): continues pretrained/face_mask_128 with that recipe on the faces
the tool meets. data=mix (default): data/tfds_mix128, built from CelebA and the training part of
the in-the-wild unmasked faces (nomask/ half A + nomask_more/ "train",
`maskinpaint_jax.photo_sets.wild_split`), every face framed by `faces.align.crop_matrix` as
inpaint frames it; data=celeba: data/tfds12k_128, the equal-CPU-time reference.
"""

import pathlib

from maskinpaint_jax import cli, errors

CHOICES = {"stage": ("base", "finetune", "wild"),
           "res": ("", "64", "128"),             # "": the stage's own (wild: 128, else 64)
           "data": ("", "celeba", "mix")}       # "": the stage's own (wild: mix, else celeba)
WILD_DATA_DIRS = {"mix": "data/tfds_mix128", "celeba": "data/tfds12k_128"}


def get_config(arg: str = ""):
  """The ConfigDict of the variant `arg` ("" = stage 1); errors.UsageError for an unknown or
  contradictory one (stage=base,res=128; stage=wild,res=64; data=mix outside stage=wild)."""
  v = cli.variant(arg, CHOICES, "configs/shipped.py")
  stage = v["stage"]
  res = v["res"] or ("128" if stage == "wild" else "64")
  data = v["data"] or ("mix" if stage == "wild" else "celeba")
  if (stage == "base" and res != "64") or (stage == "wild" and res != "128") or (
      stage != "wild" and data != "celeba"):
    raise errors.UsageError(
        f"configs/shipped.py: no variant {arg!r}: res=128 is a stage (finetune or wild) from a "
        "64 px model, stage=wild is 128 px only, data=mix is stage=wild only")
  config = cli.load_config(pathlib.Path(__file__).with_name("demo.py"))
  # Each step overrides the one before: stage 1, then the fine-tune, then 128 px, then wild.
  steps = [BASE] + [FINETUNE] * (stage != "base") + [AT_128] * (res == "128") + [
      dict(WILD, **{"data.data_dir": WILD_DATA_DIRS[data]})] * (stage == "wild")
  for overrides in steps:
    cli.set_fields(config, overrides)
  return config


BASE = {
    "data.data_dir": "data/tfds12k",
    "num_train_steps": 12000,
    "model.width_multipliers": (1, 2, 4, 8),  # 4 levels: a 4 px bottleneck sees the hole
    "model.non_blind": True,
    "loss.hole_l1_weight": 4.0,
    "log_every_steps": 50,
    "eval_every_steps": 250,
    "checkpoint_every_steps": 250,
    "keep_checkpoints": 100,      # every checkpoint is kept for the learning curve
    "num_eval_images": 256,       # 128 face-mask + 128 rectangle validation images
}
FINETUNE = {
    "init_generator": "runs/shipped_base",
    "optim.learning_rate": 1e-4,
    "data.fresh_masks": True,
    "loss.perceptual_weight": 3.0,
    "loss.perceptual_net": "lpips_vgg",
    "loss.perceptual_region": "hole",
    "num_train_steps": 2500,
    "eval_every_steps": 250,
    "checkpoint_every_steps": 250,
}
AT_128 = {
    "init_generator": "pretrained/face_mask_64",
    "data.data_dir": "data/tfds12k_128",
    "data.image_size": 128,
    "data.train_datasets": "face_mask",
    "data.eval_datasets": "face_mask",
    "num_eval_images": 128,
    "num_train_steps": 3000,
    "eval_every_steps": 200,
    "checkpoint_every_steps": 100,
}
WILD = {
    "init_generator": "pretrained/face_mask_128",
    "num_train_steps": 20000,     # stopped by time; every checkpoint resumes exactly
    "eval_every_steps": 100,
    "checkpoint_every_steps": 50,
    "keep_checkpoints": 100,
}
