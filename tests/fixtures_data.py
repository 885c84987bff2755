"""Datasets for tests: the tiny real build (made once per run, shared by the xdist workers) and
the in-memory mock of the built datasets' layout (no photos, no build)."""

import contextlib
import os
import pathlib

REPO = pathlib.Path(__file__).resolve().parents[1]
SAMPLE_CELEBA = REPO / "sample_data" / "celeba"
SAMPLE_PHOTOS = REPO / "sample_data" / "photos"

import pytest


def made_once(tmp_path_factory, name: str, make) -> pathlib.Path:
  """A folder that session fixtures share: `make(folder)` runs once per test run. Under
  pytest-xdist (`make test` runs 2 workers) the first worker to ask makes it while the others
  wait, instead of each making its own."""
  if "PYTEST_XDIST_WORKER" not in os.environ:
    folder = tmp_path_factory.mktemp(name)
    make(folder)
    return folder
  import shutil

  import filelock
  root = tmp_path_factory.getbasetemp().parent  # this run's, shared by its workers
  folder, done = root / name, root / f"{name}.done"
  with filelock.FileLock(str(root / f"{name}.lock")):
    if not done.exists():  # made by nobody yet, or by a worker that failed half-way
      shutil.rmtree(folder, ignore_errors=True)
      folder.mkdir()
      make(folder)
      done.touch()
  return folder


@pytest.fixture(scope="session")
def tiny_data_dir(tmp_path_factory):
  """face_mask and rect datasets at 32 px from 48 real CelebA photos (built once per run)."""
  return made_once(tmp_path_factory, "tiny_tfds", lambda data_dir: build_datasets(
      ["--src", str(SAMPLE_CELEBA), "--data_dir", str(data_dir), "--occlusions", "face_mask,rect",
       "--size", "32", "--limit", "48", "--workers", "1"]))


def build_datasets(argv) -> list[dict]:
  """`python -m maskinpaint_jax.tools.build ARGV`, in-process: the build summaries."""
  from maskinpaint_jax.tools import build
  from maskinpaint_jax import cli
  return build.build_all(cli.parse(build.define_flags, argv)[0])


def tiny_config(data_dir, **overrides):
  """configs/tiny.py pointed at `data_dir`, with dotted-key overrides."""
  from maskinpaint_jax import cli
  config = cli.load_config(REPO / "configs" / "tiny.py")
  config.data.data_dir = str(data_dir)
  config.update_from_flattened_dict(overrides)
  return config


MOCK_SPLITS = {"train": 40, "validation": 8, "test": 8}


def mock_source(data_dir, name: str, split: str, splits=None):
  """Synthetic examples of dataset `name` (e.g. "face_mask_32") in the built datasets' feature
  layout: what `input_pipeline.data_source` reads from disk, made in memory. Smooth random
  faces-to-be, a hole (centred half-size rectangle for rect, a lower-face box of a mask style
  otherwise) filled white in `masked`. A split of size 0 in `splits` is missing (KeyError)."""
  import zlib

  import cv2
  import numpy as np

  from maskinpaint_jax import masks
  count = (splits or MOCK_SPLITS).get(split, 0)
  if not count:
    raise KeyError(f"mock {name} has no split {split!r}")
  occlusion, size = (name.rsplit("_", 1) if name[-1].isdigit() else (name, "128"))
  size = int(size)
  rng = np.random.default_rng(zlib.crc32(f"{name}/{split}".encode()))
  # A real face's 68 landmarks (tests/assets) in the crop's pixels, as the build stores them.
  from maskinpaint_jax.faces import align
  face = np.load(pathlib.Path(__file__).parent / "assets" / "obama_landmarks.npy")
  landmarks = align.transform_points(align.crop_matrix(face, size), face).astype(np.float32)
  examples = []
  for i in range(count):
    clean = cv2.resize(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8), (size, size))
    hole = np.zeros((size, size, 1), np.uint8)
    if occlusion == "rect":
      hole[size // 4:3 * size // 4, size // 4:3 * size // 4] = 1
      style = masks.MASK_TYPES.index("rect")
    else:
      top = int(rng.integers(size // 2, 5 * size // 8))
      hole[top:7 * size // 8, size // 8:7 * size // 8] = 1
      style = int(rng.integers(0, len(masks.FACE_MASK_STYLES)))
    examples.append({"image": clean, "masked": np.where(hole > 0, np.uint8(255), clean),
                     "mask": hole * 255, "mask_type": style, "id": f"{name}/{split}/{i}".encode(),
                     "landmarks": landmarks})
  return examples


@contextlib.contextmanager
def mocked_datasets():
  """Every dataset read in memory from `mock_source` instead of from disk (as the Flax examples'
  train_test.py does with tfds.testing.mock_data): no photos, no face finding, no build. Yields
  a tiny config over the face_mask and rect mocks."""
  from maskinpaint_jax import input_pipeline
  with pytest.MonkeyPatch.context() as patch:
    patch.setattr(input_pipeline, "data_source", mock_source)
    yield tiny_config("mock", **{"data.train_datasets": "face_mask,rect"})


@pytest.fixture
def mock_data():
  """mocked_datasets() for one test."""
  with mocked_datasets() as config:
    yield config
