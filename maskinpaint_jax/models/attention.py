"""The two attention mechanisms of the paper's MMRM (section II.A, Fig. 3).

* SpatialAttention, ref. [25] (the CBAM-style form): channel-wise mean and max -> k x k conv
  (2 -> 1) -> sigmoid -> rescale every position.
* EfficientChannelAttention, ref. [26] (ECA-Net): global average pool -> 1-D conv across
  channels with the adaptive kernel k = |log2(C)/gamma + b/gamma|_odd -> sigmoid -> rescale.
"""

from __future__ import annotations

import math
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

Dtype = Any


def eca_kernel_size(channels: int, gamma: int = 2, b: int = 1) -> int:
  """ECA-Net's adaptive kernel size: the odd number nearest above |log2(C)/gamma + b/gamma|."""
  k = int(abs((math.log2(channels) + b) / gamma))
  return k if k % 2 else k + 1


class EfficientChannelAttention(nn.Module):
  gamma: int = 2
  b: int = 1
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x):
    k = eca_kernel_size(x.shape[-1], self.gamma, self.b)
    pooled = jnp.mean(x.astype(jnp.float32), axis=(1, 2))          # (N, C), in float32
    # A 1-D convolution whose "length" axis is the channel axis: (N, C, 1) -> (N, C, 1).
    w = nn.Conv(1, (k,), padding="SAME", use_bias=False, dtype=jnp.float32, name="conv")(
        pooled[..., None])[..., 0]
    return x * nn.sigmoid(w).astype(x.dtype)[:, None, None, :]


class _SpatialConv(nn.Module):
  """The 2 -> 1 channel k x k convolution of spatial attention, with 'same' padding.

  impl="conv" is an ordinary convolution. impl="shifts" computes the same sum as k*k shifted,
  weighted copies of the 2-channel map: XLA fuses it into one loop, which on CPU is several
  times faster than its convolution for this very thin (2 -> 1) kernel. Same parameters.
  """
  kernel_size: int
  impl: str = "conv"
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, s):
    k = self.kernel_size
    kernel = self.param("kernel", nn.initializers.lecun_normal(), (k, k, s.shape[-1], 1),
                        jnp.float32)
    bias = self.param("bias", nn.initializers.zeros, (1,), jnp.float32)
    kernel, s = kernel.astype(self.dtype), s.astype(self.dtype)
    if self.impl == "conv":
      out = jax.lax.conv_general_dilated(
          s, kernel, (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC"))
    elif self.impl == "shifts":
      p = k // 2
      padded = jnp.pad(s, ((0, 0), (p, p), (p, p), (0, 0)))
      h, w = s.shape[1], s.shape[2]
      # Elementwise multiply-adds only (no dot), so XLA fuses all k*k terms into one loop.
      out = sum(jnp.sum(padded[:, i:i + h, j:j + w, :] * kernel[i, j, :, 0], axis=-1,
                        keepdims=True)
                for i in range(k) for j in range(k))
    else:
      raise ValueError(f"spatial attention impl must be 'conv' or 'shifts', got {self.impl!r}")
    return out + bias.astype(self.dtype)


class SpatialAttention(nn.Module):
  kernel_size: int = 7
  impl: str = "conv"
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x):
    desc = jnp.concatenate([jnp.mean(x, axis=-1, keepdims=True),
                            jnp.max(x, axis=-1, keepdims=True)], axis=-1)
    logits = _SpatialConv(self.kernel_size, self.impl, self.dtype, name="conv")(desc)
    return x * nn.sigmoid(logits).astype(x.dtype)
