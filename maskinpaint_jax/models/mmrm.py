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


class MMRM(nn.Module):
  features: int
  channel_attention: bool = True
  spatial_attention: bool = True
  norm: str = "group"
  sa_kernel: int = 7
  sa_impl: str = "conv"
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x):
    # A bias before a normalisation is cancelled by it: convs followed by a norm have none.
    biased = self.norm == "none"
    conv = lambda k, name, bias=biased: nn.Conv(self.features, (k, k), padding="SAME",
                                                use_bias=bias, dtype=self.dtype, name=name)
    branches = []
    for k in (1, 3, 5):
      h = act(norm_layer(self.norm, self.dtype, f"norm{k}x{k}")(conv(k, f"conv{k}x{k}")(x)))
      if self.spatial_attention and k > 1:
        h = SpatialAttention(self.sa_kernel, self.sa_impl, self.dtype, name=f"sa{k}x{k}")(h)
      branches.append(h)
    h = jnp.concatenate(branches, axis=-1)
    if self.channel_attention:
      h = EfficientChannelAttention(dtype=self.dtype, name="eca")(h)
    h = norm_layer(self.norm, self.dtype, "norm_fuse")(conv(1, "fuse")(h))
    shortcut = x if x.shape[-1] == self.features else conv(1, "projection", True)(x)
    return act(h + shortcut)


class ResidualBlock(nn.Module):
  """A plain ResNet basic block (two 3x3 convs): the "w/o MMRM" ablation."""
  features: int
  norm: str = "group"
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x):
    biased = self.norm == "none"
    conv = lambda k, name, bias=biased: nn.Conv(self.features, (k, k), padding="SAME",
                                                use_bias=bias, dtype=self.dtype, name=name)
    h = act(norm_layer(self.norm, self.dtype, "norm1")(conv(3, "conv1")(x)))
    h = norm_layer(self.norm, self.dtype, "norm2")(conv(3, "conv2")(h))
    shortcut = x if x.shape[-1] == self.features else conv(1, "projection", True)(x)
    return act(h + shortcut)
