"""Checkpoints: one small module that knows their layout (Orbax CheckpointManager).

<workdir>/checkpoints/<step>/ holds separately loadable items:
  generator      G parameters                  (all evaluate / inpaint need)
  discriminator  D parameters + spectral-norm u / sigma
  optimizer      both Adam states
  meta           step, count of skipped non-finite steps
  data           the Grain iterator state, one file per process
  config         the training config (JSON)
Orbax writes each step into a temporary folder and renames it when complete, so a run killed at
any moment leaves only whole checkpoints behind.
"""

from __future__ import annotations

import hashlib
import json
import pathlib
import re
from typing import Any

import flax
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from maskinpaint_jax import errors, models, shipped

TRAIN_ITEMS = ("generator", "discriminator", "optimizer", "meta")


def checkpoint_dir(workdir) -> pathlib.Path:
  return pathlib.Path(workdir).expanduser().absolute() / "checkpoints"  # Orbax: absolute only


def manager(workdir, keep: int | None = None, asynchronous: bool = True,
            read_only: bool = False) -> ocp.CheckpointManager:
  import orbax.checkpoint as ocp  # pylint: disable=g-import-not-at-top
  options = ocp.CheckpointManagerOptions(
      max_to_keep=keep, create=not read_only, read_only=read_only,
      enable_async_checkpointing=asynchronous)
  return ocp.CheckpointManager(checkpoint_dir(workdir), options=options)


def latest_step(workdir) -> int | None:
  """The newest complete checkpoint's step in `workdir`; None when there is none."""
  with manager(workdir, read_only=True) as mngr:
    return mngr.latest_step()


def save(mngr: ocp.CheckpointManager, step: int, items: dict[str, Any], data_iterator,
         config: ml_collections.ConfigDict) -> bool:
  """Saves the TRAIN_ITEMS pytrees, the data iterator state and the config at `step`."""
  import orbax.checkpoint as ocp  # pylint: disable=g-import-not-at-top
  import grain  # pylint: disable=g-import-not-at-top
  args = {name: ocp.args.StandardSave(items[name]) for name in TRAIN_ITEMS}
  args["data"] = grain.checkpoint.CheckpointSave(data_iterator)
  args["config"] = ocp.args.JsonSave(config.to_dict())
  return mngr.save(step, args=ocp.args.Composite(**args), force=True)


def load_train_items(mngr: ocp.CheckpointManager, step: int, abstract_items: dict[str, Any],
                     data_iterator=None) -> dict[str, Any]:
  """Loads every training item into the shapes / shardings of `abstract_items`; the data
  iterator (if given) is set to its saved position in place."""
  import orbax.checkpoint as ocp  # pylint: disable=g-import-not-at-top
  import grain  # pylint: disable=g-import-not-at-top
  args = {name: ocp.args.StandardRestore(abstract_items[name]) for name in TRAIN_ITEMS}
  if data_iterator is not None:
    args["data"] = grain.checkpoint.CheckpointRestore(data_iterator)
  restored = mngr.restore(step, args=ocp.args.Composite(**args))
  return {name: restored[name] for name in TRAIN_ITEMS}


def load_config(mngr: ocp.CheckpointManager, step: int) -> ml_collections.ConfigDict:
  import orbax.checkpoint as ocp  # pylint: disable=g-import-not-at-top
  restored = mngr.restore(step, args=ocp.args.Composite(config=ocp.args.JsonRestore()))
  return ml_collections.ConfigDict(restored["config"])


def generator_shapes(config: ml_collections.ConfigDict, sharding=None):
  """Abstract G parameters of `config` (shapes, dtypes, and where to put them)."""
  image, hole = models.example_inputs(config.data.image_size)
  shapes = jax.eval_shape(models.build(config.model).init, jax.random.key(0), image,
                          hole)["params"]
  sharding = sharding or jax.sharding.SingleDeviceSharding(jax.local_devices()[0])
  return jax.tree.map(lambda s: jax.ShapeDtypeStruct(s.shape, s.dtype, sharding=sharding),
                      shapes)


def load_workdir(workdir, step: int | None = None):
  """(config, generator parameters, step) from a training workdir; nothing else is read.

  `step=None` takes the newest checkpoint.
  """
  import orbax.checkpoint as ocp  # pylint: disable=g-import-not-at-top
  mngr = manager(workdir, read_only=True)
  available = mngr.all_steps()
  if not available:
    raise errors.NotFoundError(f"no checkpoint in {checkpoint_dir(workdir)}: train first "
                               f"(python -m maskinpaint_jax.tools.train --workdir {workdir} ...)")
  if step is None:
    step = max(available)
  elif step not in available:
    raise errors.NotFoundError(f"no checkpoint at step {step} in {checkpoint_dir(workdir)}; "
                               f"available: {sorted(available)}")
  config = load_config(mngr, step)
  try:
    restored = mngr.restore(step, args=ocp.args.Composite(
        generator=ocp.args.StandardRestore(generator_shapes(config))))
  except ValueError as e:
    first = str(e).strip().splitlines()[0][:300]
    raise errors.MismatchError(
        f"the generator saved at step {step} in {checkpoint_dir(workdir)} does not match the "
        "architecture its config describes (saved by an incompatible version of this code?): "
        f"{first}") from None
  finally:
    mngr.close()
  return config, restored["generator"], step


# --- the shipped model: a generator exported out of a training workdir -------------------------
# Orbax and Grain are imported where checkpoints are read or written, not for a model folder:
# restoring a photo never pays for them.
# pretrained/<name>/ holds generator.msgpack (flax.serialization of G's parameters), config.json
# (the training config) and manifest.json (step, SHA-256 of the weights). No Orbax, no optimiser:
# a few MB that git, a wheel or a download can carry and that loads without the training code.

WEIGHTS, CONFIG, MANIFEST = "generator.msgpack", "config.json", "manifest.json"


STORAGE_DTYPES = ("float32", "float16")


def export_generator(workdir, out_dir, step: int | None = None, storage: str = "float32",
                     **provenance) -> pathlib.Path:
  """Writes the generator of `workdir` (newest step by default) as a pretrained model folder."""
  config, params, step = load_workdir(workdir, step)
  return save_pretrained(out_dir, config, params, step, storage=storage, **provenance)


def save_pretrained(out_dir, config, params, step: int, storage: str = "float32",
                    max_file_bytes: int | None = None, **provenance) -> pathlib.Path:
  """Writes (config, generator parameters) as a model folder that load_pretrained reads.
  storage "float16" halves the file (the weights are rounded to half precision, about 3
  significant digits, and computed in float32 again when loaded). `max_file_bytes`: weights
  larger than that are written in parts of at most that many bytes, generator.msgpack.000,
  .001, ... (named in manifest.json's "parts"; load_pretrained joins them), for transfers that
  limit the size of a file."""
  if storage not in STORAGE_DTYPES:
    raise ValueError(f"storage must be one of {STORAGE_DTYPES}, got {storage!r}")
  if max_file_bytes is not None and max_file_bytes < 1:
    raise ValueError(f"max_file_bytes must be positive, got {max_file_bytes}")
  out = pathlib.Path(out_dir)
  out.mkdir(parents=True, exist_ok=True)
  blob = flax.serialization.msgpack_serialize(
      jax.tree.map(lambda x: np.asarray(x).astype(storage), params))
  _check_shapes(params, param_shapes(generator_shapes(config)), out / WEIGHTS)
  parts = {}
  if max_file_bytes and len(blob) > max_file_bytes:
    for k, start in enumerate(range(0, len(blob), max_file_bytes)):
      name = f"{WEIGHTS}.{k:03d}"
      (out / name).write_bytes(blob[start:start + max_file_bytes])
      parts.setdefault("parts", []).append(name)
    (out / WEIGHTS).unlink(missing_ok=True)
  else:
    (out / WEIGHTS).write_bytes(blob)
  (out / CONFIG).write_text(config.to_json_best_effort(indent=2) + "\n")
  manifest = dict(step=int(step), sha256=hashlib.sha256(blob).hexdigest(), bytes=len(blob),
                  **parts, **({"storage": storage} if storage != "float32" else {}),
                  **provenance, param_shapes=param_shapes(params),
                  architecture=architecture_digest(config))
  (out / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
  return out


def architecture_digest(config) -> str:
  """SHA-256 of what decides the generator's parameter shapes: config.model (JSON)."""
  model = config.model.to_dict() if hasattr(config.model, "to_dict") else dict(config.model)
  return hashlib.sha256(json.dumps(model, sort_keys=True, default=str).encode()).hexdigest()


def param_shapes(params) -> dict[str, list[int]]:
  """{parameter path: shape} of a parameter tree (what manifest.json records)."""
  return {jax.tree_util.keystr(k): list(np.shape(v))
          for k, v in jax.tree_util.tree_leaves_with_path(params)}


def _check_shapes(params, expected: dict[str, list[int]], where: pathlib.Path):
  """`expected`: `param_shapes` of the architecture (or as a manifest recorded them)."""
  got = {k: tuple(v) for k, v in param_shapes(params).items()}
  want = {k: tuple(v) for k, v in expected.items()}
  if got != want:
    wrong = sorted(set(got) ^ set(want)) or [k for k in want if got[k] != want[k]]
    detail = "; ".join(f"{k}: {got.get(k)} vs config {want.get(k)}" for k in wrong[:3])
    raise errors.MismatchError(f"the weights in {where} do not match the architecture of its "
                     f"{CONFIG} ({len(wrong)} parameter(s) differ: {detail})")


def load_pretrained(model_dir=None):
  """(config, generator parameters, step) of an exported model folder (default: the shipped
  one). A missing, corrupt or mismatched file is a clear error."""
  model_dir = pathlib.Path(model_dir or shipped.model_dir())
  manifest = (json.loads((model_dir / MANIFEST).read_text())
              if (model_dir / MANIFEST).is_file() else {})
  weights = manifest.get("parts", [WEIGHTS])  # the weights in parts: joined in their order
  if any(not re.fullmatch(re.escape(WEIGHTS) + r"(\.\d{3})?", str(n)) for n in weights):
    raise errors.MismatchError(f"{model_dir / MANIFEST} names weight files other than "
                               f"{WEIGHTS}.000, .001, ...: {weights}")
  missing = [n for n in (*weights, CONFIG, MANIFEST) if not (model_dir / n).is_file()]
  if missing:
    raise errors.NotFoundError(f"{model_dir} is not a pretrained model folder: {missing} missing "
                            "(export one with `python -m maskinpaint_jax.tools.export`)")
  blob = b"".join((model_dir / n).read_bytes() for n in weights)
  if hashlib.sha256(blob).hexdigest() != manifest["sha256"]:
    raise errors.MismatchError(f"{model_dir / weights[0]} (of {len(weights)} file(s)) is "
                               "corrupt: its SHA-256 differs from "
                     f"{MANIFEST}'s (truncated download, or a Git LFS pointer?)")
  config = ml_collections.ConfigDict(json.loads((model_dir / CONFIG).read_text()))
  try:
    params = flax.serialization.msgpack_restore(blob)
  except Exception as e:  # pylint: disable=broad-except
    raise errors.MismatchError(
        f"{model_dir / WEIGHTS} cannot be read as flax msgpack: {e}") from None
  # The shapes the export checked against the architecture, when the manifest records them for
  # this very config.model: tracing the model to rebuild them costs about a second per
  # generator at start-up.
  recorded = (manifest.get("param_shapes")
              if manifest.get("architecture") == architecture_digest(config) else None)
  _check_shapes(params, recorded or param_shapes(generator_shapes(config)),
                model_dir / WEIGHTS)
  # float16 storage computes in float32, as trained.
  return config, jax.tree.map(lambda x: np.asarray(x, np.float32), params), int(
      manifest["step"])


def load_generator(source=None, step: int | None = None):
  """The one way evaluate and inpaint get a generator: (config, params, step) from a training
  workdir (Orbax checkpoints) or an exported model folder; None = the shipped model."""
  if source is not None and not (pathlib.Path(source) / MANIFEST).is_file():
    return load_workdir(source, step)  # a workdir (or an error saying there is none)
  if step is not None:
    raise errors.MismatchError(
        f"--step applies to a training workdir; {source or shipped.model_dir()} "
                     "is an exported model with one step")
  return load_pretrained(source)
