"""Face detection, 68 landmarks and the face-centred square crop.

Detection and landmarks are what the paper's "Face_recognition" library does (section III.A):
dlib's HOG frontal-face detector and its 68-point shape predictor, with the model file that
`face_recognition_models` ships. We call dlib directly so that the box can be scaled between a
downscaled detection copy and the full-resolution photo.

Landmarks use dlib's 0-based numbering (0-16 jaw from the image-left side, 17-26 brows, 27-30
nose bridge, 31-35 nose bottom, 36-47 eyes, 48-67 mouth). The paper's point numbers are these
same 0-based indices: its "point 8 of the chin" is the chin tip only in 0-based numbering, and
its "point 33 / point 8 vertical" test is symmetric only for 33 = nose-bottom centre.
"""

from __future__ import annotations

import dataclasses

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
  source: str              # "hog" or "fixed_box"

  @property
  def size(self) -> int:
    top, right, bottom, left = self.box
    return min(bottom - top, right - left)


def _box_to_rect(box: Box):
  import dlib  # pylint: disable=g-import-not-at-top
  top, right, bottom, left = box
  return dlib.rectangle(int(left), int(top), int(right), int(bottom))


class FaceFinder:
  """dlib HOG detector + 68-point predictor. Holds the loaded models, so one per process."""

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

  def find_all(self, image: np.ndarray) -> list[Face]:
    """Every face at least `min_face_size` px, largest first."""
    return [Face(b, self.landmarks(image, b), "hog") for b in self.detect(image)
            if min(b[2] - b[0], b[1] - b[3]) >= self.min_face_size]

  def find_one(self, image: np.ndarray, no_face: str = "skip") -> Face:
    """The largest face. With no_face="fixed_box", a photo without a detection falls back to
    the aligned-CelebA face box scaled to the photo's size (for aligned CelebA only)."""
    if no_face not in NO_FACE_POLICIES:
      raise ValueError(f"no_face must be one of {NO_FACE_POLICIES}, got {no_face!r}")
    boxes = self.detect(image)
    if boxes:
      box = boxes[0]
      size = min(box[2] - box[0], box[1] - box[3])
      if size < self.min_face_size:
        raise NoFaceError(f"face too small ({size} px < min_face_size {self.min_face_size})")
      return Face(box, self.landmarks(image, box), "hog")
    if no_face == "fixed_box":
      h, w = image.shape[:2]
      sx, sy = w / CELEBA_ALIGNED_SIZE[0], h / CELEBA_ALIGNED_SIZE[1]
      top, right, bottom, left = CELEBA_ALIGNED_BOX
      box = (round(top * sy), round(right * sx), round(bottom * sy), round(left * sx))
      return Face(box, self.landmarks(image, box), "fixed_box")
    raise NoFaceError("no face found")


# --- the face-centred square crop -------------------------------------------------------------
# The square's centre is the centre of the landmarks' bounding box (between eyes, nose and
# mouth), raised by CROP_RAISE of the side so forehead and chin both fit; its side is CROP_SCALE
# times the larger side of that box. On aligned CelebA this is about the 178x178 crop common in
# the literature. When the photo is large enough, the square is shifted (never shrunk) to stay
# inside it rather than invent border pixels; the face then stays within a few pixels of the
# centre. No rotation: the paper's masks follow head tilt, so tilt stays in the data.
CROP_SCALE = 1.8
CROP_RAISE = 0.05


def crop_square(landmarks: np.ndarray, image_shape=None) -> tuple[float, float, float]:
  """(centre x, centre y, side) of the face-centred square in source pixels."""
  lo, hi = landmarks.min(axis=0), landmarks.max(axis=0)
  side = CROP_SCALE * float(max(hi - lo))
  cx, cy = (lo + hi) / 2.0
  cy = cy - CROP_RAISE * side
  if image_shape is not None:
    h, w = image_shape[:2]
    if side <= w:
      cx = min(max(cx, side / 2 - 0.5), w - 0.5 - side / 2)
    if side <= h:
      cy = min(max(cy, side / 2 - 0.5), h - 0.5 - side / 2)
  return float(cx), float(cy), side


def crop_matrix(landmarks: np.ndarray, out_size: int, image_shape=None) -> np.ndarray:
  """2x3 affine (scale + shift) mapping source pixels to the out_size x out_size crop."""
  cx, cy, side = crop_square(landmarks, image_shape)
  s = out_size / side
  # OpenCV puts pixel centres at integers, so a pixel spans [i - 0.5, i + 0.5]: the square
  # [cx - side/2, cx + side/2] maps exactly onto the crop's extent [-0.5, out_size - 0.5].
  t = out_size / 2.0 - 0.5
  return np.array([[s, 0.0, t - s * cx],
                   [0.0, s, t - s * cy]], dtype=np.float64)


def transform_points(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
  points = np.asarray(points, np.float64)
  return (points @ matrix[:, :2].T + matrix[:, 2]).astype(np.float32)


def warp_crop(image: np.ndarray, matrix: np.ndarray, out_size: int) -> np.ndarray:
  """Applies a crop_matrix: area-downscales first when shrinking more than 2x (no aliasing),
  then resamples bilinearly; outside the photo the edge pixels are repeated."""
  scale = float(matrix[0, 0])
  if scale < 0.5:
    factor = 0.5 / scale  # pre-shrink so the remaining warp shrinks by exactly 2x
    h, w = image.shape[:2]
    small = cv2.resize(image, (max(1, round(w / factor)), max(1, round(h / factor))),
                       interpolation=cv2.INTER_AREA)
    fx, fy = small.shape[1] / w, small.shape[0] / h
    # small pixel x_s sits at source x = (x_s + 0.5) / fx - 0.5 (pixel-centre convention).
    to_source = np.array([[1 / fx, 0, 0.5 / fx - 0.5], [0, 1 / fy, 0.5 / fy - 0.5], [0, 0, 1]])
    matrix = matrix @ to_source
    image = small
  return cv2.warpAffine(image, matrix, (out_size, out_size), flags=cv2.INTER_LINEAR,
                        borderMode=cv2.BORDER_REPLICATE)
