r"""Builds the masked-face TFDS datasets from a folder of face photos.

  python -m data_prep.build --src ../shared/data/celeba --data_dir data/tfds --config face_mask \
      [--size 128] [--workers N] [--limit N [--subset_seed S]] [--seed S] [--preview 16] \
      [--partition list_eval_partition.txt] [--no_face skip|fixed_box] [--min_face_size 40] \
      [--require_splits train,validation,test]

`--config face_mask,rect` builds both. `--limit N` draws N photos at random, stratified by split:
each split (from --partition, else a hash of the file name) gives its share of N, the photos of
lowest hash(subset_seed, path under --src); the same seed gives the same photos on any machine and
with any --workers. The chosen paths are saved as subset.txt next to the dataset. A split of
--require_splits (default: all three, which training and evaluation read) that would come out
empty is an error before anything is written.

A dataset that is already complete is left alone (say --overwrite to rebuild), unless it was
built from other photos or options: then it is an error. An interrupted one is rebuilt. Prints a
summary and saves it as build_summary.json next to the dataset; `--preview N` writes preview.png
(clean | masked | hole).
"""

from __future__ import annotations

import argparse
import hashlib
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
  p.add_argument("--limit", type=int, default=None,
                 help="draw N photos at random (seeded by --subset_seed), stratified by split")
  p.add_argument("--subset_seed", type=int, default=0, help="seeds the --limit draw")
  p.add_argument("--seed", type=int, default=0, help="seeds mask style, colour and shading")
  p.add_argument("--preview", type=int, default=0, help="write a PNG grid of N examples")
  p.add_argument("--partition", default=None,
                 help="CelebA list_eval_partition.txt; without it splits come from a hash of the id")
  p.add_argument("--no_face", choices=("skip", "fixed_box"), default="skip",
                 help="photo without a detected face: skip it, or use aligned CelebA's face box")
  p.add_argument("--min_face_size", type=int, default=40, help="smaller faces are skipped (px)")
  p.add_argument("--require_splits", default=",".join(builder_lib.SPLITS),
                 help="splits that must not come out empty (training reads train and "
                      "validation, evaluation test); '' for none")
  p.add_argument("--overwrite", action="store_true", help="rebuild a complete dataset")
  args = p.parse_args(argv)
  args.require = tuple(s.strip() for s in args.require_splits.split(",") if s.strip())
  for s in args.require:
    if s not in builder_lib.SPLITS:
      p.error(f"--require_splits {s!r}: choose from {', '.join(builder_lib.SPLITS)}")
  if args.limit is not None and args.limit < 1:
    p.error("--limit must be at least 1 (leave it out to use every photo)")
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


def selection(args) -> dict:
  """The options that decide which photos a dataset holds and how they are rendered: a complete
  dataset built with other ones is never silently reused."""
  absolute = lambda p: str(pathlib.Path(p).absolute()) if p else None
  return dict(src=absolute(args.src), partition=absolute(args.partition), limit=args.limit,
              subset_seed=args.subset_seed, seed=args.seed, no_face=args.no_face,
              min_face_size=args.min_face_size)


def check_existing(summary: dict, args, out_dir: pathlib.Path):
  """A complete dataset is reused only if it was built the same way and has the required
  splits (a dataset from before the random --limit draw fails here, and says how to fix it)."""
  want, had = selection(args), dict(summary)
  for k in ("src", "partition"):  # older summaries may hold the path as it was typed
    had[k] = str(pathlib.Path(had[k]).absolute()) if had.get(k) else None
  if not want["limit"] and not had.get("limit"):
    want.pop("subset_seed")  # every photo is used: the seed of the draw does not matter
  differ = {k: (had.get(k), v) for k, v in want.items() if had.get(k) != v}
  if differ:
    raise builder_lib.BuildError(
        f"{out_dir} is complete but was built with other options "
        + ", ".join(f"{k}: {old!r} (now {new!r})" for k, (old, new) in differ.items())
        + ". Rebuild it with --overwrite, or write to another --data_dir.")
  empty = [s for s in args.require if not summary.get("examples", {}).get(s)]
  if empty:
    raise builder_lib.EmptySplitError(
        f"{out_dir} is complete but has no {empty} examples, which training or evaluation "
        "reads. Rebuild it with --overwrite (a --limit draw now keeps photos in every split).")


def write_subset(out_dir: pathlib.Path, subset: list[str]) -> dict:
  """subset.txt (the photos drawn, one path under --src a line) and its fingerprint: two builds
  drew the same photos if and only if their subset_sha256 agree."""
  text = "".join(f"{rel}\n" for rel in subset)
  (out_dir / "subset.txt").write_text(text)
  return dict(subset_file=str(out_dir / "subset.txt"),
              subset_sha256=hashlib.sha256(text.encode("utf-8")).hexdigest())


def build_one(args, occlusion: str) -> dict:
  name = builder_lib.config_name(occlusion, args.size)
  config = builder_lib.builder_config(occlusion, args.size)
  data_dir = str(pathlib.Path(args.data_dir).absolute())
  make_builder = lambda imap=map: builder_lib.MaskedFaces(
      config=config, data_dir=data_dir, src=args.src, partition=args.partition, seed=args.seed,
      imap=imap, limit=args.limit, subset_seed=args.subset_seed, require_splits=args.require,
      no_face=args.no_face, min_face_size=args.min_face_size, progress=tqdm.tqdm)
  out_dir = pathlib.Path(make_builder().data_dir)
  summary_path = out_dir / "build_summary.json"
  if (out_dir / "dataset_info.json").exists() and not args.overwrite:
    print(f"[{name}] already complete at {out_dir} (--overwrite rebuilds it)")
    summary = json.loads(summary_path.read_text()) if summary_path.exists() else {}
    if summary:
      check_existing(summary, args, out_dir)
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
        dataset=f"masked_faces/{name}", path=str(out_dir), size=args.size, workers=args.workers,
        **selection(args), require_splits=list(args.require),
        split_source="partition file" if args.partition else "hash of the file name",
        photos_found=r["found"], photos_per_split=r["available"], photos_drawn=r["drawn"],
        **write_subset(out_dir, r["subset"]), examples=r["counts"], mask_types=r["mask_types"],
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
    if summary.get("limit") and "photos_drawn" in summary:
      print(f"   --limit {summary['limit']} drew {summary['photos_drawn']} of "
            f"{summary['photos_per_split']} photos per split (subset_seed "
            f"{summary['subset_seed']}, subset_sha256 {summary['subset_sha256'][:12]}...)")
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
  except builder_lib.BuildError as e:
    print(f"error: {e}", file=sys.stderr)
    sys.exit(2)
  except KeyboardInterrupt:
    print("\ninterrupted: the dataset was not finalised; run the same command again to build it",
          file=sys.stderr)
    sys.exit(130)
