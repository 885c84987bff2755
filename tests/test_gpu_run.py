"""gpu_run: the width rule, the deadlines, the training loop's stops, the export in parts, and
(slow) launch/gpu_run.sh rehearsed at toy size on the CPU, as a GPU machine would run it."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from conftest import REPO
from maskinpaint_jax import checkpoint, cli, gpu_run


def test_the_widest_width_whose_images_reach_the_epochs_trains():
  # 1000 img/s at width 16 for 100 s: 100,000 images; width 32 ~ 25,000, 64 ~ 6,250.
  pick = lambda epochs: gpu_run.choose_width(16, 1000.0, 100.0, 1000, (1, 2, 4), epochs)
  assert pick(20)["base_width"] == 32      # 25 epochs >= 20; 64 gives 6.25
  assert pick(5)["base_width"] == 64
  assert pick(200)["base_width"] == 16 and "own width" in pick(200)["why"]
  rows = {c["base_width"]: c for c in pick(20)["candidates"]}
  assert rows[32]["images"] == pytest.approx(25000) and rows[32]["estimated"]
  assert not rows[16]["estimated"]


def test_deadlines_follow_the_budget_and_never_pass_its_end():
  d = gpu_run.Deadlines(gpu_run.Budget(total_s=540, probe_s=100, train_s=330, score_s=35,
                                       margin_s=15), start=0.0)
  assert (d.probe, d.train_from(100), d.score_from(430), d.end) == (100, 430, 465, 525)
  assert d.train_from(400) == 525 - 35 and d.score_from(510) == 525


def test_training_stops_at_its_deadline_and_on_a_stop_request():
  import time
  steps = []

  def step(state, batch):
    steps.append(batch)
    return state + 1, {"loss": np.float32(state)}

  logged = []
  _, n, _, stopped = gpu_run.train_until(step, 0, iter(range(10**6)), time.time() + 0.2, 5,
                                         lambda: False, lambda s, m, r: logged.append(s))
  assert n == len(steps) > 0 and not stopped and logged[:2] == [5, 10]
  state, n, _, stopped = gpu_run.train_until(step, 0, iter(range(10**6)), time.time() + 60, 5,
                                             lambda: len(steps) >= 3, lambda *a: None)
  assert stopped and n < 60 * 10**6  # stopped by the request, long before the deadline


def test_an_export_in_parts_loads_as_one(tmp_path):
  config = cli.load_config(REPO / "configs" / "tiny.py")
  shapes = checkpoint.generator_shapes(config)
  rng = np.random.default_rng(0)
  params = jax_tree_map(lambda s: rng.standard_normal(s.shape).astype(np.float32), shapes)
  one = checkpoint.save_pretrained(tmp_path / "one", config, params, 3)
  parts = checkpoint.save_pretrained(tmp_path / "parts", config, params, 3,
                                     max_file_bytes=4096)
  sizes = {p.name: p.stat().st_size for p in parts.iterdir()}
  assert "generator.msgpack" not in sizes and max(
      v for k, v in sizes.items() if k.startswith("generator.msgpack.")) <= 4096
  assert sum(v for k, v in sizes.items() if k.startswith("generator.msgpack.")) == (
      one / "generator.msgpack").stat().st_size
  _, got, step = checkpoint.load_pretrained(parts)
  assert step == 3
  for a, b in zip(flat(got), flat(params)):
    np.testing.assert_array_equal(a, b)


def test_the_benchmark_skips_what_it_has_no_time_for_and_says_why():
  import time  # pylint: disable=g-import-not-at-top
  from maskinpaint_jax import step_bench  # pylint: disable=g-import-not-at-top
  config = cli.load_config(REPO / "configs" / "tiny.py")
  config.model.dtype = "bfloat16"
  probe = {"rows": [{"batch": 4, "img_per_s": 100.0, "compile_s": 30.0}], "programs": {4: None},
           "state": None, "data_sharding": None}
  # 20 s left: torch.compile needs 60 s, float32 1.2 x the probe's 30 s = 36 s: both skipped.
  result = step_bench.run(config, None, dtypes=("float32", "bfloat16"), batches=(4,), steps=1,
                          torch_modes=("compile",), pairs=3, deadline=time.time() + 20,
                          reuse={"bfloat16": probe}, compare_batch=4, torch_compile_min_s=60)
  assert result["jax"] == probe["rows"] and result["torch"] == []
  skipped = " / ".join(result["skipped"])
  assert "PyTorch compile: " in skipped and "needs about 60 s" in skipped
  assert "JAX float32: " in skipped and "needs about 36 s" in skipped


def jax_tree_map(fn, tree):
  import jax
  return jax.tree.map(fn, tree)


def flat(tree):
  import jax
  return [np.asarray(x) for x in jax.tree.leaves(tree)]


@pytest.fixture(scope="module")
def travel32(tiny_data_dir, tmp_path_factory):
  from maskinpaint_jax.tools import travel_set as travel_tool
  out = tmp_path_factory.mktemp("travel32")
  assert cli.call(travel_tool, ["--data_dir", tiny_data_dir, "--size", "32", "--out", out,
                                "--max_mb", "1", "--sample", "8"]) == 0
  return out


@pytest.mark.slow
def test_gpu_run_script_at_toy_size(travel32, tmp_path):
  out, work = tmp_path / "out", tmp_path / "work"
  env = dict(os.environ, TOY="1", TRAVEL=str(travel32), WORK=str(work), PY=sys.executable)
  env["XLA_FLAGS"] = " ".join(f for f in env.get("XLA_FLAGS", "").split()
                              if "device_count" not in f)  # one device, as one GPU
  # Weights in parts of at most 3 KiB: the toy G (8 KB in float16) travels in three files.
  r = subprocess.run(["bash", str(REPO / "launch" / "gpu_run.sh"), str(out),
                      "--max_file_mb", str(3 / 1024)], cwd=REPO, env=env,
                     capture_output=True, text=True, timeout=600)
  assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
  run = json.loads((out / "run.json").read_text())
  assert run["errors"] == {} and set(run["phases"]) == {"probe", "train", "export", "score",
                                                         "bench"}
  train = run["phases"]["train"]["result"]
  assert train["steps"] > 0 and train["dtype"] == "bfloat16" and train["width"]["candidates"]
  # The exported G: in parts of at most 3 KiB, loaded as users load it, and it fills holes.
  parts = sorted((out / "generator").glob("generator.msgpack.*"))
  assert len(parts) >= 2 and max(p.stat().st_size for p in parts) <= 3 * 1024
  config, params, step = checkpoint.load_generator(out / "generator")
  assert step == train["steps"] and config.model.dtype == "bfloat16"
  from maskinpaint_jax import inference  # pylint: disable=g-import-not-at-top
  masked = np.full((2, 32, 32, 3), 128, np.uint8)
  hole = np.zeros((2, 32, 32, 1), np.float32)
  hole[:, 16:] = 1
  raw, comp = inference.make_filler(config.model, params, 2)(masked, hole)
  assert raw.shape == comp.shape == masked.shape and raw.dtype == np.uint8
  np.testing.assert_array_equal(comp[:, :16], masked[:, :16])
  # The scores: every test image, ours next to Telea, PSNR / SSIM / LPIPS.
  scores = json.loads((out / "scores.json").read_text())
  assert scores["complete"] and scores["n"] == scores["of"] > 0
  every = scores["summary"]["all"]
  for method in ("telea", "ours_raw", "ours_composite"):
    assert all(every[method][k] is not None for k in ("psnr", "psnr_hole", "ssim", "lpips"))
  # The benchmark: the JAX rows with compile times, the twin alternated with JAX, the ratio.
  bench = json.loads((out / "bench.json").read_text())
  assert bench["jax"][0]["compile_s"] > 0 and bench["jax"][0]["img_per_s"] > 0
  (eager,) = bench["torch"]
  assert eager["mode"] == "eager" and eager["pairs"] >= 1
  assert eager["jax_over_torch"] > 0 and eager["jax_step_s"] > 0 and eager["torch_step_s"] > 0
  assert bench["profile"]["ops"] and bench["profile"]["batch"] == eager["batch"]
  assert (out / "train_log.jsonl").read_text().count("\n") >= 1


@pytest.mark.slow
def test_sigterm_during_training_saves_a_checkpoint_and_exports(travel32, tmp_path):
  """The program itself (the toy flags of launch/gpu_run.sh; its train step compiled by the
  test above is in the compilation cache), stopped by SIGTERM once it logs training steps."""
  import signal  # pylint: disable=g-import-not-at-top
  import time  # pylint: disable=g-import-not-at-top
  out, work = tmp_path / "out", tmp_path / "work"
  env = dict(os.environ, JAX_PLATFORMS="cpu", PYTHONUNBUFFERED="1")
  env["XLA_FLAGS"] = " ".join(f for f in env.get("XLA_FLAGS", "").split()
                              if "device_count" not in f)
  cmd = [sys.executable, "-m", "maskinpaint_jax.tools.gpu_run", "--out", out, "--work", work,
         "--travel", travel32, "--config", REPO / "configs" / "tiny.py", "--total_s", "300",
         "--train_s", "200", "--batches", "4", "--widths", "1", "--log_every", "2",
         "--workers", "0"]
  proc = subprocess.Popen([str(c) for c in cmd], cwd=REPO, env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True)
  try:
    t0 = time.time()
    while not (out / "train_log.jsonl").is_file() and time.time() - t0 < 240:
      assert proc.poll() is None, proc.stdout.read()[-3000:]
      time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    output, _ = proc.communicate(timeout=120)
  finally:
    if proc.poll() is None:
      proc.kill()
  assert proc.returncode == 0, output[-3000:]
  run = json.loads((out / "run.json").read_text())
  train = run["phases"]["train"]["result"]
  assert train["stopped_by_signal"] and train["seconds"] < 150 and "score" not in run["phases"]
  assert "stopped by a signal" in run["skipped"]
  assert checkpoint.latest_step(work / "train") == train["steps"] > 0
  assert checkpoint.load_generator(out / "generator")[2] == train["steps"]
