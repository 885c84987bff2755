"""Programs for tests: `python -m` with the test tier's environment, and a tiny trained
checkpoint (made once per run)."""

import os
import pathlib
import sys

REPO = pathlib.Path(__file__).resolve().parents[1]
SAMPLE_CELEBA = REPO / "sample_data" / "celeba"
SAMPLE_PHOTOS = REPO / "sample_data" / "photos"

import pytest

from fixtures_data import made_once


def run_cli(args, timeout=600, **kwargs):
  """Runs `python -m ...` from the repo root with the test tier's environment."""
  import subprocess
  env = dict(os.environ, PYTHONUNBUFFERED="1")
  env.update(kwargs.pop("env", {}))
  return subprocess.run([sys.executable, "-m", *args], cwd=REPO, env=env, capture_output=True,
                        text=True, timeout=timeout, **kwargs)


@pytest.fixture(scope="session")
def tiny_workdir(tiny_data_dir, tmp_path_factory):
  """A checkpoint of the tiny configuration after 2 training steps (quality irrelevant)."""
  def train(workdir):
    r = run_cli(["maskinpaint_jax.tools.train", "--config", "configs/tiny.py", "--workdir",
                 str(workdir), f"--config.data.data_dir={tiny_data_dir}",
                 "--config.num_train_steps=2", "--config.data.train_datasets=face_mask,rect"])
    assert r.returncode == 0, r.stderr[-3000:]
  return made_once(tmp_path_factory, "tiny_run", train)
