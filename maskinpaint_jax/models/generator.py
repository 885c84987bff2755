"""The generator: a U-Net whose down- and up-sampling stages are MMRMs (paper II.A, Fig. 2).

    stem 3x3 conv (base width)
    encoder level i:  MMRM(w_i)  -> keep as skip_i -> 3x3 conv, stride 2, padding (1, 1)
    bottleneck:       MMRM(w_last)
    decoder level i:  2x nearest up-sampling + 3x3 conv (w_i) -> concat skip_i
                      -> channel attention (ECA) on the concatenation -> MMRM(w_i)
    head:             3x3 conv -> tanh, output in [-1, 1]

w_i = base_width * width_multipliers[i]. Down-sampling pads (1, 1) explicitly, as PyTorch's
`padding=1` does (Flax's "SAME" would pad (0, 1) for a stride-2 3x3 conv). Nearest up-sampling
followed by a conv avoids the checkerboard artefacts of transposed convolutions.
Input: the masked image in [-1, 1] (blind, as in the paper); with `non_blind` the hole pixels
are zeroed and the hole map (1 = hole) is a 4th channel.
"""

from __future__ import annotations

from typing import Any, Sequence

import flax.linen as nn
import jax.numpy as jnp

from maskinpaint_jax.models.attention import EfficientChannelAttention
from maskinpaint_jax.models.mmrm import MMRM, ResidualBlock, act

Dtype = Any
DOWN_PADDING = ((1, 1), (1, 1))


class Generator(nn.Module):
  base_width: int = 64
  width_multipliers: Sequence[int] = (1, 2, 4, 8)
  norm: str = "group"
  mmrm: bool = True
  mmrm_channel_attention: bool = True
  mmrm_spatial_attention: bool = True
  up_channel_attention: bool = True
  spatial_attention_kernel: int = 7
  spatial_attention_impl: str = "auto"
  non_blind: bool = False
  dtype: Dtype = jnp.float32

  def block(self, features: int, name: str):
    if self.mmrm:
      return MMRM(features, self.mmrm_channel_attention, self.mmrm_spatial_attention, self.norm,
                  self.spatial_attention_kernel, self.spatial_attention_impl, self.dtype,
                  name=name)
    return ResidualBlock(features, self.norm, self.dtype, name=name)

  @nn.compact
  def __call__(self, masked, hole=None):
    """masked: (N, H, W, 3) in [-1, 1]; hole: (N, H, W, 1) in {0, 1}, used when non_blind."""
    levels = len(self.width_multipliers)
    if masked.shape[1] % 2**levels or masked.shape[2] % 2**levels:
      raise ValueError(f"image side {masked.shape[1:3]} must be divisible by 2**{levels}")
    x = masked
    if self.non_blind:
      if hole is None:
        raise ValueError("non_blind generator needs the hole map")
      # The occluder's pixels are zeroed (0 = mid-grey in [-1, 1]): the model cannot copy any
      # of the mask's colour or pattern into its output, only the face around the hole.
      hole = hole.astype(x.dtype)
      x = jnp.concatenate([x * (1.0 - hole), hole], axis=-1)
    widths = [self.base_width * m for m in self.width_multipliers]
    h = nn.Conv(widths[0], (3, 3), padding="SAME", dtype=self.dtype, name="stem")(
        x.astype(self.dtype))
    skips = []
    for i, w in enumerate(widths):
      h = self.block(w, f"down{i}")(h)
      skips.append(h)
      h = act(nn.Conv(w, (3, 3), strides=(2, 2), padding=DOWN_PADDING, dtype=self.dtype,
                      name=f"downsample{i}")(h))
    h = self.block(widths[-1], "bottleneck")(h)
    for i in reversed(range(levels)):
      n, hh, ww, c = h.shape
      h = jnp.broadcast_to(h[:, :, None, :, None, :], (n, hh, 2, ww, 2, c)).reshape(
          n, 2 * hh, 2 * ww, c)  # nearest-neighbour 2x
      h = act(nn.Conv(widths[i], (3, 3), padding="SAME", dtype=self.dtype, name=f"upconv{i}")(h))
      h = jnp.concatenate([h, skips[i]], axis=-1)
      if self.up_channel_attention:
        h = EfficientChannelAttention(dtype=self.dtype, name=f"up_eca{i}")(h)
      h = self.block(widths[i], f"up{i}")(h)
    out = nn.Conv(3, (3, 3), padding="SAME", dtype=self.dtype, name="head")(h)
    return jnp.tanh(out.astype(jnp.float32))
