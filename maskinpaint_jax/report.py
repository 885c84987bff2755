"""Human-readable summaries generated from evaluate's results.json (never typed by hand): the
full results.md, the compact tables of the README and the demo report, and the machine line
that every measurement carries."""

from __future__ import annotations

import os
import pathlib
import platform
import re

from absl import app, flags

from maskinpaint_jax import cli

README_START, README_END = "<!-- results:start -->", "<!-- results:end -->"


def machine() -> str:
  """Devices, host and versions: where a number was measured."""
  import jax  # pylint: disable=g-import-not-at-top
  dev = jax.devices()[0]
  kind = getattr(dev, "device_kind", dev.platform)
  cpu = platform.processor() or platform.machine()
  return (f"{jax.device_count()} x {kind} ({dev.platform}), host {cpu} with "
          f"{os.cpu_count()} cores, Python {platform.python_version()}, JAX {jax.__version__}")


def _fmt(v, digits=2):
  """One number format for every table: `digits` decimals, "n/a" for a metric not computed."""
  return "n/a" if v is None else f"{v:.{digits}f}"


def _row(label, r):
  return (f"| {label} | {_fmt(r['psnr'])} | {_fmt(r['psnr_hole'])} | {_fmt(r['ssim'])} | "
          f"{_fmt(r['lpips'])} | {_fmt(r['id_distance'], 3)} |")


def comparison_sentence(summary: dict) -> str:
  """The honest one-line verdict: our hole PSNR against the masked input and Telea."""
  a = summary["all"]
  ours, masked, telea = (a[m]["psnr_hole"] for m in ("ours_raw", "masked_input", "telea"))
  vs_telea = ("above" if ours > telea else "below")
  return (f"In the hole our raw output reaches {ours:.2f} dB PSNR against {masked:.2f} dB for the "
          f"masked input ({ours - masked:+.2f} dB) and {telea:.2f} dB for OpenCV Telea "
          f"({abs(ours - telea):.2f} dB {vs_telea}).")


def results_markdown(results: dict, heading_level: int = 3) -> str:
  """Compact tables of every evaluated dataset (all methods, all metrics)."""
  from maskinpaint_jax.evaluate import LABELS, METHODS  # pylint: disable=g-import-not-at-top
  meta = results["meta"]
  h = "#" * heading_level
  lines = [f"Checkpoint step {meta['step']}, split `{meta['split']}`, generator "
           f"{meta['model_summary']}; measured {meta['date']} on {meta['machine']}."]
  if meta.get("lpips"):
    lines.append(f"LPIPS: n/a ({meta['lpips']}).")
  for name, res in results["datasets"].items():
    a = res["summary"]["all"]
    lines += ["", f"{h} {name} ({a['n']} test images)", "",
              "| Method | PSNR (dB) | PSNR hole (dB) | SSIM (%) | LPIPS (x100) | "
              "identity distance |",
              "|---|---:|---:|---:|---:|---:|"]
    lines += [_row(LABELS[m], a[m]) for m in METHODS]
    lines += ["", comparison_sentence(res["summary"])]
  return "\n".join(lines)


def evaluation_markdown(results: dict) -> str:
  """evaluate's results.md: every dataset in the layout of the paper's Tables II / III, then
  identity preservation and the per-mask-style breakdown."""
  from maskinpaint_jax.evaluate import LABELS, METHODS  # pylint: disable=g-import-not-at-top
  meta = results["meta"]
  lines = [f"# Evaluation: {meta['workdir']} (step {meta['step']}, split `{meta['split']}`)", "",
           f"Generator: {meta['model_summary']}. Measured {meta['date']} on {meta['machine']}.",
           ""]
  lpips_note = ("" if meta["lpips"] is None else f" LPIPS: n/a - {meta['lpips']}.")
  trained_on = ", ".join(meta.get("trained_on", [])) or "unknown"
  for name, res in results["datasets"].items():
    table = "II" if name.startswith("face_mask") else "III"
    a = res["summary"]["all"]
    lines += [f"## {name} ({a['n']} images) - the layout of the paper's Table {table}", "",
              training_note(name, res.get("in_training"), trained_on), "",
              "| Method | PSNR (dB) | SSIM (%) | LPIPS (x100) | PSNR in hole (dB) |",
              "|---|---:|---:|---:|---:|"]
    for m in METHODS:
      r = a[m]
      lines.append(f"| {LABELS[m]} | {_fmt(r['psnr'])} | {_fmt(r['ssim'])} | "
                   f"{_fmt(r['lpips'])} | {_fmt(r['psnr_hole'])} |")
    lines += ["", "Raw output: the generator's image as is. Composite: hole pixels from the "
              "generator, the rest from the input (needs the hole map; the baselines are "
              "composites by construction)." + lpips_note, ""]
    if a["ours_raw"]["id_distance"] is not None:
      lines += ["Identity preservation (face_recognition 128-D embedding of the result vs. the "
                "original; lower distance is better; 'same person' below 0.6):", "",
                "| Method | mean distance | share < 0.6 (%) |", "|---|---:|---:|"]
      for m in METHODS:
        lines.append(f"| {LABELS[m]} | {_fmt(a[m]['id_distance'], 3)} | "
                     f"{_fmt(a[m]['id_match'], 1)} |")
      lines.append("")
    styles = [s for s in res["summary"] if s != "all"]
    if styles:
      lines += ["Per mask style (PSNR dB / SSIM % / LPIPS x100):", "",
                "| Method | " + " | ".join(f"{s} (n={res['summary'][s]['n']})" for s in styles)
                + " |", "|---|" + "---:|" * len(styles)]
      for m in METHODS:
        cells = [f"{_fmt(res['summary'][s][m]['psnr'])} / {_fmt(res['summary'][s][m]['ssim'])}"
                 f" / {_fmt(res['summary'][s][m]['lpips'])}" for s in styles]
        lines.append(f"| {LABELS[m]} | " + " | ".join(cells) + " |")
      lines.append("")
    lines += ["Samples (clean | masked | Telea | Navier-Stokes | ours raw | ours composite): "
              + ", ".join(f"`{pathlib.Path(p).name}`" for p in res["samples"].values()), ""]
  return "\n".join(lines)


def training_note(name: str, in_training, trained_on: str) -> str:
  """Which training data the numbers of `name` come from."""
  if in_training is False:
    return (f"**Out of distribution**: scored by a model trained on {trained_on} only; it never "
            f"saw {name}'s occlusion in training. The paper's numbers come from a model trained "
            "on the occlusion it is scored on (launch/gpu_node.sh trains one per occlusion).")
  return f"Scored by a model trained on {trained_on} (train split)."


def update_readme(readme: pathlib.Path, results: dict, source: str) -> None:
  """Replaces the README block between the results markers with tables from `results`."""
  text = readme.read_text()
  if README_START not in text or README_END not in text:
    raise ValueError(f"{readme} has no {README_START} ... {README_END} block")
  block = (f"{README_START}\n<!-- generated by `python -m maskinpaint_jax.report --readme "
           f"{source}`; do not edit by hand -->\n\n{results_markdown(results)}\n\n"
           f"{README_END}")
  text = re.sub(re.escape(README_START) + ".*?" + re.escape(README_END), lambda _: block, text,
                flags=re.S)
  readme.write_text(text)


def side_by_side_markdown(results: dict[str, dict]) -> str:
  """Several models' results.json on the same split, per dataset and mask style: hole PSNR of
  the raw output and whole-image SSIM of the composite, with Telea's on the same images."""
  labels = list(results)
  first = results[labels[0]]
  lines = [f"Split `{first['meta']['split']}`; " + "; ".join(
      f"`{k}`: {r['meta']['model_summary']}, step {r['meta']['step']}" for k, r in results.items())
      + ".", "",
           "| dataset | style (n) | Telea hole PSNR | " + " | ".join(
               f"{k} hole PSNR" for k in labels) + " | Telea SSIM % | " + " | ".join(
               f"{k} SSIM % (composite)" for k in labels) + " |",
           "|---|---|---:|" + "---:|" * len(labels) + "---:|" + "---:|" * len(labels)]
  for name, res in first["datasets"].items():
    for style, s in res["summary"].items():
      row = [results[k]["datasets"][name]["summary"][style] for k in labels]
      lines.append(f"| {name} | {style} ({s['n']}) | {s['telea']['psnr_hole']:.2f} | "
                   + " | ".join(f"{r['ours_raw']['psnr_hole']:.2f}" for r in row)
                   + f" | {s['telea']['ssim']:.2f} | "
                   + " | ".join(f"{r['ours_composite']['ssim']:.2f}" for r in row) + " |")
  return "\n".join(lines)


# The shipped model's quality targets (issue "a shipped model that clearly beats classical
# inpainting"): dB of hole PSNR over OpenCV Telea on the same test images.
TARGETS = {"face_mask": 3.5, "style": 2.5, "rect": 5.0}


def targets_markdown(results: dict) -> str:
  """Each target, the measured value and whether it is met, from an evaluate results.json."""
  rows = []
  gain = lambda s: s["ours_raw"]["psnr_hole"] - s["telea"]["psnr_hole"]
  for name, res in results["datasets"].items():
    summary = res["summary"]
    if name.startswith("face_mask"):
      a = summary["all"]
      rows.append((f"{name}: hole PSNR − Telea", f">= +{TARGETS['face_mask']}", gain(a),
                   gain(a) >= TARGETS["face_mask"]))
      ssim = (a["ours_composite"]["ssim"], a["telea"]["ssim"])
      rows.append((f"{name}: whole-image SSIM, ours composite vs Telea", "above Telea's",
                   ssim[0] - ssim[1], ssim[0] > ssim[1]))
      for style in (k for k in summary if k != "all"):
        rows.append((f"{name}, {style}: hole PSNR − Telea", f">= +{TARGETS['style']}",
                     gain(summary[style]), gain(summary[style]) >= TARGETS["style"]))
    elif name.startswith("rect"):
      rows.append((f"{name}: hole PSNR − Telea", f">= +{TARGETS['rect']}", gain(summary["all"]),
                   gain(summary["all"]) >= TARGETS["rect"]))
  lines = [f"Step {results['meta']['step']}, split `{results['meta']['split']}`.", "",
           "| target | wanted | measured | met |", "|---|---|---:|---|"]
  lines += [f"| {t} | {w} | {v:+.2f} | {'yes' if ok else '**no**'} |" for t, w, v, ok in rows]
  return "\n".join(lines)


def define_flags(fv: flags.FlagValues = flags.FLAGS):
  d = dict(flag_values=fv)
  flags.DEFINE_string("write", None, "Markdown file to add the section to.", **d)
  flags.DEFINE_string("title", "Side by side", "Title of the side-by-side section.", **d)
  flags.DEFINE_string("targets", None, "A results.json to check against the shipped model's "
                      "quality targets.", **d)
  flags.DEFINE_string("readme", None, "A results.json whose tables replace README.md's results "
                      "block.", **d)


def main(argv, f: flags.FlagValues = flags.FLAGS):
  """python -m maskinpaint_jax.report LABEL=results.json [...] [--write FILE --title T]
  [--targets results.json] [--readme results.json]"""
  import json  # pylint: disable=g-import-not-at-top
  import shlex  # pylint: disable=g-import-not-at-top
  import sys  # pylint: disable=g-import-not-at-top
  from maskinpaint_jax import bench  # pylint: disable=g-import-not-at-top
  command = "python -m maskinpaint_jax.report " + shlex.join(sys.argv[1:])
  load = lambda path: json.loads(pathlib.Path(path).read_text())
  if f.readme:
    readme = pathlib.Path(__file__).resolve().parents[1] / "README.md"
    update_readme(readme, load(f.readme), f.readme)
    print(f"{readme}: results block replaced from {f.readme}")
  if f.targets:
    body = targets_markdown(load(f.targets))
    print(body)
    if f.write:
      bench.write_section(f.write, "Quality targets", body, command)
  if not argv:
    return
  bad = [a for a in argv if "=" not in a]
  if bad:
    raise app.UsageError(f"{bad}: name each results file LABEL=path/to/results.json",
                         exitcode=2)
  body = side_by_side_markdown({k: load(v) for k, v in (a.split("=", 1) for a in argv)})
  print(body)
  if f.write:
    bench.write_section(f.write, f.title, body, command)


if __name__ == "__main__":
  define_flags()
  cli.run(main)
