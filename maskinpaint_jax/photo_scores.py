r"""Scores of a restored photo against its original, at the photo's own resolution.

What a user sees: a real unmasked photo gets a synthetic mask (Algorithm 1), the whole inpaint
path restores it, and the result is compared with the photo as it was (`tools/bench_wild`).

- `hole_psnr`: PSNR (dB) over the hole's pixels only.
- `face_box`: the square around a face's 68 landmarks that the LPIPS and SSIM columns compare,
  resized to 128 px (`at_side`) or kept at its own size rounded to 32 px (so that a few
  compiled LPIPS shapes serve every face).
- `detail_ratio`: how much fine detail the hole holds, relative to the same face's eyes and
  brows. Band-pass energy is the RMS of a difference of Gaussians (sigma 0.7 and 2.0 px: the
  detail of skin, lips and stubble at a photo's own scale) of the grey image; the ratio is that
  inside the hole over that in the band just above it (the hole's columns, as high as half the
  hole). A smooth fill scores near 0; a real face about 0.85; noise can score high, so the ratio
  is read next to LPIPS, never alone.
"""

from __future__ import annotations

import cv2
import numpy as np

DOG_SIGMAS = (0.7, 2.0)  # px: the band-pass of `detail_ratio`
OWN_SIZE_STEP = 32       # px: the face box "at its own size" is rounded to a multiple of this


def psnr(a: np.ndarray, b: np.ndarray) -> float:
  """PSNR (dB, peak 255) of two uint8 arrays of one shape (numpy, one value)."""
  d = a.astype(np.float64) - b.astype(np.float64)
  return float(10 * np.log10(255.0 ** 2 / max(np.mean(d ** 2), 1e-10)))


def hole_psnr(original: np.ndarray, restored: np.ndarray, hole: np.ndarray) -> float:
  """PSNR (dB, peak 255) of uint8 (H, W, 3) images over the pixels where hole (H, W) is 1."""
  sel = hole.astype(bool)
  if not sel.any():
    raise ValueError("the hole is empty")
  return psnr(original[sel], restored[sel])


def band_pass(image: np.ndarray, sigmas=DOG_SIGMAS) -> np.ndarray:
  """Difference of Gaussians of an (H, W, 3) uint8 RGB or (H, W) image's grey levels (float64)."""
  grey = image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
  grey = grey.astype(np.float64)
  blur = lambda s: cv2.GaussianBlur(grey, (0, 0), s, borderType=cv2.BORDER_REFLECT)
  return blur(sigmas[0]) - blur(sigmas[1])


def band_above(hole: np.ndarray) -> np.ndarray:
  """{0, 1} (H, W): the hole's columns, in the rows just above its top, half the hole's height
  high (the eyes and brows above a face mask), minus the hole itself.

  Raises:
    ValueError: an empty hole, or one at the top edge (no band above it).
  """
  rows, cols = np.nonzero(hole)
  if not len(rows):
    raise ValueError("the hole is empty")
  top, bottom, left, right = rows.min(), rows.max() + 1, cols.min(), cols.max() + 1
  height = max(1, (bottom - top) // 2)
  band = np.zeros(hole.shape, np.uint8)
  band[max(0, top - height):top, left:right] = 1
  band &= (hole == 0).astype(np.uint8)
  if not band.any():
    raise ValueError("the hole touches the photo's top edge: no band above it")
  return band


def detail_ratio(image: np.ndarray, hole: np.ndarray, sigmas=DOG_SIGMAS) -> float:
  """Band-pass RMS inside `hole` over that in `band_above(hole)`, of the same image (see top).

  image: (H, W, 3) uint8 RGB or (H, W) grey; hole: (H, W) {0, 1}. The Gaussians see the whole
  image, so the rim of the hole counts the step across it, as a viewer does.
  """
  dog = band_pass(image, sigmas)
  inside = np.sqrt(np.mean(dog[hole.astype(bool)] ** 2))
  above = np.sqrt(np.mean(dog[band_above(hole).astype(bool)] ** 2))
  return float(inside / max(above, 1e-6))


def face_box(landmarks: np.ndarray, shape_hw, scale: float = 1.2) -> tuple[int, int, int, int]:
  """(top, bottom, left, right) of the square `scale` times the landmarks' extent, around their
  centre, clipped to the photo."""
  lo, hi = landmarks.min(0), landmarks.max(0)
  centre, side = (lo + hi) / 2, scale * float(max(hi - lo))
  x0, y0 = np.floor(centre - side / 2).astype(int)
  x1, y1 = np.ceil(centre + side / 2).astype(int)
  h, w = shape_hw
  return max(0, y0), min(h, y1), max(0, x0), min(w, x1)


def crop(image: np.ndarray, box) -> np.ndarray:
  top, bottom, left, right = box
  return image[top:bottom, left:right]


def at_side(image: np.ndarray, side: int) -> np.ndarray:
  """`image` resized to side x side (area when shrinking, cubic when enlarging)."""
  shrink = side < max(image.shape[:2])
  return cv2.resize(image, (side, side),
                    interpolation=cv2.INTER_AREA if shrink else cv2.INTER_CUBIC)


def own_side(image: np.ndarray) -> int:
  """The face box's own side rounded to OWN_SIZE_STEP (at least 64 px, LPIPS-AlexNet's floor)."""
  side = max(image.shape[:2])
  return max(64, int(round(side / OWN_SIZE_STEP)) * OWN_SIZE_STEP)


def size_bucket(crop_side: int) -> str:
  """The face-size bucket of a face whose crop square is `crop_side` px in the photo."""
  if crop_side < 128:
    return "crop < 128 px"
  return "crop 128-256 px" if crop_side <= 256 else "crop > 256 px"


BUCKETS = ("crop < 128 px", "crop 128-256 px", "crop > 256 px")
