r"""The real photo sets of `../shared/data` and their fixed splits.

Every choice made on real photos (thresholds, recipes, training) is made on one fixed part and
reported on another, and every program must agree on which photo is in which part. The parts are
a function of the file name only, so they are the same on every machine and for every copy.

- `realmask/`, `nomask/` (240 photos each): halves "A" (train the face check, choose thresholds)
  and "B" (held out) by the first byte of the SHA-1 of the file name (`half_of`).
- `realmask_more/`, `nomask_more/`: "train" and "test" (one photo in five, held out) by the same
  hash (`part_of`).
- In-the-wild faces for restoration (`wild_split`): nomask half A + nomask_more "train" are
  training data; nomask half B + nomask_more "test" are the held-out ground truth.
"""

from __future__ import annotations

import hashlib
import os
import pathlib

import cv2
import numpy as np

from maskinpaint_jax import images

# Real photos without a face bundled with the project (their provenance: its README).
DEFAULT_NO_FACE_DIR = pathlib.Path(__file__).resolve().parents[1] / "sample_data" / "no_face"

# scikit-image's bundled sample photos that show no face (camera and astronaut do).
SKIMAGE_NO_FACE = ("chelsea", "coffee", "rocket", "motorcycle_left", "hubble_deep_field",
                   "retina", "coins", "brick", "grass", "gravel", "horse", "moon", "page", "text",
                   "logo", "immunohistochemistry", "chessboard_RGB", "clock_motion", "cell",
                   "colorwheel")

# One photo in five of the *_more folders is held out.
HELD_OUT_SHARE = 5


def _hash_byte(name: str) -> int:
  return hashlib.sha1(name.encode()).digest()[0]


def half_of(name: str) -> str:
  """"A" or "B": a fixed split of a folder's photos by the SHA-1 of the file name."""
  return "AB"[_hash_byte(name) % 2]


def part_of(name: str) -> str:
  """"train" or "test" for a photo of a `*_more` folder (one in HELD_OUT_SHARE is "test")."""
  return "test" if _hash_byte(name) % HELD_OUT_SHARE == 0 else "train"


def split_of(folder: str | os.PathLike, name: str) -> str:
  """"train" or "test" of photo `name` in `folder`, whichever real folder it is.

  Folders named `*_more` split by `part_of`; the others by `half_of` ("A" -> "train",
  "B" -> "test"), so nothing tuned on half A is ever reported as held out.
  """
  if pathlib.Path(folder).name.endswith("_more"):
    return part_of(name)
  return "train" if half_of(name) == "A" else "test"


def photos_of(folders, split: str) -> list[pathlib.Path]:
  """Every photo of `folders` (paths) in `split` ("train" | "test"), sorted by folder then name.

  Raises FileNotFoundError for a folder that does not exist; ValueError for another split name.
  """
  if split not in ("train", "test"):
    raise ValueError(f"split must be 'train' or 'test', not {split!r}")
  out = []
  for folder in folders:
    folder = pathlib.Path(folder)
    if not folder.is_dir():
      raise FileNotFoundError(f"{folder}: not a folder")
    out += [p for p in images.list_images(folder) if split_of(folder, p.name) == split]
  return out


def wild_folders(shared_data: str | os.PathLike) -> list[pathlib.Path]:
  """The in-the-wild unmasked faces: `nomask/` and `nomask_more/` under `shared_data`."""
  root = pathlib.Path(shared_data)
  return [root / "nomask", root / "nomask_more"]


# --- images without a face: negatives for the face finders and the face check --------------
def synthetic_no_face(seed: int = 0, n_noise: int = 10, n_texture: int = 20,
                      shape=(480, 640)) -> list[tuple[str, np.ndarray]]:
  """Noise and textures: smooth random fields at several scales, gratings, and random disks
  (which can pair up like eyes)."""
  rng = np.random.default_rng(seed)
  h, w = shape
  out = [(f"noise{i}", rng.integers(0, 256, (h, w, 3), dtype=np.uint8)) for i in range(n_noise)]
  ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
  for i in range(n_texture):
    kind = ("smooth", "grating", "disks")[i % 3]
    if kind == "smooth":
      cell = (4, 8, 16, 32, 64)[(i // 3) % 5]
      small = rng.random((h // cell + 2, w // cell + 2, 3)).astype(np.float32)
      img = cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)
    elif kind == "grating":
      img = np.zeros((h, w, 3), np.float32)
      for _ in range(2):
        theta, period = rng.uniform(0, np.pi), rng.uniform(8, 80)
        wave = np.sin(2 * np.pi * (xs * np.cos(theta) + ys * np.sin(theta)) / period)
        img += wave[..., None] * rng.uniform(0.1, 0.3, 3)
      img += 0.5
    else:
      img = np.ones((h, w, 3), np.float32) * rng.random(3)
      for _ in range(int(rng.integers(10, 60))):
        centre = (int(rng.integers(0, w)), int(rng.integers(0, h)))
        cv2.circle(img, centre, int(rng.integers(4, 60)), rng.random(3).tolist(), -1)
    out.append((f"{kind}{i}", (255 * np.clip(img, 0, 1)).astype(np.uint8)))
  return out


def skimage_no_face() -> list[tuple[str, np.ndarray]]:
  """scikit-image's face-free sample photos that ship with it (none when it is missing)."""
  try:
    from skimage import data  # pylint: disable=g-import-not-at-top
  except ImportError:
    return []
  out = []
  for name in SKIMAGE_NO_FACE:
    try:
      img = np.asarray(getattr(data, name)())
    except Exception:  # pylint: disable=broad-except  (not shipped: would need a download)
      continue
    if img.dtype != np.uint8:
      img = img.astype(np.float64)
      img = (255 * (img - img.min()) / max(float(np.ptp(img)), 1e-9)).astype(np.uint8)
    if img.ndim == 2:
      img = np.repeat(img[..., None], 3, axis=-1)
    out.append((f"skimage.{name}", np.ascontiguousarray(img[..., :3])))
  return out


def no_face_images(no_face_dir, seed: int = 0) -> list[tuple[str, np.ndarray]]:
  real = [(p.name, images.load_rgb(p)) for p in images.list_images(no_face_dir)]
  return real + skimage_no_face() + synthetic_no_face(seed)
