"""Synthetic occlusions: landmark-fitted face masks (paper III.A, Algorithm 1) and rectangles.

Algorithm 1 with dlib's 0-based landmarks (see faces.py for why the paper's numbers are 0-based):

  H   = 1.2 * d(p29, p8)       height                       (step 2)
  W_R = 1.2 * d(p29, p1)       width of the half toward p1  (step 3)  - image left, face's right
  W_L = 1.2 * d(p29, p16)      width of the half toward p16 (step 5)  - image right, face's left
  The template's two halves are resized to (H, W_R) and (H, W_L) and merged     (steps 4, 6, 7).
  Reference point: the midpoint of p29 and p8                                    (step 8).
  Angle: between the line p33 -> p8 and the vertical                             (step 9).

Placement: the merged mask's centre line (where its halves meet) passes through the reference
point, at half the mask's height, and the mask is rotated about that point by the angle. For a
frontal face (W_R = W_L) this is exactly the paper's "centre of the new mask"; for a turned head it
keeps each half over its own side of the face instead of sliding the mask off the nose.

Templates are drawn procedurally (no image assets): surgical, cloth and N95/KN95, with colour,
pattern and shading drawn from a per-image random generator, so a dataset is reproducible from
its seed. The hole map is exactly the set of pixels the mask changes (alpha > 0): outside it the
masked image equals the clean one bit for bit.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import pathlib
import zlib
from typing import Any

import cv2
import numpy as np

NOSE_BRIDGE, CHIN, JAW_TOWARD_P1, JAW_TOWARD_P16, NOSE_BOTTOM = 29, 8, 1, 16, 33
ENLARGE = 1.2  # the paper's 1.2: the mask must cover nose, mouth and chin with some margin

FACE_MASK_STYLES = ("surgical", "cloth", "n95")  # n95 = cup N95 or folded KN95
MASK_TYPES = FACE_MASK_STYLES + ("rect",)

TEMPLATE_HEIGHT, TEMPLATE_WIDTH = 160, 192  # drawing resolution; halves are 96 px wide
SUPERSAMPLE = 2                             # the fitted mask is drawn at 2x, then warped down


def example_rng(seed: int, example_id: str) -> np.random.Generator:
  """The per-image generator: depends only on the dataset seed and the example's id."""
  return np.random.default_rng([seed, zlib.crc32(example_id.encode("utf-8"))])


@dataclasses.dataclass(frozen=True)
class MaskGeometry:
  height: float
  width_right: float   # W_R, the half toward p1 (image left)
  width_left: float    # W_L, the half toward p16 (image right)
  anchor: np.ndarray   # (x, y): midpoint of p29 and p8
  angle: float         # radians; the mask's downward axis is (-sin a, cos a) in image x, y

  @property
  def down_axis(self) -> np.ndarray:
    return np.array([-np.sin(self.angle), np.cos(self.angle)])

  @property
  def right_axis(self) -> np.ndarray:
    """The mask's +x (toward p16) axis in the image."""
    return np.array([np.cos(self.angle), np.sin(self.angle)])


def mask_geometry(landmarks: np.ndarray) -> MaskGeometry:
  """Algorithm 1, steps 2, 3, 5, 8 and 9, from (68, 2) landmarks in image pixels."""
  p = np.asarray(landmarks, np.float64)
  if p.shape != (68, 2):
    raise ValueError(f"expected (68, 2) landmarks, got {p.shape}")
  dist = lambda i, j: float(np.linalg.norm(p[i] - p[j]))
  down = p[CHIN] - p[NOSE_BOTTOM]
  return MaskGeometry(
      height=ENLARGE * dist(NOSE_BRIDGE, CHIN),
      width_right=ENLARGE * dist(NOSE_BRIDGE, JAW_TOWARD_P1),
      width_left=ENLARGE * dist(NOSE_BRIDGE, JAW_TOWARD_P16),
      anchor=(p[NOSE_BRIDGE] + p[CHIN]) / 2.0,
      angle=float(np.arctan2(-down[0], down[1])))


def fit_template(template: np.ndarray, geom: MaskGeometry, factor: int = SUPERSAMPLE):
  """Steps 4, 6, 7: resize the template's halves to (H, W_R) and (H, W_L) and merge them.

  Returns the merged RGBA mask at `factor` x resolution and its exact W_R and H in pixels.
  """
  half = template.shape[1] // 2
  h = max(1, round(geom.height * factor))
  w_r = max(1, round(geom.width_right * factor))
  w_l = max(1, round(geom.width_left * factor))
  right = cv2.resize(template[:, :half], (w_r, h), interpolation=cv2.INTER_AREA)
  left = cv2.resize(template[:, half:], (w_l, h), interpolation=cv2.INTER_AREA)
  return np.concatenate([right, left], axis=1), w_r / factor, h / factor


def place(fitted: np.ndarray, width_right: float, height: float, geom: MaskGeometry,
          out_shape: tuple[int, int], factor: int = SUPERSAMPLE) -> np.ndarray:
  """Steps 8, 9: warps the merged RGBA mask into an image of out_shape (premultiplied RGBA)."""
  c, s = np.cos(geom.angle), np.sin(geom.angle)
  rot = np.array([[c, -s], [s, c]])
  # Fitted pixel (u, v) has its centre at ((u + .5) / f, (v + .5) / f) in mask units; the
  # seam point (width_right, height / 2) goes to the anchor, rotated about it.
  lin = rot / factor
  offset = geom.anchor + rot @ np.array([0.5 / factor - width_right, 0.5 / factor - height / 2])
  matrix = np.concatenate([lin, offset[:, None]], axis=1)
  premultiplied = fitted.copy()
  premultiplied[..., :3] *= premultiplied[..., 3:4]
  return cv2.warpAffine(premultiplied, matrix, (out_shape[1], out_shape[0]),
                        flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)


def composite(clean: np.ndarray, premultiplied_rgba: np.ndarray):
  """Puts the mask on a uint8 photo. Returns (masked uint8, hole uint8 in {0, 1})."""
  alpha8 = np.clip(np.round(premultiplied_rgba[..., 3] * 255.0), 0, 255).astype(np.uint8)
  hole = alpha8 > 0
  a = (alpha8.astype(np.float32) / 255.0)[..., None]
  over = clean.astype(np.float32) * (1.0 - a) + premultiplied_rgba[..., :3] * 255.0
  masked = np.where(hole[..., None], np.clip(np.round(over), 0, 255).astype(np.uint8), clean)
  return masked, hole.astype(np.uint8)


def apply_face_mask(clean: np.ndarray, landmarks: np.ndarray, rng: np.random.Generator,
                    style: str | None = None):
  """Algorithm 1 on one face. Returns (masked, hole, style)."""
  style = style or FACE_MASK_STYLES[int(rng.integers(len(FACE_MASK_STYLES)))]
  geom = mask_geometry(landmarks)
  template = draw_template(style, rng)
  fitted, w_r, h = fit_template(template, geom)
  rgba = place(fitted, w_r, h, geom, clean.shape[:2])
  masked, hole = composite(clean, rgba)
  return masked, hole, style


def rect_hole(height: int, width: int) -> np.ndarray:
  """The paper's rectangular occlusion (Fig. 9): a centred box of half the width and height."""
  hole = np.zeros((height, width), np.uint8)
  bh, bw = height // 2, width // 2
  top, left = (height - bh) // 2, (width - bw) // 2
  hole[top:top + bh, left:left + bw] = 1
  return hole


def apply_rect(clean: np.ndarray, fill: int = 255):
  """Rectangular occlusion filled with a flat colour (white). Returns (masked, hole)."""
  hole = rect_hole(*clean.shape[:2])
  masked = np.where(hole[..., None].astype(bool), np.uint8(fill), clean)
  return masked, hole


# --- procedural templates ---------------------------------------------------------------------
# Each outline is a top curve and a bottom curve over x in [x0, 1 - x0] (fractions of the
# template), drawn with anti-aliased edges into an RGBA float template of 160 x 192 px.


def _outline(top, bottom, x0: float, n: int = 64) -> np.ndarray:
  xs = np.linspace(x0, 1.0 - x0, n)
  pts = np.concatenate([np.stack([xs, top(xs)], 1), np.stack([xs[::-1], bottom(xs[::-1])], 1)])
  return pts * np.array([TEMPLATE_WIDTH - 1, TEMPLATE_HEIGHT - 1])


def _fill_alpha(outline: np.ndarray) -> np.ndarray:
  alpha = np.zeros((TEMPLATE_HEIGHT, TEMPLATE_WIDTH), np.uint8)
  cv2.fillPoly(alpha, [np.round(outline * 16).astype(np.int32)], 255, cv2.LINE_AA, shift=4)
  return alpha.astype(np.float32) / 255.0


@functools.lru_cache(maxsize=1)
def _grid():
  """Normalised template coordinates (x, y) in [0, 1]; read-only, computed once."""
  y, x = np.mgrid[0:TEMPLATE_HEIGHT, 0:TEMPLATE_WIDTH].astype(np.float32)
  x, y = x / (TEMPLATE_WIDTH - 1), y / (TEMPLATE_HEIGHT - 1)
  x.flags.writeable = y.flags.writeable = False
  return x, y


def _shading(rng: np.random.Generator, curvature: float) -> np.ndarray:
  """Light falling on a curved surface: darker toward the sides, a random light direction,
  and fine fabric noise."""
  x, y = _grid()
  side = 1.0 - curvature * (2 * x - 1) ** 2
  light = 1.0 + rng.uniform(-0.12, 0.12) * (x - 0.5) * 2 + rng.uniform(-0.08, 0.08) * (y - 0.5) * 2
  noise = rng.standard_normal(x.shape, dtype=np.float32) * np.float32(0.015)
  return np.clip(side * light + noise, 0.2, 1.3)[..., None]


def _jitter(rng, rgb, amount=12.0):
  return np.clip(np.asarray(rgb, np.float32) + rng.uniform(-amount, amount, 3), 0, 255) / 255.0


PALETTE_PATH = pathlib.Path(__file__).with_name("mask_colors.json")


@functools.lru_cache(maxsize=1)
def measured_palette() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """(weights, mean RGB, RGB spread) of real masks' base colours, measured on real photos by
  `python -m maskinpaint_jax.tools.mask_colors` (white, grey, black, navy, light blue, ... ; see
  the JSON)."""
  groups = json.loads(PALETTE_PATH.read_text())["groups"]
  weights = np.array([g["weight"] for g in groups], np.float64)
  return (weights / weights.sum(), np.array([g["rgb"] for g in groups], np.float32),
          np.array([g["spread"] for g in groups], np.float32))


def _real_color(rng: np.random.Generator) -> np.ndarray:
  """A base colour drawn from the measured distribution of real masks: a group by its weight,
  then a normal draw with the group's own spread. RGB in [0, 1]."""
  weights, means, spreads = measured_palette()
  g = int(rng.choice(len(weights), p=weights))
  return np.clip(means[g] + rng.standard_normal(3).astype(np.float32) * spreads[g], 0, 255) / 255.0


def _draw_curves(canvas, curves, color, thickness):
  for pts in curves:
    cv2.polylines(canvas, [np.round(pts * 16).astype(np.int32)], False, color, thickness,
                  cv2.LINE_AA, shift=4)


def _curve(fn, x0, x1, n=48):
  xs = np.linspace(x0, x1, n)
  return np.stack([xs, fn(xs)], 1) * np.array([TEMPLATE_WIDTH - 1, TEMPLATE_HEIGHT - 1])


@dataclasses.dataclass(frozen=True)
class Shape:
  """A mask outline: top and bottom curves y(x) over x in [x0, 1 - x0] (template fractions)."""
  top: Any
  bottom: Any
  x0: float

  def outline(self) -> np.ndarray:
    return _outline(self.top, self.bottom, self.x0)


# Every outline the renderer draws; hole estimation (holes.py) fits the same ones.
SHAPES = {
    "surgical": Shape(lambda x: 0.20 - 0.16 * (1 - np.abs(2 * x - 1)) ** 1.5,
                      lambda x: 0.80 + 0.17 * (1 - (2 * x - 1) ** 2), 0.07),
    "cloth": Shape(lambda x: 0.22 - 0.20 * (1 - np.abs(2 * x - 1)) ** 1.2,
                   lambda x: 0.72 + 0.26 * np.clip(1 - (2 * x - 1) ** 2, 0, 1) ** 0.8, 0.0),
    "n95_cup": Shape(lambda x: 0.14 - 0.12 * (1 - np.abs(2 * x - 1)),
                     lambda x: 0.45 + 0.53 * np.sqrt(np.clip(1 - (2 * x - 1) ** 2, 0, 1)), 0.03),
    "kn95": Shape(lambda x: 0.26 - 0.23 * (1 - np.abs(2 * x - 1)),
                  lambda x: 0.70 + 0.28 * (1 - np.abs(2 * x - 1)), 0.02),
}


def shape_alpha(name: str) -> np.ndarray:
  """The anti-aliased (160, 192) alpha of one of SHAPES."""
  return _fill_alpha(SHAPES[name].outline())


def _base_color(rng, classic_rgb, p_classic: float):
  """The classic colour of a style (jittered) with probability p_classic, else a real one."""
  return _jitter(rng, classic_rgb) if rng.uniform() < p_classic else _real_color(rng)


def _ear_loops(rng, top, bottom, x_body: float):
  """Alpha of two elastic loops per side, from the body's corners out to the template's edge
  (real surgical masks show them crossing the cheeks toward the ears)."""
  loops = np.zeros((TEMPLATE_HEIGHT, TEMPLATE_WIDTH), np.float32)
  rise = rng.uniform(0.02, 0.08)
  for xb, xe in ((x_body, 0.0), (1 - x_body, 1.0)):
    for y_at, dy in ((top, -rise), (bottom, rise)):
      y0 = float(y_at(np.array([xb]))[0]) + (0.03 if dy < 0 else -0.03)
      pts = np.array([[xb, y0], [(xb + xe) / 2, y0 + dy * 0.6], [xe, y0 + dy]])
      _draw_curves(loops, [pts * np.array([TEMPLATE_WIDTH - 1, TEMPLATE_HEIGHT - 1])], 1.0, 3)
  return loops


def _surgical(rng):
  shape = SHAPES["surgical"]
  top, bottom, x_body = shape.top, shape.bottom, shape.x0
  # Light blue is the classic; the rest follow the colours measured on real photos.
  base = _base_color(rng, (150, 196, 226), 0.35)
  rgb = np.ones((TEMPLATE_HEIGHT, TEMPLATE_WIDTH, 3), np.float32) * base
  # Pleats: a dark fold with a light edge under it, following the mask's outline.
  pleat_dark = np.zeros((TEMPLATE_HEIGHT, TEMPLATE_WIDTH), np.float32)
  pleat_light = np.zeros_like(pleat_dark)
  for t in (0.34, 0.5, 0.66):
    fold = lambda x, t=t: top(x) + t * (bottom(x) - top(x))
    _draw_curves(pleat_dark, [_curve(fold, x_body + 0.02, 0.98 - x_body)], 1.0, 2)
    _draw_curves(pleat_light, [_curve(lambda x, f=fold: f(x) + 0.018, x_body + 0.02,
                                      0.98 - x_body)], 1.0, 2)
  # Bound top and bottom edges.
  _draw_curves(pleat_dark, [_curve(lambda x: top(x) + 0.03, x_body + 0.01, 0.99 - x_body),
                            _curve(lambda x: bottom(x) - 0.03, x_body + 0.01, 0.99 - x_body)],
               0.6, 2)
  rgb = rgb * (1 - 0.28 * pleat_dark[..., None]) + 0.12 * pleat_light[..., None]
  alpha = _fill_alpha(shape.outline())
  if rng.uniform() < 0.8:
    loops = _ear_loops(rng, top, bottom, x_body)
    loop_rgb = np.clip(base * rng.uniform(0.9, 1.15), 0, 1)
    rgb = np.where((loops > alpha)[..., None], loop_rgb, rgb)
    alpha = np.maximum(alpha, loops)
  return rgb * _shading(rng, 0.25), alpha


def _print_layer(rng, x, y):
  """Scattered motifs (dots, petals, blobs) of a printed cloth mask: coverage in [0, 1]."""
  layer = np.zeros(x.shape, np.float32)
  for _ in range(int(rng.integers(6, 30))):
    cx, cy = rng.uniform(0, 1, 2)
    rx, ry = rng.uniform(0.015, 0.07, 2)
    angle = rng.uniform(0, np.pi)
    u = (x - cx) * np.cos(angle) + (y - cy) * np.sin(angle)
    v = -(x - cx) * np.sin(angle) + (y - cy) * np.cos(angle)
    layer = np.maximum(layer, ((u / rx) ** 2 + (v / ry) ** 2 < 1).astype(np.float32))
  return layer


def _pattern(rng, x, y, kind: str):
  period = rng.uniform(0.06, 0.14)
  if kind == "stripes":
    angle = rng.uniform(0, np.pi)
    u = x * np.cos(angle) * 1.2 + y * np.sin(angle)
    return (np.mod(u / period, 1.0) < 0.4).astype(np.float32)
  if kind == "dots":
    gx, gy = np.mod(x * 1.2 / period, 1.0) - 0.5, np.mod(y / period, 1.0) - 0.5
    return (gx ** 2 + gy ** 2 < 0.06).astype(np.float32)
  if kind == "checks":
    return 0.5 * ((np.mod(x * 1.2 / period, 1.0) < 0.5).astype(np.float32)
                  + (np.mod(y / period, 1.0) < 0.5).astype(np.float32))
  if kind == "print":
    return _print_layer(rng, x, y)
  return np.zeros_like(x)


def _random_hsv_rgb(rng):
  hsv = np.array([[[rng.uniform(0, 180), rng.uniform(50, 230), rng.uniform(50, 240)]]], np.uint8)
  return cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)[0, 0].astype(np.float32) / 255.0


def _cloth(rng):
  outline = SHAPES["cloth"].outline()
  # Real cloth masks are mostly plain and dark or grey (measured), some printed.
  c1 = _real_color(rng) if rng.uniform() < 0.75 else _random_hsv_rgb(rng)
  c2 = _random_hsv_rgb(rng) if rng.uniform() < 0.5 else _jitter(rng, rng.uniform(0, 255, 3), 0.0)
  x, y = _grid()
  kind = ["solid", "print", "stripes", "dots", "checks"][
      int(rng.choice(5, p=[0.45, 0.25, 0.1, 0.1, 0.1]))]
  second = cv2.GaussianBlur(_pattern(rng, x, y, kind), (3, 3), 0)[..., None]
  rgb = c1 * (1 - second) + c2 * second
  seam = np.zeros((TEMPLATE_HEIGHT, TEMPLATE_WIDTH), np.float32)
  _draw_curves(seam, [np.array([[0.5, 0.02], [0.5, 0.985]]) *
                      np.array([TEMPLATE_WIDTH - 1, TEMPLATE_HEIGHT - 1])], 1.0, 2)
  rgb = rgb * (1 - 0.3 * seam[..., None])
  return rgb * _shading(rng, 0.35), _fill_alpha(outline)


def _valve(rng, x, y, rgb, base):
  """A round exhalation valve on one side, darker or lighter than the mask, with a rim."""
  vx = 0.3 if rng.uniform() < 0.5 else 0.7
  r2 = ((x - vx) * 1.2) ** 2 + (y - 0.6) ** 2
  color = _jitter(rng, (150, 150, 155), 15.0) if base.mean() > 0.45 else _jitter(rng, (60, 60, 64))
  rgb = np.where((r2 < 0.012)[..., None], color, rgb)
  return np.where(((r2 >= 0.012) & (r2 < 0.016))[..., None], color * 0.7, rgb)


def _n95(rng):
  base = _base_color(rng, (242, 242, 238), 0.6)  # mostly white; black/grey ones measured
  x, y = _grid()
  lines = np.zeros((TEMPLATE_HEIGHT, TEMPLATE_WIDTH), np.float32)
  if rng.uniform() < 0.5:  # cup-shaped N95
    top = SHAPES["n95_cup"].top
    outline = SHAPES["n95_cup"].outline()
    cup = 1.0 - 0.35 * ((2 * x - 1) ** 2 + (1.6 * (y - 0.55)) ** 2)
    rgb = np.ones_like(x)[..., None] * base * cup[..., None]
    _draw_curves(lines, [_curve(lambda x: top(x) + 0.05, 0.1, 0.9)], 0.5, 3)  # nose foam
  else:  # folded KN95 with a centre seam; the two panels catch the light differently
    top, bottom = SHAPES["kn95"].top, SHAPES["kn95"].bottom
    outline = SHAPES["kn95"].outline()
    panel = np.where(x < 0.5, 1.0, rng.uniform(0.85, 0.95)).astype(np.float32)
    rgb = np.ones_like(x)[..., None] * base * panel[..., None]
    _draw_curves(lines, [np.array([[0.5, 0.03], [0.5, 0.98]]) *
                         np.array([TEMPLATE_WIDTH - 1, TEMPLATE_HEIGHT - 1])], 1.0, 2)
    _draw_curves(lines, [_curve(lambda x: top(x) + 0.04, 0.03, 0.97),
                         _curve(lambda x: bottom(x) - 0.04, 0.03, 0.97)], 0.5, 2)
  if rng.uniform() < 0.35:
    rgb = _valve(rng, x, y, rgb, base)
  rgb = rgb * (1 - 0.25 * lines[..., None])
  return rgb * _shading(rng, 0.15), _fill_alpha(outline)


_DRAW = {"surgical": _surgical, "cloth": _cloth, "n95": _n95}


def draw_template(style: str, rng: np.random.Generator) -> np.ndarray:
  """A (160, 192, 4) float32 RGBA template in [0, 1] for one of FACE_MASK_STYLES."""
  if style not in _DRAW:
    raise ValueError(f"unknown mask style {style!r}; choose from {FACE_MASK_STYLES}")
  rgb, alpha = _DRAW[style](rng)
  rgba = np.concatenate([np.clip(rgb, 0, 1), alpha[..., None]], axis=-1)
  return rgba.astype(np.float32)
