"""Photo loading: every awkward input is either converted or refused with a clear reason."""

import numpy as np
import pytest

from maskinpaint_jax import images
from conftest import make_awkward_photo_folder


@pytest.fixture(scope="module")
def awkward(tmp_path_factory, celeba_paths):
  root = tmp_path_factory.mktemp("awkward")
  return root, make_awkward_photo_folder(root, celeba_paths)


def test_each_awkward_file_loads_or_fails_with_its_reason(awkward):
  root, expect = awkward
  for name, outcome in expect.items():
    if outcome == "ok" or outcome == "no face":
      img = images.load_rgb(root / name)
      assert img.dtype == np.uint8 and img.ndim == 3 and img.shape[2] == 3, name
    else:
      with pytest.raises(images.ImageLoadError, match=outcome):
        images.load_rgb(root / name)


def test_truncation_is_caught_even_after_face_recognition_is_imported(awkward):
  root, _ = awkward
  import face_recognition  # noqa: F401  pylint: disable=unused-import  (sets PIL's flag)
  from PIL import ImageFile
  assert ImageFile.LOAD_TRUNCATED_IMAGES
  with pytest.raises(images.ImageLoadError, match="truncated"):
    images.load_rgb(root / "truncated.jpg")
  assert ImageFile.LOAD_TRUNCATED_IMAGES  # the global setting is left as it was


def test_conversions_keep_the_picture(awkward, celeba_paths):
  root, _ = awkward
  from PIL import Image
  ref = np.asarray(Image.open(celeba_paths[1]).convert("RGB")).astype(int)
  gray = images.load_rgb(root / "gray.png").astype(int)
  assert (gray[..., 0] == gray[..., 1]).all() and (gray[..., 1] == gray[..., 2]).all()
  np.testing.assert_array_equal(images.load_rgb(root / "deep16.png"), ref)
  rgba = images.load_rgb(root / "rgba.png")
  assert (rgba[:10] == 255).all()            # transparent rows -> white
  np.testing.assert_array_equal(rgba[10:], ref[10:])
  assert images.load_rgb(root / "huge.jpg").shape == (4000, 6000, 3)


def test_exif_orientation_is_honoured(tmp_path):
  from PIL import Image
  a = np.zeros((20, 40, 3), np.uint8)
  a[:, :20] = 255  # left half white
  img = Image.fromarray(a)
  exif = img.getexif()
  exif[0x0112] = 6  # "rotate 90 CW to display"
  img.save(tmp_path / "rot.jpg", exif=exif, quality=95)
  out = images.load_rgb(tmp_path / "rot.jpg")
  assert out.shape == (40, 20, 3)
  assert out[:20].mean() > 200 and out[20:].mean() < 50  # white half now on top


def test_list_images_finds_broken_names_too(awkward):
  root, expect = awkward
  names = {p.name for p in images.list_images(root)}
  assert names == set(expect)


def test_png_roundtrip_and_grid():
  rng = np.random.default_rng(0)
  rgb = rng.integers(0, 255, (9, 7, 3), dtype=np.uint8)
  import cv2
  back = cv2.imdecode(np.frombuffer(images.encode_png(rgb), np.uint8), cv2.IMREAD_COLOR)
  np.testing.assert_array_equal(back[..., ::-1], rgb)
  hole = rng.random((9, 7)) > 0.5
  grid = images.make_grid([[rgb, hole], [rgb, rgb]], pad=1)
  assert grid.shape == (2 * 10 + 1, 2 * 8 + 1, 3)
  np.testing.assert_array_equal(grid[1:10, 1:8], rgb)
  np.testing.assert_array_equal(grid[1:10, 9:16, 0], hole * 255)
  with pytest.raises(ValueError):
    images.make_grid([])


def test_region_around_grows_the_mask_and_stays_inside_the_image():
  mask = np.zeros((300, 400), np.uint8)
  mask[100:150, 200:300] = 1   # 50 x 100
  top, bottom, left, right = images.region_around(mask, margin=0.5, max_side=1000)
  assert (bottom - top, right - left) == (100, 200)  # twice the mask's size, same centre
  assert (top + bottom) / 2 == pytest.approx(124.5, abs=1) and (left + right) / 2 == pytest.approx(249.5, abs=1)
  top, bottom, left, right = images.region_around(mask, margin=0.5, max_side=120)
  assert right - left == 120 and bottom - top == 100
  corner = np.zeros((50, 50), np.uint8)
  corner[:5, :5] = 1
  assert images.region_around(corner, margin=2.0)[::2] == (0, 0)


def test_rows_at_own_size_never_resizes_a_panel():
  a = np.full((30, 40, 3), 10, np.uint8)
  b = np.full((50, 20, 3), 200, np.uint8)
  grid = images.rows_at_own_size([[a, a], [b]], pad=4)
  assert grid.shape == (30 + 4 + 50, 40 + 4 + 40, 3)
  np.testing.assert_array_equal(grid[:30, :40], a)
  np.testing.assert_array_equal(grid[:30, 44:84], a)
  np.testing.assert_array_equal(grid[34:84, :20], b)
  assert (grid[34:, 20:] == 255).all()
