"""Face alignment: the face-centred square crop of the training data and of users' photos.

Training crops (data_prep.builder) and the crops restored in users' photos (faces.paste) come from
the same `crop_matrix`, so what the model sees at inference matches what it was trained on.
"""

from __future__ import annotations

import cv2
import numpy as np

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
