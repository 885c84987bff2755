"""The paper's losses (section II.C, eq. 1-5). Images are in [-1, 1], NHWC.

Normalisation: every term is a mean (over batch, pixels, channels; over patch logits for the
adversarial terms) rather than the paper's sums, so the weights of eq. (4) do not depend on the
image size or batch, and gamma_TV = 0.04 weighs a per-pixel quantity like gamma_L1 = 0.95 does.

The paper says only that D is trained with "the adversarial loss" (eq. 5). We use the hinge
loss: its generator counterpart is exactly eq. (1), -E[D(G(z))], and with a spectral-norm
discriminator it is the usual stable pairing (SN-GAN, SAGAN).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def l1_loss(output, target):
  """Eq. (2): E ||G(z) - x||_1, as a mean absolute error."""
  return jnp.mean(jnp.abs(output.astype(jnp.float32) - target.astype(jnp.float32)))


def tv_loss(image, epsilon: float = 1e-6):
  """Eq. (3): isotropic total variation, sqrt(dx^2 + dy^2) per pixel and channel, averaged.

  Forward differences on the (H-1) x (W-1) grid; `epsilon` inside the square root keeps the
  gradient finite where the image is flat (d sqrt(u)/du is infinite at u = 0).
  """
  image = image.astype(jnp.float32)
  dy = image[:, 1:, :-1, :] - image[:, :-1, :-1, :]
  dx = image[:, :-1, 1:, :] - image[:, :-1, :-1, :]
  return jnp.mean(jnp.sqrt(dx * dx + dy * dy + epsilon))


def generator_adversarial_loss(fake_logits):
  """Eq. (1): -E[D(G(z))]."""
  return -jnp.mean(fake_logits)


def discriminator_hinge_loss(real_logits, fake_logits):
  """Eq. (5) as a hinge loss: E[max(0, 1 - D(x))] + E[max(0, 1 + D(G(z)))]."""
  return jnp.mean(jax.nn.relu(1.0 - real_logits)) + jnp.mean(jax.nn.relu(1.0 + fake_logits))


def hole_l1_loss(output, target, hole):
  """Mean absolute error over the hole's pixels only (0 for a batch without a hole)."""
  hole = hole.astype(jnp.float32)
  err = jnp.abs(output.astype(jnp.float32) - target.astype(jnp.float32)) * hole
  return jnp.sum(err) / jnp.maximum(jnp.sum(hole) * output.shape[-1], 1.0)


def generator_loss(output, target, fake_logits, weights, hole=None):
  """Eq. (4): gamma_adv * L_adv + gamma_L1 * L_L1 + gamma_TV * L_TV, plus (not in the paper,
  0 by default) hole_l1_weight * L1 in the hole: at small compute budgets it spends the
  gradient where the image is unknown instead of on copying the rest.

  `weights` has adv_weight, l1_weight, tv_weight, tv_epsilon and optionally hole_l1_weight
  (config.loss). Returns (total, dict of the terms).
  """
  terms = dict(adv=generator_adversarial_loss(fake_logits), l1=l1_loss(output, target),
               tv=tv_loss(output, weights.tv_epsilon))
  total = (weights.adv_weight * terms["adv"] + weights.l1_weight * terms["l1"]
           + weights.tv_weight * terms["tv"])
  hole_weight = weights.get("hole_l1_weight", 0.0)
  if hole is not None and hole_weight:
    terms["hole_l1"] = hole_l1_loss(output, target, hole)
    total = total + hole_weight * terms["hole_l1"]
  return total, terms
