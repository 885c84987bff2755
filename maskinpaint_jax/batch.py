"""Photos in, files out: the folder side of restoring, shared by `maskinpaint inpaint` and the page.

`plan_jobs` turns the paths a user gives into one `Job` per photo (folders recursively, output
names that never collide; system files and the output folder itself left out), and `run_job`
restores one photo with a `restorer.Restorer` and writes its files, returning what became of it
and the lines to report. A batch keeps a list of the photos it has finished in the output folder
(`DONE_LIST`), so `skip_existing` continues an interrupted batch where it stopped.
"""

from __future__ import annotations

import dataclasses
import glob
import os
import pathlib

import numpy as np

from maskinpaint_jax import errors
from maskinpaint_jax import images as image_utils
from maskinpaint_jax.faces import finders, paste, restore

# Files that operating systems and file managers leave in folders: never photos.
SYSTEM_FILES = frozenset({"thumbs.db", "ehthumbs.db", "desktop.ini", "icon\r", ".ds_store"})
DONE_LIST = ".maskinpaint-done.tsv"  # in the output folder: "<kind>\t<photo path>" per photo
KINDS = ("restored", "no mask", "no face", "unreadable", "wrong hole")


@dataclasses.dataclass(frozen=True)
class Job:
  """One input photo and where its results go: out / `stem` + "_restored.png" etc."""
  path: pathlib.Path
  stem: pathlib.Path      # relative to the output folder, no suffix
  rel: pathlib.Path       # the photo relative to the folder it was found in (or its name)


@dataclasses.dataclass(frozen=True)
class Options:
  """What to write for each photo and how to restore it (inpaint's flags of the same names)."""
  out: str
  hole: str | None = None         # a hole map file (one photo) or a folder of them
  add_mask: str | None = None     # put a synthetic mask on first: "surgical" ... or "random"
  save_hole: bool = False
  side_by_side: bool = False
  seed: int = 0


@dataclasses.dataclass
class Plan:
  """`jobs` to run; `system_files`: files left out as operating-system files (never photos)."""
  jobs: list[Job]
  system_files: list[pathlib.Path]


def is_system_file(rel: pathlib.Path) -> bool:
  """Hidden files and folders (.DS_Store, macOS's ._photo.jpg, .git/...) and Windows' Thumbs.db
  and desktop.ini: left out of a folder's photos, named, and never counted as failures."""
  return (rel.name.lower() in SYSTEM_FILES
          or any(part.startswith(".") or part == "__MACOSX" for part in rel.parts))


def _inside(path: pathlib.Path, folder: pathlib.Path | None) -> bool:
  return folder is not None and path.resolve().is_relative_to(folder)


def plan_jobs(inputs, out: str | os.PathLike | None = None) -> Plan:
  """Every file of every input (folders recursively), each once, with output names that never
  collide. Files under `out` (an output folder inside an input folder) are never inputs.

  Raises:
    errors.UsageError: a missing input, or two inputs whose outputs would share a name.
  """
  out_dir = pathlib.Path(out).resolve() if out else None
  found: dict[pathlib.Path, pathlib.Path] = {}  # resolved path -> path relative to its root
  order, system = [], []
  for item in inputs:
    p = pathlib.Path(item)
    if p.is_dir():
      pairs = [(f, f.relative_to(p)) for f in image_utils.list_files(p)
               if not _inside(f, out_dir)]
      system += [f for f, rel in pairs if is_system_file(rel)]
      pairs = [(f, rel) for f, rel in pairs if not is_system_file(rel)]
    elif p.exists() or p.is_symlink():
      pairs = [(p, pathlib.Path(p.name))]
    else:
      raise errors.UsageError(f"{p}: no such file or folder")
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
      name = stem if len(group) == 1 else (
          stem.parent / f"{stem.name}_{rel.suffix.lstrip('.').lower() or 'noext'}"
          if len(suffixes) == len(group) else None)
      if name is None or name in taken:
        first, second = (taken[name], path) if name in taken else [q for q, _ in group][:2]
        raise errors.UsageError(f"{first} and {second} would both be written as "
                                f"{stem.name}_*.png in the output folder: restore them into "
                                "separate output folders")
      taken[name] = path
      jobs.append(Job(path, name, rel))
  return Plan(jobs, system)


def check_out_dir(out: str) -> pathlib.Path:
  """The output folder, created and writable, before any model work.

  Raises:
    errors.UsageError: it cannot be created or written.
  """
  path = pathlib.Path(out)
  try:
    path.mkdir(parents=True, exist_ok=True)
  except OSError as e:
    raise errors.UsageError(f"-o {out}: cannot create the output folder ({e.strerror or e})"
                            ) from None
  if not os.access(path, os.W_OK | os.X_OK):
    raise errors.UsageError(f"-o {out}: the output folder is not writable")
  return path


def check_hole_option(hole: str | None, jobs: list[Job]):
  """A hole option names a file (for one photo) or a folder, before any work.

  Raises:
    errors.UsageError: it names nothing, or one file for several photos.
  """
  if hole and not pathlib.Path(hole).exists():
    raise errors.UsageError(f"--hole {hole}: no such file or folder")
  if hole and pathlib.Path(hole).is_file() and len(jobs) != 1:
    raise errors.UsageError("--hole is one file: give one photo, or a folder of hole maps "
                            "named as the photos")


def hole_file(job: Job, hole: str | None) -> pathlib.Path | None:
  """The user's hole map for this photo: `hole` itself when it is a file (one photo only), else
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
  """Panels of one height, left to right, 8 white px apart."""
  pad = np.full((panels[0].shape[0], 8, 3), 255, np.uint8)
  return np.concatenate(sum([[p, pad] for p in panels], [])[:-1], axis=1)


def process_file(job: Job, restorer, opts: Options) -> dict:
  """Restores one photo and writes its results. Returns {"restoration", "written", "notes"}.

  Raises:
    images.ImageLoadError: the photo (or its hole map) cannot be read.
    images.HoleSizeError: the hole map is not the photo's size.
    finders.NoFaceError: no face in it.
  """
  photo = image_utils.load_rgb(job.path)
  notes = []
  if (frames := image_utils.frame_count(job.path)) > 1:
    notes.append(f"{frames} frames: the first one restored")
  hole = None
  if (path := hole_file(job, opts.hole)) is not None:
    hole = image_utils.load_hole(path, photo.shape[:2])
    borders = (hole[0].any(), hole[-1].any(), hole[:, 0].any(), hole[:, -1].any())
    if hole.mean() > 0.5 and all(borders):  # a mask alone never reaches all four edges
      notes.append(f"the hole {path.name} covers {100 * hole.mean():.0f} % of the photo: "
                   "inverted? (white marks the hole)")
  elif opts.hole:
    notes.append("no hole file for it in --hole: hole estimated")
  result = restorer.restore(photo, hole, add_mask=opts.add_mask, seed=opts.seed,
                            seed_key=str(job.path))
  if result.rotation:
    notes.append(f"turned {result.rotation} degrees to find the faces upright")
  if hole is not None and (outside := int((hole.astype(bool) & ~result.hole.astype(bool)).sum())):
    notes.append(f"{outside} px of the given hole lie outside every restored face: left as they "
                 "are (only faces are restored)")
  written = []
  if result.changed:
    out_dir = pathlib.Path(opts.out)
    save = lambda suffix, image: written.append(
        image_utils.save_png(out_dir / f"{job.stem}_{suffix}.png", image))
    if opts.add_mask:
      save("masked", result.masked)
    save("restored", result.restored)
    if opts.save_hole:
      save("hole", result.hole * 255)
    if opts.side_by_side:
      save("side_by_side", side_by_side(
          [photo, paste.hole_overlay(result.masked, result.hole), result.restored]))
  return {"restoration": result, "written": [str(p) for p in written], "notes": notes}


def run_job(job: Job, restorer, opts: Options) -> tuple[str, list[tuple[str, str]]]:
  """(what became of the photo: one of KINDS, the lines to print as (stream, text)). Never
  raises for a bad photo: the batch always goes on."""
  try:
    out = process_file(job, restorer, opts)
  except image_utils.ImageLoadError as e:
    return "unreadable", [("err", f"FAILED  {job.path}: unreadable: {e}")]
  except image_utils.HoleSizeError as e:
    return "wrong hole", [("err", f"FAILED  {job.path}: {e}")]
  except finders.NoFaceError as e:
    return "no face", [("err", f"FAILED  {job.path}: {e}")]
  result = out["restoration"]
  n = len(result.faces)
  lines = [("out", f"note    {job.path}: {note}") for note in out["notes"]]
  lines += [("err" if r.status == restore.SKIPPED else "out",
             f"{'SKIPPED' if r.status == restore.SKIPPED else 'NO MASK'} {job.path}: "
             f"{r.describe(n)}") for r in result.faces if r.status != restore.RESTORED]
  if result.changed:
    names = ", ".join(str(pathlib.Path(w).relative_to(opts.out)) for w in out["written"])
    return "restored", [("out", f"ok      {job.path}: {result.count(restore.RESTORED)} of {n} "
                         f"face(s) restored -> {names}")] + lines
  if result.count(restore.NO_MASK):
    return "no mask", [("out", f"ok      {job.path}: no mask found on its {n} face(s): left "
                        "as it is")] + lines
  return "no face", [("err", f"FAILED  {job.path}: no usable face ({n} found)")] + lines


def read_done(out: str | os.PathLike) -> dict[str, str]:
  """{photo path (absolute): kind} of the photos an earlier batch into `out` finished."""
  path = pathlib.Path(out) / DONE_LIST
  done = {}
  if path.is_file():
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
      kind, sep, photo = line.partition("\t")
      if sep and kind in KINDS:  # a line cut short by a kill has no tab or a partial kind
        done[photo] = kind
  return done


def mark_done(out: str | os.PathLike, job: Job, kind: str):
  """Appends the photo to the output folder's list of finished photos (flushed at once). A line
  cut short by a kill is closed first, so that it never swallows this one."""
  path = pathlib.Path(out) / DONE_LIST
  with path.open("ab+") as f:
    f.seek(0, os.SEEK_END)
    if f.tell() and (f.seek(-1, os.SEEK_END), f.read(1))[1] != b"\n":
      f.write(b"\n")
    f.write(f"{kind}\t{job.path.absolute()}\n".encode())
