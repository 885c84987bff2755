"""Grain input pipeline over the TFDS ArrayRecord datasets written by `maskinpaint_jax.tools.build`.

Training order is a pure function of (seed, step), whatever the number of hosts:

    source -> shuffle (reshuffled every epoch) -> repeat -> decode + random flip, and with
    `fresh_masks` a new face mask (seeded per element) -> chunks of (global batch / processes)
    -> host p takes chunks p, p + P, ...

so global batch k is elements [k*B, (k+1)*B) of one global order, and host p holds its p-th
slice, which `jax.make_array_from_process_local_data` places on p's devices. A run on 1 host x 8
devices and on 2 hosts x 4 devices therefore sees identical global batches, in identical device
order. The host's shard index and count come from `grain.sharding.ShardByJaxProcess`.

Batches stay uint8 on the host (a quarter of float32's bytes to copy); the train step converts.
The iterator's state (`get_state` / `set_state`) is saved in every checkpoint.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import pathlib
from typing import Any

import grain
import numpy as np
import tensorflow_datasets as tfds

from maskinpaint_jax import errors
from maskinpaint_jax import masks as data_masks

# The built datasets' layout (data_prep.builder writes it): data_dir/masked_faces/<name>/<version>,
# <name> = the occlusion, with a _<size> suffix when not 128 px.
OCCLUSIONS = ("face_mask", "rect")
SPLITS = ("train", "validation", "test")


def config_name(occlusion: str, size: int) -> str:
  if occlusion not in OCCLUSIONS:
    raise ValueError(f"occlusion must be one of {OCCLUSIONS}, got {occlusion!r}")
  return occlusion if size == 128 else f"{occlusion}_{size}"



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
    raise errors.NotFoundError(
        f"no complete dataset 'masked_faces/{name}' under {pathlib.Path(data_dir).absolute()}. "
        f"Build it: python -m maskinpaint_jax.tools.build --src PHOTOS --data_dir {data_dir} "
        f"--occlusions {name.rsplit('_', 1)[0] if name[-1].isdigit() else name}"
        + (f" --size {name.rsplit('_', 1)[1]}" if name[-1].isdigit() else ""))
  return versions[-1]


@dataclasses.dataclass(frozen=True)
class DatasetInfo:
  num_examples: int
  names: tuple[str, ...]
  split: str


def dataset_names(names: str, image_size: int) -> list[str]:
  """'face_mask,rect' at 64 px -> ['face_mask_64', 'rect_64'] (TFDS builder config names)."""
  return [config_name(n.strip(), image_size) for n in names.split(",") if n.strip()]


def open_sources(data_dir: str, names: str, image_size: int, split: str):
  return [data_source(data_dir, n, split)
          for n in dataset_names(names, image_size)]


def to_model_inputs(example: dict[str, Any]) -> dict[str, np.ndarray]:
  """TFDS example -> the uint8 arrays the model consumes (hole map 0/1)."""
  return {"clean": np.asarray(example["image"], np.uint8),
          "masked": np.asarray(example["masked"], np.uint8),
          "hole": (np.asarray(example["mask"]) > 127).astype(np.uint8)}


def stack_inputs(examples) -> dict[str, np.ndarray]:
  """A list of TFDS examples -> one uint8 batch of model inputs (each example converted once)."""
  converted = [to_model_inputs(e) for e in examples]
  return {k: np.stack([c[k] for c in converted]) for k in ("clean", "masked", "hole")}


RECT_TYPE = data_masks.MASK_TYPES.index("rect")


def redraw_face_mask(example: dict[str, Any], rng: np.random.Generator) -> dict[str, Any]:
  """The example with a new face mask drawn on its clean crop by Algorithm 1 (any style and
  colour of masks.apply_face_mask) from its stored 68 landmarks (crop pixels) and `rng`. A
  rectangle example is returned as stored: its hole is the paper's fixed centred box."""
  if int(example["mask_type"]) == RECT_TYPE:
    return example
  masked, hole, style = data_masks.apply_face_mask(
      np.asarray(example["image"], np.uint8), np.asarray(example["landmarks"], np.float32), rng)
  return dict(example, masked=masked, mask=hole[..., None] * 255,
              mask_type=data_masks.MASK_TYPES.index(style))


def augment(example, rng: np.random.Generator, fresh_masks: bool = False):
  """Training augmentation of one TFDS example -> model inputs: a random horizontal flip and,
  with `fresh_masks`, a face mask drawn anew (`redraw_face_mask`). `rng` is Grain's per-element
  generator, seeded by (seed, position in the repeated stream): the same step always sees the
  same masks (exact resume), and each epoch draws new ones."""
  flip = rng.random() < 0.5  # drawn first: without fresh_masks the stream is the flip-only one
  if fresh_masks:
    example = redraw_face_mask(example, rng)
  example = to_model_inputs(example)
  if flip:  # clean, masked and hole flip together
    example = {k: np.ascontiguousarray(v[:, ::-1]) for k, v in example.items()}
  return example


def check_split(global_batch: int, parts: int, what: str):
  """A clear error when the global batch does not split evenly over `parts` devices or
  processes, naming the nearest batch sizes that do."""
  if global_batch % parts:
    lo, hi = (global_batch // parts) * parts, (global_batch // parts + 1) * parts
    raise errors.MismatchError(
        f"global batch {global_batch} is not divisible by the {parts} {what}; use "
                     f"--config.batch_size={hi}" + (f" (or {lo})" if lo else ""))


def train_dataset(sources, *, global_batch: int, seed: int, random_flip: bool = True,
                  fresh_masks: bool = False,
                  shard: grain.sharding.ShardOptions | None = None) -> grain.MapDataset:
  """Infinite MapDataset of this host's batches (dicts of uint8 arrays, batch B / processes).
  `fresh_masks`: every face-mask example gets a new mask each time it is drawn (`augment`),
  instead of the one stored in the dataset (validation and test keep the stored ones)."""
  shard = shard or grain.sharding.ShardByJaxProcess()
  check_split(global_batch, shard.shard_count, "processes")
  ds = grain.MapDataset.concatenate([grain.MapDataset.source(s) for s in sources])
  ds = ds.shuffle(seed=seed).repeat(None)  # reshuffled with a new seed every epoch
  if fresh_masks and not random_flip:
    raise ValueError("fresh_masks draws with the flip's per-element generator: set random_flip")
  if random_flip:
    ds = ds.random_map(functools.partial(augment, fresh_masks=fresh_masks), seed=seed + 1)
  else:
    ds = ds.map(to_model_inputs)
  ds = ds.batch(global_batch // shard.shard_count, drop_remainder=True)
  return ds[shard.shard_index::shard.shard_count]


def _flags_parsed(*unused_worker_args):
  """Grain reads its own absl flags when it starts and runs worker processes; a program that
  never parses flags (a worker, a notebook, a test calling train_and_evaluate) takes their
  defaults."""
  from absl import flags  # pylint: disable=g-import-not-at-top
  if not flags.FLAGS.is_parsed():
    flags.FLAGS.mark_as_parsed()


def make_train_iterator(config, shard=None):
  """The training iterator of `config` and what it reads (DatasetInfo)."""
  sources = open_sources(config.data.data_dir, config.data.train_datasets,
                         config.data.image_size, "train")
  info = DatasetInfo(sum(len(s) for s in sources),
                     tuple(dataset_names(config.data.train_datasets, config.data.image_size)),
                     "train")
  if info.num_examples == 0:
    raise errors.MismatchError(f"the training split of {info.names} is empty")
  ds = train_dataset(sources, global_batch=config.batch_size, seed=config.seed,
                     random_flip=config.data.random_flip,
                     fresh_masks=config.data.get("fresh_masks", False), shard=shard)
  iter_ds = ds.to_iter_dataset(grain.ReadOptions(num_threads=4,
                                                 prefetch_buffer_size=config.data.prefetch_batches))
  if config.data.num_workers > 0:
    _flags_parsed()
    iter_ds = iter_ds.mp_prefetch(grain.MultiprocessingOptions(
        num_workers=config.data.num_workers,
        per_worker_buffer_size=max(1, config.data.prefetch_batches)),
        worker_init_fn=_flags_parsed)
  return iter(iter_ds), info


def fixed_batch(data_dir: str, names: str, image_size: int, split: str, count: int):
  """The first examples of a split (TFDS's stored order, fixed for a built dataset), `count` in
  all and shared evenly between the datasets of `names` (so a face_mask,rect mixture is
  validated on both), as one uint8 batch plus ids and mask types: a fixed set for validation
  and picture grids."""
  sources = open_sources(data_dir, names, image_size, split)
  examples = []
  for k, source in enumerate(sources):
    share = (count - len(examples)) // (len(sources) - k)
    examples += [source[i] for i in range(min(len(source), share))]
  if not examples:
    raise errors.MismatchError(f"split {split!r} of {names} has no examples")
  batch = stack_inputs(examples)
  batch["id"] = np.array([e["id"].decode() if isinstance(e["id"], bytes) else e["id"]
                          for e in examples])
  batch["mask_type"] = np.array([int(e["mask_type"]) for e in examples])
  return batch
