"""Classical inpainting baselines on the same examples: OpenCV's Telea and Navier-Stokes.

Both fill only the hole (cv2.inpaint with the hole map), radius 3 px, on 8-bit RGB.
"""

from __future__ import annotations

import cv2
import numpy as np

INPAINT_RADIUS = 3


def _inpaint(images: np.ndarray, holes: np.ndarray, flag: int) -> np.ndarray:
  out = np.empty_like(images)
  for i, (img, hole) in enumerate(zip(images, holes)):
    out[i] = cv2.inpaint(np.ascontiguousarray(img), np.ascontiguousarray(
        hole.reshape(hole.shape[:2]).astype(np.uint8)), INPAINT_RADIUS, flag)
  return out


def telea(images: np.ndarray, holes: np.ndarray) -> np.ndarray:
  """(N, H, W, 3) uint8 masked images, (N, H, W[, 1]) holes in {0, 1} -> uint8."""
  return _inpaint(images, holes, cv2.INPAINT_TELEA)


def navier_stokes(images: np.ndarray, holes: np.ndarray) -> np.ndarray:
  return _inpaint(images, holes, cv2.INPAINT_NS)
