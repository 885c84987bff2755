"""Face detection / landmarks on real photos, and the crop geometry against known mappings."""

import numpy as np
import pytest

from maskinpaint_jax import images
from maskinpaint_jax import faces
from maskinpaint_jax.faces import align, finders


@pytest.fixture(scope="module")
def finder():
  return finders.HogFaceFinder()


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
  with pytest.raises(finders.NoFaceError, match="no face"):
    finder.find_one(blank, no_face="skip")
  face = finder.find_one(blank, no_face="fixed_box")
  assert face.source == "fixed_box" and face.box == finders.CELEBA_ALIGNED_BOX
  with pytest.raises(ValueError):
    finder.find_one(blank, no_face="guess")


def test_min_face_size_rejects_tiny_faces(celeba_paths):
  img = images.load_rgb(celeba_paths[0])
  with pytest.raises(finders.NoFaceError, match="too small"):
    finders.HogFaceFinder(min_face_size=500).find_one(img)


def test_crop_matrix_maps_the_square_onto_the_crop():
  lm = np.array([[40.0, 50.0], [140.0, 150.0]] * 34)  # bbox 100 x 100, centre (90, 100)
  cx, cy, side = align.crop_square(lm)
  assert side == pytest.approx(align.CROP_SCALE * 100)
  m = align.crop_matrix(lm, 64)
  corners = np.array([[cx - side / 2, cy - side / 2], [cx + side / 2, cy + side / 2]])
  np.testing.assert_allclose(align.transform_points(m, corners), [[-0.5, -0.5], [63.5, 63.5]],
                             atol=1e-4)


def test_crop_is_shifted_inside_a_large_enough_photo():
  lm = np.array([[5.0, 60.0], [105.0, 160.0]] * 34)  # face near the left edge
  cx, _, side = align.crop_square(lm, image_shape=(400, 400))
  assert cx - side / 2 == pytest.approx(-0.5)
  cx2, _, _ = align.crop_square(lm, image_shape=(100, 100))  # too small to shift: centred
  assert cx2 == pytest.approx(55.0)


@pytest.mark.parametrize("side_scale", [1.0, 8.0])  # 8x exercises the area pre-shrink
def test_warp_crop_samples_where_the_matrix_says(side_scale):
  # On a linear ramp every resampling is exact, so each output pixel must hold the source
  # coordinate that the inverse matrix gives for it.
  h, w = int(300 * side_scale), int(260 * side_scale)
  ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
  ramp = np.stack([xs, ys, xs + ys], -1)
  lm = np.array([[60.0, 70.0], [160.0, 170.0]] * 34) * side_scale
  m = align.crop_matrix(lm, 64)
  out = align.warp_crop(ramp, m, 64)
  inv = np.linalg.inv(np.vstack([m, [0, 0, 1]]))[:2]
  oy, ox = np.mgrid[0:64, 0:64].astype(np.float64)
  src = np.stack([ox.ravel(), oy.ravel()], 1) @ inv[:, :2].T + inv[:, 2]
  inner = (slice(2, -2), slice(2, -2))
  tol = 0.05 / m[0, 0]  # a twentieth of an output pixel, in source pixels
  for c in (0, 1):
    np.testing.assert_allclose(out[..., c][inner], src[:, c].reshape(64, 64)[inner], atol=tol)


def test_make_finder_builds_each_finder_by_name_and_the_interface_is_abstract():
  hog = faces.make_finder("hog", min_face_size=30)
  assert isinstance(hog, finders.HogFaceFinder) and hog.min_face_size == 30
  with pytest.raises(TypeError):
    finders.FaceFinder()  # the interface alone finds nothing
  with pytest.raises(ValueError, match="face finder"):
    faces.make_finder("cnn")


def _turned_landmarks(yaw_degrees):
  """Outer eye corners and nose tip of a head model turned by `yaw` (orthographic view)."""
  theta = np.radians(yaw_degrees)
  e = finders.EYE_HALF_WIDTH_OVER_NOSE_DEPTH
  lm = np.zeros((68, 2))
  lm[36] = (-e * np.cos(theta), 0.0)
  lm[45] = (e * np.cos(theta), 0.0)
  lm[30] = (np.sin(theta), 1.0)  # nose tip, 1 in front of the eye corners, below them
  return lm


@pytest.mark.parametrize("yaw", [-60.0, -20.0, 0.0, 35.0, 70.0])
def test_yaw_inverts_the_head_model(yaw):
  assert finders.yaw_degrees(_turned_landmarks(yaw)) == pytest.approx(yaw, abs=1e-6)


def test_yaw_on_real_faces_is_small_and_flips_with_the_photo(finder, celeba_paths):
  img = images.load_rgb(celeba_paths[3])
  yaw = finders.yaw_degrees(finder.find_one(img).landmarks)
  mirrored = finders.yaw_degrees(finder.find_one(np.ascontiguousarray(img[:, ::-1])).landmarks)
  assert abs(yaw) < 30
  assert mirrored == pytest.approx(-yaw, abs=5)


def test_face_problems_too_small_cut_profile(finder, photos_dir):
  img = images.load_rgb(photos_dir / "obama.jpg")
  face = finder.find_one(img)
  assert finders.face_problem(face, img.shape, 40) is None
  assert "too small" in finders.face_problem(face, img.shape, face.size + 1)
  # The frame cuts through the face: the left 60 % of it is outside the photo.
  lo, hi = face.landmarks.min(0), face.landmarks.max(0)
  x0 = int(lo[0] + 0.6 * (hi[0] - lo[0]))
  cut = finders.Face(face.box, face.landmarks - (x0, 0), face.source)
  assert finders.outside_fraction(cut.landmarks, img[:, x0:].shape) == pytest.approx(0.6, abs=0.02)
  assert "cut by the frame" in finders.face_problem(cut, img[:, x0:].shape, 40)
  # A tight crop whose frame cuts the forehead and eyes: the mask (the lower face) is inside.
  y0 = int(face.landmarks[29, 1]) - 2  # through the nose bridge, just above the mask's top
  top_cut = finders.Face(face.box, face.landmarks - (0, y0), face.source)
  assert finders.outside_fraction(top_cut.landmarks, img[y0:].shape) > 0.25
  assert finders.face_problem(top_cut, img[y0:].shape, 40) is None
  turned = finders.Face(face.box, _turned_landmarks(70.0) * 50 + 200, face.source)
  assert "in profile" in finders.face_problem(turned, (400, 400, 3), 0)
  half_turned = finders.Face(face.box, _turned_landmarks(55.0) * 50 + 200, face.source)
  assert finders.face_problem(half_turned, (400, 400, 3), 0) is None
