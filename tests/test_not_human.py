"""Only masked human faces are restored: the shipped face finder and face check (the whole
decision path of inpaint, dry run) on the bundled things that are not human faces, on a mask
lying on a table (generated) and on real masked and unmasked photos."""

import dataclasses

import cv2
import numpy as np
import pytest

from conftest import REPO
from maskinpaint_jax import images, masks, restorer
from maskinpaint_jax.faces import check, features, finders, restore

NOT_HUMAN = REPO / "sample_data" / "not_human"
KINDS = ("animal", "statue", "doll", "drawing", "mask_only")


@pytest.fixture(scope="module")
def dry_run():
  """inpaint's decisions without the generator (filler None: nothing repainted)."""
  tools = restorer.load_restorer()
  return dataclasses.replace(tools, filler=None, more_generators=())


def _decide(tools, photo):
  try:
    return tools.restore(photo)
  except finders.NoFaceError:
    return None


@pytest.mark.parametrize("kind", KINDS)
def test_no_bundled_non_human_face_is_restored(dry_run, kind):
  paths = images.list_images(NOT_HUMAN / kind)
  assert len(paths) == 2
  for path in paths:
    result = _decide(dry_run, images.load_rgb(path))
    assert result is None or not result.changed, (path.name, result and result.faces)


def test_a_mask_lying_on_a_table_is_not_restored(dry_run):
  # A table's wood grain, and an Algorithm 1 mask drawn where a face would be, with no face.
  rng = np.random.default_rng(0)
  h, w = 480, 640
  ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
  grain = 0.5 + 0.15 * np.sin(xs / 7 + 3 * np.sin(ys / 40)) + 0.05 * rng.normal(size=(h, w))
  table = (np.clip(grain, 0, 1)[..., None] * np.array([200, 140, 90])).astype(np.uint8)
  landmarks = np.load(REPO / "tests" / "assets" / "obama_landmarks.npy")
  (x0, y0), (x1, y1) = landmarks.min(0), landmarks.max(0)
  scale = 300 / max(x1 - x0, y1 - y0)
  placed = (landmarks - [x0, y0]) * scale + [170, 90]
  photo, hole, _ = masks.apply_face_mask(table, placed.astype(np.float32), rng, "surgical")
  assert hole.sum() > 5000   # a mask was drawn
  result = _decide(dry_run, photo)
  assert result is None or not result.changed


def test_real_masked_faces_are_restored_and_unmasked_ones_left_alone(dry_run):
  masked = [REPO / "sample_data" / "realmask" / n for n in
            ("0_0_50.jpg", "with_mask183.jpg", "with_mask317.jpg", "1_0_2 copy 4.jpg")]
  for path in masked:
    result = _decide(dry_run, images.load_rgb(path))
    assert result is not None and result.changed, (path.name, result and result.faces)
  for name in ("obama.jpg", "biden.jpg", "two_people.jpg"):
    result = _decide(dry_run, images.load_rgb(REPO / "sample_data" / "photos" / name))
    assert result is not None and not result.changed
    assert result.count(restore.NO_MASK) == len(result.faces)   # human, judged unmasked


def test_the_heads_judge_whole_non_human_photos_not_human_and_real_faces_human():
  """The human-face head alone, on crops that need no finder: each bundled non-human photo
  squeezed to a crop, against the box crops of real faces."""
  checker = check.load()
  assert checker.heads is not None
  crops = [cv2.resize(images.load_rgb(p), (features.CROP_SIZE, features.CROP_SIZE),
                      interpolation=cv2.INTER_AREA)
           for kind in ("animal", "statue", "doll") for p in images.list_images(NOT_HUMAN / kind)]
  human = checker.head_probabilities(np.stack(crops))["human"]
  assert (human < checker.human_threshold).all(), human
  landmarks = np.load(REPO / "tests" / "assets" / "obama_landmarks.npy")
  photo = images.load_rgb(REPO / "sample_data" / "photos" / "obama.jpg")
  (x0, y0), (x1, y1) = landmarks.min(0), landmarks.max(0)
  box = (int(y0), int(x1), int(y1), int(x0))
  answers = checker.head_probabilities(check.box_crop(photo, box, features.CROP_SIZE)[None])
  human, mask = answers["human"], answers["mask"]
  assert human[0] >= checker.human_threshold and mask[0] < checker.mask_threshold


def test_a_masked_face_cut_just_above_the_eyes_is_found_and_restored(dry_run):
  """A tight crop: the finder's own checks see no face in it (the detector needs more of the
  head); looked at again inside a wide border, its face is taken on the human-face head's word
  (`MeshFaceFinder.vouch`)."""
  from maskinpaint_jax import faces  # pylint: disable=g-import-not-at-top
  photo = images.load_rgb(REPO / "sample_data" / "realmask" / "0_0_50.jpg")
  landmarks = dry_run.finder.find_any_size(photo)[0].landmarks
  top = int(landmarks[36:48, 1].min()) - 2          # just above the eyes
  x0, x1 = max(0, int(landmarks[:, 0].min()) - 5), int(landmarks[:, 0].max()) + 5
  crop = np.ascontiguousarray(photo[top:, x0:x1])
  assert faces.make_finder("mesh", min_face_size=0).find_any_size(crop) == []
  result = _decide(dry_run, crop)
  assert result is not None and result.changed, result and result.faces


TIGHT_CROPS = ("0_0_9 copy 7.jpg", "1_0_1 copy 4.jpg")


@pytest.mark.parametrize("name", TIGHT_CROPS)
def test_a_masked_face_cropped_from_the_brows_to_the_chin_is_found_and_restored(dry_run, name):
  """No detector pass sees a face in these real crops, even inside a wide border; the mesh
  placed on the frame (`mesh.frame_candidates`) fits the face's shape and the face check
  vouches for a human face the right way up (`check.FaceCheck.vouches_on_frame`)."""
  photo = images.load_rgb(REPO / "sample_data" / "tight_crops" / name)
  finder = dry_run.finder
  assert finder.find_unaided(photo) == []
  assert finder._confirmed(photo, finder.examine(photo, finder.wide_candidates(photo)),
                           finder.vouch) == []
  result = _decide(dry_run, photo)
  assert result is not None and result.changed and result.rotation == 0, result and result.faces
  # The hole is the mask: the lower part of the crop, not the eyes.
  rows = np.flatnonzero(result.hole.any(axis=1))
  assert rows.mean() > 0.5 * photo.shape[0]


@pytest.mark.parametrize("name", TIGHT_CROPS)
def test_a_tight_crop_upside_down_is_not_restored_either_way(dry_run, name):
  """Turned by 180 degrees the frame still fits a face's shape, and the human-face head still
  vouches for it: only the face check's upright answer keeps its eyes from being painted."""
  photo = images.load_rgb(REPO / "sample_data" / "tight_crops" / name)
  result = _decide(dry_run, np.ascontiguousarray(photo[::-1, ::-1]))
  assert result is None or not result.changed, result.faces


def test_the_frame_is_not_taken_for_a_face_in_a_wide_photo(dry_run):
  """A tight crop set in a wide photo: the face need not fill such a frame (a profile in a
  car), so the frame is not tried and nothing is found."""
  photo = images.load_rgb(REPO / "sample_data" / "tight_crops" / "0_0_9 copy 7.jpg")
  h, w = photo.shape[:2]
  wide = np.ascontiguousarray(np.pad(photo, ((0, 0), (w, w), (0, 0)), mode="edge"))
  assert _decide(dry_run, wide) is None


def test_a_masked_face_of_17_px_is_restored_and_one_of_8_px_reported_too_small(dry_run):
  """Faces from restore.MIN_FACE_SIZE up are restored; a smaller one is named."""
  assert 8 < restore.MIN_FACE_SIZE <= 17
  photo = images.load_rgb(REPO / "sample_data" / "realmask" / "with_mask183.jpg")
  side = dry_run.finder.find_any_size(photo)[0].size
  for face_px, restored in ((17, True), (8, False)):
    small = cv2.resize(photo, None, fx=face_px / side, fy=face_px / side,
                       interpolation=cv2.INTER_AREA)
    result = _decide(dry_run, small)
    assert result is not None and result.changed == restored, (face_px, result and result.faces)
    if not restored:
      assert "too small" in result.faces[0].reason


def test_without_the_mask_check_unmasked_people_are_restored_but_animals_still_left_alone():
  tools = restorer.load_restorer(mask_check=False)
  dry = dataclasses.replace(tools, filler=None, more_generators=())
  assert "face check on, mask check off" in tools.description
  for path in images.list_images(NOT_HUMAN / "animal"):
    result = _decide(dry, images.load_rgb(path))
    assert result is None or not result.changed, (path.name, result and result.faces)
  result = _decide(dry, images.load_rgb(REPO / "sample_data" / "photos" / "obama.jpg"))
  assert result is not None and result.changed   # a face judged unmasked, restored anyway
