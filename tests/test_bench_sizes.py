"""bench_sizes' resampling and composite, with an oracle in place of a generator."""

import cv2
import numpy as np

from maskinpaint_jax.tools import bench_sizes


def smooth_faces(n=2, side=128):
  y, x = np.mgrid[:side, :side] / side
  base = np.stack([120 + 80 * x, 90 + 60 * y, 70 + 40 * x * y], -1)
  return np.stack([np.clip(base + 10 * i, 0, 255) for i in range(n)]).astype(np.uint8)


def test_a_thin_strip_of_hole_survives_the_shrink():
  hole = np.zeros((1, 128, 128, 1), np.uint8)
  hole[0, 40, 10:100] = 1  # one pixel high at 128 px
  small = bench_sizes.resize_hole(hole, 64)
  assert small.shape == (1, 64, 64, 1)
  assert small[0, 20, 5:50, 0].all() and small.sum() >= 45


def test_composite_of_an_oracle_is_the_truth_at_its_own_side_and_close_when_enlarged():
  """A 'generator' that returns the clean face at its input side: at S = its side the
  composite is the clean face exactly; given faces at twice its side, the hole holds its
  output enlarged (close on a smooth face), and every pixel outside the hole is the photo's."""
  clean128 = smooth_faces()
  hole128 = np.zeros((2, 128, 128, 1), np.uint8)
  hole128[:, 70:120, 30:100] = 1

  def oracle(masked, hole):
    truth = bench_sizes.resize(clean128, masked.shape[1])
    return truth, np.where(hole > 0, truth, masked)

  for side in (64, 128):
    clean = bench_sizes.resize(clean128, side)
    hole = bench_sizes.resize_hole(hole128, side)
    masked = np.where(hole > 0, 0, clean).astype(np.uint8)
    out = bench_sizes.composite_at(oracle, 64, masked, hole)
    np.testing.assert_array_equal(out[hole[..., 0] == 0], clean[hole[..., 0] == 0])
    if side == 64:
      np.testing.assert_array_equal(out, clean)
    else:
      diff = np.abs(out.astype(int) - clean.astype(int))[hole[..., 0] > 0]
      assert diff.mean() < 1.5 and 0 < diff.max() < 12


def test_resize_matches_opencv_and_keeps_the_same_side():
  faces = smooth_faces(1)
  np.testing.assert_array_equal(bench_sizes.resize(faces, 128), faces)
  np.testing.assert_array_equal(bench_sizes.resize(faces, 64)[0],
                                cv2.resize(faces[0], (64, 64), interpolation=cv2.INTER_AREA))


def test_the_best_model_of_a_side_is_the_lowest_lpips():
  results = {64: {"telea": dict(psnr_hole=15.0, lpips=9.0), "a": dict(psnr_hole=20.0, lpips=3.0),
                  "b": dict(psnr_hole=21.0, lpips=4.0)},
             128: {"telea": dict(psnr_hole=15.0, lpips=13.0), "a": dict(psnr_hole=19.0,
                                                                          lpips=7.0),
                   "b": dict(psnr_hole=19.5, lpips=6.0)}}
  table = bench_sizes.markdown(results, {"a": 64, "b": 128}, 2, "d")
  assert "| 64 | 15.00 / 9.00 | 20.00 / 3.00 | 21.00 / 4.00 | a |" in table
  assert "| 128 | 15.00 / 13.00 | 19.00 / 7.00 | 19.50 / 6.00 | b |" in table
