"""Stand-ins for the models of the restore path (fast tier): a face finder that finds Obama's
face at known landmarks, a face check that says what it is told, a generator that paints one
grey level. Shared by the tests of faces/restore, batch, restorer and service."""

import dataclasses

import numpy as np

from conftest import REPO
from maskinpaint_jax.faces import finders

# dlib's 68 landmarks of sample_data/photos/obama.jpg (1137 x 910 px).
OBAMA = REPO / "sample_data" / "photos" / "obama.jpg"
LANDMARKS = np.load(REPO / "tests" / "assets" / "obama_landmarks.npy")


def face_from(landmarks) -> finders.Face:
  (x0, y0), (x1, y1) = landmarks.min(0), landmarks.max(0)
  return finders.Face((int(y0), int(x1), int(y1), int(x0)), landmarks, "hog")


class FixedFinder:
  """Finds the face at LANDMARKS when the photo has Obama's shape and is upright (the red
  corner, painted by `marked`, top left); no face otherwise."""

  def find_any_size(self, photo):
    upright = photo.shape[:2] == (1137, 910) and photo[:4, :4, 0].mean() > 200 \
        and photo[:4, :4, 1].mean() < 50
    return [face_from(LANDMARKS)] if upright else []

  find_unaided = find_any_size


@dataclasses.dataclass
class FakeCheck:
  """Says every face is human (or none is) and wears a mask (or none does); upright when the
  red corner is top left."""
  mask: bool = True

  def upright_probability(self, photo, found):
    upright = photo[:4, :4, 0].mean() > 200 and photo[:4, :4, 1].mean() < 50
    return float(upright and bool(found))

  human: bool = True

  def assess(self, photo, face, turned=False):
    from maskinpaint_jax.faces import check  # pylint: disable=g-import-not-at-top
    return check.Assessment(float(self.human), float(self.mask), self.human, self.mask)


def constant_filler(value):
  def fill(crops, holes):
    out = np.full_like(crops, value)
    return out, np.where(holes > 0, out, crops)
  return fill


def marked(photo):
  photo = photo.copy()
  photo[:4, :4] = (255, 0, 0)
  return photo
