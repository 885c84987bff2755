"""Test tier set-up. Runs before any test module imports JAX. The shared fixtures live in
fixtures_data.py (datasets: the tiny build, the in-memory mock), fixtures_programs.py (run_cli,
the tiny trained checkpoint) and fixtures_photos.py (awkward photo folders), re-exported here;
stand-ins for the restore path's models in stand_ins.py.

* 8 fake CPU devices, so the sharded train step is exercised as on an 8-GPU node.
* A persistent compilation cache (.cache/jax in the repo, or $JAX_COMPILATION_CACHE_DIR), which
  makes repeated runs and the many subprocess-based tests much faster.
"""

import os
import pathlib
import sys

REPO = pathlib.Path(__file__).resolve().parents[1]
os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "")
                           + " --xla_force_host_platform_device_count=8").strip()
os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", str(REPO / ".cache" / "jax"))
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0.5")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# Subprocess-based tests import `configs/` by path and the packages from the repo.
if str(REPO) not in sys.path:
  sys.path.insert(0, str(REPO))

import pytest  # noqa: E402

SAMPLE_CELEBA = REPO / "sample_data" / "celeba"
SAMPLE_PHOTOS = REPO / "sample_data" / "photos"


@pytest.fixture(scope="session")
def repo():
  return REPO


@pytest.fixture(scope="session")
def celeba_paths():
  return sorted(SAMPLE_CELEBA.glob("*.jpg"))


@pytest.fixture(scope="session")
def photos_dir():
  return SAMPLE_PHOTOS


# The fixtures and helpers live in one module per kind; tests import them from here as before.
from fixtures_data import (MOCK_SPLITS, build_datasets, made_once, mock_data, mock_source,  # noqa: E402,F401
                           mocked_datasets, tiny_config, tiny_data_dir)
from fixtures_photos import make_awkward_photo_folder  # noqa: E402,F401
from fixtures_programs import run_cli, tiny_workdir  # noqa: E402,F401
