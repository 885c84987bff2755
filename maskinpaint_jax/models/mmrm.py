"""MMRM, the multi-scale mixed-attention residual module (paper section II.A, Fig. 3).

    x --+-- conv1x1 -- norm -- act ----------------------+
        |-- conv3x3 -- norm -- act -- spatial attention --+-- concat -- ECA -- conv1x1 -- norm --(+)-- act
        |-- conv5x5 -- norm -- act -- spatial attention --+                                      |
        +-------------------- identity, or a 1x1 projection when channels change ----------------+

Each branch has `features` channels; the 1x1 fusion conv brings the 3 * features concatenation
back to `features` so the residual sum is defined. Flags switch off the spatial attention and the
channel attention (the ablations of Tables IV/V); `ResidualBlock` is the "w/o MMRM" ablation.
"""

from __future__ import annotations

import math
from typing import Any

import flax.linen as nn
import jax.numpy as jnp

from maskinpaint_jax.models.attention import EfficientChannelAttention, SpatialAttention

Dtype = Any
LEAKY_SLOPE = 0.2


def act(x):
  return nn.leaky_relu(x, LEAKY_SLOPE)


def norm_layer(kind: str, dtype: Dtype, name: str | None = None):
  """GroupNorm with gcd(C, 32) groups (32 for wide layers, one channel per group for thin
  ones): independent of the batch, so any per-device batch and inference behave the same."""
  if kind == "group":
    return lambda x: nn.GroupNorm(num_groups=math.gcd(x.shape[-1], 32), dtype=dtype,
                                  name=name)(x)
  if kind == "none":
    return lambda x: x
  raise ValueError(f"norm must be 'group' or 'none', got {kind!r}")


def conv_norm(x, features: int, k: int, norm: str, dtype: Dtype, conv_name: str,
              norm_name: str):
  """k x k conv then norm. The conv has no bias when a norm follows: the norm would cancel it."""
  h = nn.Conv(features, (k, k), padding="SAME", use_bias=norm == "none", dtype=dtype,
              name=conv_name)(x)
  return norm_layer(norm, dtype, norm_name)(h)


def residual(x, h, features: int, dtype: Dtype):
  """act(h + x), through a 1x1 projection of x when the channel count changes."""
  shortcut = x if x.shape[-1] == features else nn.Conv(
      features, (1, 1), dtype=dtype, name="projection")(x)
  return act(h + shortcut)


class MMRM(nn.Module):
  features: int
  channel_attention: bool = True
  spatial_attention: bool = True
  norm: str = "group"
  sa_kernel: int = 7
  sa_impl: str = "auto"
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x):
    branches = []
    for k in (1, 3, 5):
      h = act(conv_norm(x, self.features, k, self.norm, self.dtype, f"conv{k}x{k}",
                        f"norm{k}x{k}"))
      if self.spatial_attention and k > 1:
        h = SpatialAttention(self.sa_kernel, self.sa_impl, self.dtype, name=f"sa{k}x{k}")(h)
      branches.append(h)
    h = jnp.concatenate(branches, axis=-1)
    if self.channel_attention:
      h = EfficientChannelAttention(dtype=self.dtype, name="eca")(h)
    h = conv_norm(h, self.features, 1, self.norm, self.dtype, "fuse", "norm_fuse")
    return residual(x, h, self.features, self.dtype)


class ResidualBlock(nn.Module):
  """A plain ResNet basic block (two 3x3 convs): the "w/o MMRM" ablation."""
  features: int
  norm: str = "group"
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x):
    h = act(conv_norm(x, self.features, 3, self.norm, self.dtype, "conv1", "norm1"))
    h = conv_norm(h, self.features, 3, self.norm, self.dtype, "conv2", "norm2")
    return residual(x, h, self.features, self.dtype)
