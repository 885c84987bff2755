"""TFDS builder `masked_faces`: face photos -> (clean, masked, hole map) examples in ArrayRecord.

Written without TensorFlow: images go in as PNG bytes, read back with `tfds.data_source`.
Builder configs: `face_mask` (Algorithm 1 masks) and `rect` (the paper's centred rectangle), at
128 px; other sizes get the suffix `_<size>` (e.g. `face_mask_64`).

Each photo is processed independently (in a worker process) from its own seed, so the dataset is
the same for any number of workers. `limit=N` keeps a seeded random subset of N photos, drawn
per split in proportion to the split sizes (`draw_subset`): a pure function of the seed and the
photos' paths under `src`. A split in `require_splits` that would come out empty is an error
(`EmptySplitError`) raised before anything is written. TFDS writes into a `*.incomplete*`
folder and renames it only when every split is complete: an interrupted build is never taken for
a dataset.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import functools
import hashlib
import json
import logging
import multiprocessing
import os
import pathlib
from typing import Any

import numpy as np
import tensorflow_datasets as tfds

from maskinpaint_jax import images, input_pipeline, masks
from maskinpaint_jax import errors, faces
from maskinpaint_jax.faces import align, finders


def _not_custom_config_notice(record: logging.LogRecord) -> bool:
  # TFDS warns "Using custom data configuration" whenever a builder is made from a config
  # object, which is how every masked_faces builder is made: noise in every build and run.
  return not record.getMessage().startswith("Using custom data configuration")


logging.getLogger("absl").addFilter(_not_custom_config_notice)

OCCLUSIONS, SPLITS = input_pipeline.OCCLUSIONS, input_pipeline.SPLITS
config_name = input_pipeline.config_name
# CelebA's list_eval_partition.txt: 0 = train, 1 = validation, 2 = test.
CELEBA_PARTITION = {"0": "train", "1": "validation", "2": "test"}
# Without a partition file: a stable hash of the id, 80 / 10 / 10.
HASH_SPLIT_PERCENT = (80, 10)


def hash_split(example_id: str) -> str:
  bucket = int(hashlib.sha1(example_id.encode("utf-8")).hexdigest(), 16) % 100
  if bucket < HASH_SPLIT_PERCENT[0]:
    return "train"
  return "validation" if bucket < sum(HASH_SPLIT_PERCENT) else "test"


BuildError = errors.BuildError  # a build that cannot give what was asked for, and why


class EmptySplitError(BuildError):
  """A split that training or evaluation reads would be empty."""


def subset_rank(seed: int, relpath: str) -> str:
  """A photo's place in the `--limit` draw: a hash of (seed, its path under --src). Depends on
  nothing else: not the machine, the file system's listing order or the worker count."""
  return hashlib.sha256(f"{seed}:{relpath}".encode("utf-8")).hexdigest()


def split_quotas(available: dict[str, int], limit: int) -> dict[str, int]:
  """How many of `limit` photos each split gets: in proportion to the photos it has (largest
  remainder; ties in SPLITS order), and at least one for every split that has any, as long as
  `limit` covers them (only tiny limits need that)."""
  total = sum(available.values())
  if limit >= total:
    return dict(available)
  quota = {s: limit * n // total for s, n in available.items()}  # integers: exact ties
  by_remainder = sorted(available, key=lambda s: (-(limit * available[s] % total),
                                                  SPLITS.index(s)))
  for s in by_remainder[:limit - sum(quota.values())]:
    quota[s] += 1
  if limit >= sum(1 for n in available.values() if n):
    for s in available:
      if available[s] and not quota[s]:
        quota[max(quota, key=quota.get)] -= 1  # the largest has >= 2 here
        quota[s] = 1
  return quota


def draw_subset(split_of: dict[str, str], limit: int | None, seed: int) -> set[str]:
  """The photos `--limit` keeps. `split_of` maps each candidate's path under --src to its split;
  each split contributes its quota (split_quotas) of its photos with the lowest subset_rank."""
  if not limit or limit >= len(split_of):
    return set(split_of)
  by_split = collections.defaultdict(list)
  for rel, split in split_of.items():
    by_split[split].append(rel)
  quotas = split_quotas({s: len(v) for s, v in by_split.items()}, limit)
  kept = set()
  for split, rels in by_split.items():
    kept.update(sorted(rels, key=lambda r: subset_rank(seed, r))[:quotas[split]])
  return kept


def count_per_split(splits) -> dict[str, int]:
  counts = collections.Counter(splits)
  return {s: counts[s] for s in SPLITS if counts[s]}


def read_partition(path: str | os.PathLike) -> dict[str, str]:
  """CelebA list_eval_partition.txt -> {file name: split}."""
  table = {}
  for line_no, line in enumerate(pathlib.Path(path).read_text().splitlines(), 1):
    if not line.strip():
      continue
    parts = line.split()
    if len(parts) != 2 or parts[1] not in CELEBA_PARTITION:
      raise ValueError(f"{path}:{line_no}: expected '<file> <0|1|2>', got {line!r}")
    table[parts[0]] = CELEBA_PARTITION[parts[1]]
  return table


@dataclasses.dataclass(frozen=True)
class ScanOptions:
  """How faces are found; part of the scan cache's key."""
  no_face: str = "skip"          # "skip" | "fixed_box" (aligned CelebA)
  min_face_size: int = 40        # px in the source photo
  face_finder: str = "hog"       # faces.FINDERS: "mesh" frames faces as inpaint does


@dataclasses.dataclass(frozen=True)
class RenderOptions:
  occlusion: str = "face_mask"
  size: int = 128
  seed: int = 0


_FINDER: finders.FaceFinder | None = None


@contextlib.contextmanager
def photo_pool(workers: int):
  """An ordered `imap` over `workers` processes (plain `map` for one worker)."""
  if workers <= 1:
    yield map
    return
  ctx = multiprocessing.get_context("spawn")  # never fork a parent that may hold threads
  with ctx.Pool(workers) as pool:
    yield functools.partial(pool.imap, chunksize=4)


def _finder(min_face_size: int, name: str = "hog") -> finders.FaceFinder:
  global _FINDER
  if (_FINDER is None or _FINDER.min_face_size != min_face_size
      or getattr(_FINDER, "name", None) != name):
    _FINDER = faces.make_finder(name, min_face_size=min_face_size)
  return _FINDER


def _never_raise(fn):
  """Worker entries return ("ok", value) or ("skip", reason): one odd file never stops a build."""
  @functools.wraps(fn)
  def wrapped(task):
    try:
      return "ok", fn(*task)
    except (images.ImageLoadError, finders.NoFaceError) as e:
      return "skip", str(e)
    except Exception as e:  # pylint: disable=broad-except
      return "skip", f"unexpected error: {type(e).__name__}: {e}"
  return wrapped


@_never_raise
def scan_task(path: str, opts: ScanOptions) -> dict[str, Any]:
  """Phase 1: load and find the face. The slow part (detection), done once per photo."""
  img = images.load_rgb(path)
  face = _finder(opts.min_face_size, opts.face_finder).find_one(img, opts.no_face)
  return dict(landmarks=face.landmarks.round(3).tolist(), source=face.source)


def render_example(path: str, example_id: str, landmarks, opts: RenderOptions) -> dict[str, Any]:
  """Phase 2: crop the face square and put the occlusion on (decoded arrays)."""
  img = images.load_rgb(path)
  landmarks = np.asarray(landmarks, np.float32)
  matrix = align.crop_matrix(landmarks, opts.size, img.shape)
  clean = align.warp_crop(img, matrix, opts.size)
  landmarks = align.transform_points(matrix, landmarks)
  if opts.occlusion == "face_mask":
    masked, hole, mask_type = masks.apply_face_mask(
        clean, landmarks, masks.example_rng(opts.seed, example_id))
  else:
    masked, hole = masks.apply_rect(clean)
    mask_type = "rect"
  return dict(image=clean, masked=masked, mask=hole, mask_type=mask_type, id=example_id,
              landmarks=landmarks)


@_never_raise
def render_task(path: str, example_id: str, landmarks, opts: RenderOptions) -> dict[str, Any]:
  ex = render_example(path, example_id, landmarks, opts)
  return dict(image=images.encode_png(ex["image"]), masked=images.encode_png(ex["masked"]),
              mask=images.encode_png((ex["mask"] * 255)[..., None]), mask_type=ex["mask_type"],
              id=example_id, landmarks=ex["landmarks"])


class ScanCache:
  """Face-finding results on disk, one JSON line per photo, keyed by path, size, mtime and the
  scan options. Appended as results arrive, so a killed build keeps its finished scans and the
  `face_mask` and `rect` builds of one folder share them."""

  def __init__(self, path: pathlib.Path, opts: ScanOptions):
    self.path, self.opts = path, opts
    self.entries: dict[str, Any] = {}
    if path.exists():
      for line in path.read_text().splitlines():
        try:
          entry = json.loads(line)
          self.entries[entry["key"]] = entry["result"]
        except (json.JSONDecodeError, KeyError):
          continue  # a line cut short by a kill

  def key(self, path: str) -> str:
    try:
      st = os.stat(path)
      stamp = f"{st.st_size}:{st.st_mtime_ns}"
    except OSError:
      stamp = "unstat-able"
    key = f"{os.path.abspath(path)}|{stamp}|{self.opts.no_face}|{self.opts.min_face_size}"
    return key if self.opts.face_finder == "hog" else f"{key}|{self.opts.face_finder}"

  def add(self, key: str, result):
    self.entries[key] = result
    self.path.parent.mkdir(parents=True, exist_ok=True)
    with self.path.open("a") as f:
      f.write(json.dumps(dict(key=key, result=result)) + "\n")


class MaskedFacesConfig(tfds.core.BuilderConfig):

  def __init__(self, *, occlusion: str, size: int = 128, **kwargs):
    super().__init__(name=config_name(occlusion, size), version=tfds.core.Version("1.0.0"),
                     description=f"{occlusion} occlusions at {size}x{size} px", **kwargs)
    self.occlusion = occlusion
    self.size = size


class MaskedFaces(tfds.core.GeneratorBasedBuilder):
  """Masked-face inpainting pairs synthesised from face photos (Liu et al., section III.A)."""

  VERSION = tfds.core.Version("1.0.0")
  RELEASE_NOTES = {"1.0.0": "Algorithm 1 masks (surgical, cloth, N95/KN95) and rectangles."}
  BUILDER_CONFIGS = [MaskedFacesConfig(occlusion=o) for o in OCCLUSIONS]

  def __init__(self, *, src: str | None = None, partition: str | None = None, seed: int = 0,
               imap=map, limit: int | None = None, subset_seed: int = 0,
               require_splits=SPLITS, no_face: str = "skip", min_face_size: int = 40,
               face_finder: str = "hog", progress=None, **kwargs):
    """`imap(fn, tasks)` runs the photo processing in order, e.g. a worker pool's `imap`.
    `limit` draws that many photos at random (seeded by `subset_seed`); a split named in
    `require_splits` that would be empty raises EmptySplitError before anything is written.
    `face_finder` (faces.FINDERS): "mesh" finds and frames faces as inpaint does."""
    super().__init__(file_format="array_record", **kwargs)
    self._src, self._partition, self._imap, self._limit = src, partition, imap, limit
    self._subset_seed, self._require_splits = subset_seed, tuple(require_splits)
    self._progress = progress
    self._scan_opts = ScanOptions(no_face=no_face, min_face_size=min_face_size,
                                  face_finder=face_finder)
    self._render_opts = RenderOptions(occlusion=self.builder_config.occlusion,
                                      size=self.builder_config.size, seed=seed)
    self.report: dict[str, Any] = {}

  def _info(self) -> tfds.core.DatasetInfo:
    s = self.builder_config.size
    return self.dataset_info_from_configs(
        features=tfds.features.FeaturesDict({
            "image": tfds.features.Image(shape=(s, s, 3), encoding_format="png"),
            "masked": tfds.features.Image(shape=(s, s, 3), encoding_format="png"),
            "mask": tfds.features.Image(shape=(s, s, 1), encoding_format="png"),  # 0 / 255
            "mask_type": tfds.features.ClassLabel(names=list(masks.MASK_TYPES)),
            "id": tfds.features.Text(),
            "landmarks": tfds.features.Tensor(shape=(68, 2), dtype=np.float32),
        }),
        supervised_keys=("masked", "image"),
        homepage="https://github.com/maskinpaint-jax",
        citation="Liu, Chen, Sun, Liu. Masked Face Image Inpainting Based on Generative "
                 "Adversarial Network.",
    )

  def _bar(self, total, desc):
    return self._progress(total=total, desc=desc, unit="img") if self._progress else None

  def _photos(self) -> list[tuple[str, str, str]]:
    """(path, example id, path under src) of every image under src, sorted."""
    if self._src is None:
      raise ValueError("building needs src= (a folder of face photos)")
    root = pathlib.Path(self._src)
    paths = images.list_images(root)
    self.report["found"] = len(paths)
    rels = [p.relative_to(root) for p in paths]
    return [(str(p), str(r.with_suffix("")), r.as_posix()) for p, r in zip(paths, rels)]

  def _select(self, photos) -> list[tuple[str, str, str]]:
    """Each photo's split (partition file, else a hash of the id), then the `limit` draw:
    (path, example id, split) of the photos kept."""
    partition = read_partition(self._partition) if self._partition else None
    split_of = {}
    for path, example_id, rel in photos:
      split = (partition.get(pathlib.Path(path).name) if partition is not None
               else hash_split(example_id))
      if split is None:
        self.report["skipped"].append(dict(file=path, reason="not in the partition file"))
      else:
        split_of[rel] = split
    kept = draw_subset(split_of, self._limit, self._subset_seed)
    self.report.update(available=count_per_split(split_of.values()),
                       drawn=count_per_split(split_of[r] for r in kept), subset=sorted(kept))
    self._require(self.report["drawn"])
    return [(path, example_id, split_of[rel]) for path, example_id, rel in photos
            if rel in kept]

  def _require(self, counts: dict[str, int], after_faces: bool = False):
    """EmptySplitError if a split of require_splits has no photo in `counts`."""
    missing = [s for s in self._require_splits if not counts.get(s)]
    if not missing:
      return
    skipped = ("; first skips: " + "; ".join(
        f"{pathlib.Path(s['file']).name}: {s['reason']}" for s in self.report["skipped"][:3])
               if after_faces and self.report["skipped"] else "")
    raise EmptySplitError(
        f"masked_faces/{self.builder_config.name}: split(s) {missing} would be empty: "
        + self._empty_reason(missing) + skipped + ". Training reads 'train' and 'validation', "
        "evaluation reads 'test'. Fix: use more photos (a larger --limit; --no_face fixed_box for "
        "aligned CelebA), a partition file that assigns photos to every split, or, for a split "
        "you will not use, leave it out of --require_splits "
        f"(now {','.join(self._require_splits)}).")

  def _empty_reason(self, missing: list[str]) -> str:
    available, drawn = self.report["available"], self.report["drawn"]
    none = [s for s in missing if not available.get(s)]
    if none:
      source = (f"the partition file {self._partition}" if self._partition
                else "the hash of the file names (80/10/10)")
      return (f"{source} puts none of the {sum(available.values())} photos under {self._src} "
              f"in {' or '.join(map(repr, none))}")
    if any(not drawn.get(s) for s in missing):
      return (f"--limit {self._limit} is too small to draw a photo for each of the "
              f"{len(available)} splits")
    return "every photo drawn for it was skipped"

  def _scan(self, photos) -> dict[str, Any]:
    """Phase 1 over every photo, reusing cached results: {path: result or skip reason}."""
    cache = ScanCache(pathlib.Path(self.data_dir_root) / "_scan_cache" / "finders.jsonl",
                      self._scan_opts)
    keys = {path: cache.key(path) for path, _ in photos}
    todo = [path for path, _ in photos if keys[path] not in cache.entries]
    bar = self._bar(len(todo), "finding faces")
    for path, result in zip(todo, self._imap(scan_task, [(p, self._scan_opts) for p in todo])):
      cache.add(keys[path], result)
      if bar:
        bar.update(1)
    if bar:
      bar.close()
    self.report["scanned_now"] = len(todo)
    return {path: cache.entries[keys[path]] for path, _ in photos}

  def _split_generators(self, dl_manager):
    del dl_manager
    self.report.update(skipped=[], counts={}, mask_types={}, fallbacks=0)
    photos = self._select(self._photos())
    scans = self._scan([(path, example_id) for path, example_id, _ in photos])
    splits = {s: [] for s in SPLITS}
    for path, example_id, split in photos:
      status, result = scans[path]
      if status == "skip":
        self.report["skipped"].append(dict(file=path, reason=result))
        continue
      self.report["fallbacks"] += result["source"] == "fixed_box"
      splits[split].append((path, example_id, result["landmarks"], self._render_opts))
    self._require({s: len(items) for s, items in splits.items()}, after_faces=True)
    # TFDS refuses empty splits; one that no one requires is left out (and reported).
    self.report["empty_splits"] = [s for s, items in splits.items() if not items]
    return {name: self._generate_examples(split=name, tasks=tasks)
            for name, tasks in splits.items() if tasks}

  def _generate_examples(self, split: str, tasks):
    self.report["counts"].setdefault(split, 0)
    bar = self._bar(len(tasks), f"{self.builder_config.name}/{split}")
    for (path, example_id, _, _), (status, payload) in zip(
        tasks, self._imap(render_task, tasks)):
      if bar:
        bar.update(1)
      if status == "skip":  # readable at scan time, not now (changed under us)
        self.report["skipped"].append(dict(file=path, reason=payload))
        continue
      self.report["counts"][split] += 1
      by_type = self.report["mask_types"].setdefault(split, {})
      by_type[payload["mask_type"]] = by_type.get(payload["mask_type"], 0) + 1
      yield example_id, payload
    if bar:
      bar.close()


def builder_config(occlusion: str, size: int):
  """The `config=` argument for MaskedFaces: a registered name at 128 px, else a new config."""
  if size == 128:
    return config_name(occlusion, size)
  return MaskedFacesConfig(occlusion=occlusion, size=size)
