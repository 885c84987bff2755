"""One training run per workdir, and expected failures as one `error:` line (fast tier: the lock
and the trainer on mock data; slow tier: the command lines)."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest

from conftest import REPO, run_cli
from maskinpaint_jax import checkpoint, errors, runlog, trainer
from maskinpaint_jax import workdir as workdir_lib

# A process that holds a workdir until it is killed; it prints "held" once it does.
HOLDER = ("import sys, time; from maskinpaint_jax import workdir as w\n"
          "with w.hold(sys.argv[1]):\n  print('held', flush=True); time.sleep(600)")


def start_holder(path):
  proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(path)], cwd=REPO,
                          stdout=subprocess.PIPE, text=True)
  assert proc.stdout.readline().strip() == "held"
  return proc


def test_a_second_holder_is_refused_with_the_first_ones_name(tmp_path):
  proc = start_holder(tmp_path)
  try:
    with pytest.raises(workdir_lib.WorkdirInUseError, match=rf"pid {proc.pid} on host .*started"):
      with workdir_lib.hold(tmp_path):
        pass
  finally:
    proc.kill()
    proc.wait()


def test_a_killed_holder_leaves_no_stale_lock(tmp_path):
  proc = start_holder(tmp_path)
  proc.send_signal(signal.SIGKILL)
  proc.wait()
  with workdir_lib.hold(tmp_path) as me:  # the OS released the dead process's lock
    assert me["pid"] == os.getpid()
    assert workdir_lib.holder(tmp_path)["pid"] == os.getpid()


def test_the_lock_is_free_again_after_the_block_and_after_an_error(tmp_path):
  with pytest.raises(RuntimeError):
    with workdir_lib.hold(tmp_path):
      raise RuntimeError("training failed")
  with workdir_lib.hold(tmp_path):
    pass


def test_a_workdir_that_cannot_be_created_is_a_clear_error(tmp_path):
  (tmp_path / "file").write_text("not a folder")
  with pytest.raises(errors.WorkdirError, match="cannot create the workdir .*file/run"):
    workdir_lib.prepare(tmp_path / "file" / "run")


def test_a_second_training_run_stops_before_writing_anything(mock_data, tmp_path):
  work = tmp_path / "work"
  work.mkdir()
  proc = start_holder(work)
  try:
    with pytest.raises(workdir_lib.WorkdirInUseError, match=f"pid {proc.pid}"):
      trainer.train_and_evaluate(mock_data, str(work))
  finally:
    proc.kill()
    proc.wait()
  assert sorted(p.name for p in work.iterdir()) == [workdir_lib.LOCK_FILE]


def test_a_refused_resume_leaves_the_run_untouched(mock_data, tmp_path):
  mock_data.num_train_steps = 2
  trainer.train_and_evaluate(mock_data, str(tmp_path))
  before = {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.is_file()}
  other = mock_data.copy_and_resolve_references()
  other.model.base_width = 2 * mock_data.model.base_width
  with pytest.raises(errors.MismatchError, match="cannot resume"):
    trainer.train_and_evaluate(other, str(tmp_path))
  after = {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.is_file()}
  assert {k: v for k, v in after.items() if k != workdir_lib.LOCK_FILE} == \
      {k: v for k, v in before.items() if k != workdir_lib.LOCK_FILE}


def _train_cmd(data_dir, workdir, *extra):
  return [sys.executable, "-m", "maskinpaint_jax.tools.train", "--config", "configs/tiny.py",
          "--workdir", str(workdir), f"--config.data.data_dir={data_dir}", *extra]


@pytest.mark.slow
def test_two_trains_on_one_workdir_the_second_is_refused_the_first_record_intact(tiny_data_dir,
                                                                               tmp_path):
  env = dict(os.environ, PYTHONUNBUFFERED="1")
  steps = ["--config.num_train_steps=100000", "--config.log_every_steps=1",
           "--config.checkpoint_every_steps=5", "--config.eval_every_steps=100000"]
  first = subprocess.Popen(_train_cmd(tiny_data_dir, tmp_path, *steps), cwd=REPO, env=env,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
  try:
    deadline = time.time() + 240
    while len(runlog.training_rows(runlog.read_metrics(tmp_path))) < 3:
      assert first.poll() is None and time.time() < deadline, first.stdout.read()[-3000:]
      time.sleep(0.05)
    t = time.time()
    second = subprocess.run(_train_cmd(tiny_data_dir, tmp_path, *steps), cwd=REPO, env=env,
                            capture_output=True, text=True, timeout=120)
    assert second.returncode == 1, second.stderr[-3000:]
    lines = second.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: the workdir"), second.stderr
    assert f"pid {first.pid}" in lines[0] and "Traceback" not in second.stderr
    assert "compiled the train step" not in second.stdout and time.time() - t < 60
    assert first.poll() is None  # the first run goes on
  finally:
    first.send_signal(signal.SIGTERM)
    out = first.communicate(timeout=120)[0]
  assert first.returncode == 0, out[-3000:]
  steps_logged = [r["step"] for r in runlog.training_rows(runlog.read_metrics(tmp_path))]
  assert steps_logged == list(range(1, len(steps_logged) + 1))
  assert json.loads((tmp_path / "config.json").read_text())["num_train_steps"] == 100000


def _one_error_line(r, *phrases):
  lines = r.stderr.strip().splitlines()
  assert r.returncode == 1, r.stderr[-3000:]
  assert "Traceback" not in r.stderr and lines and lines[-1].startswith("error: "), r.stderr
  assert sum(line.startswith("error: ") for line in lines) == 1
  for phrase in phrases:
    assert phrase in lines[-1], lines[-1]


@pytest.mark.slow
def test_expected_failures_of_the_programs_are_one_error_line(tiny_data_dir, tiny_workdir,
                                                              tmp_path):
  train = ["maskinpaint_jax.tools.train", "--config", "configs/tiny.py"]
  # A dataset that was never built.
  _one_error_line(run_cli(train + ["--workdir", str(tmp_path / "w1"),
                                   f"--config.data.data_dir={tmp_path / 'nothing'}"]),
                  "no complete dataset", "Build it: python -m maskinpaint_jax.tools.build")
  # A workdir that cannot be created.
  (tmp_path / "file").write_text("")
  _one_error_line(run_cli(train + ["--workdir", str(tmp_path / "file" / "w"),
                                   f"--config.data.data_dir={tiny_data_dir}"]),
                  "cannot create the workdir")
  # A checkpoint of another model shape (a copy: the shared checkpoint stays as it is).
  other = tmp_path / "other_shape"
  shutil.copytree(tiny_workdir, other)
  _one_error_line(run_cli(train + ["--workdir", str(other),
                                   f"--config.data.data_dir={tiny_data_dir}",
                                   "--config.data.train_datasets=face_mask,rect",
                                   "--config.model.base_width=8"]),
                  "cannot resume", "model")
  assert checkpoint.latest_step(other) == checkpoint.latest_step(tiny_workdir)
  # No checkpoint to evaluate or export.
  (tmp_path / "empty").mkdir()
  for program in ("maskinpaint_jax.tools.evaluate", "maskinpaint_jax.tools.export"):
    _one_error_line(run_cli([program, "--workdir", str(tmp_path / "empty")]
                            + (["--out", str(tmp_path / "x")] if "export" in program else [])),
                    "no checkpoint in", "train first")
