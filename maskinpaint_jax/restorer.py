r"""The Python API: restore the faces of people wearing masks in a photo.

  import maskinpaint_jax
  restorer = maskinpaint_jax.load_restorer()       # the shipped models, loaded once
  result = restorer.restore("photo.jpg")           # or an (H, W, 3) uint8 RGB array
  result.restored       # (H, W, 3) uint8 RGB, the photo's size; unchanged outside the hole
  result.hole           # (H, W) uint8 in {0, 1}: what was repainted
  for face in result.faces: print(face.describe(len(result.faces)))

`maskinpaint inpaint`, the restore page, its HTTP endpoint and the photo benchmarks all go
through `Restorer.restore` (one code path: `faces.restore.restore_photo`).
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any

import numpy as np

from maskinpaint_jax import errors, programs, shipped
from maskinpaint_jax import images as image_utils
from maskinpaint_jax import masks as mask_lib
from maskinpaint_jax.faces import paste, restore


DETAIL = 0.0


@dataclasses.dataclass(frozen=True)
class Restorer:
  """What restoring needs, loaded once (`load_restorer`): the generator (`filler`, input side
  `size`), the face finder and the face check (upright? mask?; None: every face is restored),
  generators of other input sides for larger faces, and a line that names them all."""
  size: int
  filler: Any
  finder: Any
  checker: Any
  description: str
  more_generators: tuple = ()
  min_face_size: int = restore.MIN_FACE_SIZE
  detail: float = 0.0    # the photo's own fine detail over enlarged faces (paste.photo_detail)
  mask_check: bool = True  # False: every human face found is restored, masked or not

  def restore(self, photo, hole=None, *, add_mask: str | None = None, seed: int = 0,
              seed_key: str = "") -> restore.Restoration:
    """Restores every masked face of `photo`.

    Args:
      photo: (H, W, 3) uint8 RGB array, or a path Pillow reads (EXIF orientation honoured,
        RGBA and greyscale converted).
      hole: your own hole map, (H, W) {0, 1} or {0, 255} array or a path to such an image
        (white = restore), the photo's size; None: the mask of each face is found and located.
      add_mask: "surgical", "cloth", "n95" or "random": put a synthetic mask (Algorithm 1,
        paper section III.A) on each face first, to try the model on unmasked photos.
      seed, seed_key: seed the synthetic mask's shape and colour (same seed and key, same mask).
    Returns:
      `faces.restore.Restoration`: restored, masked (H, W, 3) uint8; hole (H, W) uint8 {0, 1};
      faces, one `FaceReport` each (restored, no mask, or skipped with the reason); rotation.
    Raises:
      images.ImageLoadError: the photo or the hole map cannot be read.
      errors.MismatchError: the hole map is not the photo's size.
      finders.NoFaceError: no face in the photo.
    """
    if isinstance(photo, (str, os.PathLike)):
      seed_key = seed_key or str(photo)
      photo = image_utils.load_rgb(photo)
    photo = _as_rgb(photo)
    if hole is not None:
      hole = _as_hole(hole, photo.shape[:2])
    return restore.restore_photo(
        photo, self.finder, self.filler, self.size, hole=hole, add_mask=add_mask,
        rng=mask_lib.example_rng(seed, seed_key), min_face_size=self.min_face_size,
        checker=self.checker, more_generators=self.more_generators, detail=self.detail,
        mask_check=self.mask_check)


def _as_rgb(photo) -> np.ndarray:
  photo = np.asarray(photo)
  if photo.ndim == 2:
    photo = np.repeat(photo[..., None], 3, axis=-1)
  if photo.ndim != 3 or photo.shape[-1] not in (3, 4) or photo.dtype != np.uint8:
    raise errors.MismatchError(f"a photo is an (H, W, 3) uint8 RGB array, got {photo.shape} "
                               f"{photo.dtype}")
  return np.ascontiguousarray(photo[..., :3])


def _as_hole(hole, shape_hw) -> np.ndarray:
  if isinstance(hole, (str, os.PathLike)):
    return image_utils.load_hole(hole, shape_hw)
  hole = np.asarray(hole)
  if hole.ndim == 3:
    hole = hole.max(axis=-1)
  if hole.shape != tuple(shape_hw):
    raise errors.MismatchError(f"the hole map is {hole.shape[1]}x{hole.shape[0]} px but the "
                               f"photo is {shape_hw[1]}x{shape_hw[0]}: give a map of the "
                               "photo's size")
  return (hole > (127 if hole.max() > 1 else 0)).astype(np.uint8)


def load_large_model(large_model: str | None, workdir=None, models_dir=None) -> tuple[tuple, str]:
  """((the `paste.Generator` of `large_model`,), a note naming it), or ((), "") for "none".
  None means the shipped 128 px model, when there is one and the main generator is the shipped
  one (`workdir` None); else none.

  Raises:
    errors.SetupError: the model cannot be loaded.
  """
  from maskinpaint_jax import checkpoint, inference  # pylint: disable=g-import-not-at-top
  if large_model is None:
    large = shipped.model_dir(shipped.LARGE_GENERATOR, models_dir)
    large_model = (str(large) if workdir is None and (large / checkpoint.MANIFEST).is_file()
                   else "none")
  if large_model == "none":
    return (), ""
  try:
    config, params, step = checkpoint.load_generator(large_model)
  except (FileNotFoundError, ValueError) as e:
    raise errors.SetupError(f"large model: {e}") from e
  side = config.data.image_size
  return ((paste.Generator(inference.make_filler(config.model, params, 1, side), side),),
          f"; for faces of {side} px crops and more: step {step} of {large_model} ({side} px)")


def load_restorer(workdir=None, *, step: int | None = None, face_finder: str = "mesh",
                  min_face_size: int = restore.MIN_FACE_SIZE, mask_check: bool = True,
                  face_check: bool = True,
                  large_model: str | None = None, models_dir=None,
                  detail: float = DETAIL) -> Restorer:
  """The models that restore photos, loaded once.

  Args:
    workdir: a training workdir or exported model folder (default: the shipped 64 px model).
    step: a checkpoint step of `workdir` (default: the newest).
    face_finder: "mesh" (MediaPipe: finds masked faces; default) or "hog" (dlib, the paper's).
    min_face_size: faces smaller than this (px) are skipped with a reason.
    mask_check: leave faces without a mask untouched (False: restore every human face found).
    face_check: load the face check (is a face upright, human, masked); False: every face the
      finder gives is taken as it is, upright, human and masked (the generator measured alone,
      `bench_wild`). Without it `mask_check` has nothing to ask.
    large_model: a generator of a larger input side for faces whose crop is at least that side
      (None: the shipped 128 px model when `workdir` is None; "none": never).
    models_dir: the folder of the shipped models (default: $MASKINPAINT_MODELS, else the
      package's own; `shipped.models_root`).
    detail: the share of the photo's own fine detail laid over the hole of a face the generator
      enlarges (`faces.paste.photo_detail`; 0: the generator's output alone).
  Compiled programs are kept between runs in the user's cache folder
  (`programs.use_compilation_cache`), unless JAX already has a cache folder.
  Raises:
    errors.SetupError: a model or the face finder cannot be loaded.
  """
  # Heavy imports only here, so that importing the package stays light.
  from maskinpaint_jax import checkpoint, faces, inference  # pylint: disable=g-import-not-at-top
  from maskinpaint_jax.faces import mediapipe_models  # pylint: disable=g-import-not-at-top
  programs.use_compilation_cache()
  try:
    source = workdir or shipped.model_dir(shipped.GENERATOR, models_dir)
    config, g_params, loaded_step = checkpoint.load_generator(source, step)
  except (FileNotFoundError, ValueError) as e:
    raise errors.SetupError(str(e)) from e
  filler = inference.make_filler(config.model, g_params, batch_size=1,
                                  image_size=config.data.image_size)
  more, large_note = load_large_model(large_model, workdir, models_dir)
  try:
    finder = faces.make_finder(face_finder, min_face_size=min_face_size)
  except (mediapipe_models.ModelMissingError, ValueError) as e:
    raise errors.SetupError(f"face finder {face_finder}: {e}") from e
  checker = None
  if face_check:
    from maskinpaint_jax.faces import check  # pylint: disable=g-import-not-at-top
    try:
      checker = check.load(shipped.model_dir(shipped.FACE_CHECK, models_dir))
    except (FileNotFoundError, ValueError) as e:
      raise errors.SetupError(f"face check: {e}") from e
    if hasattr(finder, "vouch") and checker.heads is not None:
      # A face whose shape the mesh sees, short of its other checks, is taken when the check's
      # human-face head is sure of it (tight crops, bowed heads).
      finder.vouch = checker.vouches
      finder.vouch_frame = checker.vouches_on_frame
  description = (f"generator: step {loaded_step} of {source} ({config.data.image_size} px, "
                 f"{'non-blind' if config.model.non_blind else 'blind'}){large_note}; face "
                 f"finder {face_finder}; face check {'on' if checker else 'off'}, mask check "
                 f"{'on' if checker and mask_check else 'off'}")
  return Restorer(config.data.image_size, filler, finder, checker, description, more,
                  min_face_size, detail, mask_check)
