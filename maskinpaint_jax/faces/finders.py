"""Face detection and 68 landmarks: the `FaceFinder` interface, dlib's HOG finder, and the checks
a face must pass before it can be restored.

`FaceFinder` is the one interface; `faces.make_finder("hog" | "mesh")` picks an implementation.
"hog" is what the paper's "Face_recognition" library does (section III.A): dlib's HOG
frontal-face detector and its 68-point shape predictor, with the model file that
`face_recognition_models` ships. We call dlib directly so that the box can be scaled between a
downscaled detection copy and the full-resolution photo. The dataset build uses it (Algorithm 1
was written for these landmarks, and CelebA faces are unmasked). "mesh" (mesh.py, MediaPipe)
also finds masked faces: `maskinpaint_jax.tools.inpaint` uses it for users' photos.

Landmarks use dlib's 0-based numbering (0-16 jaw from the image-left side, 17-26 brows, 27-30
nose bridge, 31-35 nose bottom, 36-47 eyes, 48-67 mouth). The paper's point numbers are these
same 0-based indices: its "point 8 of the chin" is the chin tip only in 0-based numbering, and
its "point 33 / point 8 vertical" test is symmetric only for 33 = nose-bottom centre.
"""

from __future__ import annotations

import abc
import dataclasses
import math

import cv2
import numpy as np

# A face box in face_recognition's (top, right, bottom, left) order, in pixels.
Box = tuple[int, int, int, int]

# On CelebA's aligned 178x218 photos the face sits at this box; used as a fallback detection.
CELEBA_ALIGNED_SIZE = (178, 218)  # (width, height)
CELEBA_ALIGNED_BOX: Box = (86, 135, 176, 46)

NO_FACE_POLICIES = ("skip", "fixed_box")


class NoFaceError(Exception):
  """No usable face in a photo; str(e) is the reason."""


@dataclasses.dataclass(frozen=True)
class Face:
  box: Box                 # detector box in source pixels (top, right, bottom, left)
  landmarks: np.ndarray    # (68, 2) float32 (x, y) in source pixels, dlib 0-based order
  source: str              # "hog", "mesh" or "fixed_box"

  @property
  def size(self) -> int:
    top, right, bottom, left = self.box
    return min(bottom - top, right - left)


def _box_to_rect(box: Box):
  import dlib  # pylint: disable=g-import-not-at-top
  top, right, bottom, left = box
  return dlib.rectangle(int(left), int(top), int(right), int(bottom))


def fixed_box(image_shape) -> Box:
  """The aligned-CelebA face box scaled to a photo of this shape."""
  h, w = image_shape[:2]
  sx, sy = w / CELEBA_ALIGNED_SIZE[0], h / CELEBA_ALIGNED_SIZE[1]
  top, right, bottom, left = CELEBA_ALIGNED_BOX
  return (round(top * sy), round(right * sx), round(bottom * sy), round(left * sx))


class FaceFinder(abc.ABC):
  """Finds faces with dlib's 68 landmarks in an RGB photo. Two implementations:
  `HogFaceFinder` (dlib HOG, the paper's, used by the dataset build) and
  `mesh_faces.MeshFaceFinder` (MediaPipe, finds masked faces; used for users' photos).
  `make_finder(name)` builds either.
  """

  name: str
  min_face_size: int

  @abc.abstractmethod
  def find_any_size(self, image: np.ndarray) -> list[Face]:
    """Every face found, whatever its size, largest first."""

  @abc.abstractmethod
  def face_in_box(self, image: np.ndarray, box: Box) -> Face:
    """Landmarks for a face assumed to fill `box` (the no_face="fixed_box" fallback)."""

  def find_unaided(self, image: np.ndarray) -> list[Face]:
    """The faces the finder confirms on its own checks alone, largest first (for a finder that
    can take a second opinion, `mesh.MeshFaceFinder.vouch`, without it): what `faces.restore`
    looks for in a photo turned by 90, 180 or 270 degrees, where a second opinion would find
    parts of faces seen sideways."""
    return self.find_any_size(image)

  def find_all(self, image: np.ndarray) -> list[Face]:
    """Every face at least `min_face_size` px, largest first."""
    return [f for f in self.find_any_size(image) if f.size >= self.min_face_size]

  def find_one(self, image: np.ndarray, no_face: str = "skip") -> Face:
    """The largest face. With no_face="fixed_box", a photo without a detection falls back to
    the aligned-CelebA face box scaled to the photo's size (for aligned CelebA only)."""
    if no_face not in NO_FACE_POLICIES:
      raise ValueError(f"no_face must be one of {NO_FACE_POLICIES}, got {no_face!r}")
    found = self.find_any_size(image)
    if found:
      if found[0].size < self.min_face_size:
        raise NoFaceError(f"face too small ({found[0].size} px < min_face_size "
                          f"{self.min_face_size})")
      return found[0]
    if no_face == "fixed_box":
      return self.face_in_box(image, fixed_box(image.shape))
    raise NoFaceError("no face found")


class HogFaceFinder(FaceFinder):
  """dlib HOG detector + 68-point predictor. Holds the loaded models, so one per process."""

  name = "hog"

  def __init__(self, min_face_size: int = 40, detect_max_side: int = 800):
    import dlib  # pylint: disable=g-import-not-at-top
    import face_recognition_models  # pylint: disable=g-import-not-at-top
    self.min_face_size = min_face_size
    self.detect_max_side = detect_max_side
    self._detector = dlib.get_frontal_face_detector()
    self._predictor = dlib.shape_predictor(
        face_recognition_models.pose_predictor_model_location())

  def detect(self, image: np.ndarray) -> list[Box]:
    """All face boxes in an RGB photo, largest first, in source pixels (any size)."""
    h, w = image.shape[:2]
    scale = min(1.0, self.detect_max_side / max(h, w))
    small = image if scale == 1.0 else cv2.resize(
        image, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA)
    # HOG's window is 80 px: try the image as is, then 2x upsampled for smaller faces.
    rects = self._detector(small, 0)
    if len(rects) == 0:
      rects = self._detector(small, 1)
    boxes = []
    for r in rects:
      top, bottom = max(r.top(), 0) / scale, min(r.bottom(), small.shape[0]) / scale
      left, right = max(r.left(), 0) / scale, min(r.right(), small.shape[1]) / scale
      boxes.append((round(top), round(right), round(bottom), round(left)))
    return sorted(boxes, key=lambda b: -(b[2] - b[0]) * (b[1] - b[3]))

  def landmarks(self, image: np.ndarray, box: Box) -> np.ndarray:
    shape = self._predictor(image, _box_to_rect(box))
    return np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float32)

  def find_any_size(self, image: np.ndarray) -> list[Face]:
    return [Face(b, self.landmarks(image, b), "hog") for b in self.detect(image)]

  def face_in_box(self, image: np.ndarray, box: Box) -> Face:
    return Face(box, self.landmarks(image, box), "fixed_box")


# --- faces the restoration cannot use ---------------------------------------------------------
# Yaw from where the nose tip (30) sits between the outer eye corners (36, 45) along the eye
# line: with the corners E to either side of the face's midline and the tip D in front of them,
# turning the head by yaw moves the tip's relative position r from 0.5 to 0.5 + (D/2E) tan(yaw).
# E/D = 1.07 is the median over 60 CelebA faces of MediaPipe's 3-D face mesh.
EYE_HALF_WIDTH_OVER_NOSE_DEPTH = 1.07
MAX_YAW_DEGREES = 60.0       # beyond this a face counts as in profile
MAX_OUTSIDE_FRACTION = 0.25  # of the landmarks' box outside the photo: cut by the frame...
MAX_MASK_OUTSIDE = 0.10      # ...unless at most this share of the lower face (the mask) is
# Where a mask sits: the jaw below the cheekbones, the nose below its bridge, the mouth.
LOWER_FACE = np.r_[2:15, 29:36, 48:68]


def yaw_degrees(landmarks: np.ndarray) -> float:
  """Head turn estimated from the 68 landmarks: 0 frontal, > 0 nose towards the image's right."""
  lm = np.asarray(landmarks, np.float64)
  axis = lm[45] - lm[36]
  span = float(axis @ axis)
  if span <= 0:
    return 90.0
  r = float((lm[30] - lm[36]) @ axis) / span
  return math.degrees(math.atan((2 * r - 1) * EYE_HALF_WIDTH_OVER_NOSE_DEPTH))


def outside_fraction(landmarks: np.ndarray, image_shape) -> float:
  """Share of the landmarks' bounding box that lies outside the photo."""
  h, w = image_shape[:2]
  (x0, y0), (x1, y1) = np.min(landmarks, axis=0), np.max(landmarks, axis=0)
  area = max(float((x1 - x0) * (y1 - y0)), 1e-6)
  inside = max(0.0, min(x1, w) - max(x0, 0)) * max(0.0, min(y1, h) - max(y0, 0))
  return 1.0 - inside / area


def face_problem(face: Face, image_shape, min_face_size: int, *,
                 max_yaw: float = MAX_YAW_DEGREES,
                 max_outside: float = MAX_OUTSIDE_FRACTION) -> str | None:
  """Why this face cannot be restored (too small, cut by the frame where its mask is, in profile
  beyond `max_yaw` degrees), or None. A face cut by the frame above its nose (a tight crop of a
  masked face) is restored when its mask is inside the photo."""
  if face.size < min_face_size:
    return f"too small ({face.size} px < min_face_size {min_face_size})"
  outside = outside_fraction(face.landmarks, image_shape)
  mask_outside = outside_fraction(face.landmarks[LOWER_FACE], image_shape)
  if outside > max_outside and mask_outside > MAX_MASK_OUTSIDE:
    return (f"cut by the frame ({100 * outside:.0f} % of the face and {100 * mask_outside:.0f} % "
            "of where its mask is outside the photo)")
  yaw = yaw_degrees(face.landmarks)
  if abs(yaw) > max_yaw:
    return f"in profile (turned about {abs(yaw):.0f} degrees, more than {max_yaw:.0f})"
  return None
