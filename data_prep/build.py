r"""Builds the masked-face TFDS datasets from a folder of face photos.

  python -m data_prep.build --src ../shared/data/celeba --data_dir data/tfds --config face_mask \
      [--size 128] [--workers N] [--limit N] [--seed S] [--preview 16] \
      [--partition list_eval_partition.txt] [--no_face skip|fixed_box] [--min_face_size 40]

`--config face_mask,rect` builds both. A dataset that is already complete is left alone (say
--overwrite to rebuild); an interrupted one is rebuilt. Prints a summary and saves it as
build_summary.json next to the dataset; `--preview N` writes preview.png (clean | masked | hole).
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import shutil
import sys
import time

import tensorflow_datasets as tfds
import tqdm

from data_prep import builder as builder_lib
from data_prep import images


def parse_args(argv=None):
  p = argparse.ArgumentParser(prog="python -m data_prep.build", description=__doc__.split("\n")[0],
                              formatter_class=argparse.RawDescriptionHelpFormatter)
  p.add_argument("--src", required=True, help="folder of face photos (searched recursively)")
  p.add_argument("--data_dir", required=True, help="TFDS data_dir to write into")
  p.add_argument("--config", default="face_mask",
                 help="builder config(s): face_mask, rect, or face_mask,rect")
  p.add_argument("--size", type=int, default=128, help="output side in pixels (default 128)")
  p.add_argument("--workers", type=int, default=os.cpu_count() or 1)
  p.add_argument("--limit", type=int, default=None, help="use only the first N photos (sorted)")
  p.add_argument("--seed", type=int, default=0, help="seeds mask style, colour and shading")
  p.add_argument("--preview", type=int, default=0, help="write a PNG grid of N examples")
  p.add_argument("--partition", default=None,
                 help="CelebA list_eval_partition.txt; without it splits come from a hash of the id")
  p.add_argument("--no_face", choices=("skip", "fixed_box"), default="skip",
                 help="photo without a detected face: skip it, or use aligned CelebA's face box")
  p.add_argument("--min_face_size", type=int, default=40, help="smaller faces are skipped (px)")
  p.add_argument("--overwrite", action="store_true", help="rebuild a complete dataset")
  args = p.parse_args(argv)
  args.configs = [c.strip() for c in args.config.split(",") if c.strip()]
  for c in args.configs:
    if c not in builder_lib.OCCLUSIONS:
      p.error(f"--config {c!r}: choose from {', '.join(builder_lib.OCCLUSIONS)}")
  if args.size < 16:
    p.error("--size must be at least 16")
  if not pathlib.Path(args.src).is_dir():
    p.error(f"--src {args.src!r} is not a directory")
  return args


def _remove_stale_incomplete(dataset_root: pathlib.Path):
  """TFDS leaves `<version>.incomplete*` folders behind when killed; they are never read."""
  if dataset_root.is_dir():
    for p in dataset_root.glob("*incomplete*"):
      shutil.rmtree(p, ignore_errors=True)


def write_preview(data_dir, name: str, count: int, path: pathlib.Path) -> pathlib.Path:
  """Grid of `count` examples read back from the written dataset: clean | masked | hole map."""
  rows = []
  for split in builder_lib.SPLITS:
    try:
      source = builder_lib.data_source(data_dir, name, split)
    except (KeyError, ValueError):
      continue
    for i in range(min(len(source), count - len(rows))):
      ex = source[i]
      rows.append([ex["image"], ex["masked"], ex["mask"]])
    if len(rows) >= count:
      break
  if not rows:
    raise ValueError("the dataset has no examples to preview")
  # Two examples per row keeps the picture roughly square.
  paired = [rows[i] + rows[i + 1] if i + 1 < len(rows) else rows[i]
            for i in range(0, len(rows), 2)]
  return images.save_png(path, images.make_grid(paired))


def build_one(args, occlusion: str) -> dict:
  name = builder_lib.config_name(occlusion, args.size)
  config = builder_lib.builder_config(occlusion, args.size)
  data_dir = str(pathlib.Path(args.data_dir).absolute())
  make_builder = lambda imap=map: builder_lib.MaskedFaces(
      config=config, data_dir=data_dir, src=args.src, partition=args.partition, seed=args.seed,
      imap=imap, limit=args.limit, no_face=args.no_face, min_face_size=args.min_face_size,
      progress=tqdm.tqdm)
  out_dir = pathlib.Path(make_builder().data_dir)
  summary_path = out_dir / "build_summary.json"
  if (out_dir / "dataset_info.json").exists() and not args.overwrite:
    print(f"[{name}] already complete at {out_dir} (--overwrite rebuilds it)")
    summary = json.loads(summary_path.read_text()) if summary_path.exists() else {}
  else:
    if out_dir.exists():
      shutil.rmtree(out_dir)
    _remove_stale_incomplete(out_dir.parent)
    start = time.time()
    with builder_lib.photo_pool(args.workers) as imap:
      b = make_builder(imap)
      b.download_and_prepare()
    elapsed = time.time() - start
    r = b.report
    processed = sum(r["counts"].values()) + len(r["skipped"])
    summary = dict(
        dataset=f"masked_faces/{name}", path=str(out_dir), src=str(pathlib.Path(args.src).absolute()),
        size=args.size, seed=args.seed, workers=args.workers, limit=args.limit,
        no_face=args.no_face, min_face_size=args.min_face_size, partition=args.partition,
        photos_found=r["found"], examples=r["counts"], mask_types=r["mask_types"],
        fixed_box_fallbacks=r["fallbacks"], empty_splits=r["empty_splits"],
        photos_scanned_now=r["scanned_now"], skipped_count=len(r["skipped"]),
        skipped=sorted(r["skipped"], key=lambda s: s["file"]), seconds=round(elapsed, 2),
        images_per_second=round(processed / elapsed, 2) if elapsed else None,
        images_per_second_per_worker=round(processed / elapsed / max(1, args.workers), 2)
        if elapsed else None)
    summary_path.write_text(json.dumps(summary, indent=2))
  if args.preview:
    summary["preview"] = str(write_preview(data_dir, name, args.preview, out_dir / "preview.png"))
  return summary


def print_summary(summary: dict):
  print(f"\n== {summary.get('dataset')} -> {summary.get('path')}")
  if "examples" in summary:
    print(f"   examples per split: {summary['examples']}")
    print(f"   mask types: {summary['mask_types']}")
    used = sum(summary["examples"].values()) + summary["skipped_count"]
    print(f"   skipped {summary['skipped_count']} of {used} photos "
          f"({summary['photos_found']} found under --src); "
          f"fixed-box fallbacks: {summary['fixed_box_fallbacks']}")
    if summary.get("empty_splits"):
      print(f"   no usable photo for split(s) {summary['empty_splits']}: left out")
    for s in summary["skipped"][:20]:
      print(f"     - {s['file']}: {s['reason']}")
    if summary["skipped_count"] > 20:
      print(f"     ... {summary['skipped_count'] - 20} more in build_summary.json")
    print(f"   {summary['images_per_second']} images/s with {summary['workers']} worker(s) "
          f"({summary['images_per_second_per_worker']} per worker), {summary['seconds']} s")
  if "preview" in summary:
    print(f"   preview: {summary['preview']}")


def main(argv=None):
  args = parse_args(argv)
  tfds.disable_progress_bar()
  summaries = []
  for occlusion in args.configs:
    summary = build_one(args, occlusion)
    print_summary(summary)
    summaries.append(summary)
  return summaries


if __name__ == "__main__":
  try:
    main()
  except KeyboardInterrupt:
    print("\ninterrupted: the dataset was not finalised; run the same command again to build it",
          file=sys.stderr)
    sys.exit(130)
