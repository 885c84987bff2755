r"""Restores the faces in your own photos: finds every face, checks it wears a mask, locates
the mask, redraws the face under it.

  python -m maskinpaint_jax.tools.inpaint PHOTO_OR_DIR [...] -o restored/ [--side_by_side] \
      [--save_hole] [--hole FILE_OR_DIR] [--add_mask surgical|cloth|n95|random] \
      [--workdir runs/x] [--step N] [--seed S] [--face_finder mesh|hog] [--min_face_size 24]

Any size and any format Pillow reads (JPEG, .jfif, PNG, WebP, TIFF, BMP, GIF's first frame;
HEIC with pillow-heif), RGBA or grayscale, EXIF orientation honoured; a photo turned by 90, 180
or 270 degrees without a tag is set upright first. One photo's path is `faces.restore`:
1. Faces: every face is found with 68 landmarks (`--face_finder mesh`, the default: MediaPipe's
   detector checked by its face mesh, which finds masked faces; `hog`: dlib HOG, the paper's,
   which misses most of them). A face too small, cut by the frame or in profile is SKIPPED.
2. Mask or not: a face without a mask is left as it is and reported (NO MASK; not a failure).
3. Hole: the mask is located per face (faces/holes.py: Algorithm 1's geometry from the
   landmarks, refined by the photo's colours with GrabCut); or `--hole` gives it (white = hole,
   the photo's size; `--save_hole`'s output can be edited and given back); or `--add_mask` puts
   a synthetic mask on each face first (Algorithm 1), to try the model on unmasked photos.
4. Restore: each face is cropped as the training data was (faces/align.py), restored by the
   generator (a non-blind model never sees the mask's pixels), colour-matched to the photo
   around the hole, and pasted back inside the hole only, with a feathered edge.
The generator is the shipped one (pretrained/) unless --workdir names a training workdir or an
exported model folder. --large_model adds a generator of a larger input side for the faces
whose crop is at least that side in the photo (`paste.pick_generator`; measured by
`tools/bench_sizes`); by default the shipped 128 px model when pretrained/ has one and
--workdir is not given.

Writes <name>_restored.png (<name>_masked.png with --add_mask; <name>_hole.png, one channel
0/255, with --save_hole; <name>_side_by_side.png, input | hole | restored, with --side_by_side)
into -o, keeping the sub-folders of a folder given; two inputs of one folder with the same name
but another extension get it in their names (p_jpg_..., p_png_...). Names that would still
collide are an error naming both inputs, before any work; the same file given twice is done
once. Every file is accounted for: the last line counts restored + no mask + no face + unreadable
= total. Exit status: 0 when every photo was restored or has no mask, 1 when a photo was
unreadable or had no usable face, or a face was skipped, 2 for a usage error (e.g. missing
models, an output folder that cannot be written).
"""
from __future__ import annotations

import dataclasses
import glob
import os
import pathlib
import sys
from typing import Any

from absl import app, flags
import numpy as np

from maskinpaint_jax import faces
from maskinpaint_jax.faces import finders
from maskinpaint_jax.faces import paste, restore
from maskinpaint_jax import images as image_utils
from maskinpaint_jax import masks as mask_lib
from maskinpaint_jax.faces import mediapipe_models
from maskinpaint_jax import cli


def define_flags(fv: flags.FlagValues = flags.FLAGS):
  d = dict(flag_values=fv)
  flags.DEFINE_string("out", None, "Output folder.", short_name="o", required=True, **d)
  flags.DEFINE_string("workdir", None, "Training workdir or exported model folder (default: "
                      "pretrained/).", **d)
  flags.DEFINE_string("large_model", None, "Exported model folder or workdir of a larger input "
                      "side, for the faces whose crop is at least that side (default: the "
                      "shipped 128 px model when there is one and --workdir is not given; "
                      "'none': never).", **d)
  flags.DEFINE_enum("add_mask", None, [*mask_lib.FACE_MASK_STYLES, "random"], "Put a synthetic "
                    "mask on every face first (the hole is then known).", **d)
  flags.DEFINE_bool("side_by_side", False, "Also write input | hole | restored side by side.",
                    **d)
  flags.DEFINE_bool("save_hole", False, "Also write the hole map that was filled (one channel, "
                    "white = restored; edit it and give it back with --hole).", **d)
  flags.DEFINE_string("hole", None, "Your own hole map (white = hole, the photo's size): one "
                      "file for one photo, or a folder of maps named as the photos (or as "
                      "--save_hole names them).", **d)
  flags.DEFINE_bool("mask_check", True, "Leave faces without a mask untouched (--nomask_check "
                    "restores every face found).", **d)
  flags.DEFINE_integer("step", None, "Checkpoint step (default: newest).", **d)
  flags.DEFINE_integer("seed", 0, "Seeds --add_mask's colours and shading.", **d)
  flags.DEFINE_integer("min_face_size", 24, "Smaller faces are skipped with a message (px); "
                       "a small face is upscaled to the generator's input and looks soft.", **d)
  flags.DEFINE_enum("face_finder", "mesh", list(faces.FINDERS), "mesh: finds masked faces "
                    "(default); hog: dlib HOG, the paper's.", **d)


@dataclasses.dataclass(frozen=True)
class Job:
  """One input photo and where its results go: out / `stem` + "_restored.png" etc."""
  path: pathlib.Path
  stem: pathlib.Path      # relative to the output folder, no suffix
  rel: pathlib.Path       # the photo relative to the folder it was found in (or its name)


def plan_jobs(inputs) -> list[Job]:
  """Every file of every input (folders recursively), each once, with output names that never
  collide.

  Raises:
    app.UsageError: a missing input, or two inputs whose outputs would share a name.
  """
  found: dict[pathlib.Path, pathlib.Path] = {}  # resolved path -> path relative to its root
  order = []
  for item in inputs:
    p = pathlib.Path(item)
    if p.is_dir():
      pairs = [(f, f.relative_to(p)) for f in image_utils.list_files(p)]
    elif p.exists() or p.is_symlink():
      pairs = [(p, pathlib.Path(p.name))]
    else:
      raise app.UsageError(f"{p}: no such file or folder", exitcode=2)
    for path, rel in pairs:
      key = path.resolve() if path.exists() else path.absolute()
      if key not in found:
        found[key] = rel
        order.append((path, rel))
  by_stem: dict[pathlib.Path, list] = {}
  for path, rel in order:
    by_stem.setdefault(rel.with_suffix(""), []).append((path, rel))
  jobs, taken = [], {}
  for stem, group in by_stem.items():
    for path, rel in group:
      suffixes = {r.suffix.lower() for _, r in group}
      out = stem if len(group) == 1 else (
          stem.parent / f"{stem.name}_{rel.suffix.lstrip('.').lower() or 'noext'}"
          if len(suffixes) == len(group) else None)
      if out is None or out in taken:
        first, second = (taken[out], path) if out in taken else [q for q, _ in group][:2]
        raise app.UsageError(f"{first} and {second} would both be written as {stem.name}_*.png "
                             "in the output folder: restore them into separate -o folders",
                             exitcode=2)
      taken[out] = path
      jobs.append(Job(path, out, rel))
  return jobs


def check_out_dir(out: str) -> pathlib.Path:
  """The output folder, created and writable, before any model work (else a usage error)."""
  path = pathlib.Path(out)
  try:
    path.mkdir(parents=True, exist_ok=True)
  except OSError as e:
    raise app.UsageError(f"-o {out}: cannot create the output folder ({e.strerror or e})",
                         exitcode=2) from None
  if not os.access(path, os.W_OK | os.X_OK):
    raise app.UsageError(f"-o {out}: the output folder is not writable", exitcode=2)
  return path


def check_hole_flag(hole: str | None, jobs: list[Job]):
  """--hole names a file (for one photo) or a folder, before any work (else a usage error)."""
  if hole and not pathlib.Path(hole).exists():
    raise app.UsageError(f"--hole {hole}: no such file or folder", exitcode=2)
  if hole and pathlib.Path(hole).is_file() and len(jobs) != 1:
    raise app.UsageError("--hole is one file: give one photo, or a folder of hole maps named "
                         "as the photos", exitcode=2)


def hole_file(job: Job, hole: str | None) -> pathlib.Path | None:
  """The user's hole map for this photo: --hole itself when it is a file (one photo only), else
  the file in that folder (same sub-folder) named as the photo, or as --save_hole names it."""
  if not hole:
    return None
  h = pathlib.Path(hole)
  if h.is_file():
    return h
  folder = h / job.rel.parent
  for name in (job.rel.stem, f"{job.rel.stem}_hole", f"{job.stem.name}_hole"):
    matches = sorted(folder.glob(f"{glob.escape(name)}.*"))
    if matches:
      return matches[0]
  return None


def side_by_side(panels) -> np.ndarray:
  pad = np.full((panels[0].shape[0], 8, 3), 255, np.uint8)
  return np.concatenate(sum([[p, pad] for p in panels], [])[:-1], axis=1)


def process_file(job: Job, tools: "Tools", f) -> dict:
  """Restores one photo and writes its results. Returns {"restoration", "written", "notes"}.

  Raises:
    image_utils.ImageLoadError: the photo (or its hole map) cannot be read.
    finders.NoFaceError: no face in it.
  """
  photo = image_utils.load_rgb(job.path)
  notes = []
  if (frames := image_utils.frame_count(job.path)) > 1:
    notes.append(f"{frames} frames: the first one restored")
  hole = None
  if (path := hole_file(job, f.hole)) is not None:
    hole = image_utils.load_hole(path, photo.shape[:2])
    borders = (hole[0].any(), hole[-1].any(), hole[:, 0].any(), hole[:, -1].any())
    if hole.mean() > 0.5 and all(borders):  # a mask alone never reaches all four edges
      notes.append(f"the hole {path.name} covers {100 * hole.mean():.0f} % of the photo: "
                   "inverted? (white marks the hole)")
  elif f.hole:
    notes.append("no hole file for it in --hole: hole estimated")
  result = restore.restore_photo(
      photo, tools.finder, tools.filler, tools.size, hole=hole, add_mask=f.add_mask,
      rng=mask_lib.example_rng(f.seed, str(job.path)), min_face_size=f.min_face_size,
      checker=tools.checker, more_generators=tools.more_generators)
  if result.rotation:
    notes.append(f"turned {result.rotation} degrees to find the faces upright")
  written = []
  if result.changed:
    out_dir = pathlib.Path(f.out)
    save = lambda suffix, image: written.append(
        image_utils.save_png(out_dir / f"{job.stem}_{suffix}.png", image))
    if f.add_mask:
      save("masked", result.masked)
    save("restored", result.restored)
    if f.save_hole:
      save("hole", result.hole * 255)
    if f.side_by_side:
      save("side_by_side", side_by_side(
          [photo, paste.hole_overlay(result.masked, result.hole), result.restored]))
  return {"restoration": result, "written": [str(p) for p in written], "notes": notes}


class SetupError(Exception):
  """Nothing can be restored (no model, no face finder): exit status 2."""


@dataclasses.dataclass(frozen=True)
class Tools:
  """What restoring needs, loaded once: the generator (`filler`, input side `size`), the face
  finder and the face check (upright? mask?), a line that names them, and generators of other
  input sides (`paste.Generator`s) for faces of other sizes."""
  size: int
  filler: Any
  finder: Any
  checker: Any
  description: str
  more_generators: tuple = ()


def load_large_model(large_model: str | None, workdir=None) -> tuple[tuple, str]:
  """((the `paste.Generator` of `large_model`,), a note naming it), or ((), "") for "none".
  None means the shipped 128 px model, when pretrained/ has one and the main generator is the
  shipped one (`workdir` None); else none.

  Raises:
    SetupError: the model cannot be loaded.
  """
  from maskinpaint_jax import checkpoint, inference  # pylint: disable=g-import-not-at-top
  if large_model is None:
    shipped = checkpoint.PRETRAINED_ROOT / "face_mask_128"
    large_model = (str(shipped) if workdir is None and (shipped / checkpoint.MANIFEST).is_file()
                   else "none")
  if large_model == "none":
    return (), ""
  try:
    config, params, step = checkpoint.load_generator(large_model)
  except (FileNotFoundError, ValueError) as e:
    raise SetupError(f"--large_model: {e}") from e
  side = config.data.image_size
  return ((paste.Generator(inference.make_filler(config.model, params, 1), side),),
          f"; for faces of {side} px crops and more: step {step} of {large_model} ({side} px)")


def load_tools(workdir=None, step=None, face_finder="mesh", min_face_size=24,
               mask_check=True, large_model: str | None = None) -> Tools:
  """The generator of `workdir` (default: the shipped model) at `step`, the face finder named,
  and the shipped face check (None with mask_check=False: every face is restored).
  `large_model`: a generator of a larger input side for larger faces, as
  `load_large_model` reads it (None: the shipped one, if any; "none": none).

  Raises:
    SetupError: a model or the finder's models cannot be loaded.
  """
  # Heavy imports only once the flags are parsed, so --help is instant.
  from maskinpaint_jax import checkpoint, inference  # pylint: disable=g-import-not-at-top
  try:
    config, g_params, loaded_step = checkpoint.load_generator(workdir, step)
  except (FileNotFoundError, ValueError) as e:
    raise SetupError(str(e)) from e
  filler = inference.make_filler(config.model, g_params, batch_size=1)
  more, large_note = load_large_model(large_model, workdir)
  try:
    finder = faces.make_finder(face_finder, min_face_size=min_face_size)
  except mediapipe_models.ModelMissingError as e:
    raise SetupError(f"--face_finder {face_finder}: {e}") from e
  checker = None
  if mask_check:
    from maskinpaint_jax.faces import check  # pylint: disable=g-import-not-at-top
    try:
      checker = check.load()
    except (FileNotFoundError, ValueError) as e:
      raise SetupError(f"face check: {e}") from e
  description = (f"generator: step {loaded_step} of {workdir or checkpoint.DEFAULT_PRETRAINED} "
                 f"({config.data.image_size} px, "
                 f"{'non-blind' if config.model.non_blind else 'blind'}){large_note}; face "
                 f"finder {face_finder}; mask check {'on' if checker else 'off'}")
  return Tools(config.data.image_size, filler, finder, checker, description, more)


def main(argv, f: flags.FlagValues = flags.FLAGS) -> int:
  if not argv:
    raise app.UsageError("name at least one photo or folder of photos", exitcode=2)
  jobs = plan_jobs(argv)
  check_hole_flag(f.hole, jobs)
  check_out_dir(f.out)
  try:
    tools = load_tools(f.workdir, f.step, f.face_finder, f.min_face_size, f.mask_check,
                       f.large_model)
  except SetupError as e:
    print(f"error: {e}", file=sys.stderr)
    return 2
  print(tools.description)
  counts = dict.fromkeys(("restored", "no mask", "no face", "unreadable"), 0)
  skipped = 0
  for job in jobs:
    kind, lines = run_job(job, tools, f)
    counts[kind] += 1
    for stream, line in lines:
      print(line, file=sys.stderr if stream == "err" else sys.stdout)
      skipped += line.startswith("SKIPPED")
  print(" + ".join(f"{n} {k}" for k, n in counts.items()) + f" = {len(jobs)} file(s), into "
        f"{f.out}" + (f"; {skipped} face(s) skipped" if skipped else ""))
  return 1 if counts["no face"] or counts["unreadable"] or skipped else 0


def run_job(job: Job, tools: Tools, f) -> tuple[str, list[tuple[str, str]]]:
  """(what became of the photo: "restored", "no mask", "no face" or "unreadable", the lines to
  print as (stream, text)). Never raises for a bad photo: the batch always goes on."""
  try:
    out = process_file(job, tools, f)
  except image_utils.ImageLoadError as e:
    return "unreadable", [("err", f"FAILED  {job.path}: unreadable: {e}")]
  except finders.NoFaceError as e:
    return "no face", [("err", f"FAILED  {job.path}: {e}")]
  result = out["restoration"]
  n = len(result.faces)
  lines = [("out", f"note    {job.path}: {note}") for note in out["notes"]]
  lines += [("err" if r.status == restore.SKIPPED else "out",
             f"{'SKIPPED' if r.status == restore.SKIPPED else 'NO MASK'} {job.path}: "
             f"{r.describe(n)}") for r in result.faces if r.status != restore.RESTORED]
  if result.changed:
    names = ", ".join(str(pathlib.Path(w).relative_to(f.out)) for w in out["written"])
    return "restored", [("out", f"ok      {job.path}: {result.count(restore.RESTORED)} of {n} "
                         f"face(s) restored -> {names}")] + lines
  if result.count(restore.NO_MASK):
    return "no mask", [("out", f"ok      {job.path}: no mask found on its {n} face(s): left "
                        "as it is")] + lines
  return "no face", [("err", f"FAILED  {job.path}: no usable face ({n} found)")] + lines


if __name__ == "__main__":
  define_flags()
  cli.run(main)
