"""Inpainting with a trained generator: uint8 in, uint8 out, in fixed-size batches (one
compilation). `fill` is the jittable core (the trainer validates with it); `make_filler` wraps it
for numpy callers (evaluate, inpaint)."""

from __future__ import annotations

import json

import jax
import jax.numpy as jnp
import numpy as np

from maskinpaint_jax import metrics, models, programs


def to_unit_range(x):
  """uint8 [0, 255] -> float32 [-1, 1]."""
  return x.astype(jnp.float32) / 127.5 - 1.0


def fill(g, g_params, masked_uint8, hole):
  """G's raw output for uint8 masked images, and its composite with the known hole map
  (hole pixels from G, the rest from the input), both in [-1, 1]."""
  masked, hole = to_unit_range(masked_uint8), jnp.asarray(hole, jnp.float32)
  out = g.apply({"params": g_params}, masked, hole)
  return out, hole * out + (1.0 - hole) * masked


def make_filler(model_config, g_params, batch_size: int = 32, image_size: int | None = None):
  """fn(masked (N,H,W,3) uint8, hole (N,H,W,1) {0,1}) -> (raw, composite) uint8 numpy, any N.

  Batches are padded to `batch_size` so the generator compiles once. With `image_size` (the
  side every input has) the traced program is kept between runs (`programs.cached_program`).
  """
  g = models.build(model_config)

  def fill_uint8(params, masked, hole):
    raw, comp = fill(g, params, masked, hole)
    return metrics.to_uint8(raw), metrics.to_uint8(comp)

  if image_size:
    s = image_size
    fill_uint8 = programs.cached_program(
        fill_uint8, (g_params, jax.ShapeDtypeStruct((batch_size, s, s, 3), np.uint8),
                     jax.ShapeDtypeStruct((batch_size, s, s, 1), np.float32)),
        key=json.dumps(model_config.to_dict(), sort_keys=True, default=str))
  else:
    fill_uint8 = jax.jit(fill_uint8)

  def filler(masked: np.ndarray, hole: np.ndarray):
    raws, comps = [], []
    for start in range(0, len(masked), batch_size):
      m, h = masked[start:start + batch_size], hole[start:start + batch_size]
      n = len(m)
      if n < batch_size:
        pad = lambda a: np.concatenate([a, np.zeros((batch_size - n,) + a.shape[1:], a.dtype)])
        m, h = pad(m), pad(h)
      raw, comp = jax.device_get(fill_uint8(g_params, np.asarray(m, np.uint8),
                                            np.asarray(h, np.float32)))
      raws.append(raw[:n])
      comps.append(comp[:n])
    return np.concatenate(raws), np.concatenate(comps)

  return filler
