"""inpaint on users' photos: several faces, a face cut by the frame, RGBA, grayscale, EXIF
orientation, and a photo without a face."""

import shutil

import numpy as np
import pytest
from PIL import Image

from maskinpaint_jax import images
from maskinpaint_jax import cli, errors
from maskinpaint_jax.tools import inpaint

# Every test restores photos with the checkpoint of a subprocess training run on a dataset built
# with dlib (conftest.tiny_workdir): the end-to-end tier.
pytestmark = pytest.mark.slow


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
  code = cli.call(inpaint, [str(photo_folder), "--workdir", str(tiny_workdir), "-o", str(out),
                             "--add_mask", "random", "--side_by_side", "--save_hole"])
  log = capsys.readouterr()
  assert code == 1  # the wall has no face
  assert "FAILED" in log.err and "wall.png: no face found" in log.err
  assert "5 restored + 0 no mask + 1 no face + 0 unreadable = 6 file(s)" in log.out
  assert "two_people.jpg: 2 of 2 face(s) restored" in log.out
  assert "obama_exif.jpg: 1 of 1 face(s) restored" in log.out
  for stem in ("two_people", "obama_partial_face", "32bit", "obama_exif", "biden_gray"):
    src = images.load_rgb(next(photo_folder.glob(stem + ".*")))
    masked = images.load_rgb(out / f"{stem}_masked.png")
    restored = images.load_rgb(out / f"{stem}_restored.png")
    assert masked.shape == restored.shape == src.shape
    side = images.load_rgb(out / f"{stem}_side_by_side.png")
    assert side.shape[0] == src.shape[0] and side.shape[1] == 3 * src.shape[1] + 16
    changed_by_mask = np.any(masked != src, axis=-1)
    # The saved hole is exactly the synthetic masks' footprint (the pixels they changed).
    hole = images.load_rgb(out / f"{stem}_hole.png")[..., 0] > 127
    assert not changed_by_mask[~hole].any() and changed_by_mask[hole].mean() > 0.9
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
  code = cli.call(inpaint, [str(photo_folder / "32bit.png"),
                             str(photo_folder / "two_people.jpg"), "--workdir", str(tiny_workdir),
                             "-o", str(out), "--nomask_check"])  # unmasked: restore anyway
  assert code == 0, capsys.readouterr().err
  restored = images.load_rgb(out / "32bit_restored.png")
  assert restored.shape == images.load_rgb(photo_folder / "32bit.png").shape
  assert not list(out.glob("*_masked.png"))


def test_inpaint_reports_each_unusable_face_and_goes_on(tiny_workdir, photos_dir, repo, tmp_path,
                                                        capsys):
  src = tmp_path / "in"
  src.mkdir()
  shutil.copy(repo / "sample_data" / "realmask" / "0_0_50.jpg", src / "masked.jpg")
  obama = images.load_rgb(photos_dir / "obama.jpg")
  # The frame cuts off the left 40 % of the face (cut off more, and it is not found at all).
  Image.fromarray(np.ascontiguousarray(obama[:, 470:])).save(src / "cut.png")
  out = tmp_path / "out"
  code = cli.call(inpaint, [str(src), "--workdir", str(tiny_workdir), "-o", str(out)])
  log = capsys.readouterr()
  assert code == 1
  assert "masked.jpg: 1 of 1 face(s) restored" in log.out  # a real masked face, by default
  assert "cut.png: no usable face (1 found)" in log.err
  assert "cut.png: face 1 of 1" in log.err and "cut by the frame" in log.err
  assert "1 restored + 0 no mask + 1 no face + 0 unreadable = 2 file(s)" in log.out
  assert "1 face(s) skipped" in log.out
  assert (out / "masked_restored.png").exists()
  assert not list(out.glob("cut*"))


def test_inpaint_restores_the_usable_faces_of_a_photo(tiny_workdir, photos_dir, tmp_path, capsys):
  # Faces of 174 and 173 px: with --min_face_size 174 the smaller one is skipped.
  code = cli.call(inpaint, [str(photos_dir / "two_people.jpg"), "--workdir", str(tiny_workdir),
                             "-o", str(tmp_path), "--min_face_size", "174", "--nomask_check"])
  log = capsys.readouterr()
  assert code == 1  # something was skipped
  assert "two_people.jpg: 1 of 2 face(s) restored" in log.out
  assert (tmp_path / "two_people_restored.png").exists()
  assert "SKIPPED" in log.err and "two_people.jpg: face 2 of 2" in log.err
  assert "too small (" in log.err and "px < min_face_size 174)" in log.err
  assert "1 restored + 0 no mask + 0 no face + 0 unreadable = 1 file(s)" in log.out
  assert "1 face(s) skipped" in log.out


def test_inpaint_face_finder_flag(tiny_workdir, repo, tmp_path, capsys):
  masked = repo / "sample_data" / "realmask" / "0_0_50.jpg"
  code = cli.call(inpaint, [str(masked), "--workdir", str(tiny_workdir), "-o", str(tmp_path),
                             "--face_finder", "hog"])
  assert code == 1 and "0_0_50.jpg: no face found" in capsys.readouterr().err  # HOG misses it


def test_real_mask_is_located_and_only_it_is_redrawn(tiny_workdir, repo, tmp_path, capsys):
  from maskinpaint_jax.faces import mesh as mesh_faces
  path = repo / "sample_data" / "realmask" / "0_0_50.jpg"
  code = cli.call(inpaint, [str(path), "--workdir", str(tiny_workdir), "-o", str(tmp_path),
                             "--save_hole", "--side_by_side"])
  assert code == 0, capsys.readouterr().err
  photo = images.load_rgb(path)
  hole = images.load_rgb(tmp_path / "0_0_50_hole.png")[..., 0] > 127
  restored = images.load_rgb(tmp_path / "0_0_50_restored.png")
  lm = mesh_faces.MeshFaceFinder().find_all(photo)[0].landmarks
  at = lambda i: hole[int(round(lm[i, 1])), int(round(lm[i, 0]))]
  # Over nose tip, mouth and chin (under the mask); never over the eyes.
  assert at(33) and all(at(i) for i in range(48, 68)) and at(8)
  assert not any(at(i) for i in range(36, 48))
  import cv2
  rim = cv2.dilate(hole.astype(np.uint8), np.ones((25, 25), np.uint8)) > 0
  assert not np.any(restored != photo, axis=-1)[~rim].any()
  side = images.load_rgb(tmp_path / "0_0_50_side_by_side.png")
  assert side.shape[1] == 3 * photo.shape[1] + 16


def test_an_unmasked_face_is_left_untouched_and_not_a_failure(tiny_workdir, photos_dir, tmp_path,
                                                              capsys):
  """The shipped face check on a plain portrait: nothing is written, nothing is repainted."""
  code = cli.call(inpaint, [str(photos_dir / "obama.jpg"), "--workdir", str(tiny_workdir), "-o",
                            str(tmp_path)])
  log = capsys.readouterr()
  assert code == 0, log.err
  assert "obama.jpg: no mask found on its 1 face(s): left as it is" in log.out
  assert "0 restored + 1 no mask + 0 no face + 0 unreadable = 1 file(s)" in log.out
  assert not list(tmp_path.glob("*.png"))


@pytest.mark.parametrize("name, degrees", [("0_0_50.jpg", 90), ("0_0_50.jpg", 180),
                                           # Upside down, the finder boxes the eyes and the
                                           # forehead alone: a face check that had not learnt
                                           # such boxes painted these over the eyes.
                                           ("with_mask183.jpg", 180), ("with_mask317.jpg", 180)])
def test_a_turned_masked_photo_is_restored_on_the_mouth(tiny_workdir, repo, tmp_path, capsys,
                                                        name, degrees):
  """No orientation tag, turned by 90 or 180 degrees: set upright, the mask found and
  restored; the hole turned back matches the upright photo's (not the eyes)."""
  photo = images.load_rgb(repo / "sample_data" / "realmask" / name)
  Image.fromarray(photo).save(tmp_path / "upright.png")
  Image.fromarray(np.ascontiguousarray(np.rot90(photo, degrees // 90))).save(tmp_path / "t.png")
  out = tmp_path / "out"
  for name in ("upright.png", "t.png"):
    assert cli.call(inpaint, [str(tmp_path / name), "--workdir", str(tiny_workdir), "-o",
                              str(out), "--save_hole"]) == 0
  log = capsys.readouterr()
  assert f"turned {(360 - degrees) % 360} degrees to find the faces upright" in log.out
  upright = images.load_rgb(out / "upright_hole.png")[..., 0] > 127
  turned_back = np.rot90(images.load_rgb(out / "t_hole.png")[..., 0] > 127, -degrees // 90)
  assert (upright & turned_back).sum() / (upright | turned_back).sum() > 0.8


def test_a_larger_model_is_named_and_a_missing_one_is_a_clear_error(tiny_workdir, repo,
                                                                      tmp_path, capsys):
  photo = str(repo / "sample_data" / "realmask" / "0_0_50.jpg")
  code = cli.call(inpaint, [photo, "--workdir", str(tiny_workdir), "--large_model",
                            str(tiny_workdir), "-o", str(tmp_path / "a")])
  log = capsys.readouterr()
  assert code == 0, log.err
  assert "crops and more: step" in log.out and (tmp_path / "a" / "0_0_50_restored.png").exists()
  with pytest.raises(errors.SetupError, match="large model: no checkpoint in") as error:
    cli.call(inpaint, [photo, "--workdir", str(tiny_workdir), "--large_model",
                       str(tmp_path / "nowhere"), "-o", str(tmp_path / "b")])
  assert error.value.exit_code == 2  # cli.run prints it as one error line and exits with it
  assert not (tmp_path / "b").exists() or not list((tmp_path / "b").iterdir())
