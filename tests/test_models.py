"""Generator / discriminator: shapes, ablation flags, spectral norm, gradients, bf16."""

import flax
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs import default as default_config
from maskinpaint_jax import losses, models
from maskinpaint_jax.models import attention


def small_config(**model_overrides):
  c = default_config.get_config()
  c.model.base_width = 8
  c.model.width_multipliers = (1, 2)  # two levels: a skip at each depth, compiles quickly
  c.disc.widths = (8, 16, 16)
  c.model.update(model_overrides)
  return c


def init_g(config, size=32, batch=2):
  g = models.build(config.model)
  x = jnp.zeros((batch, size, size, 3))
  # The rbg generator compiles the initialisers much faster than threefry (tests compile a lot).
  return g, jax.jit(g.init)(jax.random.key(0, impl="rbg"), x, jnp.zeros((batch, size, size, 1)))


def init_shapes(config, size=32):
  g = models.build(config.model)
  return jax.eval_shape(g.init, jax.random.key(0), *models.example_inputs(size))


@pytest.fixture(scope="module")
def small_generator():
  return init_g(small_config(), 32)


@pytest.mark.parametrize("size", [16, 32, 48])
def test_generator_output_is_tanh_of_the_head_conv(size, small_generator):
  g, v = small_generator  # parameters do not depend on the image size
  x = jax.random.uniform(jax.random.key(1), (2, size, size, 3), minval=-1, maxval=1)
  y, inter = jax.jit(lambda v, x: g.apply(
      v, x, capture_intermediates=lambda m, _: m.name == "head", mutable=["intermediates"]))(v, x)
  assert y.shape == (2, size, size, 3) and y.dtype == jnp.float32
  (head,) = inter["intermediates"]["head"]["__call__"]
  np.testing.assert_allclose(y, np.tanh(np.asarray(head, np.float64)), rtol=1e-6, atol=1e-6)


def _documented_sizes() -> dict[str, tuple[int, int]]:
  """{variant label: (G params, D params)} from docs/architecture.md's table at 128 px."""
  from conftest import REPO  # pylint: disable=g-import-not-at-top
  text = (REPO / "docs" / "architecture.md").read_text().split("## Default size")[1]
  text = text.split("\n## ")[0]
  rows = [line.split("|")[1:-1] for line in text.splitlines() if line.startswith("| ")][1:]
  return {r[0].strip(): (int(r[1].replace(",", "")), int(r[3].replace(",", ""))) for r in rows}


def test_default_generator_and_discriminator_at_128px_match_the_documented_sizes():
  c = default_config.get_config()
  x = jax.ShapeDtypeStruct((2, 128, 128, 3), jnp.float32)
  documented = _documented_sizes()
  for variant, label in (("full", "full"), ("no_mmrm", "w/o MMRM")):
    cv = default_config.get_config()
    cv.model.update(models.ABLATIONS[variant])
    g, d = models.build(cv.model), models.build_discriminator(cv)
    gv = jax.eval_shape(g.init, jax.random.key(0), x)
    dv = jax.eval_shape(d.init, jax.random.key(0), x)
    count = lambda tree: sum(a.size for a in jax.tree.leaves(tree))
    assert (count(gv["params"]), count(dv["params"])) == documented[label], variant
  assert jax.eval_shape(g.apply, gv, x).shape == (2, 128, 128, 3)
  assert jax.eval_shape(d.apply, dv, x).shape == (2, 8, 8, 1)  # 4 stride-2 layers: 128 / 16
  assert c.data.image_size == 128


def test_image_side_must_fit_the_depth(small_generator):
  g, v = small_generator
  with pytest.raises(ValueError, match="divisible"):
    g.apply(v, jnp.zeros((1, 34, 34, 3)))  # two levels need a multiple of 4


def _paths(params):
  return {"/".join(k) for k in flax.traverse_util.flatten_dict(params)}


def test_ablation_flags_change_the_parameter_tree_as_expected():
  trees = {name: _paths(init_shapes(small_config(**ov))["params"])
           for name, ov in models.ABLATIONS.items()}
  full = trees["full"]
  has = lambda tree, part: any(f"/{part}/" in f"/{p}" for p in tree)
  for block in ("down0", "bottleneck", "up1"):
    assert any(p.startswith(f"{block}/eca/") for p in full)
    assert any(p.startswith(f"{block}/sa3x3/") for p in full)
    assert any(p.startswith(f"{block}/sa5x5/") for p in full)
    assert not any(p.startswith(f"{block}/sa1x1/") for p in full)  # no SA on the 1x1 branch
  assert has(full, "up_eca0")
  # w/o channel attention in MMRM: every MMRM loses its ECA, nothing else changes.
  removed = full - trees["no_mmrm_channel_attention"]
  assert removed and all("/eca/" in f"/{p}" for p in removed)
  assert trees["no_mmrm_channel_attention"] < full
  # w/o spatial attention in MMRM.
  removed = full - trees["no_mmrm_spatial_attention"]
  assert removed and all("/sa3x3/" in f"/{p}" or "/sa5x5/" in f"/{p}" for p in removed)
  assert trees["no_mmrm_spatial_attention"] < full
  # w/o channel attention in the up-sampling: only the decoder's ECA goes.
  removed = full - trees["no_up_channel_attention"]
  assert removed and all(p.startswith("up_eca") for p in removed)
  # w/o MMRM: plain residual blocks, no branches and no attention inside blocks.
  no_mmrm = trees["no_mmrm"]
  assert not any("conv5x5" in p or "/sa" in f"/{p}" or "/eca/" in f"/{p}" for p in no_mmrm
                 if not p.startswith("up_eca"))
  assert any(p.startswith("down0/conv1/") for p in no_mmrm) and has(no_mmrm, "up_eca0")


def test_build_binds_the_model_options_to_the_injected_factories():
  """norm "none": no norm parameters and a bias on every conv (nothing cancels it); the spatial
  attention kernel and the compute dtype reach the blocks; an unknown norm is an error."""
  flat = lambda shapes: flax.traverse_util.flatten_dict(shapes["params"], sep="/")
  plain = flat(init_shapes(small_config(norm="none", spatial_attention_kernel=3)))
  assert not any("norm" in k for k in plain)
  assert {k for k in plain if k.endswith("conv3x3/bias")} == {
      f"{b}/conv3x3/bias" for b in ("down0", "down1", "bottleneck", "up0", "up1")}
  assert plain["down0/sa3x3/conv/kernel"].shape == (3, 3, 2, 1)
  grouped = flat(init_shapes(small_config()))
  assert "down0/norm3x3/scale" in grouped and "down0/conv3x3/bias" not in grouped
  g16 = models.build(small_config(dtype="bfloat16").model)
  assert g16.conv.keywords["dtype"] == jnp.bfloat16 == g16.block.keywords["conv"].keywords["dtype"]
  with pytest.raises(ValueError, match="norm must be"):
    models.build(small_config(norm="batch").model)


def test_non_blind_flag_adds_the_hole_channel():
  blind = init_shapes(small_config())
  non_blind = init_shapes(small_config(non_blind=True))
  assert blind["params"]["stem"]["kernel"].shape[2] == 3
  assert non_blind["params"]["stem"]["kernel"].shape[2] == 4


@pytest.mark.parametrize("channels,k", [(16, 3), (64, 3), (128, 5), (256, 5), (512, 5)])
def test_eca_adaptive_kernel(channels, k):
  # ECA-Net (gamma=2, b=1): 64 -> 3, 256 -> 5, as in the paper's Table / code.
  assert attention.eca_kernel_size(channels) == k


@pytest.mark.parametrize("shape,k", [((2, 12, 8, 6), 7), ((1, 16, 16, 3), 7), ((2, 8, 4, 5), 3),
                                     ((1, 4, 4, 2), 5), ((1, 6, 10, 4), 7)])
def test_spatial_attention_blocked_implementation_equals_the_conv(shape, k):
  # s2d computes the 2 -> 1 conv on 4x4 blocks (6 x 10 is not divisible: plain conv fallback).
  x = jax.random.normal(jax.random.key(0), shape)
  sa = attention.SpatialAttention(k, "conv")
  v = sa.init(jax.random.key(1), x)
  a = sa.apply(v, x)
  b = attention.SpatialAttention(k, "s2d").apply(v, x)
  np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
  grad = lambda impl: jax.grad(lambda p: jnp.sum(attention.SpatialAttention(k, impl).apply(
      {"params": p}, x) ** 2))(v["params"])
  np.testing.assert_allclose(grad("s2d")["conv"]["kernel"], grad("conv")["conv"]["kernel"],
                             rtol=1e-4, atol=1e-5)
  with pytest.raises(ValueError, match="impl"):
    attention.SpatialAttention(k, "fft").apply(v, x)


def test_spatial_attention_matches_a_numpy_reference():
  x = np.asarray(jax.random.normal(jax.random.key(0), (1, 6, 5, 4)))
  sa = attention.SpatialAttention(3, "conv")
  v = sa.init(jax.random.key(1), jnp.asarray(x))
  k = np.asarray(v["params"]["conv"]["kernel"])[..., 0]   # (3, 3, 2)
  b = float(v["params"]["conv"]["bias"][0])
  desc = np.stack([x.mean(-1), x.max(-1)], -1)[0]          # (6, 5, 2)
  pad = np.pad(desc, ((1, 1), (1, 1), (0, 0)))
  logits = np.array([[np.sum(pad[i:i + 3, j:j + 3] * k) + b for j in range(5)] for i in range(6)])
  ref = x * (1 / (1 + np.exp(-logits)))[None, :, :, None]
  np.testing.assert_allclose(sa.apply(v, jnp.asarray(x)), ref, rtol=1e-5, atol=1e-6)


def test_spectral_norm_brings_the_largest_singular_value_to_one():
  c = small_config()
  d = models.build_discriminator(c)
  x = jax.random.normal(jax.random.key(0), (2, 32, 32, 3))
  v = d.init(jax.random.key(1), x)
  # One power-iteration step per training call, as in training; random 3x3 conv kernels have
  # close top singular values, so give it a few hundred calls.
  step = lambda _, stats: d.apply({"params": v["params"], "spectral_norm": stats}, x,
                                  update_stats=True, mutable=["spectral_norm"])[1]["spectral_norm"]
  stats = jax.jit(lambda s: jax.lax.fori_loop(0, 400, step, s))(v["spectral_norm"])
  for i in range(4):
    w = np.asarray(v["params"][f"conv{i}"]["kernel"])
    sigma_true = np.linalg.svd(w.reshape(-1, w.shape[-1]), compute_uv=False)[0]
    sigma_est = float(stats[f"sn{i}"][f"conv{i}/kernel/sigma"])
    normalised = w.reshape(-1, w.shape[-1]) / sigma_est
    top = np.linalg.svd(normalised, compute_uv=False)[0]
    assert abs(top - 1.0) < 2e-3, (i, top, sigma_true, sigma_est)


def test_discriminator_is_a_patch_map_of_logits():
  """Each logit sees exactly its receptive field: 4 convs 3x3, stride 2, padding 1 map logit i
  to input pixels [16 i - 15, 16 i + 15] (layer by layer: i -> [2 i - 1, 2 i + 1])."""
  d = models.build_discriminator(small_config())
  x = jax.random.normal(jax.random.key(1), (1, 64, 64, 3))
  v = jax.jit(d.init)(jax.random.key(0), x)
  assert jax.jit(d.apply)(v, x).shape == (1, 4, 4, 1)
  jacobian = np.asarray(jax.jit(jax.jacrev(lambda x: d.apply(v, x)[0, :, :, 0]))(x))
  for i, j in ((0, 0), (3, 3), (1, 2)):
    rows, cols = np.nonzero(np.abs(jacobian[i, j, 0]).sum(-1))
    field = lambda k: (max(0, 16 * k - 15), min(63, 16 * k + 15))
    assert (rows.min(), rows.max()) == field(i) and (cols.min(), cols.max()) == field(j)


def test_gradients_reach_every_parameter(small_generator):
  c = small_config()
  g, gv = small_generator
  d = models.build_discriminator(c)
  masked = jax.random.uniform(jax.random.key(2), (2, 32, 32, 3), minval=-1, maxval=1)
  real = jax.random.uniform(jax.random.key(3), (2, 32, 32, 3), minval=-1, maxval=1)
  dv = d.init(jax.random.key(1), real)
  # At init every logit is inside the hinge margin, where the last bias's gradient cancels
  # exactly (fraction active on real - on fake = 1 - 1). Shift it so real logits leave it.
  dv = flax.core.copy(dv, {"params": {**dv["params"], "conv3": {
      **dv["params"]["conv3"], "bias": jnp.full((1,), 0.98)}}})

  def g_loss(gp):
    out = g.apply({"params": gp}, masked)
    return losses.generator_loss(out, real, d.apply(dv, out), c.loss)[0]

  def d_loss(dp):
    fake = g.apply(gv, masked)
    dvars = {"params": dp, "spectral_norm": dv["spectral_norm"]}
    return losses.discriminator_hinge_loss(d.apply(dvars, real), d.apply(dvars, fake))

  for grads in (jax.jit(jax.grad(g_loss))(gv["params"]),
                jax.jit(jax.grad(d_loss))(dv["params"])):
    flat = flax.traverse_util.flatten_dict(grads)
    dead = [k for k, gr in flat.items() if not np.any(np.asarray(gr) != 0)]
    assert not dead, dead


def test_bfloat16_forward_is_finite_and_close_to_float32(small_generator):
  g32, v = small_generator
  g16 = models.build(small_config(dtype="bfloat16").model)
  x = jax.random.uniform(jax.random.key(5), (2, 32, 32, 3), minval=-1, maxval=1)
  y32, y16 = jax.jit(g32.apply)(v, x), jax.jit(g16.apply)(v, x)
  assert y16.dtype == jnp.float32  # output cast back; parameters stay float32
  assert jax.tree.leaves(v)[0].dtype == jnp.float32
  assert np.isfinite(np.asarray(y16)).all()
  # bfloat16 keeps 8 significant bits (~0.4 % per rounding) through ~20 layers.
  assert float(jnp.abs(y16 - y32).max()) < 0.1
  assert float(jnp.abs(y16 - y32).mean()) < 0.015
  d = models.build_discriminator(small_config(dtype="bfloat16"))
  dv = d.init(jax.random.key(0), x)
  assert np.isfinite(np.asarray(jax.jit(d.apply)(dv, x))).all()


def _xla_flops(module, x):
  from maskinpaint_jax.tools import model_summary
  variables = jax.jit(module.init)(jax.random.key(0), x)
  return model_summary.forward_flops(module, variables, x)


def taps(n: int, k: int) -> int:
  """Kernel taps inside an n x n image summed over its output pixels, for a k x k SAME conv:
  along one axis n * k, less r + (r - 1) + ... + 1 at each border (r = k // 2)."""
  r = k // 2
  return (n * k - r * (r + 1)) ** 2


def test_flops_of_one_conv_counted_by_hand():
  """A 3x3 SAME conv, 16 -> 32 channels, on 24 x 24: 2 FLOPs per multiply-add, one per input
  channel, output channel and tap inside the image (the zero padding is not multiplied), plus
  one add per output value for the bias."""
  import flax.linen as nn
  x = jnp.zeros((1, 24, 24, 16), jnp.float32)
  by_hand = 2 * 16 * 32 * taps(24, 3) + 24 * 24 * 32
  assert by_hand == 5_036_032
  assert _xla_flops(nn.Conv(32, (3, 3), padding="SAME"), x) == by_hand


def test_flops_of_one_mmrm_counted_by_hand():
  """An MMRM block (16 -> 32 channels on 16 x 16): its convolutions counted by hand (1x1, 3x3,
  5x5 branches, the two 7x7 spatial-attention convs, the 1x1 fuse and the 1x1 projection) are
  nearly all of XLA's count; the rest (norms, activations, attention's pooling) is small."""
  from maskinpaint_jax.models.mmrm import MMRM
  h = w = 16
  cin, c = 16, 32
  mac = lambda k, i, o: 2 * taps(h, k) * i * o
  convs = (mac(1, cin, c) + mac(3, cin, c) + mac(5, cin, c)  # the three branches
           + 2 * mac(7, 2, 1)                                 # spatial attention, 3x3 and 5x5
           + mac(1, 3 * c, c)                                 # fuse
           + mac(1, cin, c) + h * w * c)                      # projection, with its bias
  xla = _xla_flops(MMRM(c), jnp.zeros((1, h, w, cin), jnp.float32))
  assert convs <= xla <= 1.1 * convs
