"""Metrics against independent references: numpy PSNR, skimage SSIM, a numpy LPIPS."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from skimage.metrics import structural_similarity

from maskinpaint_jax import baselines, metrics


def _pair(seed, shape=(3, 40, 36, 3)):
  rng = np.random.default_rng(seed)
  a = rng.integers(0, 256, shape, dtype=np.uint8)
  noise = rng.integers(-30, 31, shape)
  return a, np.clip(a.astype(int) + noise, 0, 255).astype(np.uint8)


def test_psnr_matches_numpy_on_8_bit_images():
  a, b = _pair(0)
  mse = ((a.astype(np.float64) - b) ** 2).reshape(3, -1).mean(1)
  np.testing.assert_allclose(metrics.psnr(a, b), 10 * np.log10(255 ** 2 / mse), rtol=1e-5)
  hole = np.zeros(a.shape[:3] + (1,), np.uint8)
  hole[:, 10:20, 5:30] = 1
  d = ((a.astype(np.float64) - b) ** 2)[:, 10:20, 5:30].reshape(3, -1).mean(1)
  np.testing.assert_allclose(metrics.psnr(a, b, hole), 10 * np.log10(255 ** 2 / d), rtol=1e-5)
  assert np.isfinite(np.asarray(metrics.psnr(a, a))).all()


def test_to_uint8_rounds_like_a_saved_png():
  x = jnp.array([-1.0, -0.999, 0.0, 0.5, 1.0, 1.7])
  np.testing.assert_array_equal(metrics.to_uint8(x), [0, 0, 128, 191, 255, 255])


@pytest.mark.parametrize("seed", [0, 1])
def test_ssim_matches_skimage_gaussian_window(seed):
  a, b = _pair(seed, (2, 48, 40, 3))
  ours = np.asarray(metrics.ssim(a, b))
  ref = [structural_similarity(x, y, channel_axis=-1, gaussian_weights=True, sigma=1.5,
                               use_sample_covariance=False, data_range=255) for x, y in zip(a, b)]
  np.testing.assert_allclose(ours, ref, atol=2e-4)
  np.testing.assert_allclose(metrics.ssim(a, a), 1.0, atol=1e-6)


# --- LPIPS against an independent numpy implementation with the same random weights ----------

def _np_conv3x3(x, w, b):
  h, wd, _ = x.shape
  p = np.pad(x, ((1, 1), (1, 1), (0, 0)))
  cols = np.stack([p[i:i + h, j:j + wd] for i in range(3) for j in range(3)], axis=2)
  return cols.reshape(h, wd, -1) @ w.reshape(-1, w.shape[-1]) + b


def _np_lpips(params, x, t):
  """LPIPS-VGG (Zhang et al. 2018) written from its definition in numpy (float64)."""
  def features(img):
    h = (img + 1) / 2
    h = (h - np.array([0.485, 0.456, 0.406])) / np.array([0.229, 0.224, 0.225])
    out = []
    for block, n in zip(range(1, 6), (2, 2, 3, 3, 3)):
      for layer in range(1, n + 1):
        p = params["vgg"][f"conv{block}_{layer}"]
        h = np.maximum(_np_conv3x3(h, np.asarray(p["kernel"], np.float64),
                                   np.asarray(p["bias"], np.float64)), 0)
      out.append(h)
      hh, ww, c = h.shape
      h = h[:hh // 2 * 2, :ww // 2 * 2].reshape(hh // 2, 2, ww // 2, 2, c).max(axis=(1, 3))
    return out
  fx, ft = features(x), features(t)
  total = 0.0
  for i, (a, b) in enumerate(zip(fx, ft)):
    na = a / (np.sqrt((a ** 2).sum(-1, keepdims=True)) + 1e-10)
    nb = b / (np.sqrt((b ** 2).sum(-1, keepdims=True)) + 1e-10)
    w = np.asarray(params[f"lin{i}"]["kernel"], np.float64).reshape(-1)
    total += (((na - nb) ** 2) @ w).mean()
  return total


def test_lpips_matches_a_numpy_implementation_with_random_weights():
  a, b = _pair(3, (2, 16, 16, 3))  # VGG's five blocks down to 1 x 1: every layer is used
  net = metrics.LPIPSNet()
  variables = net.init(jax.random.key(0), jnp.zeros((1, 32, 32, 3)), jnp.zeros((1, 32, 32, 3)))
  # Non-negative linear heads, as in the trained LPIPS, so the distance is a sum of positives.
  variables = jax.tree_util.tree_map_with_path(
      lambda path, v: jnp.abs(v) if "lin" in jax.tree_util.keystr(path) else v, variables)
  lpips = metrics.LPIPS(variables=variables)
  assert lpips.available
  ours = np.asarray(lpips(a, b))
  ref = [_np_lpips(variables["params"], x.astype(np.float64) / 127.5 - 1,
                   y.astype(np.float64) / 127.5 - 1) for x, y in zip(a, b)]
  np.testing.assert_allclose(ours, ref, rtol=2e-3)
  np.testing.assert_allclose(lpips(a, a), 0.0, atol=1e-6)


def test_lpips_without_weights_is_unavailable_with_a_reason(tmp_path):
  lpips = metrics.LPIPS(weights_dir=str(tmp_path))
  assert not lpips.available and "vgg16_weights.h5" in lpips.reason
  with pytest.raises(RuntimeError):
    lpips(np.zeros((1, 8, 8, 3), np.uint8), np.zeros((1, 8, 8, 3), np.uint8))


def test_lpips_loads_weights_from_a_local_folder(tmp_path):
  import h5py
  net = metrics.LPIPSNet()
  v = net.init(jax.random.key(1), jnp.zeros((1, 32, 32, 3)), jnp.zeros((1, 32, 32, 3)))
  with h5py.File(tmp_path / "vgg16_weights.h5", "w") as f:
    for name, p in v["params"]["vgg"].items():
      f[f"{name}/weight"] = np.asarray(p["kernel"])
      f[f"{name}/bias"] = np.asarray(p["bias"])
  with h5py.File(tmp_path / "lpips_lin.h5", "w") as f:
    for i in range(5):
      f[f"lin{i}"] = np.asarray(v["params"][f"lin{i}"]["kernel"])
  a, b = _pair(4, (1, 32, 32, 3))
  from_files = metrics.LPIPS(weights_dir=str(tmp_path))
  np.testing.assert_allclose(from_files(a, b), metrics.LPIPS(variables=v)(a, b), rtol=1e-6)


def test_identity_distance_is_small_for_the_same_face(celeba_paths):
  from maskinpaint_jax import images
  from maskinpaint_jax.faces import align, finders
  finder = finders.FaceFinder()
  crops, lms = [], []
  for p in celeba_paths[:3]:
    img = images.load_rgb(p)
    face = finder.find_one(img)
    m = align.crop_matrix(face.landmarks, 64, img.shape)
    crops.append(align.warp_crop(img, m, 64))
    lms.append(align.transform_points(m, face.landmarks))
  crops, lms = np.stack(crops), np.stack(lms)
  emb = metrics.identity_embeddings(crops, lms)
  assert emb.shape == (3, 128)
  same = metrics.identity_distance(metrics.identity_embeddings(crops.copy(), lms), emb)
  np.testing.assert_allclose(same, 0.0, atol=1e-6)
  blurred = np.stack([np.asarray(__import__("cv2").GaussianBlur(c, (3, 3), 0)) for c in crops])
  assert (metrics.identity_distance(metrics.identity_embeddings(blurred, lms), emb)
          < metrics.IDENTITY_THRESHOLD).all()
  noise = np.random.default_rng(0).integers(0, 255, crops.shape, dtype=np.uint8)
  assert (metrics.identity_distance(metrics.identity_embeddings(noise, lms), emb) > 0.6).all()


def test_classical_baselines_fill_only_the_hole():
  img = np.tile(np.linspace(0, 255, 32, dtype=np.uint8)[None, :, None], (32, 1, 3))[None]
  hole = np.zeros((1, 32, 32, 1), np.uint8)
  hole[0, 12:20, 12:20] = 1
  masked = np.where(hole.astype(bool), np.uint8(255), img)
  for fill in (baselines.telea, baselines.navier_stokes):
    out = fill(masked, hole)
    np.testing.assert_array_equal(out[hole[..., 0] == 0], masked[hole[..., 0] == 0])
    inside = out[0, 12:20, 12:20].astype(float)
    truth = img[0, 12:20, 12:20].astype(float)
    assert np.abs(inside - truth).mean() < np.abs(255 - truth).mean() / 3
