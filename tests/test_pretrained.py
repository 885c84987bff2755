"""The exported-model format: round trip, and clear errors for wrong shapes or corrupt files."""

import functools
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from conftest import tiny_config
from maskinpaint_jax import checkpoint, inference, models


@functools.cache
def _tiny_model(non_blind: bool = False):
  """(tiny config, generator params), initialised once per variant for the whole module."""
  config = tiny_config("unused", **{"model.non_blind": non_blind})
  image, hole = (jnp.zeros(s.shape, s.dtype) for s in models.example_inputs(32))
  init = jax.jit(models.make_generator(config.model).init)  # one compile, not one per op
  return config, init(jax.random.key(1), image, hole)["params"]


def test_round_trip_gives_the_same_outputs(tmp_path):
  config, params = _tiny_model(non_blind=True)
  out = checkpoint.save_pretrained(tmp_path / "m", config, params, 7, note="test")
  config2, params2, step = checkpoint.load_pretrained(out)
  assert step == 7 and config2.model.non_blind
  rng = np.random.default_rng(0)
  masked = rng.integers(0, 255, (2, 32, 32, 3), dtype=np.uint8)
  hole = (rng.random((2, 32, 32, 1)) < 0.3).astype(np.uint8)
  a = inference.make_filler(config.model, params, 2)(masked, hole)
  b = inference.make_filler(config2.model, params2, 2)(masked, hole)
  np.testing.assert_array_equal(a[0], b[0])
  assert json.loads((out / "manifest.json").read_text())["note"] == "test"


def test_wrong_shapes_are_a_clear_error(tmp_path):
  config, params = _tiny_model()
  out = checkpoint.save_pretrained(tmp_path / "m", config, params, 1)
  # The weights of a width-4 model under a config that says width 8.
  saved = json.loads((out / "config.json").read_text())
  saved["model"]["base_width"] = 8
  (out / "config.json").write_text(json.dumps(saved))
  with pytest.raises(ValueError, match="do not match the architecture"):
    checkpoint.load_pretrained(out)


def test_corrupt_or_missing_files_are_clear_errors(tmp_path):
  config, params = _tiny_model()
  out = checkpoint.save_pretrained(tmp_path / "m", config, params, 1)
  blob = (out / "generator.msgpack").read_bytes()
  (out / "generator.msgpack").write_bytes(blob[: len(blob) // 2])
  with pytest.raises(ValueError, match="corrupt"):
    checkpoint.load_pretrained(out)
  (out / "generator.msgpack").write_bytes(b"version https://git-lfs.github.com/spec/v1\n")
  manifest = json.loads((out / "manifest.json").read_text())
  import hashlib  # the pointer file's own checksum: only the format check can catch it
  manifest["sha256"] = hashlib.sha256((out / "generator.msgpack").read_bytes()).hexdigest()
  (out / "manifest.json").write_text(json.dumps(manifest))
  with pytest.raises(ValueError, match="cannot be read|do not match"):
    checkpoint.load_pretrained(out)
  (out / "config.json").unlink()
  with pytest.raises(FileNotFoundError, match="config.json"):
    checkpoint.load_pretrained(out)


def test_shipped_model_loads():
  if not (checkpoint.DEFAULT_PRETRAINED / "generator.msgpack").exists():
    pytest.fail("pretrained/ has no shipped model")
  config, params, step = checkpoint.load_pretrained()
  assert step > 0 and config.data.image_size == 64
