"""bench_photos' counts, on made-up decisions whose answers are known."""

import numpy as np

from maskinpaint_jax.faces import restore
from maskinpaint_jax.tools import bench_photos


class _BrightIsAFace:
  """A stand-in detector: 'finds a face' in an image brighter than mid-grey."""

  def detect(self, image):
    return [(0, 1, 1, 0)] if image.mean() > 127 else []


def _result(restored_value, status):
  img = np.full((4, 4, 3), restored_value, np.uint8)
  face = restore.FaceReport(1, (0, 4, 4, 0), 4, status, "")
  return restore.Restoration(img, img, np.zeros((4, 4), np.uint8), [face])


def test_hog_counts_only_restored_photos_before_and_after():
  dark, bright = np.zeros((4, 4, 3), np.uint8), np.full((4, 4, 3), 255, np.uint8)
  photos = [("a", dark), ("b", dark), ("c", bright), ("d", bright), ("e", dark)]
  results = [_result(255, restore.RESTORED),   # dark -> bright: seen after only
             _result(0, restore.RESTORED),     # dark -> dark: never seen
             _result(255, restore.RESTORED),   # bright -> bright: seen before and after
             _result(255, restore.NO_MASK),    # not restored: not counted
             None]                             # no face: not counted
  got = bench_photos.hog_counts(photos, results, _BrightIsAFace())
  assert got == dict(restored=3, before=1, after=2)
  table = bench_photos.hog_markdown([("x", got)], "m")
  assert "| x | 3 | 1 | 2 | 66.7 % |" in table
