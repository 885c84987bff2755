"""The ways in: the Python API (restorer), the HTTP endpoint (service), the `maskinpaint`
command and `python -m maskinpaint_jax.train` (commands), the models folder (shipped).
Fast tier on stand-in models, except where marked slow."""

import io
import json
import os
import pathlib
import shutil
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from conftest import REPO
from maskinpaint_jax import commands, errors, images, restorer, service, shipped
from maskinpaint_jax.faces import finders
from stand_ins import LANDMARKS, OBAMA, FakeCheck, FixedFinder, constant_filler, marked


@pytest.fixture
def stand_in():
  return restorer.Restorer(64, constant_filler(128), FixedFinder(), FakeCheck(), "stand-ins")


# --- the Python API ----------------------------------------------------------------------------

def test_restore_takes_an_array_or_a_path_and_changes_only_the_hole(stand_in, tmp_path):
  photo = marked(images.load_rgb(OBAMA))
  Image.fromarray(photo).save(tmp_path / "p.png")
  from_array = stand_in.restore(photo, add_mask="surgical", seed_key="p")
  from_path = stand_in.restore(tmp_path / "p.png", add_mask="surgical", seed_key="p")
  np.testing.assert_array_equal(from_array.restored, from_path.restored)
  assert from_array.restored.shape == photo.shape and from_array.restored.dtype == np.uint8
  assert set(np.unique(from_array.hole)) == {0, 1}
  far = from_array.hole == 0
  assert (from_array.restored[far] == photo[far]).mean() > 0.99  # the feathered edge aside
  assert [f.status for f in from_array.faces] == ["restored"]
  assert from_array.faces[0].crop_side > 0


def test_a_user_hole_in_0_255_or_0_1_gives_the_same_result(stand_in):
  photo = marked(images.load_rgb(OBAMA))
  hole = np.zeros(photo.shape[:2], np.uint8)
  cx, cy = LANDMARKS[48:68].mean(0).astype(int)
  hole[cy - 40:cy + 40, cx - 60:cx + 60] = 1
  a, b = stand_in.restore(photo, hole), stand_in.restore(photo, hole * 255)
  np.testing.assert_array_equal(a.restored, b.restored)
  np.testing.assert_array_equal(a.hole, hole)


def test_a_hole_of_the_wrong_size_and_a_bad_photo_are_clear_errors(stand_in):
  photo = marked(images.load_rgb(OBAMA))
  with pytest.raises(errors.MismatchError, match="hole map is 10x20 px but the photo is 910x1137"):
    stand_in.restore(photo, np.zeros((20, 10), np.uint8))
  with pytest.raises(errors.MismatchError, match=r"\(H, W, 3\) uint8"):
    stand_in.restore(photo.astype(np.float32))
  with pytest.raises(finders.NoFaceError):
    stand_in.restore(np.zeros((50, 60, 3), np.uint8))


def test_models_dir_and_its_environment_variable_point_elsewhere(tmp_path, monkeypatch):
  packaged = shipped.models_root()
  assert (packaged / shipped.GENERATOR / "generator.msgpack").is_file()
  assert packaged.is_relative_to(pathlib.Path(shipped.__file__).parent)
  monkeypatch.setenv(shipped.ENV_VAR, str(tmp_path))
  assert shipped.model_dir(shipped.FACE_CHECK) == tmp_path / shipped.FACE_CHECK
  assert shipped.models_root(packaged) == packaged  # the argument wins
  monkeypatch.setenv(shipped.ENV_VAR, str(tmp_path / "missing"))
  with pytest.raises(FileNotFoundError, match="MASKINPAINT_MODELS=.*missing: no such folder"):
    shipped.models_root()
  with pytest.raises(errors.SetupError, match="no such folder"):
    restorer.load_restorer()


# --- the HTTP endpoint -------------------------------------------------------------------------

@pytest.fixture
def client(stand_in):
  from fastapi.testclient import TestClient
  return TestClient(service.make_api(lambda: stand_in))


def _png_bytes(image) -> bytes:
  buf = io.BytesIO()
  Image.fromarray(image).save(buf, format="PNG")
  return buf.getvalue()


def test_post_restore_returns_the_restored_photo_and_its_report(client, stand_in):
  photo = marked(images.load_rgb(OBAMA))
  r = client.post("/restore", files={"photo": ("p.png", _png_bytes(photo), "image/png")},
                  data={"add_mask": "surgical"})
  assert r.status_code == 200 and r.headers["content-type"] == "image/png"
  got = np.asarray(Image.open(io.BytesIO(r.content)))
  expected = stand_in.restore(photo, add_mask="surgical", seed_key="p.png").restored
  np.testing.assert_array_equal(got, expected)
  report = json.loads(r.headers["x-maskinpaint-report"])
  assert report["restored"] == 1 and report["faces"][0]["status"] == "restored"


def test_post_restore_with_a_hole_and_json(client):
  photo = marked(images.load_rgb(OBAMA))
  hole = np.zeros(photo.shape[:2], np.uint8)
  cx, cy = LANDMARKS[48:68].mean(0).astype(int)
  hole[cy - 40:cy + 40, cx - 60:cx + 60] = 255
  r = client.post("/restore", files={"photo": ("p.png", _png_bytes(photo), "image/png"),
                                     "hole": ("h.png", _png_bytes(hole), "image/png")},
                  data={"format": "json"})
  assert r.status_code == 200
  body = r.json()
  import base64
  back = np.asarray(Image.open(io.BytesIO(base64.b64decode(body["hole_png"]))))
  np.testing.assert_array_equal(back, hole)
  assert body["report"]["restored"] == 1


@pytest.mark.parametrize("files, data, status, words", [
    ({"photo": ("p.jpg", b"not an image", "image/jpeg")}, {}, 400, "not an image"),
    ({"photo": ("p.png", None, "image/png"), "hole": ("h.png", "small", "image/png")}, {}, 400,
     "hole h.png is 10x10 px"),
    ({"photo": ("n.png", "noface", "image/png")}, {}, 422, "no face"),
    ({"photo": ("p.png", None, "image/png")}, {"add_mask": "scarf"}, 400, "add_mask"),
])
def test_post_restore_errors_are_status_codes_with_the_reason(client, files, data, status, words):
  photo = marked(images.load_rgb(OBAMA))
  stock = {None: _png_bytes(photo), "small": _png_bytes(np.zeros((10, 10), np.uint8)),
           "noface": _png_bytes(np.zeros((40, 50, 3), np.uint8))}
  files = {k: (n, stock.get(b, b) if not isinstance(b, bytes) else b, t)
           for k, (n, b, t) in files.items()}
  r = client.post("/restore", files=files, data=data)
  assert r.status_code == status, r.text
  assert words in r.json()["detail"]


def test_models_that_cannot_load_are_503():
  from fastapi.testclient import TestClient

  def broken():
    raise errors.SetupError("no generator here")

  r = TestClient(service.make_api(broken)).post(
      "/restore", files={"photo": ("p.png", _png_bytes(marked(images.load_rgb(OBAMA))),
                                   "image/png")})
  assert r.status_code == 503 and "no generator here" in r.json()["detail"]


# --- the commands ------------------------------------------------------------------------------

def test_maskinpaint_help_lists_every_program_in_tools(capsys):
  with pytest.raises(SystemExit) as exit_:
    commands.main(["--help"])
  assert exit_.value.code == 0
  out = capsys.readouterr().out
  programs = sorted(p.stem for p in (REPO / "maskinpaint_jax" / "tools").glob("*.py")
                    if p.stem != "__init__")
  assert sorted(commands.COMMANDS) == programs
  for name in programs:
    assert f"  {name} " in out


def test_an_unknown_command_is_status_2_with_the_list(capsys):
  with pytest.raises(SystemExit) as exit_:
    commands.main(["restore-all"])
  assert exit_.value.code == 2
  assert "unknown command 'restore-all'" in capsys.readouterr().err


@pytest.mark.parametrize("argv, words", [
    (["-m", "maskinpaint_jax", "inpaint", "--help"], "--skip_existing"),
    (["-m", "maskinpaint_jax.train", "--help"], "--workdir"),
])
def test_subcommands_and_the_design_cards_train_entry_point_run_their_program(argv, words):
  r = subprocess.run([sys.executable, *argv], capture_output=True, text=True, cwd=REPO,
                     timeout=120)
  assert r.returncode == 0, r.stderr[-2000:]
  assert words in r.stdout


# --- the installed wheel (slow) ----------------------------------------------------------------

@pytest.mark.slow
def test_the_wheel_installs_and_restores_a_photo_from_another_folder(tmp_path):
  """`pip wheel .`, installed away from the checkout (its dependencies from this environment),
  then `maskinpaint inpaint` on a bundled photo from a temporary folder, and the API."""
  wheels, site, work = tmp_path / "wheels", tmp_path / "site", tmp_path / "work"
  work.mkdir()
  # A copy of the tracked tree: setuptools leaves build/ in the source folder it builds.
  tracked = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True,
                           check=True).stdout.splitlines()
  src = tmp_path / "src"
  for rel in tracked:
    (src / rel).parent.mkdir(parents=True, exist_ok=True)
    if (REPO / rel).is_symlink():
      (src / rel).symlink_to(os.readlink(REPO / rel))
    elif (REPO / rel).is_file():
      shutil.copy2(REPO / rel, src / rel)
  pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
  subprocess.run(pip + ["wheel", "--no-deps", "--no-build-isolation", "-w", str(wheels),
                        str(src)], check=True, timeout=300, cwd=tmp_path)
  (wheel,) = wheels.glob("maskinpaint_jax-*.whl")
  subprocess.run(pip + ["install", "--no-deps", "--target", str(site), str(wheel)], check=True,
                 timeout=300)
  assert (site / "maskinpaint_jax" / "pretrained" / "face_mask_128" / "generator.msgpack").is_file()
  (work / "photo.jpg").write_bytes(OBAMA.read_bytes())
  env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", shipped.ENV_VAR)}
  env.update(PYTHONPATH=str(site), JAX_COMPILATION_CACHE_DIR=str(tmp_path / "cache"))
  where = subprocess.run([sys.executable, "-c", "import maskinpaint_jax; print(maskinpaint_jax.__file__)"],
                         capture_output=True, text=True, env=env, cwd=work, check=True)
  assert pathlib.Path(where.stdout.strip()).is_relative_to(site), where.stdout
  r = subprocess.run([str(site / "bin" / "maskinpaint"), "inpaint", "photo.jpg", "-o", "out",
                      "--add_mask", "surgical"], capture_output=True, text=True, env=env,
                     cwd=work, timeout=600)
  assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
  assert str(site) in r.stdout  # the generator came from the installed package
  assert (work / "out" / "photo_restored.png").is_file()
  api = subprocess.run(
      [sys.executable, "-c", "import maskinpaint_jax as m; r = m.load_restorer(); "
       "x = r.restore('photo.jpg', add_mask='n95'); print(x.restored.shape, x.count('restored'))"],
      capture_output=True, text=True, env=env, cwd=work, timeout=600)
  assert api.returncode == 0, api.stderr[-2000:]
  assert "(1137, 910, 3) 1" in api.stdout
