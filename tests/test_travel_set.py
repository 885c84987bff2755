"""travel_set: the encoding chosen by measured PSNR under a size budget, and a split read back
with the masks the build would draw (fast tier, crops made here)."""

import cv2
import numpy as np
import pytest

from conftest import REPO
from maskinpaint_jax import masks, photo_scores, travel_set
from maskinpaint_jax.faces import align

FACE = np.load(REPO / "tests" / "assets" / "obama_landmarks.npy")


def _crops(n=6, size=64):
  rng = np.random.default_rng(0)
  return [cv2.resize(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8), (size, size),
                     interpolation=cv2.INTER_CUBIC) for _ in range(n)]


def test_the_highest_psnr_that_fits_the_budget_is_chosen():
  crops = _crops()
  free = travel_set.choose_encoding(crops, 100, 10**9)
  assert free["psnr"] == max(c["psnr"] for c in free["candidates"])
  # A budget between two candidates' sizes: the better one that fits, by an independent count.
  sizes = {(c["format"], c["quality"]): c for c in free["candidates"]}
  webp90 = sizes[("webp", 90)]["estimated_bytes"]
  chosen = travel_set.choose_encoding(crops, 100, webp90)
  fitting = [c for c in free["candidates"] if c["estimated_bytes"] <= webp90]
  assert (chosen["format"], chosen["quality"]) == max(
      ((c["format"], c["quality"]) for c in fitting), key=lambda k: sizes[k]["psnr"])
  real = np.mean([len(cv2.imencode(".webp", c[..., ::-1], [cv2.IMWRITE_WEBP_QUALITY, 90])[1])
                  for c in crops])
  assert sizes[("webp", 90)]["bytes_per_image"] == pytest.approx(real)
  with pytest.raises(ValueError, match="do not fit"):
    travel_set.choose_encoding(crops, 100, 1000)


def test_a_split_reads_back_with_its_landmarks_and_the_builds_masks(tmp_path):
  size = 64
  crops = _crops(4, size)
  landmarks = [align.transform_points(align.crop_matrix(FACE, size), FACE).astype(np.float32)
               for _ in crops]
  ids = [f"celeba/{i}.jpg" for i in range(len(crops))]
  info = travel_set.write_split(tmp_path, "test", crops, landmarks, ids, "jpeg", 90)
  assert info["count"] == 4 and info["psnr"] > 35
  source = travel_set.TravelSource(tmp_path, "test")
  assert len(source) == 4
  for i, crop in enumerate(crops):
    ex = source[i]
    assert photo_scores.psnr(ex["image"], crop) > 35
    np.testing.assert_array_equal(ex["landmarks"], landmarks[i])
    # The build draws mask i with masks.example_rng(seed 0, id i): the same hole and style.
    _, hole, style = masks.apply_face_mask(crop, landmarks[i], masks.example_rng(0, ids[i]))
    np.testing.assert_array_equal(ex["mask"][..., 0] > 127, hole > 0)
    assert ex["mask_type"] == masks.MASK_TYPES.index(style) and ex["id"] == ids[i].encode()
