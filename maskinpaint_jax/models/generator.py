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

The blocks, the convolution and the decoder's channel attention are injected (as in flax's
examples/imagenet ResNet): `models.build(config.model)` binds the options of config.model to
them, the one place a config becomes a model.
"""

from __future__ import annotations

from typing import Any, Sequence

import flax.linen as nn
import jax.numpy as jnp

from maskinpaint_jax.models.attention import EfficientChannelAttention
from maskinpaint_jax.models.mmrm import MMRM, ModuleDef, act

Dtype = Any
DOWN_PADDING = ((1, 1), (1, 1))


class Generator(nn.Module):
  """block(features, name=...): the residual block of every level (MMRM, or ResidualBlock for
  the "w/o MMRM" ablation); up_attention(name=...): the channel attention on each decoder
  concatenation, None without; conv: the stem, sampling and head convolution; dtype: the
  compute dtype the input is cast to."""
  base_width: int = 64
  width_multipliers: Sequence[int] = (1, 2, 4, 8)
  non_blind: bool = False
  block: ModuleDef = MMRM
  up_attention: ModuleDef | None = EfficientChannelAttention
  conv: ModuleDef = nn.Conv
  dtype: Dtype = jnp.float32

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
    h = self.conv(widths[0], (3, 3), padding="SAME", name="stem")(x.astype(self.dtype))
    skips = []
    for i, w in enumerate(widths):
      h = self.block(w, name=f"down{i}")(h)
      skips.append(h)
      h = act(self.conv(w, (3, 3), strides=(2, 2), padding=DOWN_PADDING,
                        name=f"downsample{i}")(h))
    h = self.block(widths[-1], name="bottleneck")(h)
    for i in reversed(range(levels)):
      n, hh, ww, c = h.shape
      h = jnp.broadcast_to(h[:, :, None, :, None, :], (n, hh, 2, ww, 2, c)).reshape(
          n, 2 * hh, 2 * ww, c)  # nearest-neighbour 2x
      h = act(self.conv(widths[i], (3, 3), padding="SAME", name=f"upconv{i}")(h))
      h = jnp.concatenate([h, skips[i]], axis=-1)
      if self.up_attention is not None:
        h = self.up_attention(name=f"up_eca{i}")(h)
      h = self.block(widths[i], name=f"up{i}")(h)
    out = self.conv(3, (3, 3), padding="SAME", name="head")(h)
    return jnp.tanh(out.astype(jnp.float32))
