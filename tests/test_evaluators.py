"""The evaluators' registry: which metrics a config asks for, their units, the validation's
val_* rows (in jit and on the host), and that one METRICS entry reaches every evaluator.
References: numpy formulas of PSNR, per-style means by hand."""

import jax
import numpy as np
import pytest

from maskinpaint_jax import cli, errors, evaluators, masks, metrics
from conftest import REPO


def _psnr(a, b, region=None):
  err = (a.astype(float) - b.astype(float)) ** 2
  if region is not None:
    err = err[np.broadcast_to(region, err.shape).astype(bool)].reshape(len(a), -1)
  return 10 * np.log10(255.0 ** 2 / err.reshape(len(a), -1).mean(1))


def _batch(n=6, side=32, seed=0):
  rng = np.random.default_rng(seed)
  clean, raw = (rng.integers(0, 256, (n, side, side, 3), dtype=np.uint8) for _ in range(2))
  hole = np.zeros((n, side, side, 1), np.uint8)
  hole[:, 8:24, 4:28] = 1
  comp = np.where(hole > 0, raw, clean).astype(np.uint8)
  mask_type = np.array([0, 1, 1, 3, 3, 3])[:n]
  return dict(clean=clean, hole=hole, mask_type=mask_type), raw, comp


def test_the_configs_evaluators_name_registered_metrics_and_old_configs_get_what_they_logged():
  config = cli.load_config(REPO / "maskinpaint_jax" / "configs" / "default.py")
  assert evaluators.names(config, "validation") == ("psnr", "ssim", "psnr_hole", "lpips",
                                                    "lpips_vgg")
  assert "identity" in evaluators.names(config, "test")
  with config.unlocked():
    del config["evals"]  # a run's config.json from before config.evals
  assert evaluators.names(config, "test") == evaluators.RECORDED_BEFORE["test"]
  config.evals = {"validation": "psnr, nope", "test": ""}
  with pytest.raises(errors.UsageError, match="nope"):
    evaluators.names(config, "validation")
  assert evaluators.names(config, "test") == ()


def test_scores_are_in_the_tables_units():
  batch, raw, _ = _batch()
  truth = evaluators.Truth(batch["clean"], batch["hole"])
  s = evaluators.score(("psnr", "psnr_hole", "ssim"), raw, truth)
  np.testing.assert_allclose(s["psnr"], _psnr(raw, batch["clean"]), rtol=1e-5)
  np.testing.assert_allclose(s["psnr_hole"], _psnr(raw, batch["clean"], batch["hole"]),
                             rtol=1e-5)
  np.testing.assert_allclose(s["ssim"], 100 * np.asarray(metrics.ssim(raw, batch["clean"])),
                             rtol=1e-6)  # SSIM's own reference: tests/test_metrics.py
  means = evaluators.mean_scores(("psnr_hole", "ssim"), raw, truth)
  np.testing.assert_allclose(means["psnr_hole"], _psnr(raw, batch["clean"], batch["hole"]).mean(),
                             rtol=1e-5)
  np.testing.assert_allclose(means["ssim"], s["ssim"].mean(), rtol=1e-5)


def test_identity_without_landmarks_is_an_error():
  batch, raw, _ = _batch(n=2)
  with pytest.raises(errors.MismatchError, match="landmarks"):
    evaluators.score(("identity",), raw, evaluators.Truth(batch["clean"], batch["hole"]))


def test_validation_row_scores_raw_and_composite_per_style_in_jit_as_on_the_host():
  batch, raw, comp = _batch()
  listed = ("psnr", "ssim", "psnr_hole")
  host = evaluators.validation_row(listed, {"raw": raw, "composite": comp}, batch)
  np.testing.assert_allclose(host["val_psnr"], _psnr(raw, batch["clean"]).mean(), rtol=1e-5)
  np.testing.assert_allclose(host["val_psnr_composite"], _psnr(comp, batch["clean"]).mean(),
                             rtol=1e-5)
  hole = _psnr(raw, batch["clean"], batch["hole"])
  styles = masks.MASK_TYPES
  for t, sel in ((0, [0]), (1, [1, 2]), (3, [3, 4, 5])):
    np.testing.assert_allclose(host[f"val_psnr_hole_{styles[t]}"], hole[sel].mean(), rtol=1e-5)
  assert not any(k.startswith(("val_ssim_", "val_psnr_composite_")) for k in host)
  assert f"val_psnr_hole_{styles[2]}" not in host  # a style absent from the batch

  truth = evaluators.Truth(batch["clean"], batch["hole"])
  device = jax.device_get(jax.jit(lambda r, c: evaluators.validation_scores(
      listed, {"raw": r, "composite": c}, truth, jit=True))(raw, comp))
  row = evaluators.validation_row(listed, {"raw": raw, "composite": comp}, batch, device)
  assert row.keys() == host.keys()
  for k in row:
    np.testing.assert_allclose(row[k], host[k], rtol=1e-5, err_msg=k)


def test_metrics_that_cannot_run_on_the_images_are_left_out():
  batch, raw, comp = _batch(side=16)  # under AlexNet's 31 px: no LPIPS
  row = evaluators.validation_row(("psnr_hole", "lpips", "lpips_vgg"),
                                  {"raw": raw, "composite": comp}, batch)
  assert "val_psnr_hole" in row and not any("lpips" in k for k in row)
  assert evaluators.usable(("lpips", "psnr"), 16) == ("psnr",)


def test_a_new_metric_is_one_registry_entry(monkeypatch):
  """Registered with its keys, it is scored by the tables and logged by the validation, per
  style when asked, with no other change."""
  mean_abs = lambda out, t: {"mae": np.abs(np.asarray(out, float) - t.clean).mean((1, 2, 3))}
  monkeypatch.setitem(evaluators.METRICS, "mae",
                      evaluators.Metric(mean_abs, ("mae",), table_scale=2.0, jit=False,
                                        validate_on=("composite",), per_style=True))
  batch, raw, comp = _batch()
  truth = evaluators.Truth(batch["clean"], batch["hole"])
  want = np.abs(raw.astype(float) - batch["clean"]).mean((1, 2, 3))
  np.testing.assert_allclose(evaluators.score(("mae",), raw, truth)["mae"], 2 * want)
  row = evaluators.validation_row(("mae",), {"raw": raw, "composite": comp}, batch)
  on_comp = np.abs(comp.astype(float) - batch["clean"]).mean((1, 2, 3))
  np.testing.assert_allclose(row["val_mae"], on_comp.mean())
  np.testing.assert_allclose(row["val_mae_rect"], on_comp[3:].mean())
