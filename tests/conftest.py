"""Test tier set-up. Runs before any test module imports JAX.

* 8 fake CPU devices, so the sharded train step is exercised as on an 8-GPU node.
* A persistent compilation cache (.cache/jax in the repo, or $JAX_COMPILATION_CACHE_DIR), which
  makes repeated runs and the many subprocess-based tests much faster.
"""

import contextlib
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


def make_awkward_photo_folder(root: pathlib.Path, good_faces) -> dict:
  """A folder with every kind of bad or unusual input a user's photo folder can hold.

  Returns {file name: expected outcome}, where the outcome is "ok" or a reason fragment.
  """
  import cv2
  import numpy as np
  from PIL import Image

  root.mkdir(parents=True, exist_ok=True)
  face_bytes = pathlib.Path(good_faces[0]).read_bytes()
  face = np.asarray(Image.open(good_faces[1]).convert("RGB"))
  expect = {}
  for i, p in enumerate(good_faces[2:6]):
    (root / f"good{i}.jpg").write_bytes(pathlib.Path(p).read_bytes())
    expect[f"good{i}.jpg"] = "ok"
  (root / "empty.jpg").write_bytes(b"")
  expect["empty.jpg"] = "empty file"
  (root / "truncated.jpg").write_bytes(face_bytes[: len(face_bytes) // 2])
  expect["truncated.jpg"] = "truncated"
  (root / "text.jpg").write_text("this is not a photo\n")
  expect["text.jpg"] = "not an image"
  Image.fromarray(face).convert("L").save(root / "gray.png")
  expect["gray.png"] = "ok"
  rgba = np.concatenate([face, np.full(face.shape[:2] + (1,), 255, np.uint8)], -1)
  rgba[:10, :, 3] = 0
  Image.fromarray(rgba, "RGBA").save(root / "rgba.png")
  expect["rgba.png"] = "ok"
  cv2.imwrite(str(root / "deep16.png"), (face[..., ::-1].astype(np.uint16) * 257))
  expect["deep16.png"] = "ok"
  # A 6000x4000 photo: the face scaled up as a whole, the rest of the frame a plain wall.
  tall = cv2.resize(face, (round(face.shape[1] * 4000 / face.shape[0]), 4000))
  big = np.full((4000, 6000, 3), 90, np.uint8)
  big[:, 1500:1500 + tall.shape[1]] = tall
  Image.fromarray(big).save(root / "huge.jpg", quality=80)
  expect["huge.jpg"] = "ok"
  noise = np.random.default_rng(0).integers(0, 255, (180, 160, 3), dtype=np.uint8)
  Image.fromarray(noise).save(root / "noface.png")
  expect["noface.png"] = "no face"
  (root / "two_people.jpg").write_bytes((SAMPLE_PHOTOS / "two_people.jpg").read_bytes())
  expect["two_people.jpg"] = "ok"
  (root / "dangling.jpg").symlink_to(root / "does-not-exist.jpg")
  expect["dangling.jpg"] = "missing file"
  os.mkfifo(root / "pipe.jpg")
  expect["pipe.jpg"] = "not a regular file"
  (root / "loop_a.jpg").symlink_to(root / "loop_b.jpg")
  (root / "loop_b.jpg").symlink_to(root / "loop_a.jpg")
  expect["loop_a.jpg"] = expect["loop_b.jpg"] = "symlink loop"
  return expect


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
