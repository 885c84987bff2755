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

import dataclasses
import hashlib
import json
import pathlib

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from maskinpaint_jax import errors, programs, shipped
from maskinpaint_jax.faces import align, features, finders

CROP_SIZE = 64        # px, the network's input side
CROP_SCALE = 1.5      # the crop's side over the larger side of the detector's box
WEIGHTS, MANIFEST, HEADS = "face_check.msgpack", "manifest.json", "heads.npz"
# `FaceCheck.vouches_on_frame`: on the train part of realmask_more, the frame faces of the photos
# no detector pass finds, turned upside down, looked upright by at most 0.75 (the same faces
# upright: 0.29-0.99); rounded up.
FRAME_MIN_UPRIGHT = 0.8


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


@dataclasses.dataclass(frozen=True)
class Assessment:
  """What the check says of one found face: probabilities in [0, 1] and the decisions their
  thresholds give. `human` is True when the check has no human-face head (not asked)."""
  human_probability: float
  mask_probability: float
  human: bool
  masked: bool


class FaceCheck:
  """The trained net with its thresholds: `upright_probability` (the net's orientation head)
  and `assess` (is a found face a human face, does it wear a mask), the interface
  `faces.restore` uses.

  With `heads` ({"human", "mask", "upright": LinearHead} over `features.ImageNetFeatures` of a
  128 px box crop), the human-face and mask answers come from them and the upright answer is
  the mean of the net's and the upright head's (the net alone misses tight crops of masked
  faces: it called 13 % of the upright ones of the held-out photos turned); without, the mask
  answer is the net's own mask head, every face counts as human, and the net alone says
  whether a face is upright (the check before the heads).
  """

  def __init__(self, params, mask_threshold: float, turn_threshold: float, *,
               heads: dict | None = None, human_threshold: float = 0.5,
               vouch_threshold: float = 1.0, turned_threshold: float = 1.0):
    self.params = params
    self.mask_threshold = mask_threshold
    self.turn_threshold = turn_threshold
    self.heads = heads
    self.human_threshold = human_threshold
    self.vouch_threshold = vouch_threshold
    self.turned_threshold = turned_threshold
    self._features = None
    self._answers = {}   # SHA-1 of a 128 px crop -> its heads' probabilities
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
    upright = probs[:, 0]
    if self.heads is not None:  # the mean of the net's and the upright head's answers
      upright = (upright + np.array([self._head_answers(photo, f)["upright"]
                                     for f in found])) / 2
    weights = np.array([f.size for f in found], np.float64)
    return float((upright * weights).sum() / weights.sum())

  def head_probabilities(self, crops: np.ndarray) -> dict[str, np.ndarray]:
    """{head name (HEAD_NAMES): (N,) probabilities} of (N, 128, 128, 3) uint8 box crops
    (`box_crop(photo, box, features.CROP_SIZE)`).

    Raises:
      ValueError: this check has no heads.
    """
    if self.heads is None:
      raise ValueError("this face check has no human-face, mask and upright heads")
    if self._features is None:
      self._features = features.ImageNetFeatures()
    feats = self._features.features(crops)
    return {name: head.probability(feats) for name, head in self.heads.items()}

  def _head_answers(self, photo: np.ndarray, face: finders.Face) -> dict[str, float]:
    """The heads' probabilities for one face, kept by its crop's SHA-1: the finder's vouching,
    the upright search and `assess` all ask about the same face."""
    crop = box_crop(photo, face.box, features.CROP_SIZE)
    key = hashlib.sha1(crop.tobytes()).digest()
    if key not in self._answers:
      if len(self._answers) > 64:
        self._answers.clear()
      self._answers[key] = {k: float(v[0]) for k, v in
                            self.head_probabilities(crop[None]).items()}
    return self._answers[key]

  def assess(self, photo: np.ndarray, face: finders.Face, *, turned: bool = False
             ) -> Assessment:
    """Is `face` (found in uint8 (H, W, 3) `photo`) a human face, and does it wear a mask?
    `turned`: `photo` is the user's photo turned by 90, 180 or 270 degrees because no face
    looked upright in it as it is; an animal or a statue turned on its side passes for a face
    more often than upright, so the human face must then reach `turned_threshold`."""
    if self.heads is None:
      mask = float(self.predict(box_crop(photo, face.box)[None])[1][0])
      return Assessment(1.0, mask, True, mask >= self.mask_threshold)
    answers = self._head_answers(photo, face)
    human, mask = answers["human"], answers["mask"]
    threshold = self.turned_threshold if turned else self.human_threshold
    return Assessment(human, mask, human >= threshold, mask >= self.mask_threshold)

  def vouches(self, photo: np.ndarray, face: finders.Face) -> bool:
    """Whether the human-face head is sure enough (`vouch_threshold`, stricter than the human
    threshold) to take a face the finder's mesh sees the shape of but does not confirm alone
    (`mesh.MeshFaceFinder.vouch`). False without heads."""
    if self.heads is None:
      return False
    return self.assess(photo, face).human_probability >= self.vouch_threshold

  def vouches_on_frame(self, photo: np.ndarray, face: finders.Face) -> bool:
    """`vouches`, and the face is upright by at least FRAME_MIN_UPRIGHT: for a face the mesh
    was only placed on (`mesh.frame_candidates`). Nothing a detector saw says which way up such
    a crop is, and the human-face head vouches for one upside down about as readily."""
    return (self.vouches(photo, face)
            and self.upright_probability(photo, [face]) >= FRAME_MIN_UPRIGHT)

  def mask_probability(self, photo: np.ndarray, face: finders.Face) -> float:
    return self.assess(photo, face).mask_probability

  def wears_mask(self, photo: np.ndarray, face: finders.Face) -> bool:
    return self.assess(photo, face).masked


def save(model_dir, params, mask_threshold: float, turn_threshold: float, **provenance):
  """Writes the orientation net's weights (flax msgpack) and manifest.json (thresholds,
  provenance), keeping the heads' entry of a manifest already there."""
  from flax import serialization  # pylint: disable=g-import-not-at-top
  model_dir = pathlib.Path(model_dir)
  model_dir.mkdir(parents=True, exist_ok=True)
  (model_dir / WEIGHTS).write_bytes(serialization.to_bytes(jax.device_get(params)))
  # The heads (`save_heads`) do not depend on the net: their entry stays.
  old = (json.loads((model_dir / MANIFEST).read_text())
         if (model_dir / MANIFEST).exists() else {})
  (model_dir / MANIFEST).write_text(json.dumps(
      dict(mask_threshold=mask_threshold, turn_threshold=turn_threshold, crop_size=CROP_SIZE,
           crop_scale=CROP_SCALE, **provenance,
           **({"heads": old["heads"]} if "heads" in old else {})), indent=2))


HEAD_NAMES = ("human", "mask", "upright")


HEAD_THRESHOLDS = ("human_threshold", "mask_threshold", "vouch_threshold", "turned_threshold")


def save_heads(model_dir, heads: dict, *, human_threshold: float, mask_threshold: float,
               vouch_threshold: float, turned_threshold: float, **provenance):
  """Writes the human-face and mask heads (`heads.npz`) into a face check's folder, and their
  thresholds and `provenance` under "heads" in its manifest.json (the orientation net and its
  own thresholds stay as they are).

  Raises:
    errors.NotFoundError: no face check (manifest.json) in `model_dir`.
  """
  model_dir = pathlib.Path(model_dir)
  if not (model_dir / MANIFEST).exists():
    raise errors.NotFoundError(f"no face check in {model_dir} to add heads to")
  arrays = {}
  for name in HEAD_NAMES:
    arrays.update(heads[name].to_arrays(name))
  np.savez(model_dir / HEADS, **arrays)
  manifest = json.loads((model_dir / MANIFEST).read_text())
  manifest["heads"] = dict(human_threshold=human_threshold, mask_threshold=mask_threshold,
                           vouch_threshold=vouch_threshold, turned_threshold=turned_threshold,
                           **provenance)
  (model_dir / MANIFEST).write_text(json.dumps(manifest, indent=2))


def _load_heads(model_dir: pathlib.Path, manifest: dict) -> tuple[dict, dict]:
  """(the heads of `heads.npz`, their thresholds from the manifest).

  Raises:
    errors.MismatchError: a head or a threshold missing, or a head of another feature size.
  """
  thresholds = manifest.get("heads", {})
  missing = [k for k in HEAD_THRESHOLDS if k not in thresholds]
  if missing:
    raise errors.MismatchError(f"{model_dir / MANIFEST} lacks the heads' {', '.join(missing)}")
  try:
    with np.load(model_dir / HEADS) as arrays:
      heads = {name: features.LinearHead.from_arrays(arrays, name) for name in HEAD_NAMES}
  except KeyError as e:
    raise errors.MismatchError(f"{model_dir / HEADS} lacks {e}") from e
  for name, head in heads.items():
    if not head.mean.shape == head.scale.shape == head.w.shape == (features.FEATURE_DIM,):
      raise errors.MismatchError(f"{model_dir / HEADS}: the {name} head is not over "
                                 f"{features.FEATURE_DIM} features")
  return heads, {k: float(thresholds[k]) for k in HEAD_THRESHOLDS}


def load(model_dir=None) -> FaceCheck:
  """The shipped face check (pretrained/face_check/), or the one in `model_dir`.

  Raises:
    errors.NotFoundError (a FileNotFoundError): no weights there (train them:
      tools/train_face_check).
    errors.MismatchError (a ValueError): weights or heads that do not fit this code.
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
  if not (model_dir / HEADS).exists():  # the net alone: its own mask head and threshold
    return FaceCheck(params, manifest["mask_threshold"], manifest["turn_threshold"])
  heads, t = _load_heads(model_dir, manifest)
  return FaceCheck(params, t["mask_threshold"], manifest["turn_threshold"], heads=heads,
                   human_threshold=t["human_threshold"], vouch_threshold=t["vouch_threshold"],
                   turned_threshold=t["turned_threshold"])
