"""Robust photo loading, PNG coding and picture grids (numpy / Pillow / OpenCV only).

Every way a user's file can be bad ends in `ImageLoadError` with a reason a person can act on;
callers skip the file and report the reason rather than crash.
"""

from __future__ import annotations

import errno
import os
import pathlib
import warnings

import cv2
import numpy as np
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

from maskinpaint_jax import errors

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")
# Photos above this many pixels are refused (decompression bombs); 6000x4000 is 24 Mpx.
MAX_PIXELS = 120_000_000


class HoleSizeError(errors.MismatchError):
  """A hole map whose size is not the photo's (the photo itself is fine)."""


class ImageLoadError(Exception):
  """A file that cannot be used as a photo; str(e) is the reason."""


def list_images(src: str | os.PathLike) -> list[pathlib.Path]:
  """Image-like files under `src` (recursively), sorted, without following directory links.

  A file whose name looks like an image is listed even if it is broken: the loader reports why.
  """
  root = pathlib.Path(src)
  if not root.is_dir():
    raise FileNotFoundError(f"not a directory: {root}")
  found = []
  for dirpath, _, filenames in os.walk(root, followlinks=False):
    for name in filenames:
      if name.lower().endswith(IMAGE_SUFFIXES):
        found.append(pathlib.Path(dirpath) / name)
  return sorted(found)


def list_files(src: str | os.PathLike) -> list[pathlib.Path]:
  """Every file under `src` (recursively), sorted, whatever its name: for tools that must
  account for each one (restored, skipped with a reason, or unreadable)."""
  root = pathlib.Path(src)
  if not root.is_dir():
    raise FileNotFoundError(f"not a directory: {root}")
  return sorted(pathlib.Path(d) / n for d, _, names in os.walk(root, followlinks=False)
                for n in names)


HEIF_SUFFIXES = (".heic", ".heif")


def _heif_opener() -> bool:
  """Registers pillow-heif's HEIC/HEIF reader with Pillow when it is installed."""
  try:
    import pillow_heif  # pylint: disable=g-import-not-at-top
  except ImportError:
    return False
  pillow_heif.register_heif_opener()
  return True


def frame_count(path: str | os.PathLike) -> int:
  """Frames in an animated image (GIF, WebP, TIFF pages); 1 for a still or unreadable one."""
  try:
    with Image.open(path) as img:
      return int(getattr(img, "n_frames", 1))
  except (OSError, ValueError):
    return 1


def _to_rgb_uint8(img: Image.Image) -> np.ndarray:
  if img.mode in ("I;16", "I;16B", "I;16L", "I"):
    a = np.asarray(img).astype(np.float64)
    top = 65535.0 if a.max() > 255 else 255.0
    a = np.clip(np.round(a / top * 255.0), 0, 255).astype(np.uint8)
    return np.repeat(a[..., None], 3, axis=-1)
  if img.mode == "F":
    a = np.asarray(img)
    a = np.clip(np.round(a * (255.0 if a.max() <= 1.0 else 1.0)), 0, 255).astype(np.uint8)
    return np.repeat(a[..., None], 3, axis=-1)
  if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
    # Transparent areas become white, as a viewer would show them on a page.
    rgba = img.convert("RGBA")
    white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    return np.asarray(Image.alpha_composite(white, rgba).convert("RGB"))
  return np.asarray(img.convert("RGB"))


def load_rgb(path: str | os.PathLike) -> np.ndarray:
  """Reads a photo as an (H, W, 3) uint8 RGB array, upright per its EXIF orientation.

  Any format Pillow opens (JPEG and .jfif, PNG, WebP, TIFF, BMP, GIF: the first frame; HEIC with
  pillow-heif). Grayscale, palette, RGBA (composited on white), CMYK and 16-bit images are
  converted.
  Raises ImageLoadError for empty, truncated, non-image, unreadable or looping paths.
  """
  path = pathlib.Path(path)
  try:
    size = os.stat(path).st_size
  except OSError as e:
    if e.errno == errno.ELOOP:
      raise ImageLoadError("symlink loop") from e
    if e.errno == errno.ENOENT:
      raise ImageLoadError("missing file (broken symlink?)") from e
    raise ImageLoadError(f"cannot stat: {e.strerror}") from e
  if not path.is_file():
    raise ImageLoadError("not a regular file")
  if size == 0:
    raise ImageLoadError("empty file (0 bytes)")
  # face_recognition sets PIL's global LOAD_TRUNCATED_IMAGES = True when imported, which turns
  # a cut-off JPEG into a silently grey-filled picture; we always want the error.
  was_lenient, ImageFile.LOAD_TRUNCATED_IMAGES = ImageFile.LOAD_TRUNCATED_IMAGES, False
  try:
    with warnings.catch_warnings():
      warnings.simplefilter("error", Image.DecompressionBombWarning)
      with Image.open(path) as img:
        if img.width * img.height > MAX_PIXELS:
          raise ImageLoadError(f"too large ({img.width}x{img.height} px)")
        img.load()  # decodes now, so truncation is caught here
        img = ImageOps.exif_transpose(img)
        rgb = _to_rgb_uint8(img)
  except ImageLoadError:
    raise
  except UnidentifiedImageError as e:
    if path.suffix.lower() in HEIF_SUFFIXES and not _heif_opener():
      raise ImageLoadError("a HEIC/HEIF photo: install pillow-heif to read it "
                           "(pip install pillow-heif), or convert it to JPEG") from e
    if path.suffix.lower() in HEIF_SUFFIXES:
      return load_rgb(path)  # the reader is registered now
    raise ImageLoadError("not an image (unrecognised format)") from e
  except PermissionError as e:
    raise ImageLoadError("permission denied") from e
  except (OSError, SyntaxError, ValueError, Image.DecompressionBombError,
          Image.DecompressionBombWarning) as e:
    reason = str(e) or type(e).__name__
    if "truncated" in reason.lower():
      reason = "truncated image data"
    raise ImageLoadError(f"cannot decode: {reason}") from e
  finally:
    ImageFile.LOAD_TRUNCATED_IMAGES = was_lenient
  if rgb.ndim != 3 or rgb.shape[0] < 8 or rgb.shape[1] < 8:
    raise ImageLoadError(f"image too small ({rgb.shape[1]}x{rgb.shape[0]} px)")
  return np.ascontiguousarray(rgb)


def encode_png(image: np.ndarray) -> bytes:
  """PNG bytes of an (H, W, 3) RGB or (H, W[, 1]) gray uint8 array."""
  image = np.asarray(image)
  if image.dtype != np.uint8:
    raise ValueError(f"expected uint8, got {image.dtype}")
  if image.ndim == 3 and image.shape[-1] == 3:
    image = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
  elif image.ndim == 3 and image.shape[-1] == 1:
    image = image[..., 0]
  ok, buf = cv2.imencode(".png", image)
  if not ok:
    raise ValueError("PNG encoding failed")
  return buf.tobytes()


def save_png(path: str | os.PathLike, image: np.ndarray) -> pathlib.Path:
  path = pathlib.Path(path)
  path.parent.mkdir(parents=True, exist_ok=True)
  path.write_bytes(encode_png(image))
  return path


def as_rgb_tile(image: np.ndarray) -> np.ndarray:
  """uint8 RGB view of a tile: gray maps are replicated; bool maps and [0, 1] floats scaled."""
  image = np.asarray(image)
  if image.dtype == bool:
    image = image.astype(np.uint8) * 255
  elif image.dtype != np.uint8:
    image = np.clip(np.round(image * 255.0), 0, 255).astype(np.uint8)
  if image.ndim == 2:
    image = image[..., None]
  if image.shape[-1] == 1:
    image = np.repeat(image, 3, axis=-1)
  return image


def make_grid(rows, pad: int = 2, background: int = 255) -> np.ndarray:
  """Tiles a list of rows (each a list of equally sized images) into one uint8 RGB picture."""
  rows = [[as_rgb_tile(t) for t in row] for row in rows]
  if not rows or not rows[0]:
    raise ValueError("empty grid")
  h, w = rows[0][0].shape[:2]
  ncols = max(len(r) for r in rows)
  grid = np.full((len(rows) * (h + pad) + pad, ncols * (w + pad) + pad, 3), background, np.uint8)
  for i, row in enumerate(rows):
    for j, tile in enumerate(row):
      if tile.shape[:2] != (h, w):
        tile = cv2.resize(tile, (w, h), interpolation=cv2.INTER_AREA)
      y, x = pad + i * (h + pad), pad + j * (w + pad)
      grid[y:y + h, x:x + w] = tile
  return grid


def load_hole(path: str | os.PathLike, shape_hw: tuple[int, int]) -> np.ndarray:
  """A hole map drawn by the user: (H, W) uint8 in {0, 1}, 1 where the photo is to be restored.

  White (above half of the format's range) marks the hole, in any mode and bit depth (1-bit,
  8- or 16-bit gray, RGB, float); a map whose colour is uniform and whose alpha channel varies
  gives its hole in the alpha channel (opaque = hole). Upright per its EXIF orientation, as
  photos are.

  Raises:
    ImageLoadError: unreadable.
    HoleSizeError: its size differs from `shape_hw` (both sizes named).
  """
  path = pathlib.Path(path)
  try:
    with Image.open(path) as img:
      img.load()
      img = ImageOps.exif_transpose(img)
      if "A" in img.getbands():
        rgb = np.asarray(img.convert("RGB"))
        if (rgb == rgb[0, 0]).all():  # one colour: the hole is drawn in the alpha channel
          img = img.getchannel("A")
      values = _to_rgb_uint8(img).mean(axis=-1)  # every mode and bit depth, as photos are read
  except (OSError, SyntaxError, ValueError) as e:
    raise ImageLoadError(f"hole {path.name}: cannot read it ({e})") from e
  h, w = shape_hw
  if values.shape != (h, w):
    raise HoleSizeError(f"hole {path.name} is {values.shape[1]}x{values.shape[0]} px, the photo "
                         f"{w}x{h} px: draw the hole at the photo's size")
  return (values > 127.5).astype(np.uint8)


def region_around(mask: np.ndarray, margin: float = 0.6, max_side: int = 480
                  ) -> tuple[int, int, int, int]:
  """(top, bottom, left, right) of the box around a {0, 1} (H, W) mask grown by `margin` times
  its size on each side, at most `max_side` px a side (centred on the mask), inside the image:
  what a picture shows of a restored face at the photo's own pixels (no resizing)."""
  rows, cols = np.nonzero(mask)
  h, w = mask.shape
  if not len(rows):
    return 0, min(h, max_side), 0, min(w, max_side)
  cy, cx = (rows.min() + rows.max()) / 2, (cols.min() + cols.max()) / 2
  half_h = min(max_side, (rows.max() - rows.min() + 1) * (1 + 2 * margin)) / 2
  half_w = min(max_side, (cols.max() - cols.min() + 1) * (1 + 2 * margin)) / 2
  top, left = max(0, int(cy - half_h)), max(0, int(cx - half_w))
  return top, min(h, int(cy + half_h)), left, min(w, int(cx + half_w))


def rows_at_own_size(rows, pad: int = 6, background: int = 255) -> np.ndarray:
  """Rows of same-height RGB panels, panels `pad` px apart, rows stacked top to bottom and
  left-aligned on `background`: nothing is resized, so a picture shows the pixels a user sees."""
  lines = []
  for panels in rows:
    h = panels[0].shape[0]
    gap = np.full((h, pad, 3), background, np.uint8)
    lines.append(np.concatenate([x for p in panels for x in (p, gap)][:-1], axis=1))
  width = max(line.shape[1] for line in lines)
  padded = [np.pad(line, ((0, pad), (0, width - line.shape[1]), (0, 0)),
                   constant_values=background) for line in lines]
  return np.concatenate(padded)[:-pad]
