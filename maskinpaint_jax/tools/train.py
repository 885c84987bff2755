r"""Trains the masked-face inpainting GAN (paper section II) on the datasets of tools/build.

  python -m maskinpaint_jax.tools.train --config configs/default.py --workdir runs/paper \
      [--config.batch_size=1504] [--coordinator_address=host:port --num_processes=N --process_id=i]

Running the same command again resumes from the newest checkpoint in --workdir. SIGTERM or Ctrl-C
saves a checkpoint and exits; a non-finite loss stops the run (status 3) before any checkpoint
with it is written. The loop is `trainer.train_and_evaluate`; the step is `train_step`.
"""

from __future__ import annotations

from absl import flags

from maskinpaint_jax import cli, distributed, trainer


def define_flags(fv: flags.FlagValues = flags.FLAGS):
  """Command-line flags; defined only when run as a program, so importing this is side-effect
  free."""
  cli.define_config_flag(fv=fv)
  flags.DEFINE_string("workdir", None, "Where checkpoints, logs and samples go.", required=True,
                      flag_values=fv)
  distributed.define_flags(fv=fv)


def main(argv, f: flags.FlagValues = flags.FLAGS):
  cli.no_args(argv)
  distributed.initialize(f)
  trainer.train_and_evaluate(f.config, f.workdir)


if __name__ == "__main__":
  define_flags()
  cli.run(main)
