r"""Links one fixed part of real photo folders into a folder a dataset build reads.

  python -m maskinpaint_jax.tools.link_photos --src ../shared/data/nomask,../shared/data/nomask_more \
      --split train --out data/mix128/wild [--repeat 3]

Each photo of `--split` (`maskinpaint_jax.photo_sets.split_of`: "train" or "test", the same on
every machine) is linked as OUT/<folder name>/<file name>; the photos themselves stay where they
are. `--repeat N` links each photo N times (OUT/<folder>/copy<k>/<file name> for the copies):
a mixture of datasets built from one folder then draws these photos N times as often (each
draw gets its own fresh mask). Links already there are kept, so running it again is harmless. Prints how many were linked.
"""
from __future__ import annotations

import pathlib

from absl import flags

from maskinpaint_jax import cli, photo_sets


def define_flags(fv: flags.FlagValues = flags.FLAGS):
  d = dict(flag_values=fv)
  flags.DEFINE_list("src", None, "Photo folders (comma-separated).", required=True, **d)
  flags.DEFINE_enum("split", "train", ["train", "test"], "Which fixed part to link.", **d)
  flags.DEFINE_string("out", None, "Folder to link into.", required=True, **d)
  flags.DEFINE_integer("repeat", 1, "Link each photo this many times.", lower_bound=1, **d)


def main(argv, f: flags.FlagValues = flags.FLAGS) -> int:
  cli.no_args(argv)
  total = 0
  for folder in map(pathlib.Path, f.src):
    dsts = [pathlib.Path(f.out) / folder.name]
    dsts += [dsts[0] / f"copy{k}" for k in range(1, f.repeat)]
    for dst in dsts:
      dst.mkdir(parents=True, exist_ok=True)
    for photo in photo_sets.photos_of([folder], f.split):
      for dst in dsts:
        link = dst / photo.name
        if not link.is_symlink():
          link.symlink_to(photo.resolve())
      total += 1
  print(f"{total} photos of the {f.split} part linked {f.repeat} time(s) into {f.out}")
  return 0


if __name__ == "__main__":
  define_flags()
  cli.run(main)
