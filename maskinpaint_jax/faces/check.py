"""The face check: is a found face upright, and does it wear a mask?

Restoring repaints the lower face, so it must happen only where there is a mask, and only on a
face the right way up: a photo turned by 180 degrees gets its eyes painted over otherwise (the
face mesh fits an upright face to whatever it is given). `FaceCheckNet` is a small CNN that
looks at a square crop around the detector's box (not the landmarks: those are wrong on a turned
face) and gives two answers: which of 0 / 90 / 180 / 270 degrees the crop is turned by, and the
probability that the face wears a mask. It is trained by `python -m
maskinpaint_jax.tools.train_face_check` on CelebA faces with and without Algorithm 1's synthetic
masks (turned four ways), on half of the real masked / unmasked photos, and on the boxes the
finder places on those photos turned by 90, 180 and 270 degrees (on a face upside down it often
boxes the eyes and forehead alone, which looks like an upright face); its thresholds are
chosen on that half and measured on the other (docs/benchmarks.md, "Face check"). The weights
and the thresholds ship in pretrained/face_check/.
"""

from __future__ import annotations

import json
import pathlib

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from maskinpaint_jax import errors, programs, shipped
from maskinpaint_jax.faces import align, finders

CROP_SIZE = 64        # px, the network's input side
CROP_SCALE = 1.5      # the crop's side over the larger side of the detector's box
WEIGHTS, MANIFEST = "face_check.msgpack", "manifest.json"


class FaceCheckNet(nn.Module):
  """(N, 64, 64, 3) uint8 crops -> ((N, 4) orientation logits for 0 / 90 / 180 / 270 degrees
  counter-clockwise, (N,) mask logits)."""
  widths: tuple[int, ...] = (16, 32, 64, 96)

  @nn.compact
  def __call__(self, crops):
    x = crops.astype(jnp.float32) / 127.5 - 1.0
    for w in self.widths:  # 64 -> 4 px
      x = nn.leaky_relu(nn.Conv(w, (3, 3))(x), 0.2)
      x = nn.leaky_relu(nn.Conv(w, (3, 3), strides=(2, 2))(x), 0.2)
    x = jnp.concatenate([x.mean(axis=(1, 2)), x.max(axis=(1, 2))], axis=-1)
    x = nn.leaky_relu(nn.Dense(64)(x), 0.2)
    return nn.Dense(4)(x), nn.Dense(1)(x)[:, 0]


def box_crop(photo: np.ndarray, box: finders.Box, size: int = CROP_SIZE) -> np.ndarray:
  """The (size, size, 3) uint8 square around a face's (top, right, bottom, left) box, CROP_SCALE
  times its larger side, edge pixels repeated outside the photo (`align.warp_crop`: area-
  averaged when shrinking)."""
  top, right, bottom, left = box
  cx, cy = (left + right) / 2.0, (top + bottom) / 2.0
  s = size / (CROP_SCALE * max(right - left, bottom - top, 1))
  matrix = np.array([[s, 0, size / 2 - 0.5 - s * cx], [0, s, size / 2 - 0.5 - s * cy]])
  return align.warp_crop(photo, matrix, size)


class FaceCheck:
  """The trained net with its thresholds: `upright_probability` and `wears_mask`, the
  interface `faces.restore` uses."""

  def __init__(self, params, mask_threshold: float, turn_threshold: float):
    self.params = params
    self.mask_threshold = mask_threshold
    self.turn_threshold = turn_threshold
    self._programs = {}  # batch size -> compiled net (programs.cached_program)

  def _apply(self, crops: np.ndarray):
    n = len(crops)
    if n not in self._programs:
      self._programs[n] = programs.cached_program(
          lambda params, x: FaceCheckNet().apply({"params": params}, x),
          (self.params, jax.ShapeDtypeStruct(crops.shape, np.uint8)), key="face_check")
    return self._programs[n](self.params, crops)

  def predict(self, crops: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(N, 4) orientation probabilities, (N,) mask probabilities of uint8 (N, 64, 64, 3) crops:
    the mean of the crop's and its mirror image's answers (a mirrored turn of 90 degrees is a
    turn of 270)."""
    both = np.ascontiguousarray(np.concatenate([crops, crops[:, :, ::-1]]), np.uint8)
    turn, mask = (np.asarray(x, np.float64) for x in self._apply(both))
    turn = np.exp(turn - turn.max(axis=-1, keepdims=True))
    turn, mask = turn / turn.sum(axis=-1, keepdims=True), 1 / (1 + np.exp(-mask))
    n = len(crops)
    return (turn[:n] + turn[n:][:, [0, 3, 2, 1]]) / 2, (mask[:n] + mask[n:]) / 2

  def upright_probability(self, photo: np.ndarray, found: list[finders.Face]) -> float:
    """How sure the check is that the faces found in `photo` are upright (0 without a face):
    the probability of "not turned", averaged over the faces weighted by their size. The
    detector's box on a face it sees upside down is not where it would be on the upright face,
    so `restore` compares this number across the photo's four turns rather than trusting the
    turn one crop names."""
    if not found:
      return 0.0
    probs, _ = self.predict(np.stack([box_crop(photo, f.box) for f in found]))
    weights = np.array([f.size for f in found], np.float64)
    return float((probs[:, 0] * weights).sum() / weights.sum())

  def mask_probability(self, photo: np.ndarray, face: finders.Face) -> float:
    return float(self.predict(box_crop(photo, face.box)[None])[1][0])

  def wears_mask(self, photo: np.ndarray, face: finders.Face) -> bool:
    return self.mask_probability(photo, face) >= self.mask_threshold


def save(model_dir, params, mask_threshold: float, turn_threshold: float, **provenance):
  """Writes the weights (flax msgpack) and manifest.json (thresholds, provenance)."""
  from flax import serialization  # pylint: disable=g-import-not-at-top
  model_dir = pathlib.Path(model_dir)
  model_dir.mkdir(parents=True, exist_ok=True)
  (model_dir / WEIGHTS).write_bytes(serialization.to_bytes(jax.device_get(params)))
  (model_dir / MANIFEST).write_text(json.dumps(
      dict(mask_threshold=mask_threshold, turn_threshold=turn_threshold, crop_size=CROP_SIZE,
           crop_scale=CROP_SCALE, **provenance), indent=2))


def load(model_dir=None) -> FaceCheck:
  """The shipped face check (pretrained/face_check/), or the one in `model_dir`.

  Raises:
    errors.NotFoundError (a FileNotFoundError): no weights there (train them:
      tools/train_face_check).
  """
  from flax import serialization  # pylint: disable=g-import-not-at-top
  model_dir = pathlib.Path(model_dir or shipped.model_dir(shipped.FACE_CHECK))
  if not (model_dir / WEIGHTS).exists():
    raise errors.NotFoundError(f"no face check in {model_dir}: train one with python -m "
                            "maskinpaint_jax.tools.train_face_check")
  manifest = json.loads((model_dir / MANIFEST).read_text())
  # eval_shape: the parameters' shapes without running the initialisers (the file replaces them).
  template = jax.eval_shape(FaceCheckNet().init, jax.random.key(0),
                            jnp.zeros((1, CROP_SIZE, CROP_SIZE, 3), jnp.uint8))["params"]
  params = serialization.from_bytes(template, (model_dir / WEIGHTS).read_bytes())
  shapes = lambda tree: [(jax.tree_util.keystr(k), tuple(np.shape(v)))
                         for k, v in jax.tree_util.tree_leaves_with_path(tree)]
  if shapes(params) != shapes(template):
    raise errors.MismatchError(f"{model_dir / WEIGHTS} does not match the face check's "
                               "architecture (saved by another version of this code?)")
  return FaceCheck(params, manifest["mask_threshold"], manifest["turn_threshold"])
