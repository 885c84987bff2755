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
import numpy as np

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


def _s2d_kernel_index(k: int, s: int):
  """Where each weight of a k x k 'same' conv lands in the equivalent conv on s x s blocks.

  Output pixel (s*Y + a, s*X + b) reads input (s*Y + a + i - p, s*X + b + j - p) with weight
  w[i, j]; writing the input row as s*(Y + dy) + r gives block offset dy and in-block row r.
  Returns (index, low, K): index[dy, dx, r, c, a, b] = i * k + j or -1, for dy, dx in
  [low, low + K).
  """
  p = k // 2
  low = -((p + s - 1) // s)
  K = (s - 1 + k - 1 - p) // s - low + 1
  index = np.full((K, K, s, s, s, s), -1, np.int64)
  for a in range(s):
    for b in range(s):
      for i in range(k):
        for j in range(k):
          dy, r = divmod(a + i - p, s)
          dx, c = divmod(b + j - p, s)
          index[dy - low, dx - low, r, c, a, b] = i * k + j
  return index, low, K


class _SpatialConv(nn.Module):
  """The 2 -> 1 channel k x k convolution of spatial attention, with 'same' padding.

  impl="conv": an ordinary convolution. impl="s2d": the same linear map computed on 4 x 4
  space-to-depth blocks, i.e. a conv with 2*16 input and 16 output channels and a small kernel.
  XLA:CPU runs such a thin (2 -> 1) conv at about 1 GFLOP/s; the blocked form does ~3x the
  FLOPs as one well-shaped conv and is ~8x faster forward + backward on CPU (docs/benchmarks.md).
  Same parameters, equal outputs up to float rounding. impl="auto": s2d on CPU, conv elsewhere.
  """
  kernel_size: int
  impl: str = "auto"
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, s):
    k = self.kernel_size
    kernel = self.param("kernel", nn.initializers.lecun_normal(), (k, k, s.shape[-1], 1),
                        jnp.float32)
    bias = self.param("bias", nn.initializers.zeros, (1,), jnp.float32)
    kernel, s = kernel.astype(self.dtype), s.astype(self.dtype)
    impl = self.impl
    if impl == "auto":
      impl = "s2d" if jax.default_backend() == "cpu" else "conv"
    if impl not in ("conv", "s2d"):
      raise ValueError(f"spatial attention impl must be 'auto', 'conv' or 's2d', got {impl!r}")
    block = 4 if s.shape[1] % 4 == 0 and s.shape[2] % 4 == 0 else 0
    if impl == "conv" or not block:
      out = jax.lax.conv_general_dilated(
          s, kernel, (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC"))
    else:
      out = _blocked_conv(s, kernel, block)
    return out + bias.astype(self.dtype)


def _blocked_conv(x, kernel, s: int):
  """k x k 'same' conv of (N, H, W, C) -> (N, H, W, 1) computed on s x s blocks."""
  n, h, w, c = x.shape
  k = kernel.shape[0]
  index, low, K = _s2d_kernel_index(k, s)
  flat = jnp.concatenate([kernel.reshape(k * k, c), jnp.zeros((1, c), kernel.dtype)])
  # (K, K, r, q, a, b, C): weight for input sub-pixel (r, q) of block (dy, dx), output (a, b).
  blocked = flat[np.where(index >= 0, index, k * k)]
  blocked = blocked.transpose(0, 1, 2, 3, 6, 4, 5).reshape(K, K, s * s * c, s * s)
  xs = x.reshape(n, h // s, s, w // s, s, c).transpose(0, 1, 3, 2, 4, 5).reshape(
      n, h // s, w // s, s * s * c)
  pad = [(-low, K - 1 + low), (-low, K - 1 + low)]
  y = jax.lax.conv_general_dilated(xs, blocked, (1, 1), pad,
                                   dimension_numbers=("NHWC", "HWIO", "NHWC"))
  return y.reshape(n, h // s, w // s, s, s).transpose(0, 1, 3, 2, 4).reshape(n, h, w, 1)


class SpatialAttention(nn.Module):
  kernel_size: int = 7
  impl: str = "auto"
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x):
    desc = jnp.concatenate([jnp.mean(x, axis=-1, keepdims=True),
                            jnp.max(x, axis=-1, keepdims=True)], axis=-1)
    logits = _SpatialConv(self.kernel_size, self.impl, self.dtype, name="conv")(desc)
    return x * nn.sigmoid(logits).astype(x.dtype)
