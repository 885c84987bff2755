"""Face detection / landmarks on real photos, and the crop geometry against known mappings."""

import numpy as np
import pytest

from data_prep import faces, images


@pytest.fixture(scope="module")
def finder():
  return faces.FaceFinder()


def test_landmarks_on_a_real_face_are_anatomically_ordered(finder, celeba_paths):
  img = images.load_rgb(celeba_paths[0])
  face = finder.find_one(img)
  lm = face.landmarks
  assert lm.shape == (68, 2) and face.source == "hog"
  eyes_y = lm[36:48, 1].mean()
  assert eyes_y < lm[30, 1] < lm[51, 1] < lm[8, 1]      # eyes above nose tip, mouth, chin
  assert lm[36:42, 0].mean() < lm[42:48, 0].mean()      # dlib's 36-41 is the image-left eye
  assert lm[1, 0] < lm[29, 0] < lm[16, 0]               # jaw points bracket the nose bridge


def test_largest_of_several_faces_and_find_all(finder, photos_dir):
  img = images.load_rgb(photos_dir / "two_people.jpg")
  all_faces = finder.find_all(img)
  assert len(all_faces) == 2
  assert all_faces[0].size >= all_faces[1].size
  assert finder.find_one(img).box == all_faces[0].box


def test_no_face_policies(finder):
  blank = np.full((218, 178, 3), 200, np.uint8)
  with pytest.raises(faces.NoFaceError, match="no face"):
    finder.find_one(blank, no_face="skip")
  face = finder.find_one(blank, no_face="fixed_box")
  assert face.source == "fixed_box" and face.box == faces.CELEBA_ALIGNED_BOX
  with pytest.raises(ValueError):
    finder.find_one(blank, no_face="guess")


def test_min_face_size_rejects_tiny_faces(celeba_paths):
  img = images.load_rgb(celeba_paths[0])
  with pytest.raises(faces.NoFaceError, match="too small"):
    faces.FaceFinder(min_face_size=500).find_one(img)


def test_crop_matrix_maps_the_square_onto_the_crop():
  lm = np.array([[40.0, 50.0], [140.0, 150.0]] * 34)  # bbox 100 x 100, centre (90, 100)
  cx, cy, side = faces.crop_square(lm)
  assert side == pytest.approx(faces.CROP_SCALE * 100)
  m = faces.crop_matrix(lm, 64)
  corners = np.array([[cx - side / 2, cy - side / 2], [cx + side / 2, cy + side / 2]])
  np.testing.assert_allclose(faces.transform_points(m, corners), [[-0.5, -0.5], [63.5, 63.5]],
                             atol=1e-4)


def test_crop_is_shifted_inside_a_large_enough_photo():
  lm = np.array([[5.0, 60.0], [105.0, 160.0]] * 34)  # face near the left edge
  cx, _, side = faces.crop_square(lm, image_shape=(400, 400))
  assert cx - side / 2 == pytest.approx(-0.5)
  cx2, _, _ = faces.crop_square(lm, image_shape=(100, 100))  # too small to shift: centred
  assert cx2 == pytest.approx(55.0)


@pytest.mark.parametrize("side_scale", [1.0, 8.0])  # 8x exercises the area pre-shrink
def test_warp_crop_samples_where_the_matrix_says(side_scale):
  # On a linear ramp every resampling is exact, so each output pixel must hold the source
  # coordinate that the inverse matrix gives for it.
  h, w = int(300 * side_scale), int(260 * side_scale)
  ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
  ramp = np.stack([xs, ys, xs + ys], -1)
  lm = np.array([[60.0, 70.0], [160.0, 170.0]] * 34) * side_scale
  m = faces.crop_matrix(lm, 64)
  out = faces.warp_crop(ramp, m, 64)
  inv = np.linalg.inv(np.vstack([m, [0, 0, 1]]))[:2]
  oy, ox = np.mgrid[0:64, 0:64].astype(np.float64)
  src = np.stack([ox.ravel(), oy.ravel()], 1) @ inv[:, :2].T + inv[:, 2]
  inner = (slice(2, -2), slice(2, -2))
  tol = 0.05 / m[0, 0]  # a twentieth of an output pixel, in source pixels
  for c in (0, 1):
    np.testing.assert_allclose(out[..., c][inner], src[:, c].reshape(64, 64)[inner], atol=tol)
