"""evaluate: the tables, baselines and identity numbers from a checkpoint, generator only."""

import csv
import json
import shutil

import numpy as np

from conftest import run_cli
from maskinpaint_jax import checkpoint, evaluate, input_pipeline


def test_evaluate_writes_the_paper_tables_from_the_generator_alone(tiny_workdir, tmp_path):
  # Only the generator and config are needed: drop everything else from a copy.
  work = tmp_path / "work"
  shutil.copytree(tiny_workdir, work)
  for step_dir in checkpoint.checkpoint_dir(work).iterdir():
    for item in ("discriminator", "optimizer", "data", "meta"):
      shutil.rmtree(step_dir / item, ignore_errors=True)
  no_weights = tmp_path / "no_lpips"
  no_weights.mkdir()
  out_dir, results = evaluate.run(None, str(work), split="test", lpips_weights=str(no_weights),
                                  batch_size=4, identity=True, num_samples=3)
  assert set(results["datasets"]) == {"face_mask_32", "rect_32"}
  for name in ("results.json", "results.csv", "results.md", "samples_face_mask_32.png",
               "samples_rect_32.png"):
    assert (out_dir / name).stat().st_size > 0
  md = (out_dir / "results.md").read_text()
  assert "Table II" in md and "Table III" in md and "LPIPS: n/a" in md
  assert "vgg16_weights.h5" in md  # the reason, not a number
  assert json.loads((out_dir / "results.json").read_text())["meta"]["step"] == 2

  config = checkpoint.restore_generator(work)[0]
  for name, occlusion in (("face_mask_32", "face_mask"), ("rect_32", "rect")):
    summary = results["datasets"][name]["summary"]
    (source,) = input_pipeline.open_sources(config.data.data_dir, occlusion, 32, "test")
    ex = [input_pipeline.to_model_inputs(source[i]) for i in range(len(source))]
    clean = np.stack([e["clean"] for e in ex])
    masked = np.stack([e["masked"] for e in ex])
    a = summary["all"]
    assert a["n"] == len(ex)
    # The masked-input row, recomputed independently.
    mse = ((clean.astype(float) - masked) ** 2).reshape(len(ex), -1).mean(1)
    np.testing.assert_allclose(a["masked_input"]["psnr"], np.mean(10 * np.log10(255 ** 2 / mse)),
                               rtol=1e-5)
    # The composite keeps the input outside the hole: same hole PSNR as the raw output.
    np.testing.assert_allclose(a["ours_composite"]["psnr_hole"], a["ours_raw"]["psnr_hole"],
                               rtol=1e-6)
    assert a["telea"]["psnr_hole"] > a["masked_input"]["psnr_hole"]
    assert a["ours_raw"]["lpips"] is None
    for m in evaluate.METHODS:
      assert 0.0 <= a[m]["id_distance"] < 2.0 and 0.0 <= a[m]["id_match"] <= 100.0
  styles = set(results["datasets"]["face_mask_32"]["summary"]) - {"all"}
  assert styles and styles <= {"surgical", "cloth", "n95"}
  assert set(results["datasets"]["rect_32"]["summary"]) == {"all"}
  rows = list(csv.DictReader((out_dir / "results.csv").open()))
  assert {r["method"] for r in rows} == set(evaluate.METHODS)


def test_evaluate_cli(tiny_workdir, tmp_path):
  r = run_cli(["maskinpaint_jax.evaluate", "--workdir", str(tiny_workdir), "--limit", "3",
               "--noidentity", f"--lpips_weights={tmp_path}", f"--out={tmp_path / 'ev'}"])
  assert r.returncode == 0, r.stderr[-3000:]
  assert "| Ours: composite with hole map |" in r.stdout
  assert (tmp_path / "ev" / "results.md").exists()
  r = run_cli(["maskinpaint_jax.evaluate", "--workdir", str(tmp_path / "nothing")])
  assert r.returncode != 0 and "no checkpoint" in r.stderr
