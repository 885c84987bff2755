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
from typing import Any, Callable

import flax.linen as nn
import jax.numpy as jnp

from maskinpaint_jax.models.attention import EfficientChannelAttention, SpatialAttention

Dtype = Any
ModuleDef = Any  # a Module class or a functools.partial of one: called with the per-use options
# norm(features, name=...) -> a Module mapping (N, H, W, features) to the same shape.
NormDef = Callable[..., nn.Module]
LEAKY_SLOPE = 0.2


def act(x):
  return nn.leaky_relu(x, LEAKY_SLOPE)


def group_norm(features: int, *, name: str | None = None, dtype: Dtype = jnp.float32):
  """GroupNorm with gcd(C, 32) groups (32 for wide layers, one channel per group for thin
  ones): independent of the batch, so any per-device batch and inference behave the same."""
  return nn.GroupNorm(num_groups=math.gcd(features, 32), dtype=dtype, name=name)


def conv_norm(x, features: int, k: int, conv: ModuleDef, norm: NormDef | None, conv_name: str,
              norm_name: str):
  """k x k conv then norm (none when `norm` is None). The conv has no bias when a norm follows:
  the norm would cancel it."""
  h = conv(features, (k, k), padding="SAME", use_bias=norm is None, name=conv_name)(x)
  return h if norm is None else norm(features, name=norm_name)(h)


def residual(x, h, features: int, conv: ModuleDef):
  """act(h + x), through a 1x1 projection of x when the channel count changes."""
  shortcut = x if x.shape[-1] == features else conv(features, (1, 1), name="projection")(x)
  return act(h + shortcut)


class MMRM(nn.Module):
  """(N, H, W, C) -> (N, H, W, features), in the dtype `conv` computes in.

  conv: the convolution (`nn.Conv` with the compute dtype bound); norm: `group_norm` or None;
  spatial_attention / channel_attention: the attention modules (SpatialAttention,
  EfficientChannelAttention with their options bound), None for the ablations without them.
  """
  features: int
  conv: ModuleDef = nn.Conv
  norm: NormDef | None = group_norm
  spatial_attention: ModuleDef | None = SpatialAttention
  channel_attention: ModuleDef | None = EfficientChannelAttention

  @nn.compact
  def __call__(self, x):
    branches = []
    for k in (1, 3, 5):
      h = act(conv_norm(x, self.features, k, self.conv, self.norm, f"conv{k}x{k}",
                        f"norm{k}x{k}"))
      if self.spatial_attention is not None and k > 1:
        h = self.spatial_attention(name=f"sa{k}x{k}")(h)
      branches.append(h)
    h = jnp.concatenate(branches, axis=-1)
    if self.channel_attention is not None:
      h = self.channel_attention(name="eca")(h)
    h = conv_norm(h, self.features, 1, self.conv, self.norm, "fuse", "norm_fuse")
    return residual(x, h, self.features, self.conv)


class ResidualBlock(nn.Module):
  """A plain ResNet basic block (two 3x3 convs): the "w/o MMRM" ablation. (N, H, W, C) ->
  (N, H, W, features); `conv` and `norm` as MMRM's."""
  features: int
  conv: ModuleDef = nn.Conv
  norm: NormDef | None = group_norm

  @nn.compact
  def __call__(self, x):
    h = act(conv_norm(x, self.features, 3, self.conv, self.norm, "conv1", "norm1"))
    h = conv_norm(h, self.features, 3, self.conv, self.norm, "conv2", "norm2")
    return residual(x, h, self.features, self.conv)
