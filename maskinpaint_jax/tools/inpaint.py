r"""Restores the faces in your own photos: finds every face, locates its mask, redraws it.

  python -m maskinpaint_jax.tools.inpaint PHOTO_OR_DIR [...] -o restored/ [--side_by_side] \
      [--save_hole] [--add_mask surgical|cloth|n95|random] [--workdir runs/x] [--step N] \
      [--seed S] [--face_finder mesh|hog] [--min_face_size 40]

Any size, JPEG or PNG, RGBA or grayscale, EXIF orientation honoured.
1. Faces: every face is found with 68 landmarks (`--face_finder mesh`, the default: MediaPipe's
   detector checked by its face mesh, which finds masked faces; `hog`: dlib HOG, the paper's,
   which misses most of them; see maskinpaint_jax/faces/mesh.py).
2. Hole: on a photo of a real masked face, the mask is located per face (maskinpaint_jax/faces/holes.py:
   Algorithm 1's geometry from the landmarks, refined by the photo's colours with GrabCut).
   `--add_mask` instead first puts a synthetic mask on each face (Algorithm 1), to try the model
   on unmasked photos; the hole is then known.
3. Restore: each face is cropped to the model's input exactly as the training data was (the
   same face-centred square, faces.align), restored (a non-blind model is given the hole map
   and never sees the mask's pixels), and pasted back into the full photo inside the hole only,
   with a feathered edge.
The generator is the shipped one (pretrained/) unless --workdir names a training workdir or an
exported model folder.

Writes <name>_restored.png (<name>_masked.png with --add_mask; <name>_hole.png with
--save_hole; <name>_side_by_side.png, input | hole | restored, with --side_by_side) into -o. A
face that is too small, cut by the frame or in profile gets its own message (SKIPPED) and the
photo's other faces are restored; a photo without a usable face gets a message (FAILED); the
batch always goes on. Exit status: 0 when every photo and every face found was restored, 1 when
anything was skipped or failed, 2 for a usage error (e.g. missing models).
"""

from __future__ import annotations

import pathlib
import sys

from absl import app, flags
import numpy as np

from maskinpaint_jax import faces
from maskinpaint_jax.faces import finders
from maskinpaint_jax.faces import holes as hole_lib
from maskinpaint_jax.faces import paste
from maskinpaint_jax import images as image_utils
from maskinpaint_jax import masks as mask_lib
from maskinpaint_jax.faces import mediapipe_models
from maskinpaint_jax import cli


def define_flags(fv: flags.FlagValues = flags.FLAGS):
  d = dict(flag_values=fv)
  flags.DEFINE_string("out", None, "Output folder.", short_name="o", required=True, **d)
  flags.DEFINE_string("workdir", None, "Training workdir or exported model folder (default: "
                      "pretrained/).", **d)
  flags.DEFINE_enum("add_mask", None, [*mask_lib.FACE_MASK_STYLES, "random"], "Put a synthetic "
                    "mask on every face first (the hole is then known).", **d)
  flags.DEFINE_bool("side_by_side", False, "Also write input | hole | restored side by side.",
                    **d)
  flags.DEFINE_bool("save_hole", False, "Also write the hole map that was filled (white = "
                    "restored).", **d)
  flags.DEFINE_integer("step", None, "Checkpoint step (default: newest).", **d)
  flags.DEFINE_integer("seed", 0, "Seeds --add_mask's colours and shading.", **d)
  flags.DEFINE_integer("min_face_size", 40, "Smaller faces are skipped with a message (px).", **d)
  flags.DEFINE_enum("face_finder", "mesh", list(faces.FINDERS), "mesh: finds masked faces "
                    "(default); hog: dlib HOG, the paper's.", **d)


class NoUsableFaceError(finders.NoFaceError):
  """Faces were found, but none can be restored; `problems` says why for each."""

  def __init__(self, problems: list[str]):
    super().__init__(f"no usable face ({len(problems)} found)")
    self.problems = problems


def describe_face(face, i: int, n: int) -> str:
  top, right, bottom, left = face.box
  return f"face {i} of {n} (at x={(left + right) // 2}, y={(top + bottom) // 2}, {face.size} px)"


def usable_faces(photo: np.ndarray, finder, min_face_size: int):
  """(faces to restore, one message per face that cannot be). Raises NoFaceError when there
  is nothing to restore."""
  found = finder.find_any_size(photo)
  if not found:
    raise finders.NoFaceError("no face found")
  usable, problems = [], []
  for i, face in enumerate(found, 1):
    problem = finders.face_problem(face, photo.shape, min_face_size)
    if problem:
      problems.append(f"{describe_face(face, i, len(found))}: {problem}")
    else:
      usable.append(face)
  if not usable:
    raise NoUsableFaceError(problems)
  return usable, problems


def expand_inputs(inputs) -> list[pathlib.Path]:
  paths = []
  for item in inputs:
    p = pathlib.Path(item)
    paths.extend(image_utils.list_images(p) if p.is_dir() else [p])
  return paths


def synthetic_masks(photo, found, f, key: str):
  """--add_mask: Algorithm 1's masks put on every face. (masked photo, one hole per face)."""
  rng = mask_lib.example_rng(f.seed, key)
  masked, holes = photo, []
  for face in found:
    style = None if f.add_mask == "random" else f.add_mask
    masked, hole, _ = mask_lib.apply_face_mask(masked, face.landmarks, rng, style)
    holes.append(hole)
  return masked, holes


def side_by_side(panels) -> np.ndarray:
  pad = np.full((panels[0].shape[0], 8, 3), 255, np.uint8)
  return np.concatenate(sum([[p, pad] for p in panels], [])[:-1], axis=1)


def process_file(path: pathlib.Path, finder, filler, size: int, f) -> dict:
  photo = image_utils.load_rgb(path)
  found, problems = usable_faces(photo, finder, f.min_face_size)
  out_dir, stem, written = pathlib.Path(f.out), path.stem, []
  save = lambda suffix, image: written.append(
      image_utils.save_png(out_dir / f"{stem}_{suffix}.png", image))
  if f.add_mask:
    masked, holes = synthetic_masks(photo, found, f, str(path))
    save("masked", masked)
  else:
    masked, holes = photo, [hole_lib.estimate_hole(photo, face.landmarks, source=face.source)
                            for face in found]
  union = np.maximum.reduce(holes)
  restored = paste.restore_faces(masked, found, holes, filler, size)
  save("restored", restored)
  if f.save_hole:
    save("hole", union * 255)
  if f.side_by_side:
    save("side_by_side", side_by_side([photo, paste.hole_overlay(masked, union), restored]))
  return {"faces": len(found), "written": [str(p) for p in written], "skipped": problems}


class SetupError(Exception):
  """Nothing can be restored (no model, no face finder): exit status 2."""


def load_tools(f):
  """(generator config, its filler, the face finder) that --workdir, --step, --face_finder
  name."""
  # Heavy imports only once the flags are parsed, so --help is instant.
  from maskinpaint_jax import checkpoint, inference  # pylint: disable=g-import-not-at-top
  try:
    config, g_params, step = checkpoint.load_generator(f.workdir, f.step)
  except (FileNotFoundError, ValueError) as e:
    raise SetupError(str(e)) from e
  filler = inference.make_filler(config.model, g_params, batch_size=1)
  try:
    finder = faces.make_finder(f.face_finder, min_face_size=f.min_face_size)
  except mediapipe_models.ModelMissingError as e:
    raise SetupError(f"--face_finder {f.face_finder}: {e}") from e
  print(f"generator: step {step} of {f.workdir or checkpoint.DEFAULT_PRETRAINED} "
        f"({config.data.image_size} px, {'non-blind' if config.model.non_blind else 'blind'}); "
        f"face finder {f.face_finder}")
  return config, filler, finder


def main(argv, f: flags.FlagValues = flags.FLAGS) -> int:
  if not argv:
    raise app.UsageError("name at least one photo or folder of photos", exitcode=2)
  try:
    config, filler, finder = load_tools(f)
  except SetupError as e:
    print(f"error: {e}", file=sys.stderr)
    return 2
  paths = expand_inputs(argv)
  failed = skipped = 0
  for path in paths:
    try:
      result = process_file(path, finder, filler, config.data.image_size, f)
      print(f"ok      {path}: {result['faces']} face(s) -> "
            + ", ".join(pathlib.Path(w).name for w in result["written"]))
      problems = result["skipped"]
    except (image_utils.ImageLoadError, finders.NoFaceError, OSError) as e:
      failed += 1
      print(f"FAILED  {path}: {e}", file=sys.stderr)
      problems = getattr(e, "problems", [])
    for problem in problems:
      skipped += 1
      print(f"SKIPPED {path}: {problem}", file=sys.stderr)
  print(f"{len(paths) - failed} of {len(paths)} photo(s) restored into {f.out}"
        + (f"; {failed} failed" if failed else "")
        + (f"; {skipped} face(s) skipped" if skipped else ""))
  return 1 if failed or skipped else 0


if __name__ == "__main__":
  define_flags()
  cli.run(main)
