"""Photo folders made for tests: every kind of bad or unusual input a user's folder can hold."""

import os
import pathlib

REPO = pathlib.Path(__file__).resolve().parents[1]
SAMPLE_CELEBA = REPO / "sample_data" / "celeba"
SAMPLE_PHOTOS = REPO / "sample_data" / "photos"


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
