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

from maskinpaint_jax import metrics


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


# Perceptual term (not in the paper): which image is compared with the target.
PERCEPTUAL_REGIONS = ("hole", "image")
# Its networks: LPIPS-VGG16 (the reference's "vgg" LPIPS) or plain VGG16 feature distance. Never
# LPIPS-AlexNet: the tables headline it, and a model trained on a metric games that metric.
PERCEPTUAL_NETS = ("lpips_vgg", "vgg_features")


def composite(output, target, hole):
  """The output inside the hole, the target outside it (what the user gets, section III.C)."""
  hole = hole.astype(output.dtype)
  return output * hole + target.astype(output.dtype) * (1.0 - hole)


def perceptual_loss(output, target, hole, variables, net: str = "lpips_vgg",
                    region: str = "hole"):
  """Mean perceptual distance of the generator's output to the target, images (N, H, W, 3) in
  [-1, 1] with H, W >= 16, hole (N, H, W, 1) in {0, 1}.

  `variables`: LPIPS-VGG16's ({"params": ...} of metrics.lpips_variables("vgg16")).
  net "lpips_vgg": the LPIPS distance (Zhang et al. 2018: unit-normalised VGG16 features of
  five layers, weighted by the learned linear heads, averaged over space). "vgg_features": the
  same five unit-normalised feature maps, squared differences summed over channels (the
  reference's `lpips=False` baseline: a plain VGG feature distance, as in Johnson et al. 2016).
  region "hole": the composite (output inside the hole, target outside) against the target, so
  only the hole's pixels get a gradient; "image": the raw output against the target.
  The target's features get no gradient (it is a constant of the step)."""
  if net not in PERCEPTUAL_NETS:
    raise ValueError(f"perceptual net {net!r}: expected one of {PERCEPTUAL_NETS}")
  if region not in PERCEPTUAL_REGIONS:
    raise ValueError(f"perceptual region {region!r}: expected one of {PERCEPTUAL_REGIONS}")
  output = output.astype(jnp.float32)
  target = jax.lax.stop_gradient(target.astype(jnp.float32))
  image = composite(output, target, hole) if region == "hole" else output
  return jnp.mean(metrics.lpips_distance(variables, image, target, "vgg16",
                                         linear_heads=net == "lpips_vgg"))


def feature_matching_loss(real_features, fake_features):
  """Discriminator feature matching (pix2pixHD, Wang et al. 2018, eq. 4): the mean absolute
  difference of D's hidden activations on the real and the generated image, averaged over
  D's layers. The real image's features get no gradient."""
  diffs = [jnp.mean(jnp.abs(jax.lax.stop_gradient(r) - f))
           for r, f in zip(real_features, fake_features)]
  return sum(diffs) / len(diffs)


def generator_loss(output, target, fake_logits, weights, hole=None, *, perceptual_variables=None,
                   real_features=None, fake_features=None):
  """Eq. (4): gamma_adv * L_adv + gamma_L1 * L_L1 + gamma_TV * L_TV, plus three terms that are
  not in the paper and 0 by default:
  - hole_l1_weight * L1 in the hole: at small compute budgets it spends the gradient where the
    image is unknown instead of on copying the rest;
  - perceptual_weight * perceptual_loss (needs `hole` and `perceptual_variables`): pixel losses
    reward the mean of the plausible fillings, a blur; feature distances do not;
  - feature_matching_weight * feature_matching_loss (needs D's features of the real and the
    generated images): a denser, steadier signal from D than its logits alone.

  `weights` has adv_weight, l1_weight, tv_weight, tv_epsilon and optionally hole_l1_weight,
  perceptual_weight, perceptual_net, perceptual_region, feature_matching_weight (config.loss).
  Returns (total, dict of the terms).
  """
  terms = dict(adv=generator_adversarial_loss(fake_logits), l1=l1_loss(output, target),
               tv=tv_loss(output, weights.tv_epsilon))
  total = (weights.adv_weight * terms["adv"] + weights.l1_weight * terms["l1"]
           + weights.tv_weight * terms["tv"])
  hole_weight = weights.get("hole_l1_weight", 0.0)
  if hole is not None and hole_weight:
    terms["hole_l1"] = hole_l1_loss(output, target, hole)
    total = total + hole_weight * terms["hole_l1"]
  perceptual_weight = weights.get("perceptual_weight", 0.0)
  if perceptual_weight:
    if perceptual_variables is None or hole is None:
      raise ValueError("perceptual_weight > 0 needs the hole and perceptual_variables")
    terms["perceptual"] = perceptual_loss(
        output, target, hole, perceptual_variables, weights.get("perceptual_net", "lpips_vgg"),
        weights.get("perceptual_region", "hole"))
    total = total + perceptual_weight * terms["perceptual"]
  fm_weight = weights.get("feature_matching_weight", 0.0)
  if fm_weight:
    if real_features is None or fake_features is None:
      raise ValueError("feature_matching_weight > 0 needs D's real and fake features")
    terms["feature_matching"] = feature_matching_loss(real_features, fake_features)
    total = total + fm_weight * terms["feature_matching"]
  return total, terms
