r"""Writes a training set that travels (`maskinpaint_jax.travel_set`) from a built dataset.

  python -m maskinpaint_jax.tools.travel_set --data_dir data/tfds_mix128 --size 128 \
      --splits train,test --out data/travel128 [--max_mb 30] [--sample 200]

The clean aligned crops and their landmarks of each split, encoded as WebP or JPEG at the
quality of highest PSNR that keeps the whole set under --max_mb (measured on --sample crops of
the first split, every candidate printed). On the other side, `travel_set.TravelSource` reads a
split in the built datasets' layout; masks are drawn there from the landmarks.
"""
from __future__ import annotations

import json
import pathlib

from absl import flags
import numpy as np

from maskinpaint_jax import cli, input_pipeline, travel_set


def define_flags(fv: flags.FlagValues = flags.FLAGS):
  d = dict(flag_values=fv)
  flags.DEFINE_string("data_dir", None, "TFDS data_dir of a face-mask build.", required=True,
                      **d)
  flags.DEFINE_integer("size", 128, "The build's side (px).", **d)
  flags.DEFINE_list("splits", ["train", "test"], "Splits to carry.", **d)
  flags.DEFINE_string("out", None, "Folder to write.", required=True, **d)
  flags.DEFINE_float("max_mb", 30.0, "Size budget of the whole set (MiB).", **d)
  flags.DEFINE_integer("sample", 200, "Crops the encoding is chosen on.", lower_bound=1, **d)


def read_split(data_dir: str, size: int, split: str):
  """(images, landmarks, ids) of a built face_mask split."""
  source = input_pipeline.data_source(data_dir, input_pipeline.config_name("face_mask", size),
                                      split)
  images, landmarks, ids = [], [], []
  for i in range(len(source)):
    example = source[i]
    images.append(np.asarray(example["image"], np.uint8))
    landmarks.append(np.asarray(example["landmarks"], np.float32))
    ids.append(example["id"])
  return images, landmarks, ids


def main(argv, f: flags.FlagValues = flags.FLAGS) -> int:
  cli.no_args(argv)
  splits = {s: read_split(f.data_dir, f.size, s) for s in f.splits}
  total = sum(len(v[0]) for v in splits.values())
  first = splits[f.splits[0]][0]
  sample = [first[i] for i in np.linspace(0, len(first) - 1, min(f.sample, len(first))).astype(int)]
  choice = travel_set.choose_encoding(sample, total, int(f.max_mb * 2**20))
  for c in choice["candidates"]:
    print(f"{c['format']:>5} q{c['quality']:<3} PSNR {c['psnr']:.2f} dB, "
          f"{c['bytes_per_image'] / 1024:.2f} KiB/crop, {c['estimated_bytes'] / 2**20:.1f} MiB")
  out = pathlib.Path(f.out)
  out.mkdir(parents=True, exist_ok=True)
  written = {s: travel_set.write_split(out, s, *v, choice["format"], choice["quality"])
             for s, v in splits.items()}
  manifest = dict(format=choice["format"], quality=choice["quality"], side=f.size,
                  source=str(pathlib.Path(f.data_dir).absolute()), splits=written,
                  bytes=sum(w["bytes"] for w in written.values()),
                  chosen_on=dict(sample=len(sample), candidates=choice["candidates"]))
  (out / travel_set.MANIFEST).write_text(json.dumps(manifest, indent=1))
  print(f"{total} crops as {choice['format']} q{choice['quality']} "
        f"(PSNR {choice['psnr']:.2f} dB on the sample): {manifest['bytes'] / 2**20:.1f} MiB in "
        f"{out}")
  return 0


if __name__ == "__main__":
  define_flags()
  cli.run(main)
