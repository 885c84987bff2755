r"""What inpaint decides on real photos: masked faces found and kept, unmasked ones left alone,
turned photos set upright; and whether the restored faces look like faces to dlib's HOG
detector, which cannot see a masked face. Every decision is the same one inpaint makes
(faces.restore); the generator (--model, default the shipped one) runs on the masked photos
only, for the HOG count.

  python -m maskinpaint_jax.tools.bench_photos --realmask ../shared/data/realmask \
      --nomask ../shared/data/nomask [--photos ../shared/data/photos] [--turns 90,180,270] \
      [--write docs/benchmarks.md]

Each folder is split in the same two fixed halves as the face check's training
(photo_sets.half_of): half A trained the face check and chose its thresholds, half B was
never used for either. Turned photos: half B of the masked photos turned by each of --turns.
"""

from __future__ import annotations

import dataclasses
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
  flags.DEFINE_list("turns", ["90", "180", "270"], "Turns (degrees) of half B's masked photos.",
                    **d)
  flags.DEFINE_integer("min_face_size", 24, "As inpaint's flag (px).", **d)
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


def markdown(rows: list[tuple[str, str, dict]], seconds: float) -> str:
  lines = [
      "Per photo, as inpaint decides (faces.restore, dry run; mesh finder, shipped face check, "
      "min_face_size 24): *restored* = at least one face repainted; *no mask* = faces found, "
      "all left alone as unmasked; *no face* = none found or none usable (too small, cut by the "
      "frame where the mask is, in profile beyond 60 degrees); *wrong way up* = a turned "
      "photo repainted in another orientation than upright (the hole misses the mask, often "
      "covering the eyes): the harm this table is most about. Half A trained the face check "
      "and chose its thresholds; half B and photos/ never did. The face finder's own "
      "thresholds were chosen earlier on all of realmask/ (\"Face finders on real masked "
      "photos\"): its share in half B is not held out.", "",
      "| photos | what is wanted | n | restored | wrong way up | no mask | no face | "
      "faces skipped | wanted % |",
      "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
  for label, wanted, t in rows:
    good = t["restored"] if wanted.startswith("restored") else t["photos"] - t["restored"]
    lines.append(f"| {label} | {wanted} | {t['photos']} | {t['restored']} | {t['wrong_way']} | "
                 f"{t['no_mask']} | "
                 f"{t['no_face']} | {t['skipped_faces']} | {100 * good / max(t['photos'], 1):.1f} "
                 "% |")
  lines += ["", f"{seconds:.0f} s in all on this machine."]
  return "\n".join(lines)


def main(argv, f: flags.FlagValues = flags.FLAGS):
  cli.no_args(argv)
  tools = restorer.load_restorer(f.model, min_face_size=f.min_face_size,
                                 large_model=f.large_model)
  dry = dataclasses.replace(tools, filler=None, more_generators=())
  hog = faces_lib.make_finder("hog")
  t0 = time.time()
  loaded = {}
  for name, folder in (("realmask", f.realmask), ("nomask", f.nomask), ("photos", f.photos)):
    if folder:
      loaded[name] = [(p.name, images.load_rgb(p)) for p in images.list_images(folder)]
  run = lambda photos, repaint=False: [decide(ph, tools if repaint else dry)
                                       for _, ph in photos]
  rows, hog_rows, reference_rows = [], [], []
  for half in "AB":
    for name, wanted in (("realmask", "restored (kept)"), ("nomask", "left alone")):
      photos = [x for x in loaded[name] if photo_sets.half_of(x[0]) == half]
      # The generator runs on the masked photos only: the HOG count needs their restorations.
      results = run(photos, repaint=name == "realmask")
      if name == "realmask":
        hog_rows.append((f"realmask half {half}", hog_counts(photos, results, hog)))
      else:
        reference_rows.append((f"nomask half {half} (*unmasked*, left alone)",
                               hog_reference(photos, results, hog)))
      rows.append((f"{name} half {half}", wanted, tally(results)))
  both = {k: sum(c[k] for _, c in hog_rows) for k in ("restored", "before", "after")}
  hog_rows += [("realmask, both halves", both)] + reference_rows
  if "photos" in loaded:
    rows.append(("photos/", "left alone", tally(run(loaded["photos"]))))
  no_face = photo_sets.no_face_images(f.no_face_dir)
  rows.append((f"no human face ({len(no_face)}: dogs, a cat, textures)", "left alone",
               tally(run(no_face))))
  half_b = [x for x in loaded["realmask"] if photo_sets.half_of(x[0]) == "B"]
  for degrees in (int(t) for t in f.turns):
    turned = [(n, np.ascontiguousarray(np.rot90(p, degrees // 90))) for n, p in half_b]
    rows.append((f"realmask half B turned {degrees} degrees", "restored upright",
                 tally(run(turned), want_turn=(360 - degrees) % 360)))
  body = markdown(rows, time.time() - t0)
  model = tools.description.split("; face finder")[0]
  hog_body = hog_markdown(hog_rows, model)
  print(body + "\n\n" + hog_body)
  if f.write:
    command = "python -m maskinpaint_jax.tools.bench_photos " + shlex.join(sys.argv[1:])
    reporting.write_section(f.write, TITLE, body, command)
    reporting.write_section(f.write, HOG_TITLE, hog_body, command)


if __name__ == "__main__":
  define_flags()
  cli.run(main)
