"""Where the shipped models are: package data of `maskinpaint_jax`, or a folder you name.

The wheel carries `maskinpaint_jax/pretrained/<name>/` (both generators, the face check, their
model cards), so an installed package restores photos from any folder. `MASKINPAINT_MODELS=DIR`
(or the `models_dir` argument / `--models_dir` flag of the programs) points to another folder
laid out the same way, e.g. one you exported yourself (`maskinpaint export --out DIR/face_mask_64`).
"""

from __future__ import annotations

import importlib.resources
import os
import pathlib

ENV_VAR = "MASKINPAINT_MODELS"
GENERATOR = "face_mask_64"         # every face; the model card is in its folder
LARGE_GENERATOR = "face_mask_128"  # faces whose crop is 128 px or more in the photo
FACE_CHECK = "face_check"          # upright? mask? (faces/check.py)


def models_root(models_dir: str | os.PathLike | None = None) -> pathlib.Path:
  """The folder of the shipped models: `models_dir`, else $MASKINPAINT_MODELS, else the package's.

  Raises:
    FileNotFoundError: the folder named does not exist.
  """
  chosen = models_dir or os.environ.get(ENV_VAR)
  if chosen:
    root = pathlib.Path(chosen).expanduser()
    if not root.is_dir():
      source = "models_dir" if models_dir else f"${ENV_VAR}"
      raise FileNotFoundError(f"{source}={chosen}: no such folder of models")
    return root
  # setuptools installs packages as plain folders, so the traversable is a real path.
  return pathlib.Path(str(importlib.resources.files("maskinpaint_jax") / "pretrained"))


def model_dir(name: str = GENERATOR, models_dir: str | os.PathLike | None = None) -> pathlib.Path:
  """`models_root(models_dir) / name` (it may not exist: the loaders say what is missing)."""
  return models_root(models_dir) / name
