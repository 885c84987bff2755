"""The two record files a run leaves, each written and read here only.

- `metrics.jsonl` in a training workdir: one JSON object per line, `{"step": int, name: float,
  ...}`; training rows carry the losses and `img_per_s` / `steps_per_s` / `epoch`, validation
  rows the `val_*` metrics (PSNR in dB, SSIM and LPIPS in [0, 1]). Appended by `MetricsWriter`
  (process 0 only), read by `read_metrics`.
- `results.json` of an evaluation: `{"meta": {...}, "datasets": {name: {"summary": {subset:
  {"n": int, method: {metric: float | None}}}, "in_training": bool, "samples": {...},
  "seconds": float}}}` with the methods of `METHODS` and the keys of `evaluators.KEYS` (PSNR
  dB, SSIM and id_match %, LPIPS x100: `lpips` AlexNet, `lpips_vgg` VGG16; identity distance).
  Written by `write_results` (with a CSV copy), read by `read_results`. A results.json from before
  `lpips_vgg` existed lacks it: readers take a missing metric as not computed.
"""

from __future__ import annotations

import csv
import json
import pathlib
from typing import Any

import numpy as np

METRICS_FILE = "metrics.jsonl"
RESULTS_FILE = "results.json"

# results.json: every evaluated method, in table order, with its label, and every metric.
METHODS = ("masked_input", "telea", "navier_stokes", "ours_raw", "ours_composite")
LABELS = {
    "masked_input": "Masked input (as is)",
    "telea": "OpenCV Telea",
    "navier_stokes": "OpenCV Navier-Stokes",
    "ours_raw": "Ours: raw output",
    "ours_composite": "Ours: composite with hole map",
}


class MetricsWriter:
  """Appends to `workdir/metrics.jsonl` and TensorBoard; a context manager that closes both.
  Disabled (writes nothing) unless `enabled`: only process 0 writes a run's record."""

  def __init__(self, workdir: pathlib.Path, enabled: bool = True):
    self.enabled = enabled
    if self.enabled:
      from tensorboardX import SummaryWriter  # pylint: disable=g-import-not-at-top
      self.tb = SummaryWriter(str(workdir / "tensorboard"))
      self.jsonl = (workdir / METRICS_FILE).open("a")

  def __enter__(self):
    return self

  def __exit__(self, *exc):
    if self.enabled:
      self.tb.close()
      self.jsonl.close()

  def scalars(self, step: int, values: dict[str, float]):
    if not self.enabled:
      return
    for k, v in values.items():
      self.tb.add_scalar(k, v, step)
    self.jsonl.write(json.dumps({"step": step, **{k: float(v) for k, v in values.items()}}) + "\n")
    self.jsonl.flush()

  def image(self, step: int, name: str, grid: np.ndarray):
    """A uint8 (H, W, 3) picture grid to TensorBoard."""
    if self.enabled:
      self.tb.add_image(name, grid, step, dataformats="HWC")


def read_metrics(workdir) -> list[dict[str, Any]]:
  """Every row of `workdir/metrics.jsonl` in file order; [] when the run has written none.
  A last line cut short by a crash mid-write is left out."""
  path = pathlib.Path(workdir) / METRICS_FILE
  if not path.exists():
    return []
  rows = []
  for line in path.read_text().splitlines():
    if line.strip():
      try:
        rows.append(json.loads(line))
      except json.JSONDecodeError:
        continue
  return rows


def training_rows(rows: list[dict]) -> list[dict]:
  """The rows a training log step wrote (losses and throughput)."""
  return [r for r in rows if "steps_per_s" in r]


def validation_rows(rows: list[dict]) -> list[dict]:
  """The rows a validation wrote (`val_*` metrics)."""
  return [r for r in rows if any(k.startswith("val_") for k in r)]


def write_results(out_dir: pathlib.Path, results: dict) -> pathlib.Path:
  """results.json and the same numbers as results.csv (dataset, subset, n, method, metrics)
  into `out_dir`; returns the JSON's path. The CSV's metric columns are the keys the summaries
  hold, in their order."""
  out_dir.mkdir(parents=True, exist_ok=True)
  path = out_dir / RESULTS_FILE
  path.write_text(json.dumps(results, indent=2))
  keys = list(dict.fromkeys(k for res in results["datasets"].values()
                            for s in res["summary"].values() for m in METHODS for k in s[m]))
  with (out_dir / "results.csv").open("w", newline="") as f:
    w = csv.writer(f)
    w.writerow(["dataset", "subset", "n", "method"] + keys)
    for name, res in results["datasets"].items():
      for subset, s in res["summary"].items():
        for m in METHODS:
          w.writerow([name, subset, s["n"], m] + ["" if s[m].get(k) is None
                                                   else f"{s[m][k]:.4f}" for k in keys])
  return path


# Written into meta by evaluations that compute `lpips` with AlexNet and `lpips_vgg` with VGG16.
LPIPS_NETS = ["alexnet", "vgg16"]


def read_results(path) -> dict:
  """An evaluation's results: `path` is a results.json or the folder that holds one. A file
  written before LPIPS-AlexNet (no meta "lpips_nets") holds LPIPS-VGG of another package under
  `lpips`, if anything: it is read as n/a, with that reason, never as AlexNet."""
  path = pathlib.Path(path)
  if path.is_dir():
    path = path / RESULTS_FILE
  results = json.loads(path.read_text())
  if results.get("meta", {}).get("lpips_nets") != LPIPS_NETS:
    results["meta"]["lpips"] = results["meta"].get("lpips") or (
        "measured before LPIPS-AlexNet / VGG16 were computed here")
    for res in results.get("datasets", {}).values():
      for subset in res["summary"].values():
        for method in METHODS:
          if method in subset:
            subset[method]["lpips"] = subset[method]["lpips_vgg"] = None
  return results
