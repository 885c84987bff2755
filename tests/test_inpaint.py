"""inpaint on users' photos: several faces, a face cut by the frame, RGBA, grayscale, EXIF
orientation, and a photo without a face."""

import shutil

import numpy as np
import pytest
from PIL import Image

from data_prep import images
from maskinpaint_jax import inpaint


@pytest.fixture(scope="module")
def photo_folder(tmp_path_factory, photos_dir):
  root = tmp_path_factory.mktemp("photos")
  for name in ("two_people.jpg", "obama_partial_face.jpg", "32bit.png"):
    shutil.copy(photos_dir / name, root / name)
  Image.fromarray(np.full((120, 160, 3), 180, np.uint8)).save(root / "wall.png")
  Image.open(photos_dir / "biden.jpg").convert("L").save(root / "biden_gray.png")
  # Stored sideways with an EXIF tag saying "rotate to display": only an EXIF-aware loader
  # finds the (upright) face.
  obama = Image.open(photos_dir / "obama.jpg")
  sideways = obama.transpose(Image.Transpose.ROTATE_90)
  exif = sideways.getexif()
  exif[0x0112] = 6
  sideways.save(root / "obama_exif.jpg", exif=exif, quality=92)
  return root


def test_inpaint_a_folder_with_add_mask(tiny_workdir, photo_folder, tmp_path, capsys):
  out = tmp_path / "out"
  code = inpaint.main([str(photo_folder), "--workdir", str(tiny_workdir), "-o", str(out),
                       "--add-mask", "random", "--side-by-side"])
  log = capsys.readouterr()
  assert code == 1  # the wall has no face
  assert "FAILED" in log.err and "wall.png: no face found" in log.err
  assert "5 of 6 photo(s) restored" in log.out
  assert "two_people.jpg: 2 face(s)" in log.out
  assert "obama_exif.jpg: 1 face(s)" in log.out
  for stem in ("two_people", "obama_partial_face", "32bit", "obama_exif", "biden_gray"):
    src = images.load_rgb(next(photo_folder.glob(stem + ".*")))
    masked = images.load_rgb(out / f"{stem}_masked.png")
    restored = images.load_rgb(out / f"{stem}_restored.png")
    assert masked.shape == restored.shape == src.shape
    side = images.load_rgb(out / f"{stem}_side_by_side.png")
    assert side.shape[0] == src.shape[0] and side.shape[1] == 3 * src.shape[1] + 16
    changed_by_mask = np.any(masked != src, axis=-1)
    changed_by_restore = np.any(restored != masked, axis=-1)
    assert changed_by_mask.mean() > 0.005
    # Restoration touches the masked area (and a feathered rim), never far from it.
    import cv2
    near = cv2.dilate(changed_by_mask.astype(np.uint8), np.ones((61, 61), np.uint8)) > 0
    assert changed_by_restore[changed_by_mask].mean() > 0.5
    assert not changed_by_restore[~near].any()
  assert not list(out.glob("wall*"))


def test_inpaint_blind_mode_on_single_files(tiny_workdir, photo_folder, tmp_path, capsys):
  out = tmp_path / "blind"
  code = inpaint.main([str(photo_folder / "32bit.png"), str(photo_folder / "two_people.jpg"),
                       "--workdir", str(tiny_workdir), "-o", str(out)])
  assert code == 0, capsys.readouterr().err
  restored = images.load_rgb(out / "32bit_restored.png")
  assert restored.shape == images.load_rgb(photo_folder / "32bit.png").shape
  assert not list(out.glob("*_masked.png"))
