"""The face check's training data (tools/train_face_check.py): orientation labels that say
where the top of the face really is, whatever the crop's own turn, mirror and augmentation."""

import numpy as np

from maskinpaint_jax.tools import train_face_check


def marked_crop():
  """A 64 px grey crop with a red block at the top centre: where the forehead is."""
  crop = np.full((64, 64, 3), 90, np.uint8)
  crop[2:14, 26:38] = (255, 0, 0)
  return crop


def where_is_red(crop) -> int:
  """np.rot90's k that moves the top centre to where the red block is: 0 top, 1 left,
  2 bottom, 3 right (counter-clockwise turns)."""
  redness = crop[..., 0].astype(int) - crop[..., 1]  # survives the brightness augmentation
  ys, xs = np.nonzero(redness > 0.5 * redness.max())
  dy, dx = ys.mean() - 31.5, xs.mean() - 31.5
  if abs(dy) > abs(dx):
    return 0 if dy < 0 else 2
  return 1 if dx < 0 else 3


def test_augmented_labels_name_the_turn_the_picture_shows():
  rng = np.random.default_rng(0)
  base_turns = np.array([0, 1, 2, 3] * 16)
  crops = np.stack([np.rot90(marked_crop(), int(k)) for k in base_turns])
  assert [where_is_red(c) for c in crops] == list(base_turns)  # the marker reads the turn
  out, labels = train_face_check.augment(crops, rng, base_turns)
  assert set(labels) == {0, 1, 2, 3}
  assert [where_is_red(c) for c in out] == list(labels)


def test_a_mirror_swaps_the_quarter_turns_and_keeps_the_half_turn():
  """A face turned by 90 degrees and mirrored is a face turned by 270: jitter mirrors half the
  time, so for every base turn the label must still undo the picture's turn, mirrored or not."""
  rng = np.random.default_rng(1)
  asym = marked_crop()
  asym[30:40, 2:10] = (0, 0, 255)  # a blue block on the face's left: shows the mirror
  for base in (1, 2, 3):
    crops = np.stack([np.rot90(asym, base)] * 32)
    out, labels = train_face_check.augment(crops, rng, np.full(32, base))
    upright = [np.rot90(c, -int(k)) for c, k in zip(out, labels)]
    assert all(where_is_red(c) == 0 for c in upright)
    blueness = [c[..., 2].astype(int) - c[..., 1] for c in upright]
    blue_x = [np.argwhere(b > 0.5 * b.max())[:, 1].mean() for b in blueness]
    assert min(blue_x) < 20 and max(blue_x) > 44  # left as drawn, and mirrored to the right
