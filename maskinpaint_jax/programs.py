"""Compiled programs kept between runs, so that a command restores its first photo quickly.

Two caches, both in the user's cache folder (`default_cache_dir`):
- XLA's persistent compilation cache (`use_compilation_cache`): a program compiled once is not
  compiled again;
- traced programs (`cached_program`, `jax.export`): the Python tracing of a Flax model (about a
  second per generator on 2 cores) happens once per model, code and input shape.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import pathlib

import jax
import numpy as np

CACHE_ENV = "JAX_COMPILATION_CACHE_DIR"


def default_cache_dir() -> pathlib.Path:
  """$JAX_COMPILATION_CACHE_DIR, else the user's cache folder: $XDG_CACHE_HOME/maskinpaint-jax/
  jax (~/.cache/... by default)."""
  if os.environ.get(CACHE_ENV):
    return pathlib.Path(os.environ[CACHE_ENV])
  base = os.environ.get("XDG_CACHE_HOME") or pathlib.Path.home() / ".cache"
  return pathlib.Path(base) / "maskinpaint-jax" / "jax"


def use_compilation_cache() -> pathlib.Path | None:
  """Keeps XLA's compiled programs between runs (JAX's persistent compilation cache) in
  `default_cache_dir()`, unless a cache folder is already set; a second run of a program then
  skips compiling the generator and the face check. Returns the folder, or None when it cannot
  be created (nothing is cached then)."""
  current = jax.config.jax_compilation_cache_dir
  if current:
    return pathlib.Path(current)
  folder = default_cache_dir()
  try:
    folder.mkdir(parents=True, exist_ok=True)
  except OSError:
    return None
  jax.config.update("jax_compilation_cache_dir", str(folder))
  if "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS" not in os.environ:
    # The face check's programs compile in under JAX's default of 1 s, but together they add up.
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.1)
  return folder


@functools.cache
def _source_digest() -> str:
  """SHA-256 of the code a traced program depends on (the models and this module): a program
  exported by other code is never reused."""
  root = pathlib.Path(__file__).parent
  h = hashlib.sha256(jax.__version__.encode())
  for path in sorted([*root.glob("models/*.py"), root / "inference.py", root / "metrics.py",
                      root / "programs.py",
                      root / "faces" / "check.py"]):
    h.update(path.read_bytes())
  return h.hexdigest()


def cached_program(fn, example_args, key: str):
  """`jax.jit(fn)` for arguments shaped as `example_args` (a pytree of arrays or
  ShapeDtypeStructs), its traced program kept between runs (`jax.export`, in
  default_cache_dir()/exported): a second run skips tracing the model in Python, the persistent
  compilation cache then skips compiling it. `key` names what `fn` computes beyond the code
  (e.g. the model's config); the code's own digest is added. Falls back to tracing when the
  cache cannot be read or written."""
  from jax import export  # pylint: disable=g-import-not-at-top
  spec = jax.tree.map(lambda x: jax.ShapeDtypeStruct(np.shape(x), np.dtype(x.dtype)),
                      example_args)
  digest = hashlib.sha256(json.dumps([key, _source_digest(), str(jax.tree.structure(spec)),
                                      [(s.shape, str(s.dtype)) for s in jax.tree.leaves(spec)]],
                                     sort_keys=True).encode()).hexdigest()[:32]
  path = default_cache_dir() / "exported" / f"{digest}.bin"
  program = None
  if path.is_file():
    try:
      program = export.deserialize(bytearray(path.read_bytes()))
    except Exception:  # pylint: disable=broad-except
      program = None  # a file from an interrupted write, or another jax: trace again
  if program is None:
    program = export.export(jax.jit(fn))(*spec)
    try:
      path.parent.mkdir(parents=True, exist_ok=True)
      tmp = path.with_suffix(f".{os.getpid()}.tmp")
      tmp.write_bytes(program.serialize())
      tmp.replace(path)
    except OSError:
      pass
  return jax.jit(program.call)
