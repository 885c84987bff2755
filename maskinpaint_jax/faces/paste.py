"""Pasting restored faces back into the photo: the hole in the face crop, the generator's
output matched to the photo's colours around the hole, its rim faded into the photo's own
continuation, warped back to the photo, and a feathered blend inside the hole only; and
`edge_step`, which measures what is left of a seam at the hole's edge."""

from __future__ import annotations

import dataclasses
from typing import Callable, Sequence

import cv2
import numpy as np

from maskinpaint_jax.faces import align


def feathered_alpha(region: np.ndarray, face_size: float) -> np.ndarray:
  """A soft-edged [0, 1] alpha from a binary region: grown a little, then blurred, so the
  pasted restoration fades into the photo instead of showing a seam."""
  grow = max(1, int(round(face_size * 0.03)))
  kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * grow + 1, 2 * grow + 1))
  alpha = cv2.dilate(region.astype(np.uint8), kernel).astype(np.float32)
  blur = 2 * grow + 1
  return np.clip(cv2.GaussianBlur(alpha, (blur, blur), 0), 0.0, 1.0)


def hole_in_crop(hole: np.ndarray, matrix: np.ndarray, size: int) -> np.ndarray:
  """The {0, 1} hole of a face crop: any crop pixel partly in the hole counts as hole (a
  non-blind model must not see mask pixels). warp_crop area-averages a large shrink, so a thin
  strip of hole still shows; a plain warpAffine samples (it has no area mode) and dropped 61 of
  67 two-pixel strips at a 31x shrink."""
  return (align.warp_crop(hole.astype(np.float32), matrix, size) > 1e-3).astype(np.uint8)


RING = 0.08  # the ring around the hole that colours are matched on, as a share of the crop side


def match_colours(raw: np.ndarray, crop: np.ndarray, hole: np.ndarray) -> np.ndarray:
  """The generator's output `raw` with per-channel gain and offset that make it agree with the
  photo's crop on a ring just outside the hole, where both show the same face.

  The generator learnt the brightness of its training photos: on a dark, bright or backlit photo
  its output is off by a colour cast that shows as a seam at the hole's edge. A least-squares
  gain (kept within [0.5, 2]) and offset per channel, fitted where the photo is real, remove it.
  raw, crop: (S, S, 3) uint8; hole: (S, S) {0, 1}. Returns (S, S, 3) uint8.
  """
  size = hole.shape[0]
  r = max(1, round(RING * size))
  kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1))
  ring = (cv2.dilate(hole.astype(np.uint8), kernel) > 0) & (hole == 0)
  if ring.sum() < 16:
    return raw
  x, y = raw[ring].astype(np.float64), crop[ring].astype(np.float64)
  gain = np.clip(y.std(0) / np.maximum(x.std(0), 1.0), 0.5, 2.0)
  gain = np.where(x.std(0) > 2.0, gain, 1.0)  # a flat ring: offset only
  offset = y.mean(0) - gain * x.mean(0)
  return np.clip(np.round(raw * gain + offset), 0, 255).astype(np.uint8)


# A photo is black-and-white or tinted (sepia, cyanotype) when its chroma is a function of its
# luma: the RMS residual of a quadratic fit of Cr and Cb on Y, over the face crop outside the
# hole, at most TINT_RESIDUAL levels. Chosen on nomask/ half A (photo_sets), face crops at 128
# px: grey versions 0.0 and sepia versions (JPEG q85) at most 2.49; of the 111 colour photos, 7
# at most 2.5 and all of them nearly grey already (mean |chroma| under 5 levels), the median 4.5.
TINT_RESIDUAL = 2.5


def keep_tint(raw: np.ndarray, crop: np.ndarray, hole: np.ndarray) -> np.ndarray:
  """The generator's output `raw` with the photo's own colour where the photo has none of its
  own: on a black-and-white or tinted photo (see TINT_RESIDUAL) each output pixel's chroma is
  the one the photo has at that luma (a grey photo stays grey, a sepia one keeps its tint); on a
  colour photo `raw` is returned as it is. raw, crop: (S, S, 3) uint8 RGB; hole: (S, S) {0, 1}.
  """
  visible = hole == 0
  if visible.sum() < 64:
    return raw
  powers = lambda luma: np.stack([(luma / 255) ** 2, luma / 255, np.ones_like(luma)], axis=-1)
  ycc = cv2.cvtColor(crop, cv2.COLOR_RGB2YCrCb)[visible].astype(np.float64)
  coef, *_ = np.linalg.lstsq(powers(ycc[:, 0]), ycc[:, 1:], rcond=None)
  residual = np.sqrt(np.mean((powers(ycc[:, 0]) @ coef - ycc[:, 1:]) ** 2))
  if residual > TINT_RESIDUAL:
    return raw
  out = cv2.cvtColor(raw, cv2.COLOR_RGB2YCrCb).astype(np.float64)
  out[..., 1:] = powers(out[..., 0]) @ coef
  return cv2.cvtColor(np.clip(np.round(out), 0, 255).astype(np.uint8), cv2.COLOR_YCrCb2RGB)


# Faces enlarged less than this from the generator's side keep the generator's own detail.
DETAIL_MIN_SCALE = 1.5


def photo_detail(photo: np.ndarray, hole: np.ndarray, scale: float,
                 rng: np.random.Generator) -> np.ndarray:
  """Fine detail for a hole, taken from the same face: (H, W) float32 grey-level offsets, 0
  outside the hole.

  A generator of side S restoring a face whose crop is `scale` times S in the photo draws
  nothing finer than about `scale` photo pixels. The photo's own detail at those scales
  (grey levels minus a Gaussian blur of sigma scale / 2: skin grain, stubble, the camera's
  noise and sharpening) is read in the band just above the hole (the same face, between the
  eyes and the mask) and laid over the hole as randomly chosen, randomly mirrored tiles of side
  2 * scale (at least 8 px). photo: (H, W, 3) uint8; hole: (H, W) {0, 1}.
  """
  grey = cv2.cvtColor(photo, cv2.COLOR_RGB2GRAY).astype(np.float32)
  detail = grey - cv2.GaussianBlur(grey, (0, 0), max(0.5, scale / 2))
  rows, cols = np.nonzero(hole)
  out = np.zeros(hole.shape, np.float32)
  if not len(rows):
    return out
  top, bottom, left, right = rows.min(), rows.max() + 1, cols.min(), cols.max() + 1
  tile = max(8, int(round(2 * scale)))
  src_top = max(0, top - (bottom - top) // 2)
  source = detail[src_top:top, left:right]
  if source.shape[0] < tile or source.shape[1] < tile:
    return out
  for y in range(top, bottom, tile):
    for x in range(left, right, tile):
      sy = int(rng.integers(0, source.shape[0] - tile + 1))
      sx = int(rng.integers(0, source.shape[1] - tile + 1))
      patch = source[sy:sy + tile, sx:sx + tile]
      if rng.random() < 0.5:
        patch = patch[:, ::-1]
      h, w = min(tile, bottom - y), min(tile, right - x)
      out[y:y + h, x:x + w] = patch[:h, :w]
  return out * (hole > 0)


RIM = 3.0  # px of a 64 px crop over which the fill fades from Telea's to the generator's output


def soften_rim(raw: np.ndarray, crop: np.ndarray, hole: np.ndarray,
               rim: float = RIM) -> np.ndarray:
  """The generator's output with the hole's inner rim faded into OpenCV's Telea fill of the
  hole (`cv2.inpaint`), which continues the photo's own pixels across the edge.

  On real photos the generator, trained on synthetic masks, can draw a light or coloured band
  just inside the hole's edge; Telea's fill equals the photo at the edge by construction. A
  hole pixel d px from the nearest photo pixel (`cv2.distanceTransform`) takes
  (d - 1) / rim of the generator's output, capped at 1: the rim itself is Telea's, and from
  rim + 1 px in the output is the generator's alone. A hole that runs into the crop's border
  (a face cut by the frame) has no photo there, and keeps the generator's output.
  raw, crop: (S, S, 3) uint8; hole: (S, S) {0, 1}; rim in crop pixels (0: `raw` as is).
  Returns (S, S, 3) uint8, equal to `raw` outside the hole.
  """
  if rim <= 0 or not hole.any():
    return raw
  hole = hole.astype(np.uint8)
  telea = cv2.inpaint(crop, hole, 3, cv2.INPAINT_TELEA).astype(np.float32)
  depth = cv2.distanceTransform(hole, cv2.DIST_L2, 3)
  weight = np.clip((depth - 1.0) / rim, 0.0, 1.0)[..., None]
  blended = weight * raw.astype(np.float32) + (1.0 - weight) * telea
  return np.where(hole[..., None] > 0, np.clip(np.round(blended), 0, 255),
                  raw).astype(np.uint8)


def edge_step(image: np.ndarray, hole: np.ndarray, width: int) -> float:
  """How much the colour jumps across the hole's edge: for each pixel on the edge, the mean
  colour of the band `width` px inside the hole minus that of the band `width` px outside it,
  both over a (4 width + 1)-px square around the pixel; the largest channel's absolute
  difference, averaged over the edge. A seam makes it large; a pasted face that continues its
  surroundings leaves only the photo's own contrast there.
  image: (H, W, 3) uint8; hole: (H, W) {0, 1}. Returns grey levels (0-255); nan without an
  edge inside the photo.
  """
  hole = hole.astype(np.uint8)
  k = np.ones((2 * width + 1, 2 * width + 1), np.uint8)
  inside = hole & (1 - cv2.erode(hole, k, borderValue=1))
  outside = cv2.dilate(hole, k, borderValue=0) & (1 - hole)
  edge = (hole & (1 - cv2.erode(hole, np.ones((3, 3), np.uint8), borderValue=1))) > 0
  window = (4 * width + 1, 4 * width + 1)

  def band_mean(band):
    weight = cv2.boxFilter(band.astype(np.float32), -1, window, normalize=False)
    total = cv2.boxFilter(image.astype(np.float32) * band[..., None], -1, window,
                          normalize=False)
    return total / np.maximum(weight, 1e-6)[..., None], weight

  mean_in, w_in = band_mean(inside)
  mean_out, w_out = band_mean(outside)
  edge &= (w_in > 0) & (w_out > 0)
  if not edge.any():
    return float("nan")
  return float(np.abs(mean_in[edge] - mean_out[edge]).max(-1).mean())


@dataclasses.dataclass(frozen=True)
class Generator:
  """A generator and its input side: `fill(crops uint8 (N, size, size, 3), holes uint8
  (N, size, size, 1) {0, 1}) -> (raw, composite)` uint8 (`inference.make_filler`)."""
  fill: Callable
  size: int


def pick_generator(generators: Sequence[Generator], crop_side: float) -> Generator:
  """The generator for a face whose crop square is `crop_side` photo pixels: the one with the
  largest input side not above it, so that its output is enlarged into the photo and never
  shrunk (a shrunk output throws away the detail it was trained to draw), else the smallest.
  Which side serves which face is measured by `tools/bench_sizes` (docs/benchmarks.md, "Face
  size")."""
  fitting = [g for g in generators if g.size <= crop_side]
  if fitting:
    return max(fitting, key=lambda g: g.size)
  return min(generators, key=lambda g: g.size)


def restore_faces(photo: np.ndarray, found, holes, generators: Sequence[Generator],
                  rim: float = RIM, detail: float = 0.0) -> np.ndarray:
  """Restores each face of `photo` (uint8 RGB) in turn and pastes it back inside its hole.

  `holes`: one full-resolution {0, 1} hole map per face (estimated, or known with --add_mask).
  `generators`: each face goes through `pick_generator`'s, by the side of its crop square.
  `rim`: as `soften_rim`'s, in pixels of a 64 px crop (scaled with the generator's side, so
  that it covers the same share of the face).
  `detail`: how much of the photo's own fine detail (`photo_detail`) is laid over a hole whose
  face the generator enlarges DETAIL_MIN_SCALE times or more (0: none; 1: as strong as above
  the hole).
  """
  out = photo.copy()
  h, w = photo.shape[:2]
  for face, hole in zip(found, holes):
    side = align.crop_square(face.landmarks, photo.shape)[2]
    generator = pick_generator(generators, side)
    size = generator.size
    matrix = align.crop_matrix(face.landmarks, size, photo.shape)
    crop = align.warp_crop(out, matrix, size)
    hole_crop = hole_in_crop(hole, matrix, size)
    raw, _ = generator.fill(crop[None], hole_crop[None, ..., None])
    raw = keep_tint(match_colours(np.asarray(raw[0]), crop, hole_crop), crop, hole_crop)
    raw = soften_rim(raw, crop, hole_crop, rim * size / 64)
    # The crop's composite: the generator's pixels in the hole only. Its output outside the hole
    # is never shown in training's composite (the perceptual term sees the composite), so it
    # may carry coloured fringes; the feathered edge and the cubic upscale, which both reach a
    # little outside the hole, must read the photo's own pixels there.
    composite = np.where(hole_crop[..., None] > 0, raw, crop)
    # Back to photo coordinates: each photo pixel reads the crop where the matrix sends it.
    raw_up = cv2.warpAffine(composite, matrix, (w, h),
                            flags=cv2.INTER_CUBIC | cv2.WARP_INVERSE_MAP,
                            borderMode=cv2.BORDER_REPLICATE)
    alpha = feathered_alpha(hole, side / align.CROP_SCALE)
    alpha[hole > 0] = 1.0  # exactly: no trace of the mask's pixels (a blur sums to 1 - 6e-8)
    blended = out * (1 - alpha[..., None]) + raw_up * alpha[..., None]
    scale = side / size
    if detail and scale >= DETAIL_MIN_SCALE:
      # Seeded by the face's place: the same photo gets the same detail on every run.
      rng = np.random.default_rng([abs(int(v)) for v in face.box])
      blended += detail * photo_detail(out, hole, scale, rng)[..., None]
    out = np.clip(np.round(blended), 0, 255).astype(np.uint8)
  return out


def hole_overlay(photo: np.ndarray, hole: np.ndarray) -> np.ndarray:
  """The photo with the hole tinted red and its outline drawn: what will be redrawn."""
  tint = photo.astype(np.float32)
  tint[hole > 0] = 0.5 * tint[hole > 0] + 0.5 * np.array([255.0, 0.0, 0.0])
  out = np.clip(tint, 0, 255).astype(np.uint8)
  contours, _ = cv2.findContours(hole.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
  cv2.drawContours(out, contours, -1, (255, 0, 0), max(1, max(photo.shape[:2]) // 300))
  return out
