"""The `maskinpaint` command: every program of `maskinpaint_jax.tools` as a subcommand.

  maskinpaint inpaint photo.jpg -o restored/      (= python -m maskinpaint_jax.tools.inpaint ...)
  maskinpaint train --config configs/default.py --workdir runs/x
  maskinpaint inpaint --help                      (that program's flags)
  maskinpaint --help                              (the list below)

Each subcommand is its program, run as `python -m maskinpaint_jax.tools.<name>` runs it (its
absl flags, `--help`, exit status), so the two ways never differ.
"""

from __future__ import annotations

import runpy
import sys

from maskinpaint_jax import __version__

# name -> one line; the module is maskinpaint_jax.tools.<name>
COMMANDS = {
    "inpaint": "restore the faces of people wearing masks in photos or folders",
    "app": "a web page (and POST /restore) on this computer that restores photos",
    "build": "build the masked-face datasets (TFDS) from a folder of face photos",
    "train": "train the generator and discriminator (--config configs/*.py --workdir DIR)",
    "evaluate": "score a trained generator like the paper's Tables II / III, beside baselines",
    "export": "export a training run's generator as a model folder",
    "bench_wild": "restore masked-on real photos and score them against their originals",
    "bench_photos": "what inpaint decides on real masked and unmasked photos",
    "bench_startup": "seconds of one photo's whole inpaint command, first and later runs",
    "bench_sizes": "which generator serves which face size",
    "bench_faces": "face finders side by side",
    "bench_holes": "hole estimation where the truth is known",
    "bench": "benchmarks of the train step, input pipeline and dataset build",
    "ablations": "the paper's ablations, trained on equal terms",
    "recipes": "quality per CPU hour of training recipes, from runs' logs",
    "report": "markdown tables from evaluation results",
    "train_face_check": "train the face check (upright? mask?)",
    "train_face_heads": "train the face check's human-face and mask heads",
    "mask_colors": "measure the colours of real face masks",
    "link_photos": "link a fixed part of real photo folders for a dataset build",
    "travel_set": "a small training set (crops and landmarks) for a machine lent for minutes",
    "model_summary": "parameter counts and FLOPs of G and D",
    "profiling": "top XLA ops by time from a profiler trace",
    "gpu_check": "the GPU check in one command",
    "gpu_run": "train, export, score and benchmark on a GPU lent for minutes (travel set)",
    "demo": "the whole path on the bundled samples (make demo)",
}


def usage() -> str:
  width = max(map(len, COMMANDS))
  lines = [f"maskinpaint {__version__}: masked-face inpainting (Liu et al.) in JAX/Flax", "",
           "usage: maskinpaint COMMAND [flags]      (maskinpaint COMMAND --help: its flags)", "",
           "commands:"]
  lines += [f"  {name:<{width}}  {text}" for name, text in COMMANDS.items()]
  return "\n".join(lines)


def run_command(name: str, argv: list[str] | None = None):
  """Runs program `name` on `argv` (default: sys.argv[1:]) exactly as `python -m
  maskinpaint_jax.tools.<name>` does (as `__main__`: its --help, flags and exit status)."""
  sys.argv = [f"maskinpaint {name}", *(sys.argv[1:] if argv is None else argv)]
  runpy.run_module(f"maskinpaint_jax.tools.{name}", run_name="__main__", alter_sys=True)


def main(argv: list[str] | None = None):
  """The console script's entry point."""
  argv = sys.argv[1:] if argv is None else argv
  if not argv or argv[0] in ("-h", "--help", "help"):
    print(usage())
    sys.exit(0 if argv else 2)
  if argv[0] in ("--version", "version"):
    print(__version__)
    sys.exit(0)
  if argv[0] not in COMMANDS:
    sys.stderr.write(f"error: unknown command {argv[0]!r}\n\n{usage()}\n")
    sys.exit(2)
  run_command(argv[0], argv[1:])
