r"""The HTTP endpoint: `POST /restore` restores one photo (FastAPI; served by `maskinpaint app`).

  curl -F photo=@masked.jpg http://127.0.0.1:7860/restore -o restored.png
  curl -F photo=@masked.jpg -F hole=@hole.png http://127.0.0.1:7860/restore -o restored.png
  curl -F photo=@face.jpg -F add_mask=surgical -F format=json http://127.0.0.1:7860/restore

Form fields: `photo` (required: any image Pillow reads), `hole` (optional: a hole map of the
photo's size, white = restore), `add_mask` (optional: surgical | cloth | n95 | random, to try
the model on an unmasked face), `format` (png, the default: the restored photo as PNG, its
report in the `X-Maskinpaint-Report` header as JSON; json: {"report", "restored_png",
"hole_png"} with the images base64-encoded).

The report is {"faces": [{"number", "box": [top, right, bottom, left], "size", "crop_side",
"status", "reason"}], "restored": count, "rotation": degrees}. Status codes: 200 restored or left as it is
(no mask: the photo comes back unchanged); 400 an unreadable photo or hole, or a hole of the
wrong size; 422 no face found; 503 the models could not be loaded. One restoration runs at a
time (the machine's cores go to it).
"""
# No `from __future__ import annotations`: FastAPI reads the endpoint's annotations at run time.


import base64
import json
import pathlib
import tempfile
import threading
from typing import Callable

from maskinpaint_jax import errors
from maskinpaint_jax import images as image_utils
from maskinpaint_jax import masks as mask_lib
from maskinpaint_jax.faces import finders


def _save_upload(upload, folder: pathlib.Path, default: str) -> pathlib.Path:
  """The upload as a file under its own name (errors name it as the client knows it)."""
  folder.mkdir()
  name = pathlib.PurePath((upload.filename or "").replace("\\", "/")).name or default
  path = folder / name
  path.write_bytes(upload.file.read())
  return path


def report_of(result) -> dict:
  """The JSON-ready report of a `faces.restore.Restoration`."""
  fields = ("number", "box", "size", "crop_side", "status", "reason")
  faces = [{k: getattr(f, k) for k in fields} | dict(box=list(f.box)) for f in result.faces]
  return dict(faces=faces,
              restored=result.count("restored"), rotation=result.rotation)


def make_api(get_restorer: Callable):
  """A FastAPI app with `POST /restore` (see the top). `get_restorer()` returns the
  `restorer.Restorer` to use (loaded on first use); it may raise errors.SetupError."""
  from fastapi import FastAPI, File, Form, HTTPException, UploadFile  # pylint: disable=g-import-not-at-top
  from fastapi.responses import JSONResponse, Response  # pylint: disable=g-import-not-at-top

  api = FastAPI(title="maskinpaint-jax", description=__doc__)
  lock = threading.Lock()

  @api.post("/restore")
  def restore(photo: UploadFile = File(...), hole: UploadFile | None = File(None),
              add_mask: str | None = Form(None), format: str = Form("png")):  # pylint: disable=redefined-builtin
    if format not in ("png", "json"):
      raise HTTPException(400, "format must be png or json")
    if add_mask and add_mask not in (*mask_lib.FACE_MASK_STYLES, "random"):
      raise HTTPException(400, f"add_mask must be one of {(*mask_lib.FACE_MASK_STYLES, 'random')}")
    try:
      # Through files, so an upload is read exactly as a photo on disk is (EXIF, modes, sizes).
      with tempfile.TemporaryDirectory(prefix="maskinpaint-api-") as tmp:
        photo_path = _save_upload(photo, pathlib.Path(tmp) / "photo", "photo")
        image = image_utils.load_rgb(photo_path)
        hole_map = None
        if hole is not None and hole.filename:
          hole_map = image_utils.load_hole(_save_upload(hole, pathlib.Path(tmp) / "hole", "hole"),
                                           image.shape[:2])
      with lock:
        restorer = get_restorer()
        result = restorer.restore(image, hole_map, add_mask=add_mask,
                                  seed_key=photo.filename or "")
    except errors.SetupError as e:
      raise HTTPException(503, str(e)) from None
    except image_utils.ImageLoadError as e:
      raise HTTPException(400, f"{photo.filename or 'photo'}: {e}") from None
    except errors.MismatchError as e:
      raise HTTPException(400, str(e)) from None
    except finders.NoFaceError as e:
      raise HTTPException(422, str(e)) from None
    report = report_of(result)
    if format == "json":
      b64 = lambda image: base64.b64encode(image_utils.encode_png(image)).decode()
      return JSONResponse(dict(report=report, restored_png=b64(result.restored),
                               hole_png=b64(result.hole * 255)))
    return Response(image_utils.encode_png(result.restored), media_type="image/png",
                    headers={"X-Maskinpaint-Report": json.dumps(report)})

  return api
