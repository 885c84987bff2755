r"""Face finders side by side: masked faces found, false faces, seconds per photo.

  python -m maskinpaint_jax.tools.bench_faces --src ../shared/data/realmask \
      [--no_face_dir sample_data/no_face]
      [--finders hog,hog_pad,blazeface_short,blazeface,mesh_short,mesh_full,mesh_no_refind,mesh]
      [--seed 0] [--timing_photos 10] [--sheet sheet.png] [--write docs/benchmarks.md]

found: photos of --src in which the finder returns at least one face (any size). false faces:
faces returned on images that have none: the photos of --no_face_dir (dlib's dogs photo), the
face-free sample photos of scikit-image when it is installed (a cat, coffee, a rocket, coins...),
and noise and textures drawn with --seed. s/photo: mean over --src as the photos are; and the
median and worst over --timing_photos of them (evenly spaced in the folder) resized to 1,000 px
on the longer side. --sheet draws the default finder's 68 points on every photo of --src, for
checking by eye that they sit on the faces.
"""

from __future__ import annotations

import dataclasses
import os
import pathlib
import shlex
import statistics
import sys
import time

from absl import flags
import cv2
import numpy as np

from maskinpaint_jax.faces import finders
from maskinpaint_jax import images
from maskinpaint_jax import cli, photo_sets

REPO = pathlib.Path(__file__).resolve().parents[2]
TITLE = "Face finders on real masked photos"


@dataclasses.dataclass(frozen=True)
class Candidate:
  name: str
  label: str
  make: object   # () -> FaceFinder-like (find_any_size)


class PaddedFinder:
  """A finder run on the photo with a black border, faces shifted back (for HOG: a face cut by
  the frame of a tight crop looks whole again)."""

  def __init__(self, finder, pad: float = 0.25):
    self.finder, self.pad = finder, pad

  def find_any_size(self, image):
    p = round(self.pad * max(image.shape[:2]))
    padded = np.pad(image, ((p, p), (p, p), (0, 0)))
    out = []
    for f in self.finder.find_any_size(padded):
      top, right, bottom, left = f.box
      out.append(finders.Face((top - p, right - p, bottom - p, left - p), f.landmarks - p,
                              f.source))
    return out


def _mesh(**kwargs):
  from maskinpaint_jax.faces import mesh as mesh_faces  # pylint: disable=g-import-not-at-top
  return lambda: mesh_faces.MeshFaceFinder(**kwargs)


ALL_PASSES = ("short", "short_pad", "full", "full_pad", "full_tiles")
CANDIDATES = {c.name: c for c in [
    Candidate("hog", "dlib HOG + 68-point predictor (the paper's; `hog`)", finders.HogFaceFinder),
    Candidate("hog_pad", "dlib HOG on the photo with a 25 % black border",
              lambda: PaddedFinder(finders.HogFaceFinder())),
    Candidate("blazeface_short", "BlazeFace short range alone (mesh only for the landmarks)",
              _mesh(passes=("short",), verify=False)),
    Candidate("blazeface", "BlazeFace, all 5 passes, unchecked",
              _mesh(passes=ALL_PASSES, verify=False)),
    Candidate("mesh_short", "BlazeFace short range, checked by the face mesh",
              _mesh(passes=("short",))),
    Candidate("mesh_full", "BlazeFace full range (+ border, tiles), checked by the face mesh",
              _mesh(passes=("full", "full_pad", "full_tiles"))),
    Candidate("mesh_no_refind", "BlazeFace short + full range, + border, + tiles, checked by "
              "the face mesh only (no re-detection)", _mesh(min_refound=0)),
    Candidate("mesh", "BlazeFace short + full range, + border, + tiles, checked by the face mesh "
              "and re-detection (`mesh`, the default of inpaint)", _mesh()),
]}


def define_flags(fv: flags.FlagValues = flags.FLAGS):
  d = dict(flag_values=fv)
  flags.DEFINE_string("src", None, "Folder of photos with a (masked) face each.", required=True,
                      **d)
  flags.DEFINE_string("no_face_dir", str(photo_sets.DEFAULT_NO_FACE_DIR), "Folder of real photos without "
                      "a face.", **d)
  flags.DEFINE_list("finders", list(CANDIDATES), "Of: " + ", ".join(CANDIDATES) + ".", **d)
  flags.DEFINE_integer("seed", 0, "Seeds the noise and texture images.", **d)
  flags.DEFINE_integer("timing_photos", 10, "Photos timed at 1,000 px.", lower_bound=1, **d)
  flags.DEFINE_integer("limit", None, "Use only the first N photos of --src.", **d)
  flags.DEFINE_string("sheet", None, "Write a contact sheet of the default finder.", **d)
  flags.DEFINE_string("write", None, "Markdown file to add the section to.", **d)
  cli.check_choices("finders", tuple(CANDIDATES), fv)


# --- measuring --------------------------------------------------------------------------------
def resize_long_side(image: np.ndarray, side: int = 1000) -> np.ndarray:
  h, w = image.shape[:2]
  s = side / max(h, w)
  return cv2.resize(image, (round(w * s), round(h * s)),
                    interpolation=cv2.INTER_AREA if s < 1 else cv2.INTER_CUBIC)


def measure(finder, photos, negatives, timing) -> dict:
  found, seconds, results = 0, [], []
  for _, img in photos:
    t = time.perf_counter()
    got = finder.find_any_size(img)
    seconds.append(time.perf_counter() - t)
    found += bool(got)
    results.append(got)
  false = {name: len(finder.find_any_size(img)) for name, img in negatives}
  big = []
  for img in timing:
    t = time.perf_counter()
    finder.find_any_size(img)
    big.append(time.perf_counter() - t)
  return dict(found=found, photos=len(photos), false_faces=sum(false.values()),
              false_images=sorted(n for n, c in false.items() if c), negatives=len(negatives),
              s_mean=statistics.mean(seconds), s_1000_median=statistics.median(big),
              s_1000_max=max(big), results=results)


def markdown(rows: dict, src: str, n_neg: int, neg_note: str, n_timing: int) -> str:
  lines = [f"Photos: `{src}`, {next(iter(rows.values()))['photos']} real photos of people in "
           f"real masks. No-face set: {n_neg} images ({neg_note}). Found = at least one face "
           f"returned (for the unchecked BlazeFace rows, false faces count too); false faces = "
           f"faces returned on the no-face set (of any size). s/photo: mean over the photos as "
           f"they are, and median / worst over {n_timing} of them (evenly spaced in the folder) "
           f"resized to 1,000 px on the longer side.", "",
           "| finder | found | found % | false faces (images) | s/photo | s/photo at 1,000 px "
           "(median / worst) |", "|---|---:|---:|---|---:|---:|"]
  for name, r in rows.items():
    which = f" ({', '.join(r['false_images'][:4])}{', ...' if len(r['false_images']) > 4 else ''})"
    lines.append(
        f"| {CANDIDATES[name].label} | {r['found']} / {r['photos']} | "
        f"{100 * r['found'] / r['photos']:.1f} % | {r['false_faces']}"
        f"{which if r['false_faces'] else ''} | {r['s_mean']:.3f} | "
        f"{r['s_1000_median']:.3f} / {r['s_1000_max']:.3f} |")
  lines += ["", "Which finder where: `python -m maskinpaint_jax.tools.inpaint` (users' photos) "
            "uses "
            "`mesh` (`--face_finder hog` for the other); the dataset build keeps `hog`: "
            "Algorithm 1 was written for dlib's landmarks, and CelebA's faces are unmasked "
            "(HOG finds one in 99 % of them).",
            "", "Not re-measured: dlib's CNN detector (`face_recognition_models`' mmod model), "
            "about 50 % found on a padded border at about 8 s per photo on these 2 cores "
            "(../shared/data/README.md, another sample of the same source)."]
  return "\n".join(lines)


def contact_sheet(photos, results, path, tile: int = 160, cols: int = 12):
  tiles = []
  for (name, img), found in zip(photos, results):
    canvas = img.copy()
    r = max(1, round(max(img.shape[:2]) / 250))
    for f in found[:1]:
      for x, y in f.landmarks:
        cv2.circle(canvas, (int(x), int(y)), r, (0, 255, 0), -1)
    s = tile / max(img.shape[:2])
    small = cv2.resize(canvas, (max(1, round(img.shape[1] * s)), max(1, round(img.shape[0] * s))),
                       interpolation=cv2.INTER_AREA)
    t = np.full((tile + 12, tile, 3), 255, np.uint8)
    t[:small.shape[0], :small.shape[1]] = small
    cv2.putText(t, name[:24], (1, tile + 10), cv2.FONT_HERSHEY_PLAIN, 0.7,
                (0, 0, 0) if found else (255, 0, 0), 1)
    tiles.append(t)
  while len(tiles) % cols:
    tiles.append(np.full_like(tiles[0], 255))
  grid = np.concatenate([np.concatenate(tiles[i:i + cols], 1)
                         for i in range(0, len(tiles), cols)], 0)
  images.save_png(path, grid)


def main(argv, f: flags.FlagValues = flags.FLAGS) -> int:
  cli.no_args(argv)
  photos = [(p.name, images.load_rgb(p)) for p in images.list_images(f.src)[:f.limit]]
  negatives = photo_sets.no_face_images(f.no_face_dir, f.seed)
  step = max(1, len(photos) // f.timing_photos)  # spread over tight crops and crowds
  timing = [resize_long_side(img) for _, img in photos[::step][:f.timing_photos]]
  n_real = len(images.list_images(f.no_face_dir))
  n_sk = sum(n.startswith("skimage.") for n, _ in negatives)
  neg_note = (f"{n_real} real photo{'' if n_real == 1 else 's'} from "
              f"`{os.path.relpath(f.no_face_dir, REPO)}`, "
              f"{n_sk} scikit-image sample photos, {len(negatives) - n_real - n_sk} noise and "
              f"texture images drawn with seed {f.seed}")
  load = os.getloadavg()[0]
  rows = {}
  for name in f.finders:
    rows[name] = measure(CANDIDATES[name].make(), photos, negatives, timing)
    r = rows[name]
    print(f"{name}: found {r['found']}/{r['photos']}, false faces {r['false_faces']} "
          f"{r['false_images']}, {r['s_mean']:.3f} s/photo, {r['s_1000_median']:.3f} s at "
          f"1,000 px", flush=True)
  if f.sheet and "mesh" in rows:
    contact_sheet(photos, rows["mesh"]["results"], f.sheet)
  body = markdown(rows, f.src, len(negatives), neg_note, len(timing))
  body += (f"\n\nLoad average when the run started: {load:.1f} on {os.cpu_count()} cores "
           "(other jobs on the machine slow every row alike).")
  print(f"\n## {TITLE}\n\n{body}\n")
  if f.write:
    from maskinpaint_jax import reporting  # pylint: disable=g-import-not-at-top
    reporting.write_section(f.write, TITLE, body, table_command(sys.argv[1:]), machine_desc=host())
    print(f"written to {f.write}")
  return 0


def table_command(argv) -> str:
  """The command that reproduces the table: --sheet only draws a picture, so it is left out."""
  argv = list(argv)
  if "--sheet" in argv:
    del argv[argv.index("--sheet"):argv.index("--sheet") + 2]
  argv = [a for a in argv if not a.startswith("--sheet=")]
  return "python -m maskinpaint_jax.tools.bench_faces " + shlex.join(argv)


def host() -> str:
  import platform  # pylint: disable=g-import-not-at-top
  return (f"host {platform.processor() or platform.machine()} with {os.cpu_count()} cores, "
          f"Python {platform.python_version()}, no accelerator (TFLite on CPU)")


if __name__ == "__main__":
  define_flags()
  cli.run(main)
