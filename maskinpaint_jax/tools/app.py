r"""A web page on this computer that restores the faces in your photos, as `inpaint` does.

  python -m maskinpaint_jax.tools.app [--host 127.0.0.1] [--port 7860] [--workdir runs/x] \
      [--face_finder mesh|hog] [--nomask_check] [--min_face_size 12] [--max_photos 20]

then open http://127.0.0.1:7860. Services restore over HTTP at the same address (`service`):
`curl -F photo=@masked.jpg http://127.0.0.1:7860/restore -o restored.png`. Upload one or several photos and press Restore: each photo is
shown as input | estimated hole (red) | restored, with inpaint's report line for every file (no
face, no mask, unreadable, each skipped face and why). Pick a photo to edit its hole: the photo is
shown with its hole in red; brush red over what is to be restored too and blue over what is not
(the eraser takes back a stroke), then "Restore again" restores inside the edited hole (as
inpaint --hole does). Download the restored photo and the hole map (PNG, one
channel 0/255, the photo's size; inpaint --hole reads it back). The face finder, the model (the
shipped one, or --workdir) and the mask check can be changed on the page.

One code path with inpaint: every photo goes through `batch.run_job` (so `images.load_rgb`,
`restorer.Restorer.restore` and inpaint's files and report lines), with the models of
`restorer.load_restorer`. Photos are restored at full size; the page shows them, and their holes are
edited, at most PREVIEW_SIDE px on a side (an edited hole is scaled back to the photo's size).

Gradio serves the page; it is installed by `make install` (extra `app`). Nothing leaves this
computer: Gradio's analytics and version check are off, there is no share link, fonts and
scripts come from the local server; --host 127.0.0.1 (the default) serves this computer only.
Stop it with Ctrl-C. Exit status 2 when the model or face finder cannot be loaded.
"""
from __future__ import annotations

import dataclasses
import ipaddress
import os
import pathlib
import shutil
import sys
import tempfile
import threading

from absl import flags
import cv2
import numpy as np

from maskinpaint_jax import cli
from maskinpaint_jax import faces
from maskinpaint_jax import images as image_utils
from maskinpaint_jax import batch, errors, service
from maskinpaint_jax import restorer as restorer_lib
from maskinpaint_jax.faces import paste
from maskinpaint_jax.faces import restore as face_restore

SHIPPED = ""            # the model menu's value for the shipped model (pretrained/)
PREVIEW_SIDE = 1600     # px: the longest side shown in the browser; results keep the photo's size
# The editor's brushes: red adds to the hole, blue takes away from it (half opaque, so the face
# shows through); a stroke pixel at least STROKE_ALPHA opaque counts (brush edges are soft).
ADD, REMOVE = ("#ff0000", 0.5), ("#0000ff", 0.5)
STROKE_ALPHA = 32
EDITABLE = ("restored", "no mask")  # run_job's kinds of a photo with a face to edit


def define_flags(fv: flags.FlagValues = flags.FLAGS):
  d = dict(flag_values=fv)
  flags.DEFINE_string("host", "127.0.0.1", "Address to serve on (127.0.0.1: this computer only; "
                      "0.0.0.0: every computer that can reach this one).", **d)
  flags.DEFINE_integer("port", 7860, "Port to serve on.", lower_bound=1, upper_bound=65535, **d)
  flags.DEFINE_string("workdir", None, "Training workdir or exported model folder offered beside "
                      "the shipped model (pretrained/), and chosen first.", **d)
  flags.DEFINE_enum("face_finder", "mesh", list(faces.FINDERS), "The page's first face finder: "
                    "mesh finds masked faces; hog: dlib HOG, the paper's.", **d)
  flags.DEFINE_bool("mask_check", True, "Leave faces without a mask untouched (a box on the "
                    "page).", **d)
  flags.DEFINE_integer("min_face_size", face_restore.MIN_FACE_SIZE,
                       "Smaller faces are skipped with a message (px).",
                       lower_bound=1, **d)
  flags.DEFINE_integer("max_photos", 20, "Photos restored per press of Restore; more are "
                       "refused with a message.", lower_bound=1, **d)


@dataclasses.dataclass(frozen=True)
class PagePhoto:
  """One uploaded photo with a face, and the files inpaint wrote for it (kept in the page's
  per-visitor state). Paths are strings; `restored` and `hole` are None when no face was
  restored (no mask)."""
  name: str               # the file's name as uploaded
  path: str               # the uploaded file
  shape: tuple[int, int]  # (H, W) of the photo, upright
  preview: str            # PNG: input | hole | restored, at most PREVIEW_SIDE px high
  restored: str | None    # <stem>_restored.png, the photo's size
  hole: str | None        # <stem>_hole.png, one channel 0/255


def preview_size(image: np.ndarray) -> np.ndarray:
  """`image` ((H, W[, C]) uint8) shrunk so that its longest side is at most PREVIEW_SIDE."""
  h, w = image.shape[:2]
  scale = min(1.0, PREVIEW_SIDE / max(h, w))
  if scale == 1.0:
    return image
  size = (max(1, round(w * scale)), max(1, round(h * scale)))
  # Nearest for a {0, 1} hole keeps it binary; area averaging for photos.
  return cv2.resize(image, size, interpolation=cv2.INTER_NEAREST if image.ndim == 2
                    else cv2.INTER_AREA)


def edited_hole(hole: np.ndarray, layers) -> np.ndarray:
  """`hole` ((H, W) {0, 1}, the photo's size) with the visitor's strokes on it: (H, W) uint8
  {0, 1}. `layers`: the editor's layers, numpy (h, w, 4) RGBA at the preview's size; a red
  (ADD) stroke adds to the hole, a blue (REMOVE) one takes away, a layer without alpha adds
  wherever it is not black."""
  h, w = hole.shape
  to_photo = lambda m: cv2.resize(m.astype(np.uint8), (w, h), interpolation=cv2.INTER_NEAREST) > 0
  add, remove = np.zeros((h, w), bool), np.zeros((h, w), bool)
  for layer in layers:
    layer = np.asarray(layer)
    if layer.ndim == 3 and layer.shape[-1] == 4:
      painted = layer[..., 3] >= STROKE_ALPHA
      blue = layer[..., 2].astype(np.int32) > layer[..., 0]
      # Nearest scaling from the preview keeps the stroke's edge sharp at the photo's size.
      add |= to_photo(painted & ~blue)
      remove |= to_photo(painted & blue)
    else:
      add |= to_photo(layer.reshape(layer.shape[:2] + (-1,)).max(-1) > 0)
  return (((hole > 0) | add) & ~remove).astype(np.uint8)


def current_hole(photo: "PagePhoto") -> np.ndarray:
  """The hole last restored in `photo` ((H, W) uint8 {0, 1}); zeros when none was."""
  if photo.hole is None:
    return np.zeros(photo.shape, np.uint8)
  return image_utils.load_hole(photo.hole, photo.shape)


class Restorer:
  """What the page's buttons do, without the page: restores uploaded files as inpaint does
  (`batch.run_job` with a `restorer.Restorer`) and remembers the loaded models. One restoration runs at a time (the machine's cores go to it)."""

  def __init__(self, root: pathlib.Path, min_face_size: int = face_restore.MIN_FACE_SIZE,
               max_photos: int = 20):
    self.root = pathlib.Path(root)
    self.min_face_size = min_face_size
    self.max_photos = max_photos
    self._tools: dict[tuple, tuple[restorer_lib.Restorer, str]] = {}
    self._lock = threading.Lock()

  def tools(self, model: str, finder: str, mask_check: bool
            ) -> tuple[restorer_lib.Restorer, str]:
    """inpaint's models for the page's choices (loaded once), and a note for the report ("" or
    why the face check is off).

    Raises:
      errors.SetupError: the model or the face finder cannot be loaded.
    """
    key = (model, finder, mask_check)
    if key not in self._tools:
      load = lambda face_check: restorer_lib.load_restorer(
          model or None, face_finder=finder, min_face_size=self.min_face_size,
          mask_check=mask_check, face_check=face_check)
      try:
        self._tools[key] = (load(True), "")
      except (errors.SetupError, ImportError) as e:
        # The face check is a separate model: without it every face found is restored; a
        # generator or finder failure raises again here.
        self._tools[key] = (load(False), f"note    face check unavailable ({e}): every face "
                                         "found is restored")
    return self._tools[key]

  def restore(self, paths, model: str, finder: str, mask_check: bool
              ) -> tuple[list[str], list[PagePhoto]]:
    """Restores the uploaded files `paths` (each named by its file name). Returns the report's
    lines (inpaint's: the models, then each file's lines) and the photos with a face, in order.
    Never raises for a bad file, a missing model or too many files: each is a report line."""
    paths = [str(p) for p in paths or []]
    if not paths:
      return ["choose one or more photos first"], []
    if len(paths) > self.max_photos:
      return [f"error: {len(paths)} files chosen: the page restores at most {self.max_photos} "
              "at a time; restore them in smaller groups, or a whole folder with python -m "
              "maskinpaint_jax.tools.inpaint"], []
    with self._lock:
      try:
        tools, note = self.tools(model, finder, mask_check)
      except errors.SetupError as e:
        return [f"error: {e}"], []
      lines, photos = [tools.description] + ([note] if note else []), []
      for path in paths:
        _, file_lines, photo = self._restore_file(path, pathlib.Path(path).name, tools)
        lines += file_lines
        if photo is not None:
          photos.append(photo)
    return lines, photos

  def restore_again(self, photo: PagePhoto, hole: np.ndarray, model: str, finder: str,
                    mask_check: bool) -> tuple[list[str], PagePhoto]:
    """Restores `photo` inside `hole` ((H, W) {0, 1}, the photo's size) as inpaint --hole does.
    Returns the report's lines and the photo's new files (the old ones when nothing changed)."""
    if not hole.any():
      return [f"FAILED  {photo.name}: the hole is empty: brush over what to restore"], photo
    with self._lock:
      try:
        tools, note = self.tools(model, finder, mask_check)
      except errors.SetupError as e:
        return [f"error: {e}"], photo
      out = pathlib.Path(tempfile.mkdtemp(dir=self.root))
      hole_file = image_utils.save_png(out / "edited_hole.png", hole * 255)
      _, lines, again = self._restore_file(photo.path, photo.name, tools, hole_file)
    edited = (f"edited hole of {photo.name}: {int(hole.sum())} px "
              f"({100 * hole.mean():.1f} % of the photo)")
    return [tools.description] + ([note] if note else []) + [edited] + lines, again or photo

  def _restore_file(self, path: str, name: str, tools: restorer_lib.Restorer, hole_file=None
                    ) -> tuple[str, list[str], PagePhoto | None]:
    """batch.run_job on one file into a fresh folder: (its kind, its report lines with the
    upload's temporary path replaced by `name`, the PagePhoto when it has a face)."""
    out = pathlib.Path(tempfile.mkdtemp(dir=self.root))
    # A copy beside its results: Gradio deletes uploads after an hour, and the photo is read
    # again whenever its hole is edited.
    kept = out / ("photo" + pathlib.Path(name).suffix)
    shutil.copyfile(path, kept)
    job = batch.Job(kept, pathlib.Path(pathlib.Path(name).stem), pathlib.Path(name))
    opts = batch.Options(out=str(out), save_hole=True,
                         hole=str(hole_file) if hole_file else None)
    try:
      kind, lines = batch.run_job(job, tools, opts)
    except Exception as e:  # pylint: disable=broad-except
      # run_job reports every bad photo it knows of; anything else must not cost the visitor
      # the other photos' results, nor the server.
      return "failed", [f"FAILED  {name}: {type(e).__name__}: {e}"], None
    lines = [line.replace(str(job.path), name) for _, line in lines]
    if kind not in EDITABLE:
      return kind, lines, None
    return kind, lines, self._page_photo(job, out, name)

  @staticmethod
  def _page_photo(job: batch.Job, out: pathlib.Path, name: str) -> PagePhoto:
    photo = image_utils.load_rgb(job.path)
    restored_file, hole_file = out / f"{job.stem}_restored.png", out / f"{job.stem}_hole.png"
    done = restored_file.exists()
    restored = image_utils.load_rgb(restored_file) if done else photo
    hole = (image_utils.load_hole(hole_file, photo.shape[:2]) if done
            else np.zeros(photo.shape[:2], np.uint8))
    panels = [preview_size(photo), preview_size(paste.hole_overlay(photo, hole)),
              preview_size(restored)]
    preview = image_utils.save_png(out / "preview.png", batch.side_by_side(panels))
    return PagePhoto(name, str(job.path), photo.shape[:2], str(preview),
                     str(restored_file) if done else None, str(hole_file) if done else None)


def editor_value(photo: PagePhoto) -> dict:
  """The editor's content for `photo`: the photo (preview size) with its hole tinted red and
  outlined, as paste.hole_overlay draws it, and one empty layer for the visitor's strokes.
  (Gradio's editor does not reliably show a layer set by the server, so the hole is drawn into
  the background and edited with the ADD and REMOVE brushes.)"""
  overlay = paste.hole_overlay(image_utils.load_rgb(photo.path), current_hole(photo))
  return {"background": preview_size(overlay), "layers": [], "composite": None}


def restored_view(photo: PagePhoto) -> tuple[np.ndarray, list[str]]:
  """(the restored photo at preview size, the files to download: restored photo and hole)."""
  shown = photo.restored or photo.path
  return preview_size(image_utils.load_rgb(shown)), [p for p in (photo.restored, photo.hole) if p]


def model_choices(workdir: str | None) -> list[tuple[str, str]]:
  """The model menu: (label, value); value SHIPPED is the shipped model."""
  shipped = [("shipped model (pretrained/)", SHIPPED)]
  return ([(f"--workdir {workdir}", workdir)] if workdir else []) + shipped


def build_page(restorer: Restorer, workdir: str | None = None, face_finder: str = "mesh",
               mask_check: bool = True):
  """The Gradio page (gr.Blocks) over `restorer`. Its buttons are also API endpoints
  (gradio_client): /restore (files, model, face finder, mask check), /show (photo number),
  /restore_again (photo number, editor value, model, face finder, mask check)."""
  import gradio as gr  # pylint: disable=g-import-not-at-top

  def restore(files, model, finder, check):
    lines, photos = restorer.restore(files, model, finder, check)
    return (report_text(lines), gallery(photos),
            gr.Dropdown(choices=photo_choices(photos), value="0" if photos else None),
            *photo_view(photos, "0"), photos)

  def show(number, photos):
    return photo_view(photos, number)

  def restore_again(number, edited, model, finder, check, photos):
    photo = pick(photos, number)
    if photo is None:
      return ("restore a photo first, then edit its hole", gallery(photos),
              *photo_view(photos, number), photos)
    layers = (edited or {}).get("layers") or []
    lines, again = restorer.restore_again(photo, edited_hole(current_hole(photo), layers), model,
                                          finder, check)
    photos = [again if p is photo else p for p in photos]
    return (report_text(lines), gallery(photos), *photo_view(photos, number), photos)

  def photo_view(photos, number):
    photo = pick(photos, number)
    if photo is None:
      return None, None, None
    restored, files = restored_view(photo)
    return editor_value(photo), restored, files

  with gr.Blocks(title="maskinpaint: restore masked faces", analytics_enabled=False,
                 delete_cache=(3600, 3600)) as page:
    gr.Markdown(
        "## Restore the faces under masks\n"
        "Choose photos and press **Restore**. Each one is shown as input | estimated hole (red) "
        "| restored. To correct a hole, pick the photo below, brush red over what is to be "
        "restored too and blue over what is not, and press **Restore again**. Everything runs "
        "on this computer.")
    with gr.Row():
      files = gr.File(label="Photos", file_count="multiple", type="filepath", elem_id="photos")
      with gr.Column():
        model = gr.Dropdown(model_choices(workdir), value=workdir or SHIPPED, label="Model")
        finder = gr.Radio(list(faces.FINDERS), value=face_finder, label="Face finder "
                          "(mesh finds masked faces; hog is dlib's, the paper's)")
        check = gr.Checkbox(value=mask_check, label="Leave faces without a mask untouched")
        restore_button = gr.Button("Restore", variant="primary", elem_id="restore")
    report = gr.Textbox(label="Report", lines=4, max_lines=30, interactive=False,
                        elem_id="report")
    results = gr.Gallery(label="Input | estimated hole | restored", columns=4, height=380,
                         object_fit="contain", preview=True)
    with gr.Row():
      number = gr.Dropdown([], label="Photo to edit", scale=3)
      again_button = gr.Button("Restore again with the edited hole", scale=1,
                             elem_id="restore_again")
    with gr.Row():
      editor = gr.ImageEditor(
          label="Hole (red): brush red to add to it, blue to take away", type="numpy",
          image_mode="RGBA",
          sources=(), transforms=(), interactive=True, format="png",
          brush=gr.Brush(colors=[ADD, REMOVE], default_color=ADD, color_mode="fixed"),
          eraser=gr.Eraser(), layers=gr.LayerOptions(allow_additional_layers=False,
                                                     layers=["hole"]), elem_id="hole_editor")
      restored = gr.Image(label="Restored", type="numpy", interactive=False, format="png")
    downloads = gr.File(label="Download: restored photo and hole map (PNG)",
                        file_count="multiple", interactive=False, elem_id="downloads")
    photos = gr.State([])
    view = [editor, restored, downloads]
    restore_button.click(restore, [files, model, finder, check],
                         [report, results, number, *view, photos], api_name="restore")
    number.input(show, [number, photos], view, api_name="show")
    again_button.click(restore_again, [number, editor, model, finder, check, photos],
                       [report, results, *view, photos], api_name="restore_again")
  return page


def report_text(lines) -> str:
  return "\n".join(lines)


def gallery(photos):
  """The results as a Gallery update: input | hole | restored of each photo, the first one open
  (a wide picture fits the open view; the thumbnail grid would letterbox it)."""
  import gradio as gr  # pylint: disable=g-import-not-at-top
  return gr.Gallery(value=[(p.preview, p.name) for p in photos],
                    selected_index=0 if photos else None)


def photo_choices(photos) -> list[tuple[str, str]]:
  """The photo menu: (label, value), value the photo's position as a string."""
  return [(f"{i + 1}. {p.name}", str(i)) for i, p in enumerate(photos)]


def pick(photos, number) -> PagePhoto | None:
  try:
    return photos[int(number)]
  except (TypeError, ValueError, IndexError):
    return None


def serve(page, restorer: Restorer, f):
  """The page at / and the HTTP endpoint POST /restore (`service`) on one FastAPI app, served
  by uvicorn until Ctrl-C. The endpoint restores with the models chosen by the flags."""
  import gradio as gr  # pylint: disable=g-import-not-at-top
  import uvicorn  # pylint: disable=g-import-not-at-top
  api = service.make_api(lambda: restorer.tools(f.workdir or SHIPPED, f.face_finder,
                                                f.mask_check)[0])
  gr.mount_gradio_app(api, page.queue(default_concurrency_limit=1), path="/", ssr_mode=False,
                      mcp_server=False, show_error=True)
  uvicorn.run(api, host=f.host, port=f.port, log_level="warning")


def is_loopback(host: str) -> bool:
  try:
    return ipaddress.ip_address(host).is_loopback
  except ValueError:
    return host == "localhost"


PAGE_PACKAGES = ("gradio", "fastapi", "uvicorn")
PAGE_INSTALL = ("pip install -c constraints.txt '.[app]' && pip install -c constraints.txt "
                "--no-deps gradio==6.31.0  (make install does both)")


def check_page_packages():
  """Raises errors.SetupError naming the install command when the page's packages are missing."""
  import importlib.util  # pylint: disable=g-import-not-at-top
  missing = [name for name in PAGE_PACKAGES if importlib.util.find_spec(name) is None]
  if missing:
    raise errors.SetupError(f"the page needs {', '.join(missing)}, not installed: "
                            f"{PAGE_INSTALL}")


def main(argv, f: flags.FlagValues = flags.FLAGS) -> int:
  cli.no_args(argv)
  check_page_packages()
  with tempfile.TemporaryDirectory(prefix="maskinpaint-app-") as root:
    # Before Gradio is imported: no analytics or version check, uploads in our folder.
    os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
    os.environ["GRADIO_TEMP_DIR"] = str(pathlib.Path(root) / "uploads")
    restorer = Restorer(pathlib.Path(root), f.min_face_size, f.max_photos)
    try:  # the first choices load before serving, so a missing model is an error now
      tools, note = restorer.tools(f.workdir or SHIPPED, f.face_finder, f.mask_check)
    except errors.SetupError as e:
      print(f"error: {e}", file=sys.stderr)
      return 2
    print(tools.description + (f"\n{note}" if note else ""))
    if not is_loopback(f.host):
      print(f"note: --host {f.host}: every computer that can reach this one may use the page")
    page = build_page(restorer, f.workdir, f.face_finder, f.mask_check)
    print(f"serving on http://{f.host}:{f.port} (Ctrl-C stops)", flush=True)
    serve(page, restorer, f)
  return 0


if __name__ == "__main__":
  define_flags()
  cli.run(main)
