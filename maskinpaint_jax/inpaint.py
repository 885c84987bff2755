r"""Restores the faces in your own photos with a trained generator.

  python -m maskinpaint_jax.inpaint PHOTO_OR_DIR [...] --workdir runs/paper -o restored/ \
      [--add-mask surgical|cloth|n95|random] [--side-by-side] [--step N] [--seed S]

Any size, JPEG or PNG, RGBA or grayscale, EXIF orientation honoured. Every face is found (dlib
HOG + 68 landmarks), cropped to the model's input exactly as the training data was (the same
face-centred square, data_prep.faces), restored, and pasted back into the full photo with a
feathered edge. `--add-mask` first puts a synthetic mask on each face (Algorithm 1), to try the
model on unmasked photos; the hole is then known and only it is replaced. On a photo of a real
masked face the hole is unknown (the model is blind, as in the paper): the region pasted back
is where the restoration differs clearly from the input.

Writes <name>_restored.png (and <name>_masked.png with --add-mask; <name>_side_by_side.png with
--side-by-side) into -o. A photo without a face gets a message and the batch goes on; the exit
status is 1 if any file failed, else 0.
"""

from __future__ import annotations

import argparse
import pathlib
import sys

import cv2
import numpy as np

from data_prep import faces as face_lib
from data_prep import images as image_utils
from data_prep import masks as mask_lib

# Blind mode: a crop pixel belongs to the restored region when the (blurred) mean absolute
# change is above this many 8-bit levels.
CHANGE_THRESHOLD = 24.0


def parse_args(argv=None):
  p = argparse.ArgumentParser(prog="python -m maskinpaint_jax.inpaint",
                              description=__doc__.split("\n")[0])
  p.add_argument("inputs", nargs="+", help="photos and/or folders of photos")
  p.add_argument("--workdir", required=True, help="training workdir holding the checkpoints")
  p.add_argument("-o", "--out", required=True, help="output folder")
  p.add_argument("--add-mask", dest="add_mask", default=None,
                 choices=mask_lib.FACE_MASK_STYLES + ("random",),
                 help="put a synthetic mask on every face first")
  p.add_argument("--side-by-side", dest="side_by_side", action="store_true",
                 help="also write input | restored (| original) side by side")
  p.add_argument("--step", type=int, default=None, help="checkpoint step (default: newest)")
  p.add_argument("--seed", type=int, default=0, help="seeds --add-mask's colours and shading")
  p.add_argument("--min_face_size", type=int, default=40, help="ignore smaller faces (px)")
  return p.parse_args(argv)


def expand_inputs(inputs) -> list[pathlib.Path]:
  paths = []
  for item in inputs:
    p = pathlib.Path(item)
    paths.extend(image_utils.list_images(p) if p.is_dir() else [p])
  return paths


def feathered_alpha(region: np.ndarray, face_size: float) -> np.ndarray:
  """A soft-edged [0, 1] alpha from a binary region: grown a little, then blurred, so the
  pasted restoration fades into the photo instead of showing a seam."""
  grow = max(1, int(round(face_size * 0.03)))
  kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * grow + 1, 2 * grow + 1))
  alpha = cv2.dilate(region.astype(np.uint8), kernel).astype(np.float32)
  blur = 2 * grow + 1
  return np.clip(cv2.GaussianBlur(alpha, (blur, blur), 0), 0.0, 1.0)


def changed_region(restored: np.ndarray, masked: np.ndarray) -> np.ndarray:
  """Blind mode: where the restoration clearly differs from the input (crop resolution)."""
  diff = np.abs(restored.astype(np.float32) - masked.astype(np.float32)).mean(axis=-1)
  diff = cv2.GaussianBlur(diff, (5, 5), 0)
  region = (diff > CHANGE_THRESHOLD).astype(np.uint8)
  kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (5, 5))
  region = cv2.morphologyEx(region, cv2.MORPH_OPEN, kernel)
  return cv2.morphologyEx(region, cv2.MORPH_CLOSE, kernel)


def restore_faces(photo: np.ndarray, found, restorer, size: int, *, holes=None) -> np.ndarray:
  """Restores each face of `photo` (uint8 RGB) in turn and pastes it back.

  `holes`: one full-resolution {0,1} hole map per face when known (--add-mask), else None.
  """
  out = photo.copy()
  h, w = photo.shape[:2]
  for i, face in enumerate(found):
    matrix = face_lib.crop_matrix(face.landmarks, size, photo.shape)
    crop = face_lib.warp_crop(out, matrix, size)
    if holes is not None:
      hole_crop = (cv2.warpAffine(holes[i].astype(np.float32), matrix, (size, size),
                                  flags=cv2.INTER_LINEAR) > 0.25).astype(np.uint8)
    else:
      hole_crop = np.zeros((size, size), np.uint8)
    raw, _ = restorer(crop[None], hole_crop[None, ..., None])
    raw = raw[0]
    # Back to photo coordinates: each photo pixel reads the crop where the matrix sends it.
    raw_up = cv2.warpAffine(raw, matrix, (w, h), flags=cv2.INTER_CUBIC | cv2.WARP_INVERSE_MAP,
                            borderMode=cv2.BORDER_REPLICATE)
    if holes is not None:
      region = holes[i]
    else:
      region = cv2.warpAffine(changed_region(raw, crop), matrix, (w, h),
                              flags=cv2.INTER_NEAREST | cv2.WARP_INVERSE_MAP)
    alpha = feathered_alpha(region, face_lib.crop_square(face.landmarks)[2] / face_lib.CROP_SCALE)
    out = np.clip(np.round(out * (1 - alpha[..., None]) + raw_up * alpha[..., None]), 0,
                  255).astype(np.uint8)
  return out


def process_file(path: pathlib.Path, finder, restorer, size: int, args) -> dict:
  photo = image_utils.load_rgb(path)
  found = finder.find_all(photo)
  if not found:
    raise face_lib.NoFaceError(f"no face found (min size {finder.min_face_size} px)")
  out_dir = pathlib.Path(args.out)
  stem = path.stem
  written = []
  if args.add_mask:
    rng = mask_lib.example_rng(args.seed, str(path))
    masked, holes = photo, []
    for face in found:
      style = None if args.add_mask == "random" else args.add_mask
      masked, hole, _ = mask_lib.apply_face_mask(masked, face.landmarks, rng, style)
      holes.append(hole)
    written.append(image_utils.save_png(out_dir / f"{stem}_masked.png", masked))
    restored = restore_faces(masked, found, restorer, size, holes=holes)
    panels = [photo, masked, restored]
  else:
    restored = restore_faces(photo, found, restorer, size)
    panels = [photo, restored]
  written.append(image_utils.save_png(out_dir / f"{stem}_restored.png", restored))
  if args.side_by_side:
    pad = np.full((photo.shape[0], 8, 3), 255, np.uint8)
    side = np.concatenate(sum([[p, pad] for p in panels], [])[:-1], axis=1)
    written.append(image_utils.save_png(out_dir / f"{stem}_side_by_side.png", side))
  return {"faces": len(found), "written": [str(p) for p in written]}


def main(argv=None) -> int:
  args = parse_args(argv)
  # Heavy imports after argument parsing, so --help is instant.
  from maskinpaint_jax import checkpoint, inference  # pylint: disable=g-import-not-at-top
  config, g_params, step = checkpoint.restore_generator(args.workdir, args.step)
  if config.model.non_blind and not args.add_mask:
    print("error: this checkpoint is a non-blind model (it needs the hole map): use --add-mask",
          file=sys.stderr)
    return 2
  size = config.data.image_size
  restorer = inference.make_restorer(config.model, g_params, batch_size=1)
  finder = face_lib.FaceFinder(min_face_size=args.min_face_size)
  paths = expand_inputs(args.inputs)
  print(f"generator: step {step} of {args.workdir} ({size} px); {len(paths)} photo(s)")
  failed = 0
  for path in paths:
    try:
      result = process_file(path, finder, restorer, size, args)
      print(f"ok      {path}: {result['faces']} face(s) -> "
            + ", ".join(pathlib.Path(w).name for w in result["written"]))
    except (image_utils.ImageLoadError, face_lib.NoFaceError, OSError) as e:
      failed += 1
      print(f"FAILED  {path}: {e}", file=sys.stderr)
  print(f"{len(paths) - failed} of {len(paths)} photo(s) restored into {args.out}"
        + (f"; {failed} failed" if failed else ""))
  return 1 if failed else 0


if __name__ == "__main__":
  sys.exit(main())
