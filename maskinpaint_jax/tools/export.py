r"""Exports a training run's generator as a self-contained model folder (what pretrained/ holds).

  python -m maskinpaint_jax.tools.export --workdir runs/shipped --out pretrained/face_mask_64 \
      [--step N] [--storage float16]

Writes generator.msgpack, config.json and manifest.json (step, SHA-256, and --note). evaluate
and inpaint load such a folder with --workdir, and the one in pretrained/ by default.
"""

from absl import flags

from maskinpaint_jax import checkpoint, cli


def define_flags(fv: flags.FlagValues = flags.FLAGS):
  flags.DEFINE_string("workdir", None, "Training workdir to export from.", required=True,
                      flag_values=fv)
  flags.DEFINE_string("out", "maskinpaint_jax/pretrained/face_mask_64", "Model folder to write.",
                      flag_values=fv)
  flags.DEFINE_integer("step", None, "Checkpoint step (default: newest).", flag_values=fv)
  flags.DEFINE_string("note", "", "Provenance kept in manifest.json (data, command, compute).",
                      flag_values=fv)
  flags.DEFINE_enum("storage", "float32", list(checkpoint.STORAGE_DTYPES), "How the weights "
                    "are stored: float16 halves the file (computed in float32 when loaded).",
                    flag_values=fv)


def main(argv, f: flags.FlagValues = flags.FLAGS):
  cli.no_args(argv)
  out = checkpoint.export_generator(f.workdir, f.out, f.step, storage=f.storage, note=f.note)
  config, _, step = checkpoint.load_pretrained(out)  # read back: the folder is usable
  print(f"exported step {step} ({config.data.image_size} px, non_blind="
        f"{config.model.non_blind}) to {out}")


if __name__ == "__main__":
  define_flags()
  cli.run(main)
