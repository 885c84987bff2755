r"""One photo, whole command: how long `maskinpaint inpaint` takes from the shell.

  python -m maskinpaint_jax.tools.bench_startup [--photo sample_data/photos/obama.jpg] \
      [--runs 5] [--write docs/benchmarks.md]

Runs `python -m maskinpaint_jax inpaint PHOTO -o TMP --add_mask surgical` in fresh processes:
once with an empty cache folder (the first run on a machine: every program traced and
compiled), then --runs times with that folder kept (what a user sees from the second run on:
`programs.cached_program` and JAX's compilation cache). Reports the first run and the median
and range of the others, in seconds of wall time.
"""
from __future__ import annotations

import os
import pathlib
import shlex
import statistics
import subprocess
import sys
import tempfile
import time

from absl import flags

from maskinpaint_jax import cli, reporting

TITLE = "Start-up: one photo, whole command"
REPO = pathlib.Path(__file__).resolve().parents[2]


def define_flags(fv: flags.FlagValues = flags.FLAGS):
  d = dict(flag_values=fv)
  flags.DEFINE_string("photo", str(REPO / "sample_data" / "photos" / "obama.jpg"),
                      "The photo restored.", **d)
  flags.DEFINE_integer("runs", 5, "Runs after the first.", lower_bound=1, **d)
  flags.DEFINE_string("write", None, "Markdown file to add the section to.", **d)


def timed_run(photo: str, cache: pathlib.Path, out: pathlib.Path) -> float:
  """Seconds of one whole command. Raises RuntimeError when it fails."""
  env = dict(os.environ, JAX_COMPILATION_CACHE_DIR=str(cache))
  t0 = time.perf_counter()
  r = subprocess.run([sys.executable, "-m", "maskinpaint_jax", "inpaint", photo, "-o", str(out),
                      "--add_mask", "surgical"], capture_output=True, text=True, env=env)
  seconds = time.perf_counter() - t0
  if r.returncode != 0:
    raise RuntimeError(f"inpaint failed ({r.returncode}): {r.stderr[-1000:]}")
  return seconds


def main(argv, f: flags.FlagValues = flags.FLAGS) -> int:
  cli.no_args(argv)
  with tempfile.TemporaryDirectory(prefix="maskinpaint-startup-") as tmp:
    tmp = pathlib.Path(tmp)
    first = timed_run(f.photo, tmp / "cache", tmp / "out0")
    warm = [timed_run(f.photo, tmp / "cache", tmp / f"out{i}") for i in range(1, f.runs + 1)]
  body = "\n".join([
      f"`maskinpaint inpaint {pathlib.Path(f.photo).name} --add_mask surgical` in a fresh "
      "process, whole command (imports, models, face finder, restoring, writing the PNG).", "",
      "| run | seconds |", "|---|--:|",
      f"| first (empty cache folder) | {first:.2f} |",
      f"| later (median of {len(warm)}; range) | {statistics.median(warm):.2f} "
      f"({min(warm):.2f}-{max(warm):.2f}) |"])
  print(body)
  if f.write:
    reporting.write_section(f.write, TITLE, body,
                            "maskinpaint bench_startup " + shlex.join(sys.argv[1:]))
  return 0


if __name__ == "__main__":
  define_flags()
  cli.run(main)
