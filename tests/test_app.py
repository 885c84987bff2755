"""The restore page (maskinpaint_jax/tools/app.py) served by its own program on loopback and used
through Gradio's Python client, as a browser's buttons use it: the files it gives are inpaint's,
an edited hole is the one restored, and every bad upload is a message while the server serves on.
"""

import io
import json
import os
import pathlib
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import cv2
import numpy as np
import pytest
from PIL import Image

from conftest import REPO, run_cli
from maskinpaint_jax import cli, images
from maskinpaint_jax.tools import inpaint

pytest.importorskip("gradio", reason="gradio is not installed (make install installs it)")
gradio_client = pytest.importorskip("gradio_client", reason="gradio_client is not installed "
                                    "(make install installs it)")

# A subprocess server with the tiny trained checkpoint (conftest.tiny_workdir): end-to-end tier.
pytestmark = pytest.mark.slow

REALMASK = REPO / "sample_data" / "realmask" / "0_0_50.jpg"
TWO_PEOPLE = REPO / "sample_data" / "photos" / "two_people.jpg"


def free_port() -> int:
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


def start_app(args, log: pathlib.Path):
  """`python -m maskinpaint_jax.tools.app ARGS` on a free loopback port, once it answers: (the
  process, its URL). The test tier's environment (conftest) goes with it."""
  port = free_port()
  proc = subprocess.Popen([sys.executable, "-m", "maskinpaint_jax.tools.app", "--port", str(port),
                           *args], cwd=REPO, stdout=log.open("w"), stderr=subprocess.STDOUT,
                          env=dict(os.environ, PYTHONUNBUFFERED="1"))
  url = f"http://127.0.0.1:{port}/"
  deadline = time.time() + 600
  while time.time() < deadline:
    if proc.poll() is not None:
      raise AssertionError(f"the page exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
    try:
      with urllib.request.urlopen(url + "config", timeout=5) as r:
        if r.status == 200:
          return proc, url
    except OSError:
      time.sleep(1)
  proc.kill()
  raise AssertionError(f"the page did not answer in time:\n{log.read_text()[-3000:]}")


def stop_app(proc):
  proc.send_signal(signal.SIGINT)  # Ctrl-C: Gradio closes its server
  try:
    proc.wait(timeout=30)
  except subprocess.TimeoutExpired:
    proc.kill()
    proc.wait()


@pytest.fixture(scope="module")
def page(tiny_workdir, tmp_path_factory):
  """The page's URL; --nomask_check so that every face found is restored, with or without the
  face check's model."""
  log = tmp_path_factory.mktemp("app") / "app.log"
  proc, url = start_app(["--workdir", str(tiny_workdir), "--nomask_check"], log)
  yield url
  stop_app(proc)
  assert "Traceback" not in log.read_text(), log.read_text()[-3000:]


@pytest.fixture
def client(page, tmp_path):
  return gradio_client.Client(page, download_files=str(tmp_path / "downloads"), verbose=False)


def call(client, *args, api_name):
  """client.predict, with the gallery's update (the first photo opened) as its list of items."""
  result = list(client.predict(*args, api_name=api_name))
  if isinstance(result[1], dict):
    assert result[1]["selected_index"] == (0 if result[1]["value"] else None)
    result[1] = result[1]["value"]
  return tuple(result)


def restore(client, paths, model, finder="mesh"):
  """/restore: (report, gallery, photo menu, editor, restored preview, downloads)."""
  files = [gradio_client.handle_file(str(p)) for p in paths]
  return call(client, files, model, finder, False, api_name="/restore")


def downloads(result) -> dict[str, pathlib.Path]:
  return {pathlib.Path(p).name: pathlib.Path(p) for p in result[-1]}


def only_near(hole: np.ndarray, before: np.ndarray, after: np.ndarray) -> bool:
  """Every changed pixel lies in the hole or its feathered rim (30 px, as tests/test_inpaint.py
  allows), and most of the hole changed."""
  changed = np.any(before != after, axis=-1)
  near = cv2.dilate((hole > 0).astype(np.uint8), np.ones((61, 61), np.uint8)) > 0
  return not changed[~near].any() and changed[hole > 0].mean() > 0.5


def inpaint_files(tiny_workdir, photo, out, *extra) -> pathlib.Path:
  """What `python -m maskinpaint_jax.tools.inpaint PHOTO --save_hole` writes (in-process)."""
  code = cli.call(inpaint, [str(photo), "-o", str(out), "--workdir", str(tiny_workdir),
                            "--save_hole", "--nomask_check", *extra])
  assert code == 0
  return out


def test_restore_gives_inpaints_files_and_shows_input_hole_restored(client, tiny_workdir,
                                                                     tmp_path):
  report, gallery, menu, editor, shown, _ = result = restore(
      client, [REALMASK, TWO_PEOPLE], str(tiny_workdir))
  assert "ok      0_0_50.jpg: 1 of 1 face(s) restored -> 0_0_50_restored.png, 0_0_50_hole.png" \
      in report, report
  assert "ok      two_people.jpg: 2 of 2 face(s) restored" in report, report
  assert report.splitlines()[0].startswith(f"generator: step 2 of {tiny_workdir}")
  assert [g["caption"] for g in gallery] == ["0_0_50.jpg", "two_people.jpg"]
  assert [c[0] for c in menu["choices"]] == ["1. 0_0_50.jpg", "2. two_people.jpg"]
  photo = images.load_rgb(REALMASK)
  files = downloads(result)
  restored = images.load_rgb(files["0_0_50_restored.png"])
  hole = np.asarray(Image.open(files["0_0_50_hole.png"]))
  assert restored.shape == photo.shape
  assert hole.shape == photo.shape[:2] and set(np.unique(hole)) == {0, 255}
  assert only_near(hole, photo, restored)
  # The same bytes as inpaint's own files for this photo: one code path.
  out = inpaint_files(tiny_workdir, REALMASK, tmp_path / "cli")
  for name in ("0_0_50_restored.png", "0_0_50_hole.png"):
    assert files[name].read_bytes() == (out / name).read_bytes(), name
  # input | hole | restored, 8 px apart; the editor: the photo with its hole drawn red, and no
  # stroke yet.
  side = images.load_rgb(gallery[0]["image"])
  assert side.shape == (photo.shape[0], 3 * photo.shape[1] + 16, 3)
  assert np.array_equal(side[:, :photo.shape[1]], photo)
  assert np.array_equal(images.load_rgb(editor["background"]), side[:, photo.shape[1] + 8:
                                                                     2 * photo.shape[1] + 8])
  shown_hole = images.load_rgb(editor["background"]) != photo
  assert shown_hole.any(axis=-1)[hole > 0].all() and editor["layers"] == []
  assert np.array_equal(images.load_rgb(shown), restored)


def test_restore_again_restores_the_edited_hole_as_inpaint_hole_does(client, tiny_workdir,
                                                                       tmp_path):
  first = restore(client, [REALMASK], str(tiny_workdir))
  estimated = np.asarray(Image.open(downloads(first)["0_0_50_hole.png"])) > 0
  # Strokes as the editor sends them (a layer at the preview's size, here the photo's): blue over
  # the hole's upper half takes it away, a red stroke below it adds.
  rows = np.nonzero(estimated.any(axis=1))[0]
  layer = np.zeros(estimated.shape + (4,), np.uint8)
  layer[:(rows[0] + rows[-1]) // 2] = (0, 0, 255, 128)
  layer[rows[-1] - 5:rows[-1] + 1, 10:30] = (255, 0, 0, 128)
  expected = estimated.copy()
  expected[:(rows[0] + rows[-1]) // 2] = False
  expected[rows[-1] - 5:rows[-1] + 1, 10:30] = True
  edited_file = tmp_path / "layer.png"
  Image.fromarray(layer).save(edited_file)
  value = {"background": gradio_client.handle_file(first[3]["background"]),
           "layers": [gradio_client.handle_file(str(edited_file))], "composite": None}
  report, _, again_editor, _, _ = result = call(
      client, "0", value, str(tiny_workdir), "mesh", False, api_name="/restore_again")
  assert f"edited hole of 0_0_50.jpg: {expected.sum()} px" in report, report
  assert "ok      0_0_50.jpg: 1 of 1 face(s) restored" in report, report
  files = downloads(result)
  hole = np.asarray(Image.open(files["0_0_50_hole.png"]))
  assert np.array_equal(hole > 0, expected)  # exactly what was brushed
  restored = images.load_rgb(files["0_0_50_restored.png"])
  assert only_near(hole, images.load_rgb(REALMASK), restored)
  # The editor now shows the edited hole, to edit further.
  assert np.array_equal(images.load_rgb(again_editor["background"]) != images.load_rgb(REALMASK),
                        images.load_rgb(result[1][0]["image"])[:, hole.shape[1] + 8:
                                                               2 * hole.shape[1] + 8] !=
                        images.load_rgb(REALMASK))
  # inpaint --hole with the same map writes the same photo.
  Image.fromarray(hole).save(tmp_path / "hole.png")
  out = inpaint_files(tiny_workdir, REALMASK, tmp_path / "cli", "--hole", tmp_path / "hole.png")
  assert files["0_0_50_restored.png"].read_bytes() == \
      (out / "0_0_50_restored.png").read_bytes()
  # Everything taken away: a message, nothing restored.
  Image.fromarray(np.full_like(layer, 255) * np.array([0, 0, 1, 1], np.uint8)).save(edited_file)
  report = call(client, "0", value, str(tiny_workdir), "mesh", False,
                api_name="/restore_again")[0]
  assert report == "FAILED  0_0_50.jpg: the hole is empty: brush over what to restore"


def test_the_other_face_finder_and_the_shipped_model_can_be_chosen(client, tiny_workdir):
  report = restore(client, [TWO_PEOPLE], "", finder="hog")[0]
  assert "face finder hog" in report and "pretrained" in report.splitlines()[0], report
  assert "ok      two_people.jpg: 2 of 2 face(s) restored" in report, report


def test_each_bad_upload_is_a_message_and_the_server_serves_on(client, tiny_workdir, tmp_path):
  bad = tmp_path / "bad"
  bad.mkdir()
  (bad / "empty.jpg").write_bytes(b"")
  (bad / "notes.jpg").write_text("this is not a photo\n")
  celeba = sorted((REPO / "sample_data" / "celeba").glob("*.jpg"))[:16]
  twenty = [bad / "empty.jpg", bad / "notes.jpg", REPO / "sample_data" / "no_face" / "dogs.jpg",
            REALMASK, *celeba]
  assert len(twenty) == 20
  report, gallery = restore(client, twenty, str(tiny_workdir))[:2]
  lines = report.splitlines()[1:]
  assert "FAILED  empty.jpg: unreadable: empty file (0 bytes)" in lines, report
  assert "FAILED  notes.jpg: unreadable: not an image (unrecognised format)" in lines, report
  # The page runs with --nomask_check: every human face is restored, the dogs still are not.
  assert any(line.startswith("FAILED  dogs.jpg: no") for line in lines), report
  assert not any(line.startswith("ok      dogs.jpg") for line in lines), report
  # One verdict (ok / FAILED) per file, in the order given.
  verdicts = [line.split()[1].rstrip(":") for line in lines if line.startswith(("ok", "FAILED"))]
  assert verdicts == [p.name for p in twenty]
  assert len(gallery) == sum(line.startswith("ok") for line in lines)
  too_many = restore(client, twenty + [REALMASK], str(tiny_workdir))
  assert too_many[0].startswith("error: 21 files chosen: the page restores at most 20"), too_many[0]
  assert too_many[1] == []
  # A 40-megapixel photo (inpaint reads up to images.MAX_PIXELS) is restored at its full size.
  face = images.load_rgb(REALMASK)
  tall = cv2.resize(face, (round(face.shape[1] * 5200 / face.shape[0]), 5200))
  big = np.full((5200, 7700, 3), 90, np.uint8)
  big[:, 2000:2000 + tall.shape[1]] = tall
  Image.fromarray(big).save(bad / "big.jpg", quality=80)
  result = restore(client, [bad / "big.jpg"], str(tiny_workdir))
  assert "ok      big.jpg: 1 of 1 face(s) restored" in result[0], result[0]
  files = downloads(result)
  assert images.load_rgb(files["big_restored.png"]).shape == big.shape
  assert np.asarray(Image.open(files["big_hole.png"])).shape == big.shape[:2]
  # Shown at most 1600 px wide per panel.
  assert images.load_rgb(result[1][0]["image"]).shape[0] <= 1600
  # The server still restores.
  assert "ok      0_0_50.jpg" in restore(client, [REALMASK], str(tiny_workdir))[0]


def test_a_model_that_cannot_load_is_one_error_line_and_status_2(tmp_path):
  r = run_cli(["maskinpaint_jax.tools.app", "--workdir", str(tmp_path / "nothing"), "--port",
               str(free_port())], timeout=300)
  assert r.returncode == 2, r.stdout + r.stderr
  # The last line (Orbax may warn before it), as inpaint says it.
  assert r.stderr.strip().splitlines()[-1].startswith("error: no checkpoint in "), r.stderr


def test_post_restore_beside_the_page_restores_a_photo_over_http(page):
  """The HTTP endpoint for services (maskinpaint_jax/service.py) at the page's own address."""
  import httpx
  with REALMASK.open("rb") as f:
    r = httpx.post(page + "restore", files={"photo": (REALMASK.name, f, "image/jpeg")},
                   timeout=600)
  assert r.status_code == 200, r.text
  restored = np.asarray(Image.open(io.BytesIO(r.content)))
  assert restored.shape == images.load_rgb(REALMASK).shape
  report = json.loads(r.headers["x-maskinpaint-report"])
  assert report["restored"] >= 1
  bad = httpx.post(page + "restore", files={"photo": ("x.jpg", b"no image", "image/jpeg")})
  assert bad.status_code == 400 and "x.jpg" in bad.json()["detail"]
