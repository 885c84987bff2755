"""Model definitions (Flax linen). Imports no training or data code.

`build(config.model)` and `build_discriminator(config)` are the one place a config becomes a
model: they bind config.model's options (dtype, norm, attention kernel and implementation) to
the factories the modules take (`conv`, `norm`, `block`, the attentions) and leave an ablated
part out by passing None.
"""

from __future__ import annotations

import functools

import flax.linen as nn
import jax
import jax.numpy as jnp

from maskinpaint_jax.models.attention import EfficientChannelAttention, SpatialAttention
from maskinpaint_jax.models.discriminator import PatchDiscriminator
from maskinpaint_jax.models.generator import Generator
from maskinpaint_jax.models.mmrm import MMRM, ResidualBlock, group_norm

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


def norm_factory(kind: str, dtype):
  """config.model.norm -> the `norm` the blocks take: "group" = `mmrm.group_norm` in `dtype`,
  "none" = None (no norm; the convs keep their bias). ValueError for another name."""
  if kind == "group":
    return functools.partial(group_norm, dtype=dtype)
  if kind == "none":
    return None
  raise ValueError(f"norm must be 'group' or 'none', got {kind!r}")


def build(model_config) -> Generator:
  """The generator described by `config.model` (fields in configs/default.py).

  Raises:
    ValueError: an unknown model.dtype or model.norm.
  """
  c = model_config
  dtype = compute_dtype(c.dtype)
  conv = functools.partial(nn.Conv, dtype=dtype)
  norm = norm_factory(c.norm, dtype)
  if c.mmrm:
    spatial = functools.partial(SpatialAttention, kernel_size=c.spatial_attention_kernel,
                                impl=c.spatial_attention_impl, dtype=dtype)
    block = functools.partial(
        MMRM, conv=conv, norm=norm,
        spatial_attention=spatial if c.mmrm_spatial_attention else None,
        channel_attention=(functools.partial(EfficientChannelAttention, dtype=dtype)
                           if c.mmrm_channel_attention else None))
  else:
    block = functools.partial(ResidualBlock, conv=conv, norm=norm)
  up_attention = (functools.partial(EfficientChannelAttention, dtype=dtype)
                  if c.up_channel_attention else None)
  return Generator(base_width=c.base_width, width_multipliers=tuple(c.width_multipliers),
                   non_blind=c.non_blind, block=block, up_attention=up_attention, conv=conv,
                   dtype=dtype)


def build_discriminator(config) -> PatchDiscriminator:
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
