r"""What inpaint decides on real photos: masked faces found and kept, unmasked ones left alone,
turned photos set upright; and whether the restored faces look like faces to dlib's HOG
detector, which cannot see a masked face. Every decision is the same one inpaint makes
(faces.restore); the generator (--model, default the shipped one) runs on the masked photos
only, for the HOG count.

  python -m maskinpaint_jax.tools.bench_photos --realmask ../shared/data/realmask \
      --nomask ../shared/data/nomask [--realmask_more ../shared/data/realmask_more] \
      [--nomask_more ../shared/data/nomask_more] [--not_human DIR] \
      [--photos ../shared/data/photos] [--turns 90,180,270] [--write docs/benchmarks.md]

Each folder is split as the face check's training splits it (photo_sets.split_of): half A /
the train part of a `_more` folder trained the check and chose its thresholds, half B / the
test part never did; each row says which. --not_human: one folder per kind of thing that is not
a human face (animal/, statue/, doll/, drawing/, mask_only/), split likewise. Turned
photos: half B of the masked photos turned by each of --turns.
"""

from __future__ import annotations

import dataclasses
import functools
import pathlib
import shlex
import sys
import time

from absl import flags
import cv2
import numpy as np

from maskinpaint_jax import cli, images, photo_sets, reporting, restorer
from maskinpaint_jax import faces as faces_lib
from maskinpaint_jax.faces import finders, paste, restore

TITLE = "Real photos: restored, left alone, set upright"


def define_flags(fv: flags.FlagValues = flags.FLAGS):
  d = dict(flag_values=fv)
  flags.DEFINE_string("realmask", None, "Folder of real photos of people wearing masks.",
                      required=True, **d)
  flags.DEFINE_string("nomask", None, "Folder of real photos of people without masks.",
                      required=True, **d)
  flags.DEFINE_string("photos", None, "Folder of ordinary unmasked photos.", **d)
  flags.DEFINE_string("realmask_more", None, "More real photos of people wearing masks (train "
                      "and test parts: photo_sets.part_of).", **d)
  flags.DEFINE_string("nomask_more", None, "More real photos of people without masks.", **d)
  flags.DEFINE_string("not_human", None, "Folder of one sub-folder per kind of thing that is "
                      "not a human face (animal/, statue/, drawing/, ...); halves A / B.", **d)
  flags.DEFINE_bool("hog", True, "Also the HOG table (runs the generator on realmask/).", **d)
  flags.DEFINE_list("turns", ["90", "180", "270"], "Turns (degrees) of half B's masked photos.",
                    **d)
  flags.DEFINE_integer("min_face_size", restore.MIN_FACE_SIZE, "As inpaint's flag (px).", **d)
  flags.DEFINE_string("no_face_dir", str(photo_sets.DEFAULT_NO_FACE_DIR), "Real photos without "
                      "a human face (scikit-image's and synthetic textures are added).", **d)
  flags.DEFINE_string("model", None, "Generator for the HOG count: a training workdir or an "
                      "exported model folder (default: the shipped model).", **d)
  flags.DEFINE_string("large_model", None, "As inpaint's --large_model (default: the shipped "
                      "128 px model when there is one and --model is not given; 'none').", **d)
  flags.DEFINE_string("write", None, "Markdown file to add the sections to.", **d)


HOG_TITLE = "Restored photos that dlib HOG sees as faces"


def decide(photo, tools: restorer.Restorer) -> restore.Restoration | None:
  """inpaint's decisions on one photo (`tools.restore`; a restorer whose filler is None is a dry
  run: every decision, nothing repainted); None when no face is found at all."""
  try:
    return tools.restore(photo)
  except finders.NoFaceError:
    return None


def seam_steps(result: restore.Restoration) -> tuple[float, float]:
  """(the colour step at the restored hole's edge, the step at the same contour moved three
  bands out into the photo's untouched pixels: the photo's own contrast there), grey levels,
  by `paste.edge_step` with bands of 2 % of the largest restored face."""
  size = max(f.size for f in result.faces if f.status == restore.RESTORED)
  width = max(2, round(0.02 * size))
  hole = result.hole.astype(np.uint8)
  out = cv2.dilate(hole, np.ones((6 * width + 1, 6 * width + 1), np.uint8))
  return (paste.edge_step(result.restored, hole, width),
          paste.edge_step(result.restored, out, width))


def hog_counts(photos, results, hog) -> dict:
  """Of the photos restored: how many dlib HOG finds a face in, before (the masked input) and
  after (the restored photo), and the median seam steps (`seam_steps`). `hog`: a
  finders.HogFaceFinder."""
  restored = [(ph, r) for (_, ph), r in zip(photos, results) if r is not None and r.changed]
  steps = np.array([seam_steps(r) for _, r in restored]).reshape(-1, 2)
  return dict(restored=len(restored),
              before=sum(bool(hog.detect(ph)) for ph, _ in restored),
              after=sum(bool(hog.detect(r.restored)) for _, r in restored),
              edge=float(np.nanmedian(steps[:, 0])) if len(steps) else float("nan"),
              own=float(np.nanmedian(steps[:, 1])) if len(steps) else float("nan"))


def hog_reference(photos, results, hog) -> dict:
  """The same detector on real unmasked faces: of the photos whose faces were found and all
  left alone as unmasked, how many HOG finds a face in (`after`; nothing was repainted)."""
  alone = [ph for (_, ph), r in zip(photos, results)
           if r is not None and not r.changed and r.count(restore.NO_MASK)]
  return dict(restored=len(alone), before=None, after=sum(bool(hog.detect(ph)) for ph in alone))


def hog_markdown(rows: list[tuple[str, dict]], model: str) -> str:
  lines = [f"Generator: {model}. Of the photos inpaint restores, those in which dlib's HOG "
           "detector (the paper's face detector, `faces.finders.HogFaceFinder`: the photo as "
           "is, then 2x upsampled) finds a face, before (the masked photo: HOG rarely sees a "
           "masked face) and after restoring. A restoration that reads as a face to a detector "
           "that never saw this model is one sign of a face-like result, not of the right face. "
           "Rows marked *unmasked*: the same detector on real unmasked photos of the same "
           "source whose faces inpaint found and left alone (the photo itself: how often HOG "
           "sees a real face in such photos). Seam: the median colour step across the restored "
           "hole's edge, and at the same contour three bands out in the photo's own pixels "
           "(`bench_photos.seam_steps`, grey levels); a seam shows as the first well above the "
           "second.",
           "", "| photos | restored | HOG finds a face before | after | after % | seam: step "
           "at the hole's edge | the photo's own step |",
           "|---|---:|---:|---:|---:|---:|---:|"]
  for label, c in rows:
    before = "" if c["before"] is None else c["before"]
    seam = (f"{c['edge']:.1f} | {c['own']:.1f}" if "edge" in c else " | ")
    lines.append(f"| {label} | {c['restored']} | {before} | {c['after']} | "
                 f"{100 * c['after'] / max(c['restored'], 1):.1f} % | {seam} |")
  return "\n".join(lines)


def tally(results: list[restore.Restoration | None], want_turn: int | None = None) -> dict:
  """Photos restored (and, for turned photos, set upright by the right turn), restored the
  wrong way up (a turned photo repainted in another orientation: the hole is not where the
  mask is, often over the eyes), with no mask, without a usable face; faces skipped."""
  out = dict(photos=len(results), restored=0, wrong_way=0, no_mask=0, no_face=0,
             skipped_faces=0)
  for r in results:
    if r is None:
      out["no_face"] += 1
      continue
    out["skipped_faces"] += r.count(restore.SKIPPED)
    if r.changed and (want_turn is None or r.rotation == want_turn):
      out["restored"] += 1
    elif r.changed:
      out["wrong_way"] += 1
    elif r.count(restore.NO_MASK):
      out["no_mask"] += 1
    else:
      out["no_face"] += 1
  return out


def markdown(rows: list[tuple[str, str, str, dict]], seconds: float,
             min_face_size: int = restore.MIN_FACE_SIZE) -> str:
  lines = [
      "Per photo, as inpaint decides (faces.restore, dry run; mesh finder, shipped face check, "
      f"min_face_size {min_face_size}): *restored* = at least one face repainted, the photo "
      "set upright; *no mask* = faces found, all left alone as unmasked; *no face* = none found "
      "or none usable (too small, cut by the frame where the mask is, in profile beyond 60 "
      "degrees); *wrong way up* = a photo repainted in another orientation than upright: a "
      "masked photo as it is (all are stored upright) repainted after a turn, or a turned "
      "photo repainted after another turn than the one that sets it upright (the hole misses "
      "the mask, often covering the eyes): the harm this table is most about. *Faces skipped* "
      "counts, besides "
      "faces too small, cut or in profile, those the face check judges not human (animals, "
      "statues, drawings). Part: *in-sample* rows trained the face check or chose a threshold "
      "of it or of the face finder (half A, the train part of the `_more` folders, half A of "
      "each non-human kind, and the no-face set the finder's thresholds were chosen on); "
      "*held-out* rows did neither (half B, one photo in five of the `_more` folders, half B "
      "of each non-human kind, photos/). The face finder's first thresholds were chosen on all "
      "of realmask/ (\"Face finders on real masked photos\"): its share in half B is not "
      "wholly held out.", "",
      "| photos | part | what is wanted | n | restored | wrong way up | no mask | no face | "
      "faces skipped | wanted % |",
      "|---|---|---|---:|---:|---:|---:|---:|---:|---:|"]
  for label, part, wanted, t in rows:
    good = t["restored"] if wanted.startswith("restored") else t["photos"] - t["restored"]
    lines.append(f"| {label} | {part} | {wanted} | {t['photos']} | {t['restored']} | "
                 f"{t['wrong_way']} | "
                 f"{t['no_mask']} | "
                 f"{t['no_face']} | {t['skipped_faces']} | {100 * good / max(t['photos'], 1):.1f} "
                 "% |")
  lines += ["", f"{seconds:.0f} s in all on this machine."]
  return "\n".join(lines)


MASKED_WANTED = "restored (kept)"


def labelled_sets(f) -> list[tuple[str, str, str, list]]:
  """(label, part, what is wanted, [(name, photo)]) of every set the table measures, in order.
  Part: "in-sample" where the face check's heads were fitted or its thresholds (or the
  finder's) chosen, "held-out" where nothing was."""
  sets = []
  for flag, name, wanted in ((f.realmask, "realmask", MASKED_WANTED),
                             (f.realmask_more, "realmask_more", MASKED_WANTED),
                             (f.nomask, "nomask", "left alone"),
                             (f.nomask_more, "nomask_more", "left alone")):
    if not flag:
      continue
    photos = images_of(flag)
    for split, part in (("train", "in-sample"), ("test", "held-out")):
      chosen = [x for x in photos if photo_sets.split_of(flag, x[0]) == split]
      label = (f"{name} half {'A' if split == 'train' else 'B'}" if not name.endswith("_more")
               else f"{name} {split}")
      sets.append((label, part, wanted, chosen))
  if f.photos:
    sets.append(("photos/", "held-out", "left alone", images_of(f.photos)))
  if f.not_human:
    for folder in sorted(p for p in pathlib.Path(f.not_human).iterdir() if p.is_dir()):
      photos = images_of(folder)
      for split, part in (("train", "in-sample"), ("test", "held-out")):
        chosen = [x for x in photos if photo_sets.split_of(folder, x[0]) == split]
        sets.append((f"not human: {folder.name} {split}", part, "left alone", chosen))
  no_face = photo_sets.no_face_images(f.no_face_dir)
  sets.append((f"no face at all ({len(no_face)}: dogs, a cat, textures)", "in-sample",
               "left alone", no_face))
  return sets


TOTALS = (("all masked photos", MASKED_WANTED, ("realmask",)),
          ("all unmasked photos of people", "left alone", ("nomask", "photos/")),
          ("all non-human photos", "left alone", ("not human",)))


def total_rows(rows) -> list[tuple[str, str, str, dict]]:
  """Sums of the held-out rows of each kind (TOTALS: label, what is wanted, the rows' label
  prefixes): the numbers the targets are about."""
  out = []
  for label, wanted, prefixes in TOTALS:
    chosen = [t for lab, part, w, t in rows
              if part == "held-out" and w == wanted and lab.startswith(prefixes)]
    if chosen:
      out.append((f"**{label}**", "held-out", wanted,
                  {k: sum(t[k] for t in chosen) for k in chosen[0]}))
  return out


def main(argv, f: flags.FlagValues = flags.FLAGS):
  cli.no_args(argv)
  tools = restorer.load_restorer(f.model, min_face_size=f.min_face_size,
                                 large_model=f.large_model)
  dry = dataclasses.replace(tools, filler=None, more_generators=())
  t0 = time.time()
  run = lambda photos, repaint=False: [decide(ph, tools if repaint else dry)
                                       for _, ph in photos]
  rows, hog_rows, reference_rows, half_b = [], [], [], []
  for label, part, wanted, photos in labelled_sets(f):
    if label == "realmask half B":
      half_b = photos
    old_half = label.startswith(("realmask half", "nomask half"))
    # The generator runs on the masked photos of realmask/ only: the HOG count needs them.
    results = run(photos, repaint=f.hog and old_half and label.startswith("realmask"))
    if f.hog and old_half:
      if label.startswith("realmask"):
        hog_rows.append((label, hog_counts(photos, results, hog_finder())))
      else:
        reference_rows.append((f"{label} (*unmasked*, left alone)",
                               hog_reference(photos, results, hog_finder())))
    # The masked photos are all stored upright: one repainted after a turn is repainted the
    # wrong way up. Any repainting of the others counts.
    rows.append((label, part, wanted,
                 tally(results, want_turn=0 if wanted == MASKED_WANTED else None)))
    print(f"{label}: {rows[-1][3]} ({time.time() - t0:.0f} s)", flush=True)
  for degrees in (int(t) for t in f.turns):
    turned = [(n, np.ascontiguousarray(np.rot90(p, degrees // 90))) for n, p in half_b]
    rows.append((f"realmask half B turned {degrees} degrees", "held-out", "restored upright",
                 tally(run(turned), want_turn=(360 - degrees) % 360)))
  rows += total_rows(rows)
  body = markdown(rows, time.time() - t0, f.min_face_size)
  print(body)
  command = "python -m maskinpaint_jax.tools.bench_photos " + shlex.join(sys.argv[1:])
  if f.write:
    reporting.write_section(f.write, TITLE, body, command)
  if hog_rows:
    both = {k: sum(c[k] for _, c in hog_rows) for k in ("restored", "before", "after")}
    hog_body = hog_markdown(hog_rows + [("realmask, both halves", both)] + reference_rows,
                            tools.description.split("; face finder")[0])
    print(hog_body)
    if f.write:
      reporting.write_section(f.write, HOG_TITLE, hog_body, command)


@functools.cache
def hog_finder():
  """dlib's HOG finder, made once."""
  return faces_lib.make_finder("hog")


def images_of(folder) -> list[tuple[str, np.ndarray]]:
  return [(p.name, images.load_rgb(p)) for p in images.list_images(folder)]


if __name__ == "__main__":
  define_flags()
  cli.run(main)
