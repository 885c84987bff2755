r"""Quality per CPU hour of training recipes, and the learning curve, from runs' own logs.

  python -m maskinpaint_jax.tools.recipes --runs runs/recipes --write docs/recipes.md
  python -m maskinpaint_jax.tools.recipes --runs runs/looks --looks --write docs/recipes.md
  python -m maskinpaint_jax.tools.recipes --curve runs/shipped --curve runs/recipes/blind \
      --write docs/learning_curve.md

Every number comes from a run's metrics.jsonl (the periodic validation of the trainer on a fixed
set of validation images: `val_psnr_hole_<style>` per mask style, and `val_lpips` /
`val_lpips_vgg` where the run logged them) and its config.json; OpenCV Telea is scored on the
same validation images, so each row says "ours − Telea" in the hole. LPIPS columns (AlexNet and
VGG16 of the composite, x100, lower is better) appear when some run has them. `--looks` puts
hole PSNR and LPIPS side by side per mask style, against Telea and the generator the runs were
fine-tuned from (config.init_generator), scored on the same images.
"""

from __future__ import annotations

import datetime
import json
import math
import pathlib
import sys

import jax
import ml_collections
import numpy as np
from absl import flags
from flax import traverse_util

from maskinpaint_jax import masks as data_masks
from maskinpaint_jax import baselines, cli, evaluators, reporting, runlog, trainer

STYLES = data_masks.MASK_TYPES


def read_run(workdir: pathlib.Path) -> dict:
  """metrics.jsonl and config.json of one training run: eval rows, speed and wall time."""
  rows = runlog.read_metrics(workdir)
  config = ml_collections.ConfigDict(json.loads((workdir / "config.json").read_text()))
  evals = runlog.validation_rows(rows)
  rates = [r["steps_per_s"] for r in runlog.training_rows(rows)]
  steps_per_s = float(np.median(rates)) if rates else float("nan")
  last_step = max(r["step"] for r in rows)
  return dict(name=workdir.name, config=config, evals=evals, steps_per_s=steps_per_s,
              train_hours=last_step / steps_per_s / 3600.0, last_step=last_step)


def _validation_batch(config):
  if "validation_split" not in config.data:  # a run from before the field existed
    config.data.validation_split = "validation"
  return trainer.validation_batch(config)[1]


def telea_reference(config, with_lpips: bool = False) -> dict[str, float]:
  """Telea's hole PSNR per style ({style: dB} and "face_mask", the face-mask images' mean) on
  the validation images the trainer validates on, by the trainer's evaluators; with
  `with_lpips`, also its LPIPS (`val_lpips`, `val_lpips_vgg`, `val_lpips_<style>`)."""
  batch = _validation_batch(config)
  filled = baselines.telea(batch["masked"], batch["hole"])
  listed = ("psnr_hole",) + (("lpips", "lpips_vgg") if with_lpips else ())
  # Telea changes only the hole: its output is its own composite.
  row = evaluators.validation_row(listed, {"raw": filled, "composite": filled}, batch)
  out = {s: v for s in STYLES if (v := row.get(f"val_psnr_hole_{s}")) is not None}
  face = np.isin(batch["mask_type"], [STYLES.index(s) for s in data_masks.FACE_MASK_STYLES])
  per_image = evaluators.score(("psnr_hole",), filled,
                               evaluators.Truth(batch["clean"], batch["hole"]))["psnr_hole"]
  out["face_mask"] = float(per_image[face].mean()) if face.any() else math.nan
  out.update({k: v for k, v in row.items() if k.startswith("val_lpips")})
  return out


def start_reference(config) -> dict[str, float] | None:
  """The validation metrics (the trainer's val_* keys, of the run's config.evals.validation) of
  the generator the run started from (config.init_generator), on the run's validation images;
  None for a run from scratch."""
  if not config.get("init_generator"):
    return None
  from maskinpaint_jax import checkpoint  # pylint: disable=g-import-not-at-top
  from maskinpaint_jax import models  # pylint: disable=g-import-not-at-top
  model_config, params, _ = checkpoint.load_generator(config.init_generator)
  batch = _validation_batch(config)
  listed = evaluators.names(config, "validation")
  inputs = {k: batch[k] for k in ("clean", "masked", "hole")}
  device, out8, comp8 = jax.device_get(evaluators.validation_device(
      models.build(model_config.model), listed, params, inputs))
  return evaluators.validation_row(listed, {"raw": out8, "composite": comp8}, batch, device)


def style_columns(row: dict) -> dict[str, float]:
  """Hole PSNR per style of one eval row, plus the face-mask mean (the styles' mean)."""
  return _with_face_mask_mean({s: row.get(f"val_psnr_hole_{s}", math.nan) for s in STYLES})


def _with_face_mask_mean(cols: dict[str, float]) -> dict[str, float]:
  """Per-style values plus "face_mask", the mean of the face-mask styles present."""
  face = [cols[s] for s in data_masks.FACE_MASK_STYLES if not math.isnan(cols[s])]
  return dict(cols, face_mask=float(np.mean(face)) if face else math.nan)


def _diff(config, base) -> str:
  """The fields where a run's config differs from the first run's, as overrides."""
  a, b = (traverse_util.flatten_dict(c.to_dict(), sep=".") for c in (config, base))
  # Fields the reference lacks were added to the code later, not chosen: left out.
  keys = [k for k in sorted(a) if k in b and a[k] != b[k] and not k.startswith(
      ("num_train_steps", "eval_every", "checkpoint_every", "keep_checkpoints",
       "data.eval_datasets"))]
  return ", ".join(f"{k}={a[k]}" for k in keys) or "(reference)"




COLUMNS = ("face_mask",) + STYLES
LPIPS_COLUMNS = (("val_lpips", "LPIPS-Alex"), ("val_lpips_vgg", "LPIPS-VGG"))
LPIPS_NOTE = "x100, lower is better; " + reporting.LPIPS_SOURCE


def has_lpips(rows: list[dict]) -> bool:
  """Whether any validation row logged LPIPS (runs from before it was logged did not)."""
  return any("val_lpips" in r for r in rows)


def lpips_cells(row: dict) -> str:
  """" | a | b" of a validation row's LPIPS x100 (n/a where not logged)."""
  return "".join(f" | {reporting.fmt(None if k not in row else 100 * row[k])}"
                 for k, _ in LPIPS_COLUMNS)


def lpips_header() -> tuple[str, str]:
  """The LPIPS columns' header and alignment cells."""
  return ("".join(f" | {label} (x100)" for _, label in LPIPS_COLUMNS) + " |",
          "---:|" * len(LPIPS_COLUMNS))


def recipes_markdown(runs: list[dict], telea: dict[str, float]) -> str:
  lpips = has_lpips([r["evals"][-1] for r in runs if r["evals"]])
  header, align = lpips_header() if lpips else (" |", "")
  lines = ["Hole PSNR on the fixed validation images minus OpenCV Telea's on the same images "
           "(dB, higher is better), at the end of each short run. CPU h and img/s are each "
           "run's own median speed: runs shared the 2 cores with other jobs to a varying degree, "
           "so compare speeds with `make bench`, and quality at equal steps here. Telea: "
           + ", ".join(f"{c} {telea.get(c, math.nan):.2f}" for c in COLUMNS) + " dB."
           + (f" LPIPS of the composite on the same images ({LPIPS_NOTE})." if lpips else ""),
           "", "| run | differs from the first by | steps | CPU h | img/s | "
           + " | ".join(COLUMNS) + header,
           "|---|---|---:|---:|---:|" + "---:|" * len(COLUMNS) + align]
  for r in runs:
    last = r["evals"][-1] if r["evals"] else {}
    cols = style_columns(last) if last else {}
    cells = " | ".join(f"{cols.get(c, math.nan) - telea.get(c, math.nan):+.2f}" for c in COLUMNS)
    lines.append(f"| `{r['name']}` | {_diff(r['config'], runs[0]['config'])} | {r['last_step']} "
                 f"| {r['train_hours']:.2f} | {r['steps_per_s'] * r['config'].batch_size:.1f} "
                 f"| {cells}{lpips_cells(last) if lpips else ''} |")
  return "\n".join(lines)


def lpips_styles(row: dict) -> dict[str, float]:
  """LPIPS-AlexNet per style of a validation row (x100), and the face-mask mean (the styles'
  mean, as style_columns does for PSNR); NaN where not logged."""
  return _with_face_mask_mean({s: 100 * row.get(f"val_lpips_{s}", math.nan) for s in STYLES})


def _fmt(v: float) -> str:
  return reporting.fmt(None if math.isnan(v) else v)


def looks_markdown(runs: list[dict], telea: dict[str, float], start: dict | None) -> str:
  """Hole PSNR − Telea and composite LPIPS-AlexNet per style side by side, one row per run
  (and the generator the runs started from), with the training time each run had."""
  rows = ([("start: " + str(runs[0]["config"].init_generator), start, 0, 0.0, "")]
          if start else [])
  rows += [(f"`{r['name']}`", r["evals"][-1] if r["evals"] else {}, r["last_step"],
            r["last_step"] / r["steps_per_s"] / 60, _diff(r["config"], runs[0]["config"]))
           for r in runs]
  t_lpips = lpips_styles(telea)
  lines = [
      "On the fixed validation images (the runs' own last validation): hole PSNR minus OpenCV "
      "Telea's (dB, higher is better) and LPIPS-AlexNet of the composite (x100, lower is "
      f"better; {reporting.LPIPS_SOURCE}) per mask style; the last column is face-mask "
      "LPIPS as a fraction of Telea's. Telea: hole PSNR "
      + ", ".join(f"{c} {telea.get(c, math.nan):.2f}" for c in COLUMNS) + " dB; LPIPS "
      + ", ".join(f"{c} {t_lpips[c]:.2f}" for c in COLUMNS) + ". Training minutes: steps / "
      "the run's median steps per second (validation and saving left out).",
      "", "| run | differs from the first by | steps | train min | "
      + " | ".join(f"PSNR {c}" for c in COLUMNS) + " | "
      + " | ".join(f"LPIPS {c}" for c in COLUMNS) + " | LPIPS-VGG | LPIPS / Telea's |",
      "|---|---|---:|---:|" + "---:|" * (2 * len(COLUMNS) + 2)]
  for name, row, steps, minutes, diff in rows:
    psnr, lp = style_columns(row), lpips_styles(row)
    vgg = 100 * row.get("val_lpips_vgg", math.nan)
    lines.append(
        f"| {name} | {diff} | {steps} | {minutes:.1f} | "
        + " | ".join(f"{psnr[c] - telea.get(c, math.nan):+.2f}" for c in COLUMNS) + " | "
        + " | ".join(_fmt(lp[c]) for c in COLUMNS)
        + f" | {_fmt(vgg)} | {_fmt(lp['face_mask'] / t_lpips['face_mask'])} |")
  return "\n".join(lines)


def curve_markdown(run: dict, telea: dict[str, float], start: dict | None = None) -> str:
  """Hole PSNR minus Telea per style against images seen, LPIPS where logged (with the
  face-mask styles' mean of LPIPS-Alex where logged per style), and a log-linear fit's
  forecast. `start`: the validation row of the generator a fine-tune started from (step 0)."""
  bs = run["config"].batch_size
  evals = ([dict(start, step=0)] if start else []) + run["evals"]
  lpips = has_lpips(evals)
  per_style = any("val_lpips_surgical" in r for r in evals)
  header, align = lpips_header() if lpips else (" |", "")
  if per_style:
    header, align = " | LPIPS-Alex face mask (x100)" + header, "---:|" + align
  init = run["config"].get("init_generator", "")
  lines = [f"Run `{run['name']}` (non_blind={run['config'].model.non_blind}"
           + (f", fine-tuned from {init}: step 0 is that model" if init else "")
           + "): hole PSNR − Telea (dB) on the fixed validation images"
           + (f"; LPIPS of the composite on the same images ({LPIPS_NOTE})." if lpips else "."),
           "", "| step | images seen | CPU h | " + " | ".join(COLUMNS) + header,
           "|---:|---:|---:|" + "---:|" * len(COLUMNS) + align]
  for row in evals:
    cols = style_columns(row)
    lines.append(f"| {row['step']} | {row['step'] * bs:,} | "
                 f"{row['step'] / run['steps_per_s'] / 3600:.2f} | "
                 + " | ".join(f"{cols[c] - telea.get(c, math.nan):+.2f}" for c in COLUMNS)
                 + (f" | {_fmt(lpips_styles(row)['face_mask'])}" if per_style else "")
                 + (lpips_cells(row) if lpips else "") + " |")
  lines += ["", forecast(run, telea)]
  return "\n".join(lines)


# The paper's schedule: 1000 epochs of its 40,000-image subset (Table I).
PAPER_IMAGES = 1000 * 40_000


def forecast(run: dict, telea: dict[str, float]) -> str:
  """Least-squares line of face-mask gain vs log2(images seen) over the second half of the
  run, extrapolated to the paper's schedule. A forecast, not a measurement."""
  bs = run["config"].batch_size
  pts = [(math.log2(r["step"] * bs), style_columns(r)["face_mask"] - telea["face_mask"])
         for r in run["evals"] if r["step"] > 0]
  pts = pts[len(pts) // 2:]
  if len(pts) < 2:
    return "Too few evaluations for a forecast."
  x, y = np.array(pts).T
  slope, intercept = np.polyfit(x, y, 1)
  at_paper = slope * math.log2(PAPER_IMAGES) + intercept
  return (f"Face-mask gain over Telea grows by {slope:.2f} dB per doubling of images seen "
          f"(fit over the last {len(pts)} evaluations). Extrapolated to the paper's schedule "
          f"(1000 epochs x 40,000 images = {PAPER_IMAGES:,} images, "
          f"{PAPER_IMAGES / (run['last_step'] * bs):.0f}x this run): {at_paper:+.1f} dB "
          "— a log-linear extrapolation far outside the measured range (a 64 px, width-16 "
          "model will saturate earlier), not a result.")


def define_flags(fv: flags.FlagValues = flags.FLAGS):
  flags.DEFINE_string("runs", None, "Folder of short runs (one subfolder each) to tabulate.",
                      flag_values=fv)
  flags.DEFINE_multi_string("curve", [], "A run whose periodic validation is the learning curve.",
                            flag_values=fv)
  flags.DEFINE_bool("looks", False, "Tabulate --runs as fine-tuning runs: hole PSNR and LPIPS "
                    "per mask style side by side, with the starting generator's row.",
                    flag_values=fv)
  flags.DEFINE_string("write", None, "Markdown file to add the section(s) to.", flag_values=fv)


def main(argv, f: flags.FlagValues = flags.FLAGS):
  cli.no_args(argv)
  sections = []
  if f.runs:
    # In the order they were started: the first is the reference the others differ from.
    done = [p for p in pathlib.Path(f.runs).iterdir() if (p / runlog.METRICS_FILE).exists()]
    runs = [read_run(p) for p in sorted(done, key=lambda p: (p / "config.json").stat().st_mtime)]
    if f.looks:
      telea = telea_reference(runs[0]["config"], with_lpips=True)
      sections.append(("Looks: perceptual terms and fresh masks at equal training time",
                       looks_markdown(runs, telea, start_reference(runs[0]["config"]))))
    else:
      telea = telea_reference(runs[0]["config"])
      sections.append(("Recipes: quality per CPU hour", recipes_markdown(runs, telea)))
  for path in f.curve:
    run = read_run(pathlib.Path(path))
    telea = telea_reference(run["config"])
    sections.append((f"Learning curve: {run['name']}",
                     curve_markdown(run, telea, start_reference(run["config"]))))
  command = "python -m maskinpaint_jax.tools.recipes " + " ".join(sys.argv[1:])
  for title, body in sections:
    print(f"## {title}\n\n{body}\n")
    if f.write:
      reporting.write_section(f.write, title, body, command)
  print(f"({datetime.date.today()})")


if __name__ == "__main__":
  define_flags()
  cli.run(main)
