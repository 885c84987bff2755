"""One photo, restored: the single code path of `tools/inpaint` and `tools/app`.

`restore_photo(photo, finder, filler, size)`:
1. Upright: faces are found in the photo as it is; when `checker` says a face is turned (90, 180
   or 270 degrees, as scanners and old cameras write photos without an orientation tag), the
   photo is turned upright first and the results are turned back.
2. Each face: too small, cut by the frame or in profile -> "skipped" with the reason; not a
   human face (`checker`: an animal, a statue, a drawing) -> "skipped"; no mask (`checker`) ->
   "no mask", left untouched; else its hole is estimated (`holes`), or taken from
   the user's hole map, or drawn with a synthetic mask (`add_mask`).
3. Restore: the face crop (`align`) goes through the generator (`filler`, or of
   `more_generators` the one whose input side suits the face's size) and is pasted back inside
   the hole only (`paste`).

Every face gets a `FaceReport`; pixels outside the restored holes are never changed.
"""

from __future__ import annotations

import dataclasses
from typing import Callable

import numpy as np

from maskinpaint_jax import masks
from maskinpaint_jax.faces import align, finders, holes, paste

# Face statuses of a report.
RESTORED, NO_MASK, SKIPPED = "restored", "no mask", "skipped"
ROTATIONS = (0, 90, 180, 270)  # degrees counter-clockwise, as np.rot90's k * 90
# px: smaller faces are skipped. Chosen on the train part of realmask_more, whose 100 x 100 stock
# photos show faces of 9-23 px: from 12 px their restorations, looked at on a picture sheet,
# show a plain lower face; 12 instead of 24 restores 44 more of its 1,228 photos and repaints
# no more unmasked or non-human ones.
MIN_FACE_SIZE = 12
Filler = Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]


@dataclasses.dataclass(frozen=True)
class FaceReport:
  """What happened to one face. `box`: (top, right, bottom, left) in the input photo's pixels;
  `crop_side`: the side (px) of the square the face is cropped to (`align.crop_square`), which
  the generator's input is resized from; `landmarks`: (68, 2) float32 (x, y) in the photo in
  which the face was found (turned upright when `Restoration.rotation` is not 0)."""
  number: int
  box: tuple[int, int, int, int]
  size: int
  status: str            # RESTORED, NO_MASK or SKIPPED
  reason: str = ""
  crop_side: int = 0
  landmarks: np.ndarray | None = dataclasses.field(default=None, repr=False, compare=False)

  def describe(self, count: int) -> str:
    top, right, bottom, left = self.box
    where = (f"face {self.number} of {count} (at x={(left + right) // 2}, "
             f"y={(top + bottom) // 2}, {self.size} px)")
    return f"{where}: {self.reason or self.status}"


@dataclasses.dataclass
class Restoration:
  """The outcome for one photo. Arrays are uint8 in the input photo's frame: `restored` and
  `masked` (H, W, 3) RGB; `hole` (H, W) in {0, 1}, the union of the holes filled."""
  restored: np.ndarray
  masked: np.ndarray
  hole: np.ndarray
  faces: list[FaceReport]
  rotation: int = 0      # degrees the photo was turned to find its faces upright

  def count(self, status: str) -> int:
    return sum(f.status == status for f in self.faces)

  @property
  def changed(self) -> bool:
    return self.count(RESTORED) > 0


def _turn(image: np.ndarray | None, degrees: int) -> np.ndarray | None:
  return None if image is None else np.ascontiguousarray(np.rot90(image, degrees // 90))


def _box_back(box, degrees: int, shape_hw) -> tuple[int, int, int, int]:
  """A (top, right, bottom, left) box found in the photo turned by `degrees` -> the input's
  frame (`shape_hw`: the input's height and width)."""
  top, right, bottom, left = box
  h, w = shape_hw
  corners = np.array([[left, top], [right, bottom]], np.float64)
  for _ in range(degrees // 90):  # undo one 90-degree counter-clockwise turn at a time
    # A turned photo of size (w', h') = (h, w) maps back: x = w' - 1 - y', y = x'.
    corners = np.stack([w - 1 - corners[:, 1], corners[:, 0]], axis=1)
    h, w = w, h
  (x0, y0), (x1, y1) = corners.min(0), corners.max(0)
  return int(y0), int(x1), int(y1), int(x0)


def restore_photo(photo: np.ndarray, finder: finders.FaceFinder,
                  filler: Filler | None,
                  size: int, *, hole: np.ndarray | None = None, add_mask: str | None = None,
                  rng: np.random.Generator | None = None, min_face_size: int = MIN_FACE_SIZE,
                  checker=None, more_generators=(), detail: float = 0.0,
                  mask_check: bool = True) -> Restoration:
  """Restores every masked face of `photo` (uint8 (H, W, 3) RGB).

  Args:
    finder: finds faces with 68 landmarks (`faces.make_finder`).
    filler: the generator, `filler(crops uint8 (1, size, size, 3), holes uint8 (1, size, size,
      1)) -> (raw, composite)` (`inference.make_filler`); None for a dry run (every decision and
      hole, nothing repainted).
    size: the generator's input side (px).
    hole: the user's hole map, (H, W) in {0, 1}: restored where it is 1, on every face it
      touches; no mask check, no estimate.
    add_mask: "surgical", "cloth", "n95" or "random": put a synthetic mask (Algorithm 1) on each
      face first; its hole is then known. `rng` seeds it.
    min_face_size: smaller faces are skipped (px).
    checker: `check.FaceCheck` or None: says whether a face is upright, human and masked (a face
      that is not human is never restored, whatever `hole` or `add_mask` ask).
    more_generators: `paste.Generator`s of other input sides besides (`filler`, `size`); each
      face goes through the one `paste.pick_generator` picks by the size of its crop.
    detail: the share of the photo's own fine detail laid over the hole of a face the generator
      enlarges (`paste.restore_faces`; 0: none).
    mask_check: False: a human face is restored whether `checker` finds a mask on it or not
      (the check still sets the photo upright and leaves what is not a human face alone).
  Raises:
    finders.NoFaceError: no face at all, in any orientation.
  """
  rotation, found, upright = _find_upright(photo, finder, checker)
  work = _turn(photo, rotation)
  user_hole = _turn(hole, rotation)
  reports, to_restore, face_holes = [], [], []
  masked = work
  for number, face in enumerate(found, 1):
    box = _box_back(face.box, rotation, photo.shape[:2])
    crop_side = int(round(align.crop_square(face.landmarks, work.shape)[2]))
    report = lambda status, reason="": reports.append(
        FaceReport(number, box, face.size, status, reason, crop_side, face.landmarks))
    problem = finders.face_problem(face, work.shape, min_face_size) if upright else (
        "not upright, and no turn of the photo sets it upright: left as it is")
    if problem:
      report(SKIPPED, problem)
      continue
    assessment = (checker.assess(work, face, turned=rotation != 0) if checker is not None
                  else None)
    if assessment is not None and not assessment.human:
      report(SKIPPED, "not a human face (an animal, a statue, a drawing?): left as it is")
      continue
    if user_hole is not None:
      face_hole = user_hole & _face_region(face, work.shape)
      if not face_hole.any():
        report(SKIPPED, "the given hole does not touch this face")
        continue
    elif add_mask:
      style = None if add_mask == "random" else add_mask
      masked, face_hole, _ = masks.apply_face_mask(masked, face.landmarks,
                                                   rng or np.random.default_rng(0), style)
    else:
      if mask_check and assessment is not None and not assessment.masked:
        report(NO_MASK, "no mask found: left as it is")
        continue
      face_hole = holes.estimate_hole(work, face.landmarks, source=face.source)
    report(RESTORED)
    to_restore.append(face)
    face_holes.append(face_hole.astype(np.uint8))
  union = (np.maximum.reduce(face_holes) if face_holes
           else np.zeros(work.shape[:2], np.uint8))
  restored = (masked if filler is None else  # a dry run: the decisions and holes only
              paste.restore_faces(masked, to_restore, face_holes,
                                  [paste.Generator(filler, size), *more_generators],
                                  detail=detail))
  back = lambda image: _turn(image, (360 - rotation) % 360)
  return Restoration(back(restored), back(masked), back(union), reports, rotation)


def _face_region(face: finders.Face, shape) -> np.ndarray:
  """{0, 1} map of the face's crop square (where a user's hole belongs to this face)."""
  cx, cy, side = align.crop_square(face.landmarks, shape)
  region = np.zeros(shape[:2], np.uint8)
  y0, y1 = max(0, int(cy - side / 2)), int(cy + side / 2) + 1
  x0, x1 = max(0, int(cx - side / 2)), int(cx + side / 2) + 1
  region[y0:y1, x0:x1] = 1
  return region


CONFIDENT_UPRIGHT = 0.95  # below this (5 % of upright faces of half A), all four turns are tried
MIN_UPRIGHT = 0.5         # a turn must reach this, else the photo is not set upright
# The photo as it is, when no turn looks more upright, needs less: photos come upright far more
# often than turned. Chosen on the train parts of realmask and realmask_more seen four ways
# (as they are and turned by 90, 180, 270 degrees): from 0.5 to 0.3, 7 more of 1,228 upright
# photos restored, 3 more of 3,684 turned ones restored the wrong way up; lower gains nothing.
MIN_UPRIGHT_AS_IS = 0.3
# A turn is taken over the photo as it is (when faces were found in it) only if it looks more
# upright by this much: on a face upside down the detector often boxes the eyes and forehead
# alone, which can look upright. Chosen on the same train parts: upright photos repainted after
# a turn (the wrong way up) 3 -> 0 of 1,228, turned ones 18 -> 23 of 3,684; 0.3 loses 15
# turned photos more.
TURN_MARGIN = 0.2


def _find_upright(photo: np.ndarray, finder, checker) -> tuple[int, list[finders.Face], bool]:
  """(rotation in degrees, the faces found in the photo turned by it, whether they are
  upright). The photo as it is when `checker` is sure its faces are upright; else each of the
  four turns, and the one whose faces look most upright (a turn must beat faces found in the
  photo as it is by TURN_MARGIN): upright when that reaches MIN_UPRIGHT (MIN_UPRIGHT_AS_IS for
  the photo as it is).

  Raises:
    finders.NoFaceError: no face in any orientation that was tried.
  """
  found = finder.find_any_size(photo)
  if checker is None:
    if not found:
      raise finders.NoFaceError("no face found")
    return 0, found, True
  best = (0, found, checker.upright_probability(photo, found))
  if found and best[2] >= CONFIDENT_UPRIGHT:
    return best
  for rotation in ROTATIONS[1:]:
    turned = _turn(photo, rotation)
    faces_there = finder.find_unaided(turned)
    p = checker.upright_probability(turned, faces_there)
    margin = TURN_MARGIN if best[0] == 0 and best[1] else 0.0
    if faces_there and p > best[2] + margin:
      best = (rotation, faces_there, p)
  rotation, found, p = best
  if not found:
    raise finders.NoFaceError("no face found (also turned by 90, 180 and 270 degrees)")
  return rotation, found, p >= (MIN_UPRIGHT if rotation else MIN_UPRIGHT_AS_IS)
