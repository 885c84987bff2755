"""torch_twin: the PyTorch step computes what the JAX step computes. Same weights in (the JAX
state converted), same D and G losses and loss terms out, and the same gradients of every
parameter of G and D (the JAX gradients recorded by the real train_step through an optax stage
in front of Adam), also after D's Adam update that G's loss is taken against (tiny models on
the CPU; the two whole steps in the slow tier)."""

import jax
import numpy as np
import optax
import pytest

from conftest import REPO
from maskinpaint_jax import cli, models, torch_twin, train_step

MISSING = torch_twin.torch_missing()
if MISSING:  # make install installs torch (the `torch` extra); say why when it is not there
  pytest.skip(f"the PyTorch twin needs torch: {MISSING}", allow_module_level=True)

import torch  # pylint: disable=g-import-not-at-top,wrong-import-position


def record_grads() -> optax.GradientTransformation:
  """An optax stage that passes the gradient on and keeps it in its state (to read it back)."""
  return optax.GradientTransformation(lambda p: jax.tree.map(np.zeros_like, p),
                                      lambda g, state, params=None: (g, g))


def tiny(config_path: str, **loss):
  config = cli.load_config(REPO / config_path)
  config.data.image_size = 32
  config.model.base_width = 4
  config.model.width_multipliers = (1,)  # one U-Net level: every kind of block, compiled fastest
  config.model.spatial_attention_kernel = 3
  config.disc.widths = (4, 8, 8)
  for k, v in loss.items():
    config.loss[k] = v
  return config


def batch_of(n: int, size: int, seed: int = 0) -> dict:
  rng = np.random.default_rng(seed)
  clean = rng.integers(0, 256, (n, size, size, 3), dtype=np.uint8)
  hole = np.zeros((n, size, size, 1), np.uint8)
  hole[:, size // 2:, size // 4: 3 * size // 4] = 1
  masked = np.where(hole > 0, np.uint8(200), clean)
  return {"clean": clean, "masked": masked, "hole": hole}


def jax_step(config, batch):
  g, d = models.build(config.model), models.build_discriminator(config)
  adam = lambda: optax.adam(config.optim.learning_rate, b1=config.optim.b1, b2=config.optim.b2)
  g_tx, d_tx = optax.chain(record_grads(), adam()), optax.chain(record_grads(), adam())
  state = train_step.init_state(config, g, d, g_tx, d_tx, jax.random.key(3))
  before = jax.device_get(state)
  # The perceptual weights as an argument, not as constants of the program: the same step,
  # compiled in seconds instead of minutes on the CPU.
  step = jax.jit(lambda state, batch, perceptual: train_step.train_step(
      state, batch, g=g, d=d, g_tx=g_tx, d_tx=d_tx, config=config, perceptual=perceptual))
  after, metrics = jax.device_get(step(state, batch, train_step.perceptual_variables(config)))
  return before, after, metrics


def relative_error(got: np.ndarray, want: np.ndarray) -> float:
  return float(np.max(np.abs(got - want)) / max(np.max(np.abs(want)), 1e-12))


# The shipped recipe (LPIPS-VGG16 of the composite in the hole, hole L1, non-blind G) with D
# feature matching added, and the paper's blind configuration with the plain VGG feature
# distance: every term of losses.generator_loss in one of the two. (The perceptual term on the
# whole image is compared below on textured images: on an untrained G's nearly flat output,
# VGG's deep features are near zero and their unit normalisation amplifies float32 rounding,
# differently in each framework, to a few % of some gradients.)
CASES = {
    "shipped recipe + feature matching": ("configs/shipped.py:stage=wild",
                                          dict(feature_matching_weight=0.5)),
    "paper, blind, plain VGG features": ("configs/tiny.py", dict(
        perceptual_weight=2.0, perceptual_net="vgg_features", perceptual_region="hole")),
}


# Slow tier: the JAX step with the LPIPS-VGG16 term compiles for about half a minute per case.
@pytest.mark.slow
@pytest.mark.parametrize("case", list(CASES))
def test_the_twin_step_gives_the_jax_losses_and_gradients(case):
  path, loss = CASES[case]
  config = tiny(path, **loss)
  batch = batch_of(2, config.data.image_size)
  before, after, metrics = jax_step(config, batch)
  torch.manual_seed(0)
  state = torch_twin.from_jax(config, before.g_params, before.d_params, before.spectral_norm)
  out = torch_twin.train_step(state, torch_twin.to_device_batch(batch), config)

  # Losses and every term of G's loss.
  assert float(out["d_loss"]) == pytest.approx(float(metrics["d_loss"]), rel=1e-5, abs=1e-6)
  assert float(out["g_loss"]) == pytest.approx(float(metrics["g_loss"]), rel=1e-5, abs=1e-6)
  for name, value in out["terms"].items():
    assert float(value) == pytest.approx(float(metrics[f"g_{name}"]), rel=1e-4, abs=1e-6), name
  assert ("perceptual" in out["terms"]) and (("feature_matching" in out["terms"])
                                            == bool(loss.get("feature_matching_weight")))

  # Every parameter's gradient: D's at the step's start, G's against the updated D.
  for which, grads in (("d", after.d_opt[0]), ("g", after.g_opt[0])):
    want = torch_twin.flatten(grads)
    got = out[f"{which}_grads"]
    assert set(got) == set(want)
    for key, value in want.items():
      got_jax = torch_twin.to_jax_layout(key, got[key].numpy())
      assert got_jax.shape == value.shape, key
      assert relative_error(got_jax, np.asarray(value)) < 2e-4, (which, key)

  # D's spectral state and the parameters after both Adam updates.
  for layer, values in torch_twin.flatten(after.spectral_norm).items():
    sn, name = layer.split("/", 1)
    field = "u" if name.endswith("/u") else "sigma"
    np.testing.assert_allclose(state.spectral[sn][field].numpy(), values, rtol=1e-5, atol=1e-6)
  for which, params in (("d", after.d_params), ("g", after.g_params)):
    tree = getattr(state, which)
    for key, value in torch_twin.flatten(params).items():
      np.testing.assert_allclose(torch_twin.to_jax_layout(key, tree[key].detach().numpy()),
                                 value, rtol=1e-5, atol=2e-6, err_msg=key)


@pytest.mark.parametrize("net", ["lpips_vgg", "vgg_features"])
def test_the_perceptual_term_on_the_whole_image_and_its_gradient(net):
  from maskinpaint_jax import losses, metrics  # pylint: disable=g-import-not-at-top
  rng = np.random.default_rng(1)
  output = rng.uniform(-1, 1, (2, 32, 32, 3)).astype(np.float32)
  target = rng.uniform(-1, 1, (2, 32, 32, 3)).astype(np.float32)
  hole = np.ones((2, 32, 32, 1), np.float32)
  variables = metrics.lpips_variables("vgg16")
  loss = lambda o: losses.perceptual_loss(o, target, hole, variables, net, "image")
  want, want_grad = jax.value_and_grad(loss)(output)
  lp = torch_twin.lpips_parameters()
  out = torch.tensor(output.transpose(0, 3, 1, 2), requires_grad=True)
  got = torch_twin.lpips_distance(lp, out, torch.tensor(target.transpose(0, 3, 1, 2)),
                                  net == "lpips_vgg").mean()
  (got_grad,) = torch.autograd.grad(got, out)
  assert float(got.detach()) == pytest.approx(float(want), rel=1e-5)
  assert relative_error(got_grad.numpy().transpose(0, 2, 3, 1), np.asarray(want_grad)) < 1e-4


@pytest.mark.slow
def test_in_bfloat16_the_twin_step_gives_the_jax_losses_to_bfloat16_rounding():
  """The benchmark's dtype: bfloat16 compute on both sides (not the same casts op by op, so
  agreement to bfloat16's rounding, not float32's)."""
  config = tiny("configs/shipped.py:stage=wild", feature_matching_weight=0.5)
  config.model.dtype = "bfloat16"
  batch = batch_of(2, config.data.image_size)
  before, _, metrics = jax_step(config, batch)
  state = torch_twin.from_jax(config, before.g_params, before.d_params, before.spectral_norm)
  out = torch_twin.train_step(state, torch_twin.to_device_batch(batch), config, torch.bfloat16)
  assert float(out["d_loss"]) == pytest.approx(float(metrics["d_loss"]), rel=1e-2)
  assert float(out["g_loss"]) == pytest.approx(float(metrics["g_loss"]), rel=1e-2)
  for name, value in out["terms"].items():
    assert float(value) == pytest.approx(float(metrics[f"g_{name}"]), rel=2e-2, abs=1e-3), name
