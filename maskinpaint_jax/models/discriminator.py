"""The discriminator: a spectral-normalised PatchGAN (paper II.B, Fig. 4).

Four 3x3 convolutions with stride 2, each wrapped in spectral normalisation (`nn.SpectralNorm`,
one power iteration per training step; its `u` vector and `sigma` live in the `spectral_norm`
collection, the name the training state and checkpoints use too), LeakyReLU(0.2) between them.
The last conv has one channel: a map of patch logits, (N, H/16, W/16, 1), each judging one
receptive field of the input ("Markov patch").
D sees an image in [-1, 1]: the real photo or the generator's raw output G(z), as in eq. (1).
"""

from __future__ import annotations

from typing import Any, Sequence

import flax.linen as nn
import jax.numpy as jnp

Dtype = Any
PADDING = ((1, 1), (1, 1))  # symmetric, as PyTorch's padding=1


class PatchDiscriminator(nn.Module):
  widths: Sequence[int] = (64, 128, 256)
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x, update_stats: bool = False, return_features: bool = False):
    """Patch logits (N, H/16, W/16, 1) float32 of images (N, H, W, 3) in [-1, 1]; with
    `return_features`, (logits, [the hidden activations after each LeakyReLU]) for feature
    matching."""
    h = x.astype(self.dtype)
    features = []
    for i, w in enumerate(tuple(self.widths) + (1,)):
      conv = nn.Conv(w, (3, 3), strides=(2, 2), padding=PADDING, dtype=self.dtype,
                     name=f"conv{i}")
      h = nn.SpectralNorm(conv, dtype=self.dtype, collection_name="spectral_norm",
                          name=f"sn{i}")(h, update_stats=update_stats)
      if i < len(self.widths):
        h = nn.leaky_relu(h, 0.2)
        features.append(h.astype(jnp.float32))
    logits = h.astype(jnp.float32)
    return (logits, features) if return_features else logits
