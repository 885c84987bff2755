r"""Measures hole estimation (faces.holes) where the truth is known: a built dataset's split.

  python -m maskinpaint_jax.tools.bench_holes --data_dir data/tfds12k --split test --size 64 \
      [--landmarks stored,mesh] [--limit N] [--write docs/benchmarks.md]

`stored`: the landmarks dlib found on the clean photo at build time (the estimator alone);
`mesh`: landmarks found on the masked image itself by the masked-face finder, as on a real photo
(end to end). Each with the prior only and with GrabCut.
"""

from __future__ import annotations

import shlex
import sys
import time

from absl import flags
import cv2
import numpy as np

from maskinpaint_jax import cli, input_pipeline, masks, reporting
from maskinpaint_jax.faces import holes, mesh

def measure(source, landmarks_of, limit: int | None = None, refine: bool = True) -> dict:
  """IoU and recall of estimate_hole over a dataset split, per mask style and overall.
  `landmarks_of(example)` gives (landmarks, their source), or None when no face is found."""
  rows, missed, start = [], 0, time.time()
  n = len(source) if limit is None else min(limit, len(source))
  for i in range(n):
    ex = source[i]
    found = landmarks_of(ex)
    if found is None:
      missed += 1
      continue
    lm, finder = found
    iou, recall = holes.iou_recall(holes.estimate_hole(ex["masked"], lm, refine, finder),
                             ex["mask"][..., 0] > 127)
    rows.append((masks.MASK_TYPES[int(ex["mask_type"])], iou, recall))
  out = {"images": n, "no_face": missed, "ms_per_image": 1000 * (time.time() - start) / max(n, 1)}
  for style in sorted({r[0] for r in rows}) + ["all"]:
    sel = [r for r in rows if style in ("all", r[0])]
    out[style] = dict(count=len(sel), iou=float(np.mean([r[1] for r in sel])),
                      recall=float(np.mean([r[2] for r in sel])),
                      recall_p05=float(np.percentile([r[2] for r in sel], 5)))
  return out


def _mesh_landmarks(upscale: int):
  """Landmarks found on the masked image by the masked-face finder (upscaled first: BlazeFace
  wants faces of 100 px or more), mapped back to the image's pixels."""
  finder = mesh.MeshFaceFinder(min_face_size=0)

  def landmarks_of(ex):
    key = str(ex["id"])
    if key not in cache:  # measured twice (prior only, GrabCut): find the face once
      img = ex["masked"]
      big = cv2.resize(img, (img.shape[1] * upscale, img.shape[0] * upscale),
                       interpolation=cv2.INTER_CUBIC)
      found = finder.find_all(big)
      cache[key] = None if not found else (found[0].landmarks / upscale, found[0].source)
    return cache[key]
  cache = {}
  return landmarks_of


def markdown(results: dict[str, dict]) -> str:
  lines = ["IoU of the estimated hole with the true one, and recall (the share of the true hole's "
           "pixels covered; p5: its 5th percentile over images). Landmarks `stored`: dlib's, "
           "found on the clean photo at build time (the estimator alone); `mesh`: found by the "
           "masked-face finder on the masked image itself (upscaled to about 192 px), as on a "
           "real photo, with the chin correction `faces.holes.MESH_CHIN_SCALE` (chosen on the "
           "validation split). `no face`: images where the finder found none (not scored).", "",
           "| landmarks | refine | images | no face | style | IoU | recall | recall p5 | "
           "ms/img |", "|---|---|---:|---:|---|---:|---:|---:|---:|"]
  for label, r in results.items():
    for style in [k for k in r if isinstance(r[k], dict)]:
      m = r[style]
      lines.append(f"| {label} | {r['images']} | {r['no_face']} | {style} ({m['count']}) | "
                   f"{m['iou']:.3f} | {100 * m['recall']:.2f} % | {100 * m['recall_p05']:.1f} % | "
                   f"{r['ms_per_image']:.1f} |")
  return "\n".join(lines)


def define_flags(fv: flags.FlagValues = flags.FLAGS):
  d = dict(flag_values=fv)
  flags.DEFINE_string("data_dir", None, "TFDS data_dir of a built dataset.", required=True, **d)
  flags.DEFINE_string("split", "test", "Split measured.", **d)
  flags.DEFINE_integer("size", 64, "Image side of the face_mask dataset (px).", **d)
  flags.DEFINE_list("landmarks", ["stored", "mesh"], "stored, mesh, or both.", **d)
  flags.DEFINE_integer("limit", None, "Only the first N images.", **d)
  flags.DEFINE_string("write", None, "Markdown file to add the section to.", **d)
  cli.check_choices("landmarks", ("stored", "mesh"), fv)


def main(argv, f: flags.FlagValues = flags.FLAGS):
  cli.no_args(argv)
  source = input_pipeline.data_source(f.data_dir, input_pipeline.config_name("face_mask", f.size),
                                      f.split)
  results = {}
  for kind in f.landmarks:
    landmarks_of = (lambda ex: (ex["landmarks"], "hog")) if kind == "stored" else _mesh_landmarks(
        max(1, round(192 / f.size)))
    for refine in (False, True):
      label = f"{kind} | {'GrabCut' if refine else 'prior only'}"
      results[label] = measure(source, landmarks_of, f.limit, refine)
  body = markdown(results)
  print(body)
  if f.write:
    reporting.write_section(f.write, f"Hole estimation ({f.split} split, {f.size} px)", body,
                        "python -m maskinpaint_jax.tools.bench_holes " + shlex.join(sys.argv[1:]),
                        machine_desc=f"{sys.platform}, OpenCV {cv2.__version__}")


if __name__ == "__main__":
  define_flags()
  cli.run(main)
