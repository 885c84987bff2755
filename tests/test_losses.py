"""Losses (eq. 1-5) against plain numpy references."""

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from maskinpaint_jax import losses


def _images(seed, shape=(2, 9, 7, 3)):
  return np.random.default_rng(seed).uniform(-1, 1, shape).astype(np.float32)


def test_l1_matches_numpy():
  a, b = _images(0), _images(1)
  np.testing.assert_allclose(losses.l1_loss(a, b), np.abs(a - b).mean(), rtol=1e-6)


def test_hole_l1_matches_a_loop_over_the_hole_pixels():
  """The shipped recipe weighs it 4: the mean |output - target| over hole pixels and channels."""
  a, b = _images(3), _images(4)
  hole = (np.random.default_rng(5).random(a.shape[:3] + (1,)) < 0.3).astype(np.uint8)
  errors = [abs(float(a[n, i, j, c]) - float(b[n, i, j, c]))
            for n, i, j in zip(*np.nonzero(hole[..., 0])) for c in range(a.shape[-1])]
  np.testing.assert_allclose(losses.hole_l1_loss(a, b, hole), np.mean(errors), rtol=1e-6)
  assert float(losses.hole_l1_loss(a, b, np.zeros_like(hole))) == 0.0  # no hole: no loss


def tv_reference(img, eps):
  n, h, w, c = img.shape
  total = 0.0
  for i in range(h - 1):
    for j in range(w - 1):
      right = img[:, i, j + 1] - img[:, i, j]
      down = img[:, i + 1, j] - img[:, i, j]
      total += np.sqrt(right.astype(np.float64) ** 2 + down ** 2 + eps).sum()
  return total / (n * (h - 1) * (w - 1) * c)


@pytest.mark.parametrize("eps", [0.0, 1e-6])
def test_tv_matches_numpy(eps):
  img = _images(2)
  np.testing.assert_allclose(losses.tv_loss(img, eps), tv_reference(img, eps), rtol=1e-5)


def test_tv_known_values_and_finite_gradient_on_flat_images():
  ramp = np.tile(np.arange(5, dtype=np.float32)[None, None, :, None] * 0.1, (1, 4, 1, 1))
  np.testing.assert_allclose(losses.tv_loss(ramp, 0.0), 0.1, rtol=1e-6)  # |dx| = 0.1, dy = 0
  flat = jnp.zeros((1, 6, 6, 3))
  assert float(losses.tv_loss(flat, 1e-6)) == pytest.approx(1e-3, rel=1e-4)
  grad = jax.grad(lambda x: losses.tv_loss(x, 1e-6))(flat)
  assert np.isfinite(np.asarray(grad)).all()


def test_hinge_and_adversarial_losses_match_numpy():
  real, fake = _images(3, (4, 3, 3, 1)) * 2, _images(4, (4, 3, 3, 1)) * 2
  ref = np.maximum(0, 1 - real).mean() + np.maximum(0, 1 + fake).mean()
  np.testing.assert_allclose(losses.discriminator_hinge_loss(real, fake), ref, rtol=1e-6)
  np.testing.assert_allclose(losses.generator_adversarial_loss(fake), -fake.mean(), rtol=1e-6)


def test_generator_loss_applies_the_weights():
  out, target, logits = _images(5), _images(6), _images(7, (2, 2, 2, 1))
  w = ml_collections.ConfigDict(dict(adv_weight=0.01, l1_weight=0.95, tv_weight=0.04,
                                     tv_epsilon=1e-6))
  total, terms = losses.generator_loss(out, target, logits, w)
  np.testing.assert_allclose(terms["l1"], np.abs(out - target).mean(), rtol=1e-6)
  np.testing.assert_allclose(terms["tv"], tv_reference(out, 1e-6), rtol=1e-5)
  np.testing.assert_allclose(terms["adv"], -logits.mean(), rtol=1e-6)
  np.testing.assert_allclose(
      total, 0.01 * terms["adv"] + 0.95 * terms["l1"] + 0.04 * terms["tv"], rtol=1e-6)
  # Each weight scales only its own term.
  for name, key in (("adv_weight", "adv"), ("l1_weight", "l1"), ("tv_weight", "tv")):
    w2 = ml_collections.ConfigDict(w.to_dict())
    w2[name] = w[name] + 1.0
    total2, _ = losses.generator_loss(out, target, logits, w2)
    np.testing.assert_allclose(total2 - total, terms[key], rtol=1e-4, atol=1e-6)
