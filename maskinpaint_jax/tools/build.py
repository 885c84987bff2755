r"""Builds the masked-face TFDS datasets from a folder of face photos.

  python -m maskinpaint_jax.tools.build --src ../shared/data/celeba --data_dir data/tfds \
      [--occlusions face_mask,rect] [--size 128] [--workers N] [--limit N [--subset_seed S]] \
      [--seed S] [--preview 16] \
      [--partition list_eval_partition.txt] [--no_face skip|fixed_box] [--min_face_size 40] [--face_finder hog|mesh] \
      [--require_splits train,validation,test]

`--occlusions face_mask,rect` builds both. `--limit N` draws N photos at random, stratified by
split: each split (from --partition, else a hash of the file name) gives its share of N, the
photos of lowest hash(subset_seed, path under --src); the same seed gives the same photos on any
machine and with any --workers. The chosen paths are saved as subset.txt next to the dataset. A
split of --require_splits (default: all three, which training and evaluation read) that would
come out empty is an error before anything is written.

A dataset that is already complete is left alone (say --overwrite to rebuild), unless it was
built from other photos or options: then it is an error. An interrupted one is rebuilt. Prints a
summary and saves it as build_summary.json next to the dataset; `--preview N` writes preview.png
(clean | masked | hole).
"""

from __future__ import annotations

import hashlib
import json
import os
import pathlib
import shutil
import sys
import time

from absl import flags
import tensorflow_datasets as tfds
import tqdm

from data_prep import builder as builder_lib
from maskinpaint_jax import images, input_pipeline
from maskinpaint_jax import cli


def define_flags(fv: flags.FlagValues = flags.FLAGS):
  d = dict(flag_values=fv)
  flags.DEFINE_string("src", None, "Folder of face photos (searched recursively).", required=True,
                      **d)
  flags.DEFINE_string("data_dir", None, "TFDS data_dir to write into.", required=True, **d)
  flags.DEFINE_list("occlusions", ["face_mask"], "Builder config(s): face_mask, rect, or "
                    "face_mask,rect.", **d)
  flags.DEFINE_integer("size", 128, "Output side in pixels.", lower_bound=16, **d)
  flags.DEFINE_integer("workers", os.cpu_count() or 1, "Worker processes.", lower_bound=1, **d)
  flags.DEFINE_integer("limit", None, "Draw N photos at random (seeded by --subset_seed), "
                       "stratified by split; leave it out to use every photo.", lower_bound=1, **d)
  flags.DEFINE_integer("subset_seed", 0, "Seeds the --limit draw.", **d)
  flags.DEFINE_integer("seed", 0, "Seeds mask style, colour and shading.", **d)
  flags.DEFINE_integer("preview", 0, "Write a PNG grid of N examples.", **d)
  flags.DEFINE_string("partition", None, "CelebA list_eval_partition.txt; without it splits come "
                      "from a hash of the file name.", **d)
  flags.DEFINE_enum("no_face", "skip", ["skip", "fixed_box"], "Photo without a detected face: "
                    "skip it, or use aligned CelebA's face box.", **d)
  flags.DEFINE_integer("min_face_size", 40, "Smaller faces are skipped (px).", **d)
  flags.DEFINE_enum("face_finder", "hog", ["hog", "mesh"], "hog: dlib HOG, the paper's; mesh: "
                    "MediaPipe, which frames faces as inpaint does (faces in the wild).", **d)
  flags.DEFINE_list("require_splits", list(builder_lib.SPLITS), "Splits that must not come out "
                    "empty (training reads train and validation, evaluation test); '' for none.",
                    **d)
  flags.DEFINE_bool("overwrite", False, "Rebuild a complete dataset.", **d)
  cli.check_choices("occlusions", builder_lib.OCCLUSIONS, fv)
  cli.check_choices("require_splits", builder_lib.SPLITS, fv)
  cli.check("src", lambda src: pathlib.Path(src).is_dir(), "not a directory", fv)


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
      source = input_pipeline.data_source(data_dir, name, split)
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


def selection(f) -> dict:
  """The options that decide which photos a dataset holds and how they are rendered: a complete
  dataset built with other ones is never silently reused."""
  absolute = lambda p: str(pathlib.Path(p).absolute()) if p else None
  return dict(src=absolute(f.src), partition=absolute(f.partition), limit=f.limit,
              subset_seed=f.subset_seed, seed=f.seed, no_face=f.no_face,
              min_face_size=f.min_face_size,
              **({"face_finder": f.face_finder} if f.face_finder != "hog" else {}))


def check_existing(summary: dict, f, out_dir: pathlib.Path):
  """A complete dataset is reused only if it was built the same way and has the required
  splits (a dataset from before the random --limit draw fails here, and says how to fix it)."""
  want, had = selection(f), dict(summary)
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
  empty = [s for s in f.require_splits if not summary.get("examples", {}).get(s)]
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


def build_one(f, occlusion: str) -> dict:
  name = builder_lib.config_name(occlusion, f.size)
  config = builder_lib.builder_config(occlusion, f.size)
  data_dir = str(pathlib.Path(f.data_dir).absolute())
  make_builder = lambda imap=map: builder_lib.MaskedFaces(
      config=config, data_dir=data_dir, src=f.src, partition=f.partition, seed=f.seed,
      imap=imap, limit=f.limit, subset_seed=f.subset_seed, require_splits=tuple(f.require_splits),
      no_face=f.no_face, min_face_size=f.min_face_size, face_finder=f.face_finder,
      progress=tqdm.tqdm)
  out_dir = pathlib.Path(make_builder().data_dir)
  summary_path = out_dir / "build_summary.json"
  if (out_dir / "dataset_info.json").exists() and not f.overwrite:
    print(f"[{name}] already complete at {out_dir} (--overwrite rebuilds it)")
    summary = json.loads(summary_path.read_text()) if summary_path.exists() else {}
    if summary:
      check_existing(summary, f, out_dir)
  else:
    if out_dir.exists():
      shutil.rmtree(out_dir)
    _remove_stale_incomplete(out_dir.parent)
    start = time.time()
    with builder_lib.photo_pool(f.workers) as imap:
      b = make_builder(imap)
      b.download_and_prepare()
    elapsed = time.time() - start
    r = b.report
    processed = sum(r["counts"].values()) + len(r["skipped"])
    summary = dict(
        dataset=f"masked_faces/{name}", path=str(out_dir), size=f.size, workers=f.workers,
        **selection(f), require_splits=list(f.require_splits),
        split_source="partition file" if f.partition else "hash of the file name",
        photos_found=r["found"], photos_per_split=r["available"], photos_drawn=r["drawn"],
        **write_subset(out_dir, r["subset"]), examples=r["counts"], mask_types=r["mask_types"],
        fixed_box_fallbacks=r["fallbacks"], empty_splits=r["empty_splits"],
        photos_scanned_now=r["scanned_now"], skipped_count=len(r["skipped"]),
        skipped=sorted(r["skipped"], key=lambda s: s["file"]), seconds=round(elapsed, 2),
        images_per_second=round(processed / elapsed, 2) if elapsed else None,
        images_per_second_per_worker=round(processed / elapsed / max(1, f.workers), 2)
        if elapsed else None)
    summary_path.write_text(json.dumps(summary, indent=2))
  if f.preview:
    summary["preview"] = str(write_preview(data_dir, name, f.preview, out_dir / "preview.png"))
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


def build_all(f: flags.FlagValues) -> list[dict]:
  """Builds every dataset --occlusions names (see the top); returns their summaries."""
  tfds.disable_progress_bar()
  summaries = []
  for occlusion in f.occlusions:
    summary = build_one(f, occlusion)
    print_summary(summary)
    summaries.append(summary)
  return summaries


def main(argv, f: flags.FlagValues = flags.FLAGS) -> int:
  cli.no_args(argv)
  try:
    build_all(f)  # errors.BuildError: cli.run prints it and exits with status 2
  except KeyboardInterrupt:
    print("\ninterrupted: the dataset was not finalised; run the same command again to build it",
          file=sys.stderr)
    return 130
  return 0


if __name__ == "__main__":
  define_flags()
  cli.run(main)
