"""The hole a face crop gets from a full-size hole map (fast tier: no model, no face finder)."""

import numpy as np
import pytest

from maskinpaint_jax.faces import paste


@pytest.mark.parametrize("offset", range(0, 60, 7))
def test_a_thin_strip_of_hole_is_never_lost_in_a_large_shrink(offset):
  scale = 1 / 31.25  # a 2,000 px face square into a 64 px crop
  matrix = np.array([[scale, 0, 0.3], [0, scale, -0.7]])
  hole = np.zeros((2000, 2000), np.uint8)
  y = 900 + offset
  hole[y:y + 2, 300:1700] = 1
  rows = paste.hole_in_crop(hole, matrix, 64).any(axis=1).nonzero()[0]
  # Independent reference: the strip maps to crop row y * scale + ty (pixel centres).
  assert len(rows) and np.abs(rows - (y * scale - 0.7)).max() <= 1


def test_a_large_hole_keeps_its_size_within_a_pixel_border():
  scale = 0.032
  matrix = np.array([[scale, 0, 0.0], [0, scale, 0.0]])
  hole = np.zeros((2000, 2000), np.uint8)
  hole[800:1200, 800:1200] = 1
  crop = paste.hole_in_crop(hole, matrix, 64)
  side = 400 * scale  # 12.8 crop pixels, from 25.6 to 38.4
  for coords in crop.nonzero():
    assert abs(coords.min() - 800 * scale) <= 1 and abs(coords.max() - 1200 * scale) <= 1
  assert (side - 1) ** 2 <= crop.sum() <= (side + 2) ** 2
