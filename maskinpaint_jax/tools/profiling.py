r"""Top XLA ops by time from a `jax.profiler.trace` folder (`maskinpaint_jax.profiling`).

  python -m maskinpaint_jax.tools.profiling runs/profile [--top 15] [--module train_step]
"""

from __future__ import annotations

from absl import app, flags

from maskinpaint_jax import cli, profiling


def define_flags(fv: flags.FlagValues = flags.FLAGS):
  flags.DEFINE_integer("top", 15, "Ops listed.", flag_values=fv)
  flags.DEFINE_string("module", None, "Only ops of programs whose name contains this.",
                      flag_values=fv)


def main(argv, f: flags.FlagValues = flags.FLAGS):
  """python -m maskinpaint_jax.tools.profiling LOG_DIR [--top 15] [--module train_step]: LOG_DIR is
  the folder given to jax.profiler.trace."""
  if len(argv) != 1:
    raise app.UsageError("name one LOG_DIR, the folder given to jax.profiler.trace", exitcode=2)
  print(profiling.markdown(profiling.top_ops(argv[0], f.module, f.top)))


if __name__ == "__main__":
  define_flags()
  cli.run(main)
