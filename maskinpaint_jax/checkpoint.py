"""Checkpoints: one small module that knows their layout (Orbax CheckpointManager).

<workdir>/checkpoints/<step>/ holds separately restorable items:
  generator      G parameters                  (all evaluate / inpaint need)
  discriminator  D parameters + spectral-norm u / sigma
  optimizer      both Adam states
  meta           step, base RNG key, count of skipped non-finite steps
  data           the Grain iterator state, one file per process
  config         the training config (JSON)
Orbax writes each step into a temporary folder and renames it when complete, so a run killed at
any moment leaves only whole checkpoints behind.
"""

from __future__ import annotations

import pathlib
from typing import Any

import grain
import jax
import jax.numpy as jnp
import ml_collections
import orbax.checkpoint as ocp

from maskinpaint_jax import models

TRAIN_ITEMS = ("generator", "discriminator", "optimizer", "meta")


def checkpoint_dir(workdir) -> pathlib.Path:
  return pathlib.Path(workdir).expanduser().absolute() / "checkpoints"  # Orbax: absolute only


def manager(workdir, keep: int | None = None, asynchronous: bool = True,
            read_only: bool = False) -> ocp.CheckpointManager:
  options = ocp.CheckpointManagerOptions(
      max_to_keep=keep, create=not read_only, read_only=read_only,
      enable_async_checkpointing=asynchronous)
  return ocp.CheckpointManager(checkpoint_dir(workdir), options=options)


def save(mngr: ocp.CheckpointManager, step: int, items: dict[str, Any], data_iterator,
         config: ml_collections.ConfigDict) -> bool:
  """Saves the TRAIN_ITEMS pytrees, the data iterator state and the config at `step`."""
  args = {name: ocp.args.StandardSave(items[name]) for name in TRAIN_ITEMS}
  args["data"] = grain.checkpoint.CheckpointSave(data_iterator)
  args["config"] = ocp.args.JsonSave(config.to_dict())
  return mngr.save(step, args=ocp.args.Composite(**args), force=True)


def restore_train(mngr: ocp.CheckpointManager, step: int, abstract_items: dict[str, Any],
                  data_iterator=None) -> dict[str, Any]:
  """Restores every training item into the shapes / shardings of `abstract_items`; the data
  iterator (if given) is restored in place."""
  args = {name: ocp.args.StandardRestore(abstract_items[name]) for name in TRAIN_ITEMS}
  if data_iterator is not None:
    args["data"] = grain.checkpoint.CheckpointRestore(data_iterator)
  restored = mngr.restore(step, args=ocp.args.Composite(**args))
  return {name: restored[name] for name in TRAIN_ITEMS}


def restore_config(mngr: ocp.CheckpointManager, step: int) -> ml_collections.ConfigDict:
  restored = mngr.restore(step, args=ocp.args.Composite(config=ocp.args.JsonRestore()))
  return ml_collections.ConfigDict(restored["config"])


def generator_shapes(config: ml_collections.ConfigDict, sharding=None):
  """Abstract G parameters of `config` (shapes, dtypes, and where to put them)."""
  size = config.data.image_size
  image = jax.ShapeDtypeStruct((1, size, size, 3), jnp.float32)
  hole = jax.ShapeDtypeStruct((1, size, size, 1), jnp.float32)
  shapes = jax.eval_shape(models.make_generator(config.model).init, jax.random.key(0), image,
                          hole)["params"]
  sharding = sharding or jax.sharding.SingleDeviceSharding(jax.local_devices()[0])
  return jax.tree.map(lambda s: jax.ShapeDtypeStruct(s.shape, s.dtype, sharding=sharding),
                      shapes)


def restore_generator(workdir, step: int | None = None):
  """(config, generator parameters, step) from a training workdir; nothing else is read.

  `step=None` takes the newest checkpoint.
  """
  mngr = manager(workdir, read_only=True)
  available = mngr.all_steps()
  if not available:
    raise FileNotFoundError(f"no checkpoint in {checkpoint_dir(workdir)}: train first "
                            f"(python -m maskinpaint_jax.train --workdir {workdir} ...)")
  if step is None:
    step = max(available)
  elif step not in available:
    raise FileNotFoundError(f"no checkpoint at step {step} in {checkpoint_dir(workdir)}; "
                            f"available: {sorted(available)}")
  config = restore_config(mngr, step)
  try:
    restored = mngr.restore(step, args=ocp.args.Composite(
        generator=ocp.args.StandardRestore(generator_shapes(config))))
  except ValueError as e:
    first = str(e).strip().splitlines()[0][:300]
    raise ValueError(
        f"the generator saved at step {step} in {checkpoint_dir(workdir)} does not match the "
        "architecture its config describes (saved by an incompatible version of this code?): "
        f"{first}") from None
  finally:
    mngr.close()
  return config, restored["generator"], step
