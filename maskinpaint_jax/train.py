r"""Trains the masked-face inpainting GAN: the design card's entry point.

  python -m maskinpaint_jax.train --config configs/default.py --workdir runs/paper

The same program as `maskinpaint train` and `python -m maskinpaint_jax.tools.train` (its flags,
resuming, exit status); the loop is `trainer.train_and_evaluate`, the step `train_step`.
"""

from maskinpaint_jax import commands

if __name__ == "__main__":
  commands.run_command("train")
