"""Markdown from evaluation results: side-by-side tables of several models, the quality
targets, and the README's results block.

  python -m maskinpaint_jax.tools.report LABEL=results.json [...] [--write FILE --title T]
      [--targets results.json] [--readme results.json]
"""

from __future__ import annotations

import pathlib
import shlex
import sys

from absl import app, flags

from maskinpaint_jax import cli, reporting, runlog


def define_flags(fv: flags.FlagValues = flags.FLAGS):
  d = dict(flag_values=fv)
  flags.DEFINE_string("write", None, "Markdown file to add the section to.", **d)
  flags.DEFINE_string("title", "Side by side", "Title of the side-by-side section.", **d)
  flags.DEFINE_string("targets", None, "A results.json to check against the shipped model's "
                      "quality targets.", **d)
  flags.DEFINE_string("readme", None, "A results.json whose tables replace README.md's results "
                      "block.", **d)


def main(argv, f: flags.FlagValues = flags.FLAGS):
  """python -m maskinpaint_jax.tools.report LABEL=results.json [...] [--write FILE --title T]
  [--targets results.json] [--readme results.json]"""
  command = "python -m maskinpaint_jax.tools.report " + shlex.join(sys.argv[1:])
  load = runlog.read_results
  if f.readme:
    readme = pathlib.Path(__file__).resolve().parents[2] / "README.md"
    reporting.update_readme(readme, load(f.readme), f.readme)
    print(f"{readme}: results block replaced from {f.readme}")
  if f.targets:
    body = reporting.targets_markdown(load(f.targets))
    print(body)
    if f.write:
      reporting.write_section(f.write, "Quality targets", body, command)
  if not argv:
    return
  bad = [a for a in argv if "=" not in a]
  if bad:
    raise app.UsageError(f"{bad}: name each results file LABEL=path/to/results.json",
                         exitcode=2)
  body = reporting.side_by_side_markdown({k: load(v) for k, v in (a.split("=", 1) for a in argv)})
  print(body)
  if f.write:
    reporting.write_section(f.write, f.title, body, command)


if __name__ == "__main__":
  define_flags()
  cli.run(main)
