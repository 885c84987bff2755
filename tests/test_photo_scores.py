"""photo_scores: the detail ratio against analytic references, hole PSNR, the face box."""

import cv2
import numpy as np
import pytest

from maskinpaint_jax import photo_scores

H = W = 256


def _hole():
  hole = np.zeros((H, W), np.uint8)
  hole[128:224, 64:192] = 1  # 96 rows high: the band above is rows 80..127
  return hole


def _grating(freq: float, amplitude: float) -> np.ndarray:
  """A vertical sinusoidal grating of `freq` cycles per px around grey 128 (float64)."""
  x = np.arange(W)
  return np.tile(128 + amplitude * np.sin(2 * np.pi * freq * x), (H, 1))


def _dog_gain(freq: float, sigmas=photo_scores.DOG_SIGMAS) -> float:
  """The DoG's frequency response at `freq`: the Fourier transform of a unit Gaussian of sigma s
  is exp(-2 pi^2 f^2 s^2)."""
  g = lambda s: np.exp(-2 * np.pi ** 2 * freq ** 2 * s ** 2)
  return g(sigmas[0]) - g(sigmas[1])


def test_band_above_is_the_holes_columns_half_its_height_above_it():
  band = photo_scores.band_above(_hole())
  rows, cols = np.nonzero(band)
  assert (rows.min(), rows.max(), cols.min(), cols.max()) == (80, 127, 64, 191)
  assert not (band & _hole()).any()


def test_band_above_refuses_an_empty_hole_and_one_at_the_top():
  with pytest.raises(ValueError, match="empty"):
    photo_scores.band_above(np.zeros((8, 8), np.uint8))
  top = np.zeros((8, 8), np.uint8)
  top[:4] = 1
  with pytest.raises(ValueError, match="top edge"):
    photo_scores.detail_ratio(np.zeros((8, 8), np.uint8), top)


def test_a_smooth_fill_scores_near_zero_against_a_textured_face():
  rng = np.random.default_rng(0)
  face = np.clip(128 + 20 * rng.standard_normal((H, W)), 0, 255).astype(np.uint8)
  hole = _hole()
  smooth = face.copy()
  smooth[hole > 0] = 128  # a flat fill, as a mean-seeking model paints
  assert photo_scores.detail_ratio(smooth, hole) < 0.1
  # The texture itself, uniform over the face, scores about 1.
  assert photo_scores.detail_ratio(face, hole) == pytest.approx(1.0, abs=0.05)


@pytest.mark.parametrize("f_hole,a_hole,f_band,a_band", [
    (0.15, 10.0, 0.15, 20.0),   # same band, half the amplitude: 0.5
    (0.10, 20.0, 0.20, 20.0),   # two frequencies: the ratio of the DoG's gains
])
def test_gratings_of_known_band_energy_score_the_analytic_ratio(f_hole, a_hole, f_band, a_band):
  hole = _hole()
  image = _grating(f_band, a_band)
  image[hole > 0] = _grating(f_hole, a_hole)[hole > 0]
  # Inside, a sinusoid of amplitude A through the DoG has RMS A * |gain(f)| / sqrt(2).
  expected = (a_hole * abs(_dog_gain(f_hole))) / (a_band * abs(_dog_gain(f_band)))
  # Float image: no rounding; the step at the hole's edge adds a little, hence 5 %.
  assert photo_scores.detail_ratio(image, hole) == pytest.approx(expected, rel=0.05)


def test_the_original_scores_its_own_ratio_by_an_independent_computation():
  rng = np.random.default_rng(1)
  photo = cv2.GaussianBlur(rng.integers(0, 256, (H, W, 3)).astype(np.uint8), (0, 0), 1.0)
  hole = _hole()
  grey = (0.299 * photo[..., 0] + 0.587 * photo[..., 1] + 0.114 * photo[..., 2])
  # scipy's Gaussian filter (reflect mode, as OpenCV's BORDER_REFLECT)
  from scipy import ndimage
  dog = (ndimage.gaussian_filter(grey, 0.7, mode="reflect", truncate=4.0)
         - ndimage.gaussian_filter(grey, 2.0, mode="reflect", truncate=4.0))
  band = np.zeros_like(hole)
  band[80:128, 64:192] = 1
  expected = np.sqrt(np.mean(dog[hole > 0] ** 2)) / np.sqrt(np.mean(dog[band > 0] ** 2))
  # OpenCV rounds the grey conversion and truncates its kernels differently: 3 %.
  assert photo_scores.detail_ratio(photo, hole) == pytest.approx(expected, rel=0.03)


def test_hole_psnr_counts_the_hole_only():
  a = np.zeros((4, 4, 3), np.uint8)
  b = a.copy()
  b[0, 0] = 10          # in the hole: MSE over 2 px x 3 channels = 100 * 3 / 6 = 50
  b[3, 3] = 255         # outside: ignored
  hole = np.zeros((4, 4), np.uint8)
  hole[0, :2] = 1
  assert photo_scores.hole_psnr(a, b, hole) == pytest.approx(10 * np.log10(255 ** 2 / 50))


def test_face_box_is_a_square_around_the_landmarks_clipped_to_the_photo():
  landmarks = np.array([[40, 50], [80, 110]], np.float32)  # 40 wide, 60 high
  top, bottom, left, right = photo_scores.face_box(landmarks, (1000, 1000), scale=1.0)
  assert (bottom - top, right - left) == (60, 60)
  assert (top, left) == (50, 30)
  assert photo_scores.face_box(landmarks, (100, 70), scale=2.0)[1:] == (100, 0, 70)


def test_size_buckets_and_own_side():
  assert [photo_scores.size_bucket(s) for s in (127, 128, 256, 257)] == [
      "crop < 128 px", "crop 128-256 px", "crop 128-256 px", "crop > 256 px"]
  assert photo_scores.own_side(np.zeros((200, 190, 3))) == 192
  assert photo_scores.own_side(np.zeros((20, 20, 3))) == 64
