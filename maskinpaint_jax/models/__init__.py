"""Model definitions (Flax linen). Imports no training or data code."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from maskinpaint_jax.models.discriminator import PatchDiscriminator
from maskinpaint_jax.models.generator import Generator

DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16}


def compute_dtype(name: str):
  if name not in DTYPES:
    raise ValueError(f"model.dtype must be one of {sorted(DTYPES)}, got {name!r}")
  return DTYPES[name]


def example_inputs(image_size: int, batch: int = 1):
  """(image, hole) shapes that G and D are initialised with: float32 [-1, 1] image, {0,1} hole.
  jax.eval_shape takes them as they are; jnp.zeros(x.shape, x.dtype) makes concrete ones."""
  return (jax.ShapeDtypeStruct((batch, image_size, image_size, 3), jnp.float32),
          jax.ShapeDtypeStruct((batch, image_size, image_size, 1), jnp.float32))


def make_generator(model_config) -> Generator:
  """The generator described by `config.model` (see configs/default.py)."""
  c = model_config
  return Generator(
      base_width=c.base_width, width_multipliers=tuple(c.width_multipliers), norm=c.norm,
      mmrm=c.mmrm, mmrm_channel_attention=c.mmrm_channel_attention,
      mmrm_spatial_attention=c.mmrm_spatial_attention,
      up_channel_attention=c.up_channel_attention,
      spatial_attention_kernel=c.spatial_attention_kernel,
      spatial_attention_impl=c.spatial_attention_impl, non_blind=c.non_blind,
      dtype=compute_dtype(c.dtype))


def make_discriminator(config) -> PatchDiscriminator:
  """The discriminator of `config` (its widths from config.disc, dtype from config.model)."""
  return PatchDiscriminator(widths=tuple(config.disc.widths),
                            dtype=compute_dtype(config.model.dtype))


# The ablations of the paper's Tables IV / V, as config.model overrides.
ABLATIONS = {
    "full": {},
    "no_mmrm_channel_attention": {"mmrm_channel_attention": False},
    "no_mmrm_spatial_attention": {"mmrm_spatial_attention": False},
    "no_mmrm": {"mmrm": False},
    "no_up_channel_attention": {"up_channel_attention": False},
}
