"""Every score of a generator's results, by name: the one registry the training validation, the
evaluation (`evaluation.evaluate_model`, Tables II / III), the recipes' references
(`tools/recipes.py`) and the face-size bench (`tools/bench_sizes.py`) compute through.

`config.evals` says which metrics each evaluator computes (big_vision's `config.evals`):
`config.evals.validation` (the trainer's periodic validation on the fixed batch, `val_*` rows of
metrics.jsonl) and `config.evals.test` (evaluate.py, on a split, every method of Tables II /
III), each a comma-separated list of `METRICS` names.

A metric is one `Metric` entry of `METRICS`: its per-image function (uint8 results against a
`Truth`), the keys it writes, where it can run (inside the jitted validation or on the host), and
its scale in results.json and the tables. A new metric is that entry and its test; every
evaluator that lists it then computes it, results.json / results.csv and metrics.jsonl carry it.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, Callable

import jax.numpy as jnp
import numpy as np

from maskinpaint_jax import errors, inference, metrics
from maskinpaint_jax import masks as mask_lib

Array = Any  # jax or numpy


@dataclasses.dataclass(frozen=True)
class Truth:
  """What results are scored against: `clean` uint8 (N, H, W, 3), `hole` (N, H, W, 1) in
  {0, 1}, `landmarks` (N, 68, 2) float pixels or None (only identity needs them)."""
  clean: Array
  hole: Array
  landmarks: Array | None = None

  @functools.cached_property
  def embeddings(self) -> np.ndarray:
    """The clean faces' identity embeddings (N, 128), computed once for every method scored."""
    return metrics.identity_embeddings(np.asarray(self.clean), self.landmarks)


@dataclasses.dataclass(frozen=True)
class Metric:
  """fn(out, truth) -> {key: per-image values (N,)} for uint8 results `out` (N, H, W, 3).

  keys: what fn returns (results.json / .csv columns; metrics.jsonl has `val_<key>`).
  table_scale: the factor results.json and bench tables apply (100: SSIM and LPIPS in %, x100);
    the validation logs the unscaled value.
  jit: traceable, computed inside the jitted validation; else on the host after it.
  validate_on: the images the validation scores: "raw" (the generator's output) and / or
    "composite" (output in the hole, the photo outside); the first is logged as `val_<key>`,
    the second as `val_<key>_composite`.
  per_style: the validation also logs `val_<key>_<style>`, the mean per mask style.
  unavailable: image side -> None when it can be computed, else why not.
  """
  fn: Callable[[Array, Truth], dict[str, Array]]
  keys: tuple[str, ...]
  table_scale: float = 1.0
  jit: bool = True
  validate_on: tuple[str, ...] = ("raw",)
  per_style: bool = False
  unavailable: Callable[[int], str | None] = lambda side: None


def _identity(out, t: Truth) -> dict[str, np.ndarray]:
  if t.landmarks is None:
    raise errors.MismatchError("the identity metric needs the faces' landmarks")
  dist = metrics.identity_distance(metrics.identity_embeddings(np.asarray(out), t.landmarks),
                                   t.embeddings)
  return {"id_distance": dist, "id_match": 100.0 * (dist < metrics.IDENTITY_THRESHOLD)}


def _lpips(net: str, key: str):
  return lambda out, t: {key: metrics.lpips(out, t.clean, net)}


# Definitions and sources of each function: metrics.py. PSNR on both images in the validation:
# outside the hole the composite is the photo itself, so its PSNR is what a user gets, the raw
# output's what the generator learnt. Hole PSNR is the same on both. LPIPS on the composite, the
# image a user sees.
METRICS: dict[str, Metric] = {
    "psnr": Metric(lambda out, t: {"psnr": metrics.psnr(out, t.clean)}, ("psnr",),
                   validate_on=("raw", "composite")),
    "psnr_hole": Metric(lambda out, t: {"psnr_hole": metrics.psnr(out, t.clean, t.hole)},
                        ("psnr_hole",), per_style=True),
    "ssim": Metric(lambda out, t: {"ssim": metrics.ssim(out, t.clean)}, ("ssim",),
                   table_scale=100.0),
    "lpips": Metric(_lpips("alexnet", "lpips"), ("lpips",), table_scale=100.0, jit=False,
                    validate_on=("composite",), per_style=True,
                    unavailable=metrics.lpips_unavailable),
    "lpips_vgg": Metric(_lpips("vgg16", "lpips_vgg"), ("lpips_vgg",), table_scale=100.0,
                        jit=False, validate_on=("composite",),
                        unavailable=metrics.lpips_unavailable),
    "identity": Metric(_identity, ("id_distance", "id_match"), jit=False),
}
# Every key a results.json may hold, in column order.
KEYS = tuple(k for m in METRICS.values() for k in m.keys)
# What runs recorded before config.evals existed computed (their config.json lacks it).
RECORDED_BEFORE = {"validation": ("psnr", "ssim", "psnr_hole", "lpips", "lpips_vgg"),
                   "test": ("psnr", "psnr_hole", "ssim", "lpips", "lpips_vgg", "identity")}


def names(config, evaluator: str) -> tuple[str, ...]:
  """The metrics `config.evals.<evaluator>` lists ("validation" or "test"); a config without
  `evals` (a run or exported model from before it) gets what such runs computed.

  Raises:
    errors.UsageError: a name that is not in METRICS.
  """
  evals = config.get("evals")
  listed = (tuple(n.strip() for n in evals[evaluator].split(",") if n.strip())
            if evals is not None else RECORDED_BEFORE[evaluator])
  unknown = [n for n in listed if n not in METRICS]
  if unknown:
    raise errors.UsageError(f"config.evals.{evaluator}: unknown metric(s) {unknown}; "
                            f"known: {', '.join(METRICS)}")
  return listed


def usable(listed, side: int) -> tuple[str, ...]:
  """The metrics of `listed` that can be computed on images of `side` px."""
  return tuple(n for n in listed if METRICS[n].unavailable(side) is None)


def score(listed, out, truth: Truth) -> dict[str, np.ndarray]:
  """Per-image values of every metric of `listed` on uint8 results `out` (N, H, W, 3), in the
  tables' units (`table_scale` applied): {key: (N,) array}."""
  scores = {}
  for name in listed:
    m = METRICS[name]
    scores.update({k: m.table_scale * np.asarray(v) for k, v in m.fn(out, truth).items()})
  return scores


def mean_scores(listed, out, truth: Truth) -> dict[str, float]:
  """The mean over images of each key of `listed` on `out`, in the tables' units. The mean is
  np.mean of the metric's own array: jax's reduction for a jax array, as the benches and the
  validation always took it."""
  means = {}
  for name in listed:
    m = METRICS[name]
    means.update({k: float(m.table_scale * np.mean(v)) for k, v in m.fn(out, truth).items()})
  return means


def validation_scores(listed, images: dict[str, Array], truth: Truth, jit: bool | None):
  """The validation's metrics of `listed` on `images` {"raw": uint8, "composite": uint8}
  (N, H, W, 3): those that run inside jit (`jit` True: traceable, means by jnp), those that run
  on the host (False), or all on the host (None). Returns (means {key as logged without "val_":
  scalar}, per-image values {key: (N,)} of the per-style metrics)."""
  means, per_image = {}, {}
  for name in listed:
    m = METRICS[name]
    if jit is not None and m.jit != jit:
      continue
    for i, on in enumerate(m.validate_on):
      for k, v in m.fn(images[on], truth).items():
        means[k if i == 0 else f"{k}_{on}"] = jnp.mean(v) if jit else float(np.mean(v))
        if m.per_style and i == 0:
          per_image[k] = v
  return means, per_image


def validation_device(g, listed, g_params, batch):
  """The jittable part of one validation of generator `g` on `batch` {clean uint8, masked
  uint8, hole {0, 1}} (N, H, W, C); `listed` is static. Returns ((means, per-image values of the
  per-style metrics) of the jittable metrics, raw output, composite), both (N, H, W, 3) uint8."""
  out, comp = inference.fill(g, g_params, batch["masked"], batch["hole"])
  out8, comp8 = metrics.to_uint8(out), metrics.to_uint8(comp)
  return (validation_scores(listed, {"raw": out8, "composite": comp8},
                            Truth(batch["clean"], batch["hole"]), jit=True), out8, comp8)


def validation_row(listed, images: dict[str, Array], batch, device=None) -> dict[str, float]:
  """The val_* metrics of one validation of `images` {"raw", "composite"} uint8 (N, H, W, 3)
  against the host `batch` (clean, hole, mask_type (N,) int): `device` is the (means, per-image)
  validation_device computed (then only the host metrics are computed here: LPIPS, its own
  compilation per batch shape, whatever the generator), None to compute every metric here.
  Metrics that cannot be computed on these images are left out; per-style metrics also as
  val_<key>_<style>."""
  listed = usable(listed, batch["clean"].shape[1])
  truth = Truth(batch["clean"], batch["hole"])
  means, per_image = device or ({}, {})
  host_means, host_per_image = validation_scores(listed, images, truth,
                                                 jit=None if device is None else False)
  row = {f"val_{k}": float(v) for k, v in {**means, **host_means}.items()}
  for key, values in {**per_image, **host_per_image}.items():
    row.update({f"val_{key}_{style}": v
                for style, v in per_style(np.asarray(values), batch["mask_type"]).items()})
  return row


def per_style(values: np.ndarray, mask_type: np.ndarray) -> dict[str, float]:
  """Mean of per-image values (N,) for each mask style present in `mask_type` (N,) int (the
  learning curve per style)."""
  styles = mask_lib.MASK_TYPES
  return {styles[t]: float(np.mean(values[mask_type == t])) for t in np.unique(mask_type)}
