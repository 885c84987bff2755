"""Training: sharded step equivalence, resume determinism, signals, NaN guard, multi-host, CLI.

Runs the tiny configuration (configs/tiny.py) on a tiny dataset built from real CelebA faces.
"""

import json
import os
import signal
import socket
import subprocess
import sys
import time

import grain
import jax
import numpy as np
import orbax.checkpoint as ocp
import pytest

from conftest import REPO, run_cli, tiny_config
from maskinpaint_jax import checkpoint, input_pipeline, train


def _host_batches(config, count):
  sources = input_pipeline.open_sources(config.data.data_dir, config.data.train_datasets,
                                        config.data.image_size, "train")
  ds = input_pipeline.train_dataset(sources, global_batch=config.batch_size, seed=config.seed,
                                    shard=grain.sharding.ShardOptions(0, 1))
  return [ds[i] for i in range(count)]


def _flat(tree):
  return {jax.tree_util.keystr(k): np.asarray(v)
          for k, v in jax.tree_util.tree_leaves_with_path(tree)}


def _run_steps(config, devices, batches):
  mesh = train.make_mesh(devices)
  parts = train.build(config, mesh)
  _, data_sharding = train.mesh_shardings(mesh)
  state = parts.init()
  _run_steps.initial = jax.device_get(state)
  history = []
  for b in batches:
    state, m = parts.step(state, {k: jax.device_put(v, data_sharding) for k, v in b.items()},
                          parts.rng)
    history.append(jax.device_get(m))
  return jax.device_get(state), history


def test_eight_device_step_equals_one_device_step(tiny_data_dir):
  """Tolerance: float32 reductions are summed in a different order over 8 shards; after 3 Adam
  steps (lr 2e-4) parameters agree to 2e-6 and losses to 1e-5 relative."""
  config = tiny_config(tiny_data_dir)
  batches = _host_batches(config, 3)
  one, h1 = _run_steps(config, jax.devices()[:1], batches)
  eight, h8 = _run_steps(config, jax.devices(), batches)
  assert int(one.step) == int(eight.step) == 3
  for a, b in zip(h1, h8):
    for k in a:
      np.testing.assert_allclose(a[k], b[k], rtol=1e-5, atol=1e-6, err_msg=k)
  flat1, flat8 = _flat(one), _flat(eight)
  assert flat1.keys() == flat8.keys()
  for k in flat1:
    np.testing.assert_allclose(flat1[k], flat8[k], rtol=1e-5, atol=2e-6, err_msg=k)
  # And training moved the parameters at all.
  init = _run_steps.initial
  moved = np.abs(eight.g_params["head"]["kernel"] - init.g_params["head"]["kernel"]).max()
  assert moved > 1e-4


def test_batch_not_divisible_by_devices_is_a_clear_error_before_compiling(tiny_data_dir):
  config = tiny_config(tiny_data_dir, batch_size=12)
  with pytest.raises(ValueError, match=r"not divisible by the 8 devices.*batch_size=16"):
    train.check_batch_layout(config)
  t = time.time()
  r = run_cli(["maskinpaint_jax.train", "--config", "configs/tiny.py", "--workdir",
               str(tiny_data_dir / "never"), f"--config.data.data_dir={tiny_data_dir}",
               "--config.batch_size=12"], timeout=120)
  assert r.returncode != 0 and "batch_size=16" in r.stderr
  assert not (tiny_data_dir / "never" / "checkpoints").exists()
  assert time.time() - t < 60


def test_cli_overrides_are_type_checked_and_applied(tiny_data_dir, tmp_path):
  base = ["maskinpaint_jax.train", "--config", "configs/tiny.py", "--workdir", str(tmp_path),
          f"--config.data.data_dir={tiny_data_dir}"]
  r = run_cli(base + ["--config.batch_size=x"], timeout=120)
  assert r.returncode == 2 and "wrong type or value" in r.stderr and "batch_size" in r.stderr
  r = run_cli(base + ["--config.model.nonsense=1"], timeout=120)
  assert r.returncode == 2 and "unknown config field 'nonsense'" in r.stderr
  r = run_cli(base + ["--config.num_train_steps=2", "--config.checkpoint_every_steps=1"])
  assert r.returncode == 0, r.stderr[-3000:]
  assert sorted(ocp.CheckpointManager(checkpoint.checkpoint_dir(tmp_path)).all_steps()) == [1, 2]
  saved = json.loads((tmp_path / "config.json").read_text())
  assert saved["num_train_steps"] == 2
  # Logs: JSON lines with losses and throughput, validation metrics, picture grids, TensorBoard.
  lines = [json.loads(l) for l in (tmp_path / "metrics.jsonl").read_text().splitlines()]
  assert any("g_l1" in l and "img_per_s" in l for l in lines)
  assert any("val_psnr" in l and "val_ssim" in l for l in lines)
  assert list((tmp_path / "samples").glob("step_*.png"))
  assert list((tmp_path / "tensorboard").glob("events.out.tfevents.*"))
  assert "img/s" in r.stdout and "ETA" in r.stdout


def _restore_all(workdir, step):
  """Every training item of a checkpoint, on one device, whatever topology saved it."""
  mngr = checkpoint.manager(workdir, read_only=True)
  config = checkpoint.restore_config(mngr, step)
  one_device = jax.sharding.SingleDeviceSharding(jax.devices()[0])
  abstract = jax.eval_shape(train.build(config, train.make_mesh(jax.devices()[:1])).init)
  target = jax.tree.map(lambda s: jax.ShapeDtypeStruct(s.shape, s.dtype, sharding=one_device),
                        train.to_items(abstract))
  got = checkpoint.restore_train(mngr, step, target)
  mngr.close()
  data = {p.name: p.read_text() for p in
          (checkpoint.checkpoint_dir(workdir) / str(step) / "data").glob("*.json")}
  return got, data


def _train_cmd(data_dir, workdir, *extra):
  return [sys.executable, "-m", "maskinpaint_jax.train", "--config", "configs/tiny.py",
          "--workdir", str(workdir), f"--config.data.data_dir={data_dir}", *extra]


def _wait_for(predicate, proc, timeout=240):
  deadline = time.time() + timeout
  while time.time() < deadline:
    if predicate():
      return
    if proc.poll() is not None:
      raise AssertionError(f"finished early: {proc.stdout.read()}")
    time.sleep(0.02)
  raise AssertionError("timed out")


@pytest.mark.slow
def test_a_run_killed_with_sigkill_resumes_bit_identically(tiny_data_dir, tmp_path):
  steps = ["--config.num_train_steps=80", "--config.checkpoint_every_steps=10",
           "--config.log_every_steps=10", "--config.eval_every_steps=1000"]
  env = dict(os.environ, PYTHONUNBUFFERED="1")
  ref = subprocess.run(_train_cmd(tiny_data_dir, tmp_path / "ref", *steps), cwd=REPO, env=env,
                       capture_output=True, text=True, timeout=600)
  assert ref.returncode == 0, ref.stderr[-3000:]

  work = tmp_path / "killed"
  proc = subprocess.Popen(_train_cmd(tiny_data_dir, work, *steps), cwd=REPO, env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
  ckpts = checkpoint.checkpoint_dir(work)
  _wait_for(lambda: (ckpts / "20" / "commit_success.txt").exists()
            or (ckpts / "20" / "_CHECKPOINT_METADATA").exists(), proc)
  proc.kill()
  proc.wait(timeout=60)
  assert proc.returncode == -signal.SIGKILL
  killed_at = max(int(p.name) for p in ckpts.iterdir() if p.name.isdigit())
  assert killed_at < 80

  resumed = subprocess.run(_train_cmd(tiny_data_dir, work, *steps), cwd=REPO, env=env,
                           capture_output=True, text=True, timeout=600)
  assert resumed.returncode == 0, resumed.stderr[-3000:]
  assert "resumed from step" in resumed.stdout
  a, data_a = _restore_all(tmp_path / "ref", 80)
  b, data_b = _restore_all(work, 80)
  assert data_a == data_b and data_a
  for item in checkpoint.TRAIN_ITEMS:
    fa, fb = _flat(a[item]), _flat(b[item])
    assert fa.keys() == fb.keys() and fa
    for k in fa:
      np.testing.assert_array_equal(fa[k], fb[k], err_msg=f"{item}{k}")


@pytest.mark.slow
def test_sigterm_saves_a_checkpoint_and_exits_cleanly(tiny_data_dir, tmp_path):
  proc = subprocess.Popen(
      _train_cmd(tiny_data_dir, tmp_path, "--config.num_train_steps=100000",
                 "--config.log_every_steps=1", "--config.checkpoint_every_steps=100000",
                 "--config.eval_every_steps=100000"),
      cwd=REPO, env=dict(os.environ, PYTHONUNBUFFERED="1"), stdout=subprocess.PIPE,
      stderr=subprocess.STDOUT, text=True)
  metrics_file = tmp_path / "metrics.jsonl"
  _wait_for(lambda: metrics_file.exists() and len(metrics_file.read_text().splitlines()) >= 3,
            proc)
  proc.send_signal(signal.SIGTERM)
  out = proc.communicate(timeout=120)[0]
  assert proc.returncode == 0, out[-3000:]
  assert "stopped at step" in out
  stopped = int(out.split("stopped at step ")[1].split(";")[0])
  steps = ocp.CheckpointManager(checkpoint.checkpoint_dir(tmp_path)).all_steps()
  assert list(steps) == [stopped] and 3 <= stopped < 100000


@pytest.mark.slow
def test_a_nan_stops_training_before_a_bad_checkpoint_is_written(tiny_data_dir, tmp_path):
  r = run_cli(["maskinpaint_jax.train", "--config", "configs/tiny.py", "--workdir",
               str(tmp_path), f"--config.data.data_dir={tiny_data_dir}",
               "--config.num_train_steps=12", "--config.checkpoint_every_steps=2",
               "--config.log_every_steps=2", "--config.debug_nan_at_step=4"])
  assert r.returncode == 3, r.stdout[-2000:] + r.stderr[-2000:]
  assert "non-finite" in r.stderr and "last good checkpoint is step 4" in r.stderr
  steps = sorted(ocp.CheckpointManager(checkpoint.checkpoint_dir(tmp_path)).all_steps())
  assert steps == [2, 4]
  for step in steps:
    items, _ = _restore_all(tmp_path, step)
    for leaf in jax.tree.leaves(items):
      assert np.isfinite(np.asarray(leaf, np.float64)).all()


def _free_port():
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


@pytest.mark.slow
def test_two_processes_of_four_devices_train_like_one_process_of_eight(tiny_data_dir, tmp_path):
  common = ["--config.num_train_steps=4", "--config.checkpoint_every_steps=4",
            "--config.eval_every_steps=1000"]
  single = subprocess.run(_train_cmd(tiny_data_dir, tmp_path / "one", *common), cwd=REPO,
                          capture_output=True, text=True, timeout=600)
  assert single.returncode == 0, single.stderr[-3000:]

  port = _free_port()
  env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=4",
             PYTHONUNBUFFERED="1")
  procs = [subprocess.Popen(
      _train_cmd(tiny_data_dir, tmp_path / "two", *common,
                 f"--coordinator_address=127.0.0.1:{port}", "--num_processes=2",
                 f"--process_id={i}"),
      cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
      for i in range(2)]
  outs = [p.communicate(timeout=600)[0] for p in procs]
  assert all(p.returncode == 0 for p in procs), outs[0][-3000:] + outs[1][-3000:]
  assert "2 process(es)" in outs[0] and "8 device(s)" in outs[0]

  a, data_a = _restore_all(tmp_path / "one", 4)
  b, data_b = _restore_all(tmp_path / "two", 4)
  assert set(data_b) == {"process_0-of-2.json", "process_1-of-2.json"}
  # Same global batches in the same device order, so the only difference is the order in which
  # the cross-process gradient all-reduce adds its float32 terms (~1e-7 relative per step).
  # Parameters must agree to 2e-6 after 4 steps; Adam's moments are running sums of those
  # gradients and are compared relative to each array's scale.
  for item in checkpoint.TRAIN_ITEMS:
    fa, fb = _flat(a[item]), _flat(b[item])
    assert fa.keys() == fb.keys() and fa
    for k in fa:
      atol = 2e-6 if item != "optimizer" else 1e-2 * max(np.abs(fa[k]).max(), 1e-12)
      np.testing.assert_allclose(fa[k], fb[k], rtol=1e-5, atol=atol, err_msg=f"{item}{k}")
