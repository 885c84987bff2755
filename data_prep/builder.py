"""TFDS builder `masked_faces`: face photos -> (clean, masked, hole map) examples in ArrayRecord.

Written without TensorFlow: images go in as PNG bytes, read back with `tfds.data_source`.
Builder configs: `face_mask` (Algorithm 1 masks) and `rect` (the paper's centred rectangle), at
128 px; other sizes get the suffix `_<size>` (e.g. `face_mask_64`).

Each photo is processed independently (in a worker process) from its own seed, so the dataset is
the same for any number of workers. TFDS writes into a `*.incomplete*` folder and renames it only
when every split is complete: an interrupted build is never taken for a dataset.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import hashlib
import json
import multiprocessing
import os
import pathlib
from typing import Any

import numpy as np
import tensorflow_datasets as tfds

from data_prep import faces, images, masks

OCCLUSIONS = ("face_mask", "rect")
SPLITS = ("train", "validation", "test")
# CelebA's list_eval_partition.txt: 0 = train, 1 = validation, 2 = test.
CELEBA_PARTITION = {"0": "train", "1": "validation", "2": "test"}
# Without a partition file: a stable hash of the id, 80 / 10 / 10.
HASH_SPLIT_PERCENT = (80, 10)


def config_name(occlusion: str, size: int) -> str:
  if occlusion not in OCCLUSIONS:
    raise ValueError(f"occlusion must be one of {OCCLUSIONS}, got {occlusion!r}")
  return occlusion if size == 128 else f"{occlusion}_{size}"


def hash_split(example_id: str) -> str:
  bucket = int(hashlib.sha1(example_id.encode("utf-8")).hexdigest(), 16) % 100
  if bucket < HASH_SPLIT_PERCENT[0]:
    return "train"
  return "validation" if bucket < sum(HASH_SPLIT_PERCENT) else "test"


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


@dataclasses.dataclass(frozen=True)
class RenderOptions:
  occlusion: str = "face_mask"
  size: int = 128
  seed: int = 0


_FINDER: faces.FaceFinder | None = None


@contextlib.contextmanager
def photo_pool(workers: int):
  """An ordered `imap` over `workers` processes (plain `map` for one worker)."""
  if workers <= 1:
    yield map
    return
  ctx = multiprocessing.get_context("spawn")  # never fork a parent that may hold threads
  with ctx.Pool(workers) as pool:
    yield functools.partial(pool.imap, chunksize=4)


def _finder(min_face_size: int) -> faces.FaceFinder:
  global _FINDER
  if _FINDER is None or _FINDER.min_face_size != min_face_size:
    _FINDER = faces.FaceFinder(min_face_size=min_face_size)
  return _FINDER


def _never_raise(fn):
  """Worker entries return ("ok", value) or ("skip", reason): one odd file never stops a build."""
  @functools.wraps(fn)
  def wrapped(task):
    try:
      return "ok", fn(*task)
    except (images.ImageLoadError, faces.NoFaceError) as e:
      return "skip", str(e)
    except Exception as e:  # pylint: disable=broad-except
      return "skip", f"unexpected error: {type(e).__name__}: {e}"
  return wrapped


@_never_raise
def scan_task(path: str, opts: ScanOptions) -> dict[str, Any]:
  """Phase 1: load and find the face. The slow part (detection), done once per photo."""
  img = images.load_rgb(path)
  face = _finder(opts.min_face_size).find_one(img, opts.no_face)
  return dict(landmarks=face.landmarks.round(3).tolist(), source=face.source)


def render_example(path: str, example_id: str, landmarks, opts: RenderOptions) -> dict[str, Any]:
  """Phase 2: crop the face square and put the occlusion on (decoded arrays)."""
  img = images.load_rgb(path)
  landmarks = np.asarray(landmarks, np.float32)
  matrix = faces.crop_matrix(landmarks, opts.size, img.shape)
  clean = faces.warp_crop(img, matrix, opts.size)
  landmarks = faces.transform_points(matrix, landmarks)
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
    return f"{os.path.abspath(path)}|{stamp}|{self.opts.no_face}|{self.opts.min_face_size}"

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
               imap=map, limit: int | None = None, no_face: str = "skip",
               min_face_size: int = 40, progress=None, **kwargs):
    """`imap(fn, tasks)` runs the photo processing in order, e.g. a worker pool's `imap`."""
    super().__init__(file_format="array_record", **kwargs)
    self._src, self._partition, self._imap, self._limit = src, partition, imap, limit
    self._progress = progress
    self._scan_opts = ScanOptions(no_face=no_face, min_face_size=min_face_size)
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

  def _photos(self) -> list[tuple[str, str]]:
    if self._src is None:
      raise ValueError("building needs src= (a folder of face photos)")
    root = pathlib.Path(self._src)
    paths = images.list_images(root)
    self.report["found"] = len(paths)
    if self._limit:
      paths = paths[:self._limit]
    return [(str(p), str(p.relative_to(root).with_suffix(""))) for p in paths]

  def _scan(self, photos) -> dict[str, Any]:
    """Phase 1 over every photo, reusing cached results: {path: result or skip reason}."""
    cache = ScanCache(pathlib.Path(self.data_dir_root) / "_scan_cache" / "faces.jsonl",
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
    photos = self._photos()
    partition = read_partition(self._partition) if self._partition else None
    scans = self._scan(photos)
    splits = {s: [] for s in SPLITS}
    for path, example_id in photos:
      status, result = scans[path]
      if status == "skip":
        self.report["skipped"].append(dict(file=path, reason=result))
        continue
      split = (partition.get(pathlib.Path(path).name) if partition is not None
               else hash_split(example_id))
      if split is None:
        self.report["skipped"].append(dict(file=path, reason="not in the partition file"))
        continue
      self.report["fallbacks"] += result["source"] == "fixed_box"
      splits[split].append((path, example_id, result["landmarks"], self._render_opts))
    # TFDS refuses empty splits; a split with no usable photo is left out (and reported).
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


def data_source(data_dir: str | os.PathLike, name: str, split: str):
  """A random-access source of decoded examples (numpy) of a built dataset, without the
  builder class: reads the dataset's own metadata."""
  builder_dir = find_builder_dir(data_dir, name)
  return tfds.builder_from_directory(str(builder_dir)).as_data_source(split=split)


def find_builder_dir(data_dir: str | os.PathLike, name: str) -> pathlib.Path:
  """data_dir/masked_faces/<name>/<version> of a completely built dataset (newest version)."""
  root = pathlib.Path(data_dir).absolute() / "masked_faces" / name
  versions = sorted(p for p in root.glob("*") if (p / "dataset_info.json").exists()
                    and "incomplete" not in p.name) if root.is_dir() else []
  if not versions:
    raise FileNotFoundError(
        f"no complete dataset 'masked_faces/{name}' under {pathlib.Path(data_dir).absolute()}. "
        f"Build it: python -m data_prep.build --src PHOTOS --data_dir {data_dir} "
        f"--config {name.rsplit('_', 1)[0] if name[-1].isdigit() else name}"
        + (f" --size {name.rsplit('_', 1)[1]}" if name[-1].isdigit() else ""))
  return versions[-1]
