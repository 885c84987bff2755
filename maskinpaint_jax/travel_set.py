r"""A training set that travels: aligned face crops and their 68 landmarks in a few small files.

A built dataset (`tools/build`: TFDS ArrayRecord, hundreds of MB with its masked copies and hole
maps) is too large to send to a machine that is lent for minutes. What training needs of it is
the clean aligned crop and its landmarks: the masks are drawn from the landmarks by Algorithm 1
on the machine itself (`input_pipeline.redraw_face_mask`, as `data.fresh_masks` does), and a test
split's masks are the build's own, drawn again from the same seed and example id
(`masks.example_rng`). So a travel set holds, per split, `<split>.npz`:

- `images`: the crops, each encoded as WebP or JPEG (uint8 bytes, concatenated), `offsets`
  (N + 1,) int64 into them;
- `landmarks` (N, 68, 2) float32 in the crop's pixels; `ids` (N,) the build's example ids;

and `travel.json` (format, quality, side, counts, the measured PSNR loss of the encoding).
`choose_encoding` picks the format and quality: the highest PSNR whose estimated total size
fits the budget.
"""

from __future__ import annotations

import json
import pathlib

import cv2
import numpy as np

from maskinpaint_jax import photo_scores

FORMATS = {"webp": (".webp", cv2.IMWRITE_WEBP_QUALITY), "jpeg": (".jpg", cv2.IMWRITE_JPEG_QUALITY)}
QUALITIES = (95, 90, 85, 80, 75, 70, 60, 50)
MANIFEST = "travel.json"


def encode(image: np.ndarray, fmt: str, quality: int) -> bytes:
  """(S, S, 3) uint8 RGB -> the bytes of a WebP or JPEG file."""
  suffix, flag = FORMATS[fmt]
  ok, buf = cv2.imencode(suffix, np.ascontiguousarray(image[..., ::-1]), [flag, int(quality)])
  if not ok:
    raise ValueError(f"cannot encode as {fmt}")
  return buf.tobytes()


def decode(data: bytes) -> np.ndarray:
  """The bytes of a WebP or JPEG file -> (S, S, 3) uint8 RGB."""
  image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
  if image is None:
    raise ValueError("cannot decode a travel-set image")
  return np.ascontiguousarray(image[..., ::-1])


# What each crop carries besides its image: 68 float32 landmarks and its id (about 40 bytes).
OVERHEAD_PER_CROP = 68 * 2 * 4 + 48


def choose_encoding(sample: list[np.ndarray], total: int, max_bytes: int) -> dict:
  """The (format, quality) of highest mean PSNR whose size, extrapolated from `sample` to
  `total` crops with their landmarks and ids (OVERHEAD_PER_CROP), is at most `max_bytes`; with
  every candidate measured.

  Raises:
    ValueError: no candidate fits.
  """
  candidates = []
  for fmt in FORMATS:
    for quality in QUALITIES:
      sizes, losses = [], []
      for image in sample:
        data = encode(image, fmt, quality)
        sizes.append(len(data))
        losses.append(photo_scores.psnr(decode(data), image))
      candidates.append(dict(format=fmt, quality=quality, psnr=float(np.mean(losses)),
                             bytes_per_image=float(np.mean(sizes)),
                             estimated_bytes=int((np.mean(sizes) + OVERHEAD_PER_CROP) * total)))
  fitting = [c for c in candidates if c["estimated_bytes"] <= max_bytes]
  if not fitting:
    smallest = min(candidates, key=lambda c: c["estimated_bytes"])
    raise ValueError(f"{total} images do not fit in {max_bytes / 2**20:.1f} MiB: the smallest "
                     f"encoding ({smallest['format']} q{smallest['quality']}) needs "
                     f"{smallest['estimated_bytes'] / 2**20:.1f} MiB")
  best = max(fitting, key=lambda c: c["psnr"])
  return dict(best, candidates=candidates)


def write_split(out: pathlib.Path, split: str, images, landmarks, ids, fmt: str,
                quality: int) -> dict:
  """Writes OUT/<split>.npz; returns {"count", "bytes", "psnr"} (mean PSNR of the encoding)."""
  blobs = [encode(im, fmt, quality) for im in images]
  losses = [photo_scores.psnr(decode(b), im) for b, im in zip(blobs, images)]
  offsets = np.cumsum([0] + [len(b) for b in blobs]).astype(np.int64)
  path = pathlib.Path(out) / f"{split}.npz"
  np.savez(path, images=np.frombuffer(b"".join(blobs), np.uint8), offsets=offsets,
           landmarks=np.asarray(landmarks, np.float32), ids=np.asarray(ids))
  return dict(count=len(blobs), bytes=path.stat().st_size, psnr=float(np.mean(losses)))


class TravelSource:
  """A random-access source over one split of a travel set, in the built datasets' layout
  (`image`, `masked`, `mask`, `mask_type`, `id`, `landmarks`): the crop decoded, and the face
  mask Algorithm 1 draws for this example id with `seed` (the build's own mask for seed 0).
  Grain's MapDataset.source takes it as it takes a built split."""

  def __init__(self, folder, split: str, seed: int = 0):
    with np.load(pathlib.Path(folder) / f"{split}.npz") as data:
      self._images, self._offsets = data["images"], data["offsets"]
      self._landmarks, self._ids = data["landmarks"], data["ids"]
    self.seed = seed

  def __len__(self) -> int:
    return len(self._landmarks)

  def __getitem__(self, index: int) -> dict:
    from maskinpaint_jax import masks  # pylint: disable=g-import-not-at-top
    start, end = self._offsets[index], self._offsets[index + 1]
    clean = decode(self._images[start:end].tobytes())
    example_id = self._ids[index]
    example_id = example_id.decode() if isinstance(example_id, bytes) else str(example_id)
    masked, hole, style = masks.apply_face_mask(
        clean, self._landmarks[index], masks.example_rng(self.seed, example_id))
    return dict(image=clean, masked=masked, mask=(hole[..., None] * 255).astype(np.uint8),
                mask_type=masks.MASK_TYPES.index(style), id=example_id.encode(),
                landmarks=self._landmarks[index])


def read_manifest(folder) -> dict:
  return json.loads((pathlib.Path(folder) / MANIFEST).read_text())
