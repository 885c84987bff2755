"""Training the face check's human-face and mask heads on real photos (`check.save_heads`).

The examples are what the face finder meets: every candidate the masked-face finder
(`mesh.MeshFaceFinder.examine`) examines in a photo, cropped as the check sees it
(`check.box_crop`, 128 px), with the mesh's verdict. Labels come from the folder a photo is in:
- human face: the candidates the finder accepts in real photos of people, with and without
  masks (1), against every candidate in photos of animals, statues, dolls, drawings and masks
  without a face (0);
- mask: the largest accepted face of each real photo, 1 in the masked folders, 0 in the
  unmasked ones.
Every folder is split by file name (`photo_sets.split_of`); only the "train" part trains and
chooses the thresholds, from out-of-fold probabilities (five folds by photo), so the "test"
part is never used for either.
"""

from __future__ import annotations

import dataclasses
import hashlib
import pathlib

import numpy as np

from maskinpaint_jax import images, photo_sets
from maskinpaint_jax.faces import check, features

MASKED, UNMASKED = "masked", "unmasked"   # kinds of the real photos of people
EXAMINED = 24   # candidates examined per photo at most (a texture can give hundreds)
FOLDS = 5
GRID = np.round(np.arange(0.01, 1.0, 0.01), 2)  # thresholds tried


@dataclasses.dataclass
class Example:
  """One candidate face: its 128 px crop (uint8), where it comes from and what the mesh said."""
  crop: np.ndarray
  photo: str          # "folder/name"
  kind: str           # MASKED, UNMASKED, or the kind of thing that is not a human face
  split: str          # "train" | "test"
  accepted: bool      # the mesh finder's own verdict (`mesh.Verdict.accepted`)
  geometric: bool     # the mesh finds a face's shape there (`mesh.Verdict.geometric`)
  size: int           # px, the detector box's shorter side
  turn: int = 0       # np.rot90's k of the photo it was found in (0: as the photo is)

  @property
  def human(self) -> bool:
    return self.kind in (MASKED, UNMASKED)


def examples_of_folder(folder, finder, kind: str, split_of=None, turns=(0,)
                       ) -> tuple[list[Example], int]:
  """(the examples of every readable photo in `folder`, each turned by each of `turns` (np.rot90's
  k), the number of photos read). `split_of(folder, name)`: the part of a photo (default
  `photo_sets.split_of`). Inpaint looks for faces in a photo turned four ways when it is not
  sure the photo is upright, so a thing that is not a face meets the check turned, too."""
  split_of = split_of or photo_sets.split_of
  folder = pathlib.Path(folder)
  out, photos = [], 0
  for path in images.list_images(folder):
    try:
      photo = images.load_rgb(path)
    except images.ImageLoadError:
      continue
    photos += 1
    for k in turns:
      out += examples_of_photo(np.ascontiguousarray(np.rot90(photo, k)), finder,
                               f"{folder.name}/{path.name}", kind, split_of(folder, path.name),
                               turn=k)
  return out, photos


def examples_of_photo(photo: np.ndarray, finder, name: str, kind: str, split: str,
                      turn: int = 0) -> list[Example]:
  """The examples of one uint8 RGB photo: the candidates `finder.examine` looks at, and, when
  it accepts none, those of its wide border too (as `find_any_size` looks again)."""
  examined = finder.examine(photo, limit=EXAMINED)
  if not any(verdict.accepted for _, verdict, _ in examined):
    examined += finder.examine(photo, finder.wide_candidates(photo), limit=EXAMINED)
  return [Example(check.box_crop(photo, face.box, features.CROP_SIZE), name, kind, split,
                  verdict.accepted, verdict.geometric, face.size, turn)
          for _, verdict, face in examined]


def fold_of(photo: str) -> int:
  """The out-of-fold group of a photo (by a hash of its name: one photo never in two folds)."""
  return hashlib.sha1(photo.encode()).digest()[1] % FOLDS


def human_training(examples: list[Example]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """(indices, labels, weights) of the human-face head's training examples: accepted faces of
  real photos (1) and every candidate of the other photos (0), train part only; each class
  weighs as much as the other in all."""
  idx = np.array([i for i, e in enumerate(examples) if e.split == "train"
                  and (e.accepted or not e.human)], np.int64)
  labels = np.array([examples[i].human for i in idx], np.float32)
  return idx, labels, balanced_weights(labels)


def mask_training(examples: list[Example]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """(indices, labels, weights) of the mask head's training examples: the largest accepted face
  of each real photo of the train part, 1 when its folder is a masked one; classes balanced."""
  largest = {}
  for i, e in enumerate(examples):
    if e.split == "train" and e.human and e.accepted:
      if e.photo not in largest or e.size > examples[largest[e.photo]].size:
        largest[e.photo] = i
  idx = np.array(sorted(largest.values()), np.int64)
  labels = np.array([examples[i].kind == MASKED for i in idx], np.float32)
  return idx, labels, balanced_weights(labels)


def balanced_weights(labels: np.ndarray) -> np.ndarray:
  """float32 weights under which the {0, 1} `labels`' two classes weigh the same in all."""
  labels = np.asarray(labels)
  return np.where(labels == 1, 1 / max(labels.sum(), 1),
                  1 / max((1 - labels).sum(), 1)).astype(np.float32)


def upright_training(examples: list[Example]) -> np.ndarray:
  """Indices of the upright head's examples: the accepted faces of real photos, train part;
  each is seen as it is (upright, 1) and turned by 90, 180 and 270 degrees (0)."""
  return np.array([i for i, e in enumerate(examples)
                   if e.split == "train" and e.human and e.accepted], np.int64)


def out_of_fold(feats: np.ndarray, labels: np.ndarray, weights: np.ndarray, groups: np.ndarray,
                l2: float) -> np.ndarray:
  """Each example's probability from the head fitted on the other FOLDS - 1 folds."""
  probs = np.zeros(len(labels))
  for k in range(FOLDS):
    held = groups == k
    head = features.fit_linear_head(feats[~held], labels[~held], weights[~held], l2=l2)
    probs[held] = head.probability(feats[held])
  return probs


def per_photo_max(photos: list[str], probs: np.ndarray) -> dict[str, float]:
  """The highest probability of each photo's examples."""
  out = {}
  for photo, p in zip(photos, probs):
    out[photo] = max(out.get(photo, 0.0), float(p))
  return out


def lowest_threshold(negative: np.ndarray, max_false: float) -> float:
  """The lowest threshold of GRID that lets at most `max_false` of `negative` through (>=):
  of those, it keeps the most of anything above it. 0.99 when none does."""
  for t in GRID:
    if (np.asarray(negative) >= t).mean() <= max_false:
      return float(t)
  return float(GRID[-1])


def highest_threshold(positive: np.ndarray, max_lost: float) -> float:
  """The highest threshold of GRID that loses (<) at most `max_lost` of `positive`: of those,
  it stops the most of anything else."""
  ok = [t for t in GRID if (np.asarray(positive) < t).mean() <= max_lost]
  return float(ok[-1]) if ok else float(GRID[0])


# --- who the check works for: mask styles and skin tones -------------------------------------
# Regions of the 128 px box crop (rows, columns as fractions of its side), read off crops of
# real faces: the middle of where a mask sits, and the skin between the eyes (above any mask).
MASK_REGION = ((0.62, 0.80), (0.38, 0.62))
SKIN_REGION = ((0.25, 0.35), (0.45, 0.55))
MASK_STYLES = ("light (white, light blue, grey)", "dark (black, navy)",
               "coloured or patterned")
SKIN_TONES = ("light (ITA > 41)", "intermediate or tan (ITA 10-41)", "brown or dark (ITA < 10)")


def _median_colour(crop: np.ndarray, region) -> np.ndarray:
  (r0, r1), (c0, c1) = region
  n = crop.shape[0]
  patch = crop[round(r0 * n):round(r1 * n), round(c0 * n):round(c1 * n)]
  return np.median(patch.reshape(-1, 3), axis=0).astype(np.uint8)


def mask_style(crop: np.ndarray) -> str:
  """One of MASK_STYLES from the median colour of MASK_REGION of a uint8 RGB box crop (HSV,
  OpenCV's 0-255 saturation and value): dark below value 90, light at value 140 or more with
  saturation under 90, coloured or patterned otherwise."""
  import cv2  # pylint: disable=g-import-not-at-top
  _, s, v = cv2.cvtColor(_median_colour(crop, MASK_REGION)[None, None], cv2.COLOR_RGB2HSV)[0, 0]
  if v < 90:
    return MASK_STYLES[1]
  return MASK_STYLES[0] if v >= 140 and s < 90 else MASK_STYLES[2]


def skin_tone(crop: np.ndarray) -> str:
  """One of SKIN_TONES by the individual typology angle ITA = atan2(L* - 50, b*) in degrees
  (Chardon et al. 1991; CIELAB of the median colour of SKIN_REGION, sRGB D65 by
  skimage-free OpenCV conversion), the groups of Del Bino et al. 2006 merged in three. From
  pixels, under the photo's own light: a rough grouping, not a person's skin type."""
  import cv2  # pylint: disable=g-import-not-at-top
  rgb = _median_colour(crop, SKIN_REGION).astype(np.float32)[None, None] / 255.0
  lab = cv2.cvtColor(rgb, cv2.COLOR_RGB2Lab)[0, 0]
  ita = np.degrees(np.arctan2(lab[0] - 50.0, lab[2]))
  return SKIN_TONES[0] if ita > 41 else SKIN_TONES[1] if ita >= 10 else SKIN_TONES[2]
