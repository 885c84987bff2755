"""The recipe table and learning curve read runs' own logs: checked on a synthetic run whose
numbers are known."""

import json
import math

import numpy as np

from maskinpaint_jax.tools import recipes
from tests.conftest import tiny_config


def _fake_run(path, *, gain_per_doubling, batch=16, steps_per_s=2.0, non_blind=True):
  path.mkdir(parents=True)
  config = tiny_config(str(path / "data"))
  config.batch_size = batch
  config.model.non_blind = non_blind
  (path / "config.json").write_text(config.to_json_best_effort())
  lines = []
  for step in (100, 200, 400, 800, 1600):
    lines.append({"step": step, "steps_per_s": steps_per_s, "d_loss": 1.0})
    hole = 15.0 + gain_per_doubling * math.log2(step * batch)
    lines.append({"step": step, "val_psnr_hole": hole, "val_psnr_hole_surgical": hole,
                  "val_psnr_hole_cloth": hole + 1, "val_psnr_hole_n95": hole - 1,
                  "val_psnr_hole_rect": hole + 2})
  (path / "metrics.jsonl").write_text("\n".join(json.dumps(l) for l in lines) + "\n")
  return path


def test_read_run_and_style_means(tmp_path):
  run = recipes.read_run(_fake_run(tmp_path / "a", gain_per_doubling=0.5))
  assert run["last_step"] == 1600 and run["steps_per_s"] == 2.0
  np.testing.assert_allclose(run["train_hours"], 1600 / 2.0 / 3600)
  cols = recipes.style_columns(run["evals"][-1])
  np.testing.assert_allclose(cols["face_mask"], cols["surgical"])  # mean of s, s + 1, s - 1
  np.testing.assert_allclose(cols["rect"], cols["surgical"] + 2)


def test_forecast_recovers_the_slope(tmp_path):
  run = recipes.read_run(_fake_run(tmp_path / "a", gain_per_doubling=0.6))
  telea = {"face_mask": 15.0}
  text = recipes.forecast(run, telea)
  assert "0.60 dB per doubling" in text
  expected = 0.6 * math.log2(recipes.PAPER_IMAGES)
  assert f"{expected:+.1f} dB" in text


def test_recipes_table_names_what_differs(tmp_path):
  a = recipes.read_run(_fake_run(tmp_path / "a", gain_per_doubling=0.5, non_blind=False))
  b = recipes.read_run(_fake_run(tmp_path / "b", gain_per_doubling=0.5, batch=32))
  table = recipes.recipes_markdown([a, b], {c: 10.0 for c in recipes.COLUMNS})
  assert "(reference)" in table
  assert "batch_size=32" in table and "model.non_blind=True" in table
  # b's final face-mask hole PSNR minus Telea's 10 dB: 15 + 0.5 * log2(1600 * 32) - 10.
  assert f"{15 + 0.5 * math.log2(1600 * 32) - 10:+.2f}" in table


def test_looks_table_puts_psnr_and_lpips_side_by_side_with_the_start(tmp_path):
  a = recipes.read_run(_fake_run(tmp_path / "a", gain_per_doubling=0.5))
  last = a["evals"][-1]
  last.update(val_lpips_surgical=0.04, val_lpips_cloth=0.05, val_lpips_n95=0.06,
              val_lpips_rect=0.10, val_lpips_vgg=0.08)
  telea = {c: 10.0 for c in recipes.COLUMNS}
  telea.update(val_lpips_surgical=0.10, val_lpips_cloth=0.10, val_lpips_n95=0.10,
               val_lpips_rect=0.20)
  start = {"val_psnr_hole_surgical": 11.0, "val_psnr_hole_cloth": 11.0,
           "val_psnr_hole_n95": 11.0, "val_psnr_hole_rect": 12.0}
  a["config"].init_generator = "pretrained/x"
  table = recipes.looks_markdown([a], telea, start)
  start_row, run_row = table.splitlines()[-2:]
  cells = [c.strip() for c in run_row.split("|")[1:-1]]
  # PSNR - Telea per style (face_mask = the styles' mean), LPIPS x100, then the ratio to Telea.
  face = 15 + 0.5 * math.log2(1600 * 16) - 10
  assert cells[4:9] == [f"{face:+.2f}", f"{face:+.2f}", f"{face + 1:+.2f}", f"{face - 1:+.2f}",
                        f"{face + 2:+.2f}"]
  assert cells[9:15] == ["5.00", "4.00", "5.00", "6.00", "10.00", "8.00"]
  assert cells[15] == "0.50"
  assert start_row.startswith("| start: pretrained/x |") and "+1.00" in start_row
  assert "n/a" in start_row  # no LPIPS logged for it


def test_curve_of_a_fine_tune_starts_with_the_starting_model(tmp_path):
  run = recipes.read_run(_fake_run(tmp_path / "a", gain_per_doubling=0.5))
  run["config"].init_generator = "runs/base"
  start = {"val_psnr_hole_surgical": 11.0, "val_psnr_hole_cloth": 12.0,
           "val_psnr_hole_n95": 13.0, "val_psnr_hole_rect": 14.0, "val_lpips_surgical": 0.03,
           "val_lpips_cloth": 0.04, "val_lpips_n95": 0.05, "val_lpips": 0.06,
           "val_lpips_vgg": 0.07}
  table = recipes.curve_markdown(run, {c: 10.0 for c in recipes.COLUMNS}, start)
  assert "fine-tuned from runs/base: step 0 is that model" in table
  first = next(l for l in table.splitlines() if l.startswith("| 0 |"))
  # PSNR - Telea per style (face mask = the styles' mean 12), then LPIPS-Alex face mask (the
  # styles' mean, x100), LPIPS-Alex and LPIPS-VGG of all images.
  assert first == ("| 0 | 0 | 0.00 | +2.00 | +1.00 | +2.00 | +3.00 | +4.00 | 4.00 | 6.00 | "
                   "7.00 |")


def test_telea_reference_scores_the_trainers_validation_images(mock_data):
  """Telea's hole PSNR per style and over the face-mask images, against numpy on the same
  fixed validation batch the trainer validates on; its LPIPS per style averages to the whole."""
  from maskinpaint_jax import baselines, masks, trainer
  batch = trainer.validation_batch(mock_data)[1]
  filled = baselines.telea(batch["masked"], batch["hole"]).astype(float)
  hole = batch["hole"][..., 0].astype(bool)
  psnr = np.array([10 * np.log10(255.0 ** 2 / ((f - c) ** 2)[h].mean())
                   for f, c, h in zip(filled, batch["clean"].astype(float), hole)])
  ref = recipes.telea_reference(mock_data, with_lpips=True)
  styles = [masks.MASK_TYPES[t] for t in batch["mask_type"]]
  for style in set(styles):
    sel = [s == style for s in styles]
    np.testing.assert_allclose(ref[style], psnr[sel].mean(), rtol=1e-5)
  face = [s in masks.FACE_MASK_STYLES for s in styles]
  np.testing.assert_allclose(ref["face_mask"], psnr[face].mean(), rtol=1e-5)
  counts = {s: styles.count(s) for s in set(styles)}
  np.testing.assert_allclose(sum(ref[f"val_lpips_{s}"] * n for s, n in counts.items())
                             / len(styles), ref["val_lpips"], rtol=1e-5)
  assert 0 < ref["val_lpips_vgg"] < 1 and "val_psnr_hole" not in ref
