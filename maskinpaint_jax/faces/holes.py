"""Where is the mask? Estimating the hole of a real photo, whose true hole is unknown.

1. Prior: Algorithm 1's own geometry (masks.mask_geometry: size, anchor and tilt from the 68
   landmarks) with every outline the renderer knows (masks.SHAPES) fitted to it; their union is
   where a mask of any style would be.
2. Colours and edges: OpenCV's GrabCut, seeded with that prior (a core around the anchor as
   sure mask, the prior as probable mask, a ring around it as probable face/background, the rest
   as sure background), moves the boundary to where the photo's colours change: the mask's real
   edge, including masks larger than the synthetic ones.
3. Clean-up: the component that holds the anchor, its holes filled, then dilated by a small
   margin, because a pixel of mask left outside the hole survives in the composite while a pixel
   of face inside it is merely redrawn.

The result is a {0, 1} map at the photo's resolution (`estimate_hole`). Measured where the
truth is known, on a built dataset's split, by `python -m maskinpaint_jax.tools.bench_holes`
(docs/benchmarks.md, "Hole estimation").
"""

from __future__ import annotations

import functools

import cv2
import numpy as np

from maskinpaint_jax import masks

PRIOR_SHAPES = tuple(masks.SHAPES)
CORE_SCALE = 0.45     # sure-mask core: the prior shrunk about the anchor to this fraction
RING_SCALE = 1.35     # probable-background ring out to this multiple of the prior
MARGIN = 0.03         # final dilation, as a fraction of the mask height
GRABCUT_ITERS = 3
# The face mesh, which never saw masks, puts a masked face's chin (p8) too high: on the
# validation split its Algorithm 1 height is 0.80x the one from dlib's landmarks of the clean
# face (the chin 0.27 inter-ocular distances too high; the jaw's width is right). Stretching
# p29 -> p8 by this factor restores the height; 1.3 gave the best IoU with recall >= 98 % there
# (1.2: 97.5 %, 1.4: lower IoU). Applied to `mesh` landmarks only.
MESH_CHIN_SCALE = 1.3
WORK_SIDE = 160       # GrabCut runs on a crop around the face resized to about this side


@functools.lru_cache(maxsize=None)
def _shape_rgba(name: str) -> np.ndarray:
  alpha = masks.shape_alpha(name)
  return np.concatenate([np.ones(alpha.shape + (3,), np.float32), alpha[..., None]], axis=-1)


def prior(landmarks: np.ndarray, shape_hw: tuple[int, int], scale: float = 1.0) -> np.ndarray:
  """Union (max alpha) of every known outline fitted by Algorithm 1 to `landmarks`, scaled
  by `scale` about the anchor. float32 (H, W) in [0, 1]."""
  geom = masks.mask_geometry(landmarks)
  if scale != 1.0:
    geom = masks.MaskGeometry(geom.height * scale, geom.width_right * scale,
                              geom.width_left * scale, geom.anchor, geom.angle)
  out = np.zeros(shape_hw, np.float32)
  for name in PRIOR_SHAPES:
    fitted, w_r, h = masks.fit_template(_shape_rgba(name), geom)
    out = np.maximum(out, masks.place(fitted, w_r, h, geom, shape_hw)[..., 3])
  return out


def grabcut_seeds(landmarks: np.ndarray, shape_hw) -> np.ndarray:
  """GrabCut's initial labels from the prior: core = sure mask, prior = probable mask, ring =
  probable background, elsewhere sure background."""
  seeds = np.full(shape_hw, cv2.GC_BGD, np.uint8)
  seeds[prior(landmarks, shape_hw, RING_SCALE) > 0.5] = cv2.GC_PR_BGD
  seeds[prior(landmarks, shape_hw) > 0.5] = cv2.GC_PR_FGD
  seeds[prior(landmarks, shape_hw, CORE_SCALE) > 0.5] = cv2.GC_FGD
  return seeds


def _work_crop(landmarks, shape_hw):
  """(y0, y1, x0, x1, factor): a box around the ring, and the resize factor to WORK_SIDE."""
  geom = masks.mask_geometry(landmarks)
  reach = RING_SCALE * max(geom.height, geom.width_left + geom.width_right) * 0.75 + 4
  cx, cy = geom.anchor
  y0, y1 = int(max(0, cy - reach)), int(min(shape_hw[0], cy + reach + 1))
  x0, x1 = int(max(0, cx - reach)), int(min(shape_hw[1], cx + reach + 1))
  factor = min(1.0, WORK_SIDE / max(y1 - y0, x1 - x0, 1))
  return y0, y1, x0, x1, factor


def _largest_at_anchor(fg: np.ndarray, anchor_xy) -> np.ndarray:
  """The connected component of `fg` holding the anchor (else the largest), holes filled."""
  count, labels = cv2.connectedComponents(fg.astype(np.uint8), connectivity=8)
  if count <= 1:
    return fg.astype(np.uint8)
  x, y = (int(round(v)) for v in anchor_xy)
  keep = labels[min(max(y, 0), fg.shape[0] - 1), min(max(x, 0), fg.shape[1] - 1)]
  if keep == 0:
    keep = 1 + int(np.argmax(np.bincount(labels.ravel())[1:]))
  comp = (labels == keep).astype(np.uint8)
  contours, _ = cv2.findContours(comp, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
  filled = np.zeros_like(comp)
  cv2.drawContours(filled, contours, -1, 1, thickness=cv2.FILLED)
  return filled


def correct_mesh_chin(landmarks: np.ndarray) -> np.ndarray:
  """Mesh landmarks of a masked face with the chin moved down (see MESH_CHIN_SCALE)."""
  out = np.array(landmarks, np.float64)
  out[masks.CHIN] = out[masks.NOSE_BRIDGE] + MESH_CHIN_SCALE * (
      out[masks.CHIN] - out[masks.NOSE_BRIDGE])
  return out


def estimate_hole(image: np.ndarray, landmarks: np.ndarray, refine: bool = True,
                  source: str = "hog") -> np.ndarray:
  """The estimated mask region of one face in an RGB uint8 photo: uint8 (H, W) in {0, 1}.

  `landmarks` are the face's 68 points (dlib order) in the photo's pixels, found by `source`
  ("mesh" landmarks get their chin corrected). Without `refine` the prior alone (Algorithm 1's
  geometry, all outlines) is returned.
  """
  landmarks = np.asarray(landmarks, np.float64)
  if source == "mesh":
    landmarks = correct_mesh_chin(landmarks)
  h, w = image.shape[:2]
  geom = masks.mask_geometry(landmarks)
  if not refine:
    hole = (prior(landmarks, (h, w)) > 0.5).astype(np.uint8)
  else:
    y0, y1, x0, x1, f = _work_crop(landmarks, (h, w))
    crop = np.ascontiguousarray(image[y0:y1, x0:x1, :3])
    size = (max(1, round((x1 - x0) * f)), max(1, round((y1 - y0) * f)))
    small = cv2.resize(crop, size, interpolation=cv2.INTER_AREA) if f < 1 else crop
    local = (landmarks - [x0, y0]) * [size[0] / (x1 - x0), size[1] / (y1 - y0)]
    labels = grabcut_seeds(local, small.shape[:2])
    bgd, fgd = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
    cv2.setRNGSeed(0)  # GrabCut's colour models start from k-means on OpenCV's global RNG
    cv2.grabCut(cv2.cvtColor(small, cv2.COLOR_RGB2BGR), labels, None, bgd, fgd, GRABCUT_ITERS,
                cv2.GC_INIT_WITH_MASK)
    fg = np.isin(labels, (cv2.GC_FGD, cv2.GC_PR_FGD)).astype(np.uint8)
    fg = cv2.resize(fg, (x1 - x0, y1 - y0), interpolation=cv2.INTER_NEAREST)
    hole = np.zeros((h, w), np.uint8)
    hole[y0:y1, x0:x1] = fg
    hole = _largest_at_anchor(hole, geom.anchor)
  margin = max(1, int(round(MARGIN * geom.height)))
  kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * margin + 1, 2 * margin + 1))
  return cv2.dilate(hole, kernel)


def iou_recall(estimate: np.ndarray, truth: np.ndarray) -> tuple[float, float]:
  """Intersection over union, and the fraction of the true hole's pixels covered."""
  e, t = estimate.astype(bool), truth.astype(bool)
  inter = np.logical_and(e, t).sum()
  union = np.logical_or(e, t).sum()
  return (float(inter / union) if union else 1.0, float(inter / t.sum()) if t.sum() else 1.0)
