"""launch/gpu_check.sh: the batch search, the profile's top ops, and (slow) the whole
script at toy size on 8 fake CPU devices, as a GPU node would run it at full size."""

import gzip
import json
import os
import subprocess

import pytest

from conftest import REPO
from maskinpaint_jax import profiling
from maskinpaint_jax.tools import gpu_check


def fake_probe(fits_up_to: int, fail_at: int | None = None):
  """A probe that fits up to `fits_up_to` per device, and fails otherwise at `fail_at`."""
  tried = []

  def probe(batch):
    tried.append(batch)
    status = ("error" if batch == fail_at else "ok" if batch <= fits_up_to else "oom")
    return dict(batch=batch, status=status, log="log",
                row={"img_per_s": float(batch)} if status == "ok" else None)
  return probe, tried


@pytest.mark.parametrize("start, largest, fits, tried, best, why", [
    (8, 1024, 40, [8, 16, 32, 64], 32, "out of memory at 64"),  # doubles until it does not fit
    (64, 1024, 40, [64, 32], 32, "out of memory at 64"),        # a first misfit halves instead
    (8, 32, 10**6, [8, 16, 32], 32, "largest batch to try"),    # --batch_max
    (4, 1024, 0, [4, 2, 1], None, "even at 1"),
])
def test_search_batch_finds_the_largest_batch_that_fits(start, largest, fits, tried, best, why):
  probe, seen = fake_probe(fits)
  probes, found, stopped = gpu_check.search_batch(probe, start, largest, budget_s=1e9)
  assert seen == tried and len(probes) == len(tried)
  assert (found and found["batch"]) == best and why in stopped


def test_search_batch_stops_at_a_failure_that_is_not_memory_and_at_its_time_budget():
  probe, seen = fake_probe(10**6, fail_at=16)
  _, found, stopped = gpu_check.search_batch(probe, 8, 1024, budget_s=1e9)
  assert seen == [8, 16] and found["batch"] == 8 and "not out of memory" in stopped
  probe, seen = fake_probe(10**6)
  _, found, stopped = gpu_check.search_batch(probe, 8, 1024, budget_s=0.0)
  assert seen == [8] and found["batch"] == 8 and "time budget" in stopped


def test_search_batch_tries_no_probe_that_would_end_past_its_budget(monkeypatch):
  """The next probe is taken to last as long as the one before: with 40 s probes and a 100 s
  budget, two probes (80 s; a third would end at 120 s)."""
  probe, seen = fake_probe(10**6)
  clock = iter(range(0, 1000, 40))  # each call of time.time() after a probe: 40 s later
  monkeypatch.setattr(gpu_check.time, "time", lambda: float(next(clock)))
  _, found, stopped = gpu_check.search_batch(lambda b: dict(probe(b), seconds=40.0), 8, 1024,
                                             budget_s=100.0)
  assert seen == [8, 16] and found["batch"] == 16 and "would be passed by trying 32" in stopped


def test_out_of_memory_is_told_from_other_failures():
  assert gpu_check.is_oom("jaxlib.xla_extension.XlaRuntimeError: RESOURCE_EXHAUSTED: Out of "
                          "memory while trying to allocate 81.2GiB.")
  assert not gpu_check.is_oom("ValueError: batch 12 does not split over 8 devices")


def test_training_batch_is_the_smallest_within_5_percent_of_the_best():
  row = lambda rate: {"img_per_s": rate}
  probes = [dict(batch=64, status="ok", row=row(900.0)), dict(batch=128, status="ok",
                                                             row=row(980.0)),
            dict(batch=256, status="ok", row=row(1000.0)), dict(batch=512, status="oom", row=None)]
  assert gpu_check.pick_train_batch(probes) == 128


def test_top_ops_prefer_device_rows_and_skip_module_spans():
  meta = lambda pid, name, tid=None: dict(ph="M", pid=pid, name="thread_name" if tid else
                                          "process_name", tid=tid, args={"name": name})
  op = lambda pid, tid, name, dur: dict(ph="X", pid=pid, tid=tid, ts=0, dur=dur, name=name,
                                        args={"hlo_op": name, "hlo_module": "jit_train_step"})
  trace = {"traceEvents": [
      meta(1, "/host:CPU"), meta(2, "/device:GPU:0"), meta(2, "XLA Modules", 10),
      meta(2, "Stream #7", 11),
      op(1, 5, "fusion.1", 900.0),  # the launch on the host: not device time
      dict(ph="X", pid=2, tid=10, ts=0, dur=5000.0, name="jit_train_step", args={}),
      op(2, 11, "fusion.1", 300.0), op(2, 11, "fusion.2", 100.0), op(2, 11, "convolution.3", 600.0),
  ]}
  ops, source = profiling.op_events(trace)
  assert source == "device kernels" and sorted(o[0] for o in ops) == [
      "convolution.3", "fusion.1", "fusion.2"]
  s = profiling.summarize(ops, module="train_step", top=2)
  assert s["total_ms"] == pytest.approx(1.0) and [r["name"] for r in s["ops"]] == [
      "convolution.3", "fusion.1"]
  assert s["kinds"][0] == dict(name="convolution", ms=pytest.approx(0.6),
                               share=pytest.approx(0.6), count=1)
  assert s["kinds"][1]["name"] == "fusion" and s["kinds"][1]["count"] == 2


def test_top_ops_of_a_real_cpu_trace(tmp_path):
  import jax
  import jax.numpy as jnp
  f = jax.jit(lambda x: jnp.tanh(x @ x.T).sum())
  x = jnp.ones((64, 64))
  jax.block_until_ready(f(x))
  with jax.profiler.trace(str(tmp_path)):
    jax.block_until_ready(f(x))
  s = profiling.top_ops(tmp_path)
  assert s["source"] == "host threads" and s["total_ms"] > 0
  assert s["ops"] and sum(r["share"] for r in s["ops"]) == pytest.approx(1.0)
  with gzip.open(s["trace"], "rt") as fh:
    assert "traceEvents" in json.load(fh)
  assert "| op kind | ms | share | calls |" in profiling.markdown(s)


@pytest.mark.slow
def test_gpu_check_script_runs_end_to_end_at_toy_size(tmp_path):
  out, work = tmp_path / "out", tmp_path / "work"
  # One probe per dtype and 5 s of training: the doubling search has its own tests above.
  env = dict(os.environ, TOY="1", WORK=str(work), WORKERS="1", BATCH_MAX="1", BUDGET_S="5")
  r = subprocess.run(["bash", str(REPO / "launch" / "gpu_check.sh"), str(out)], cwd=REPO,
                     env=env, capture_output=True, text=True, timeout=900)
  assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
  expected = ["summary.md", "summary.json", "benchmarks.md", "train_metrics.jsonl",
              "train_config.json", "generator/generator.msgpack", "generator/config.json",
              "generator/manifest.json", "eval/results.json", "eval/results.md",
              "eval/results.csv", "eval/samples_rect_32.png", "profile/float32.trace.json.gz",
              "profile/bfloat16.trace.json.gz", "logs/build.log", "logs/evaluate.log"]
  assert [f for f in expected if not (out / f).is_file()] == []
  assert list((out / "eval").glob("samples_face_mask_32_*.png"))
  s = json.loads((out / "summary.json").read_text())
  assert s["errors"] == {}
  for dtype in ("float32", "bfloat16"):  # the search reached the largest batch, 1 per device
    best = s["bench"][dtype]["best"]
    assert best["batch"] == 1 and best["row"]["devices"] == 8 and best["row"]["profile"]["ops"]
  assert s["bench"]["faster"] in ("float32", "bfloat16")
  assert s["train"]["dtype"] == s["bench"]["faster"] and s["train"]["steps"] > 0
  assert s["train"]["tries"][-1]["returncode"] == 0  # stopped by SIGTERM, saved, exit 0
  assert set(s["build"]["datasets"]) == {"face_mask", "rect"}
  assert s["evaluate"]["step"] == s["train"]["steps"]
  assert set(s["evaluate"]["datasets"]) == {"face_mask_32", "rect_32"}
  for d in s["evaluate"]["datasets"].values():
    assert d["telea"]["psnr"] and d["navier_stokes"]["psnr"] and d["ours_raw"]["psnr"]
  md = (out / "summary.md").read_text()
  for heading in ("## 1. Train step", "## 2. Datasets", "## 3. Training", "## 4. Evaluation"):
    assert heading in md
  assert (out / "benchmarks.md").read_text().count("## Train step: gpu_check,") == len(
      s["bench"]["float32"]["probes"]) + len(s["bench"]["bfloat16"]["probes"])
