r"""Restorations as users see them: real unmasked photos masked, restored, scored against the truth.

  python -m maskinpaint_jax.tools.bench_wild [--shared ../shared/data] [--split test] \
      [--model DIR] [--large_model DIR|none] [--limit N] [--label NAME] \
      [--write docs/benchmarks.md] [--json runs/bench_wild/x.json]

Every photo of the in-the-wild part `--split` (`photo_sets`: nomask/ half B + nomask_more/ "test"
is the held-out part; "train" is what configs/shipped.py:stage=wild trains on) gets a synthetic mask by
Algorithm 1 (style, size, tilt and colour drawn per photo, seeded by its name) and goes through
the whole inpaint path at its own resolution (`restorer.Restorer.restore(add_mask="random")`:
face finder, crop, generator, paste). The restored photo is scored against the original, next to
OpenCV's Telea fill of the same hole and next to the original itself (`photo_scores`):
hole PSNR (dB); SSIM (%) and LPIPS x100 (AlexNet, VGG16) of the face box at 128 px, LPIPS-AlexNet
at the box's own size; identity (face_recognition distance to the original; < 0.6 is "the same
person"); the detail ratio. Rows per face size (the crop square's side in the photo). A photo
with no face found, or found only turned, is counted and left out.
"""
from __future__ import annotations

import json
import pathlib
import shlex
import sys
import time

from absl import flags
import numpy as np

from maskinpaint_jax import baselines, cli, photo_sets, photo_scores, reporting
from maskinpaint_jax import images as image_utils
from maskinpaint_jax import restorer as restorer_lib

TITLE = "Real photos, masked and restored at their own size"
METHODS = ("ours", "telea", "original")
COLUMNS = ("hole_psnr", "ssim", "lpips", "lpips_vgg", "lpips_own", "identity", "detail")


def define_flags(fv: flags.FlagValues = flags.FLAGS):
  d = dict(flag_values=fv)
  flags.DEFINE_string("shared", "../shared/data", "Folder holding nomask/ and nomask_more/.", **d)
  flags.DEFINE_enum("split", "test", ["train", "test"], "test: the held-out part; train: the "
                    "part the wild model trains on (in-sample).", **d)
  flags.DEFINE_string("model", None, "Generator: a training workdir or model folder (default: "
                      "the shipped one).", **d)
  flags.DEFINE_string("large_model", None, "Generator for large faces (default: the shipped "
                      "128 px one when --model is not given; 'none': none).", **d)
  flags.DEFINE_integer("limit", None, "Only the first N photos.", lower_bound=1, **d)
  flags.DEFINE_integer("seed", 0, "Seeds the synthetic masks.", **d)
  flags.DEFINE_float("detail", restorer_lib.DETAIL, "Share of the photo's own fine detail laid "
                     "over enlarged faces (faces.paste.photo_detail).", **d)
  flags.DEFINE_string("label", None, "Names the model in the section's title.", **d)
  flags.DEFINE_string("write", None, "Markdown file to add the section to.", **d)
  flags.DEFINE_string("json", None, "Also write every photo's scores here.", **d)
  flags.DEFINE_list("compare", None, "Instead of scoring: a table of the 'all' rows of "
                    "earlier --json results, LABEL=FILE each (e.g. a model at equal CPU time).",
                    **d)
  flags.DEFINE_string("pictures", None, "Also write a PNG of the first --picture_count faces: "
                      "original | masked | Telea | restored, at the photo's own pixels.", **d)
  flags.DEFINE_integer("picture_count", 6, "Faces in --pictures.", lower_bound=1, **d)


def lpips_pair(a: np.ndarray, b: np.ndarray, net: str) -> float:
  from maskinpaint_jax import metrics  # pylint: disable=g-import-not-at-top
  return float(np.asarray(metrics.lpips(a[None], b[None], net))[0]) * 100


def score(original: np.ndarray, image: np.ndarray, hole: np.ndarray, landmarks) -> dict:
  """The columns of one restored (or Telea-filled) photo against its original."""
  from maskinpaint_jax import metrics  # pylint: disable=g-import-not-at-top
  box = photo_scores.face_box(landmarks, original.shape[:2])
  a, b = photo_scores.crop(original, box), photo_scores.crop(image, box)
  a128, b128 = photo_scores.at_side(a, 128), photo_scores.at_side(b, 128)
  own = photo_scores.own_side(a)
  a_own, b_own = photo_scores.at_side(a, own), photo_scores.at_side(b, own)
  embed = metrics.identity_embeddings(np.stack([original, image]), np.stack([landmarks] * 2))
  return dict(hole_psnr=photo_scores.hole_psnr(original, image, hole),
              ssim=float(np.asarray(metrics.ssim(a128[None], b128[None]))[0]) * 100,
              lpips=lpips_pair(a128, b128, "alexnet"),
              lpips_vgg=lpips_pair(a128, b128, "vgg16"),
              lpips_own=lpips_pair(a_own, b_own, "alexnet"),
              identity=float(metrics.identity_distance(embed[0], embed[1])),
              detail=photo_scores.detail_ratio(image, hole))


def bench_photo(path: pathlib.Path, restorer, seed: int, panels: list | None = None,
                panels_max: int = 0) -> dict | str:
  """Scores of one photo (dict), or why it was left out (str). Appends its picture's panels to
  `panels` while it holds fewer than `panels_max`."""
  from maskinpaint_jax.faces import finders  # pylint: disable=g-import-not-at-top
  try:
    photo = image_utils.load_rgb(path)
    result = restorer.restore(photo, add_mask="random", seed=seed, seed_key=path.name)
  except (image_utils.ImageLoadError, finders.NoFaceError):
    return "no face"
  restored = [f for f in result.faces if f.status == "restored"]
  if result.rotation or not restored:
    return "no face"
  face = max(restored, key=lambda f: f.crop_side)
  hole = result.hole
  try:
    photo_scores.band_above(hole)
  except ValueError:
    return "hole at the top edge"
  telea = baselines.telea(result.masked[None], hole[None, ..., None])[0]
  if panels is not None and len(panels) < panels_max:
    box = image_utils.region_around(hole)
    cut = lambda image: image[box[0]:box[1], box[2]:box[3]]
    panels.append([cut(photo), cut(result.masked), cut(telea), cut(result.restored)])
  row = dict(photo=str(path), crop_side=face.crop_side,
             bucket=photo_scores.size_bucket(face.crop_side),
             ours=score(photo, result.restored, hole, face.landmarks),
             telea=score(photo, telea, hole, face.landmarks),
             original=dict(detail=photo_scores.detail_ratio(photo, hole)))
  return row


def summarise(rows: list[dict]) -> dict:
  """{bucket or "all": {"n", method: {column: mean}}}."""
  out = {}
  for bucket in ("all", *photo_scores.BUCKETS):
    sel = [r for r in rows if bucket in ("all", r["bucket"])]
    if not sel:
      continue
    out[bucket] = {"n": len(sel)}
    for method in METHODS:
      cols = [c for c in COLUMNS if c in sel[0][method]]
      out[bucket][method] = {c: float(np.mean([r[method][c] for r in sel])) for c in cols}
  return out


def markdown(summary: dict, skipped: dict, split: str, model: str) -> str:
  fmt = reporting.fmt
  part = ("held-out (nomask/ half B + nomask_more/ test: nothing was trained or tuned on it)"
          if split == "test" else "in-sample (the wild model's training part)")
  lines = [f"Photos: the in-the-wild **{part}**; model: {model}. Each photo masked by "
           "Algorithm 1 (random style), restored through the whole inpaint path at its own "
           "size, scored against the original. LPIPS x100 of the face box (128 px; 'own': at "
           "its own size, rounded to 32 px); identity: face_recognition distance to the "
           "original; detail: band-pass RMS in the hole over the band above it "
           "(`photo_scores.detail_ratio`; the original's own value is the target).", "",
           "| faces | n | hole PSNR ours / Telea (gain) | SSIM % ours / Telea | LPIPS-Alex 128 "
           "ours / Telea (ratio) | LPIPS-VGG 128 ours / Telea | LPIPS-Alex own size ours / "
           "Telea (ratio) | identity ours / Telea | detail ours / Telea / original |",
           "|---|--:|---|---|---|---|---|---|---|"]
  for bucket, s in summary.items():
    o, t, r = s["ours"], s["telea"], s["original"]
    lines.append(
        f"| {bucket} | {s['n']} | {fmt(o['hole_psnr'])} / {fmt(t['hole_psnr'])} "
        f"({o['hole_psnr'] - t['hole_psnr']:+.2f}) | {fmt(o['ssim'], 1)} / {fmt(t['ssim'], 1)} | "
        f"{fmt(o['lpips'])} / {fmt(t['lpips'])} ({o['lpips'] / t['lpips']:.2f}x) | "
        f"{fmt(o['lpips_vgg'])} / {fmt(t['lpips_vgg'])} | {fmt(o['lpips_own'])} / "
        f"{fmt(t['lpips_own'])} ({o['lpips_own'] / t['lpips_own']:.2f}x) | "
        f"{fmt(o['identity'], 3)} / {fmt(t['identity'], 3)} | {fmt(o['detail'])} / "
        f"{fmt(t['detail'])} / {fmt(r['detail'])} |")
  if skipped:
    lines += ["", "Left out: " + ", ".join(f"{n} {why}" for why, n in skipped.items()) + "."]
  return "\n".join(lines)


def compare_markdown(results: dict[str, dict]) -> str:
  """One row per earlier run ('all' faces of each): label -> its --json content."""
  fmt = reporting.fmt
  lines = ["Each row: the same photos, masks and whole inpaint path as the per-size tables "
           "(faces whose crop is under 128 px go through the 64 px model in every row); "
           "LPIPS x100 of the face box, Telea's on the same holes in brackets as a ratio.", "",
           "| model | n | hole PSNR gain over Telea | LPIPS-Alex 128 (x Telea) | LPIPS-VGG 128 | "
           "LPIPS-Alex own size (x Telea) | SSIM % | identity | detail (original) |",
           "|---|--:|--:|---|--:|---|--:|--:|---|"]
  for label, r in results.items():
    s = r["summary"]["all"]
    o, t, g = s["ours"], s["telea"], s["original"]
    lines.append(
        f"| {label} | {s['n']} | {o['hole_psnr'] - t['hole_psnr']:+.2f} | {fmt(o['lpips'])} "
        f"({o['lpips'] / t['lpips']:.2f}x) | {fmt(o['lpips_vgg'])} | {fmt(o['lpips_own'])} "
        f"({o['lpips_own'] / t['lpips_own']:.2f}x) | {fmt(o['ssim'], 1)} | "
        f"{fmt(o['identity'], 3)} | {fmt(o['detail'])} ({fmt(g['detail'])}) |")
  return "\n".join(lines)


def main(argv, f: flags.FlagValues = flags.FLAGS) -> int:
  cli.no_args(argv)
  if f.compare:
    results = {}
    for item in f.compare:
      label, _, path = item.rpartition("=")
      results[label or path] = json.loads(pathlib.Path(path).read_text())
    body = compare_markdown(results)
    print(body)
    if f.write:
      reporting.write_section(f.write, f"{TITLE}: {f.label or 'comparison'}", body,
                              "maskinpaint bench_wild " + shlex.join(sys.argv[1:]))
    return 0
  photos = photo_sets.photos_of(photo_sets.wild_folders(f.shared), f.split)[:f.limit]
  restorer = restorer_lib.load_restorer(f.model, large_model=f.large_model, face_check=False,
                                        detail=f.detail)
  print(restorer.description, flush=True)
  rows, skipped, t0, panels = [], {}, time.time(), []
  for i, path in enumerate(photos, 1):
    row = bench_photo(path, restorer, f.seed, panels if f.pictures else None, f.picture_count)
    if isinstance(row, str):
      skipped[row] = skipped.get(row, 0) + 1
    else:
      rows.append(row)
    if i % 25 == 0:
      print(f"{i}/{len(photos)} photos, {time.time() - t0:.0f} s", flush=True)
  if not rows:
    print("error: no photo could be scored", file=sys.stderr)
    return 1
  summary = summarise(rows)
  model = (f.label or f.model or "the shipped models") + (f", detail {f.detail:g}" if f.detail
                                                          else "")
  body = markdown(summary, skipped, f.split, model)
  print(body)
  if f.pictures:
    image_utils.save_png(f.pictures, image_utils.rows_at_own_size(panels))
    print(f"written: {f.pictures} (original | masked | Telea | restored)")
  if f.json:
    pathlib.Path(f.json).parent.mkdir(parents=True, exist_ok=True)
    pathlib.Path(f.json).write_text(json.dumps(dict(summary=summary, rows=rows,
                                                    skipped=skipped), indent=1))
  if f.write:
    title = f"{TITLE}: {model}, {'held-out' if f.split == 'test' else 'in-sample'}"
    reporting.write_section(f.write, title, body,
                            "maskinpaint bench_wild " + shlex.join(sys.argv[1:]))
  return 0


if __name__ == "__main__":
  define_flags()
  cli.run(main)
