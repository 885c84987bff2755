"""batch: the folder habits of real photo folders (fast tier, stand-in models): system files are
not photos, an output folder inside the input is never read, a stopped batch continues."""

import numpy as np
import pytest
from PIL import Image

from maskinpaint_jax import batch, cli, restorer
from maskinpaint_jax.tools import inpaint
from stand_ins import OBAMA, FakeCheck, FixedFinder, constant_filler, marked
from maskinpaint_jax import images


@pytest.fixture
def stand_in_restorer(monkeypatch):
  tools = restorer.Restorer(64, constant_filler(128), FixedFinder(), FakeCheck(), "stand-ins")
  monkeypatch.setattr(restorer, "load_restorer", lambda *a, **k: tools)
  return tools


def _photo(path):
  path.parent.mkdir(parents=True, exist_ok=True)
  Image.fromarray(marked(images.load_rgb(OBAMA))).save(path)


SYSTEM = (".DS_Store", "._p1.jpg", "Thumbs.db", "desktop.ini", "sub/.hidden.jpg",
          "__MACOSX/p1.jpg", ".git/x.png")


def test_system_files_are_listed_apart_and_never_jobs(tmp_path):
  for rel in ("p1.jpg", "sub/p2.jpg", *SYSTEM):
    (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
    (tmp_path / rel).write_bytes(b"x")
  plan = batch.plan_jobs([str(tmp_path)])
  assert sorted(str(j.rel) for j in plan.jobs) == ["p1.jpg", "sub/p2.jpg"]
  assert sorted(str(p.relative_to(tmp_path)) for p in plan.system_files) == sorted(SYSTEM)


def test_a_folder_of_a_mac_or_windows_is_restored_with_status_0(tmp_path, stand_in_restorer,
                                                               capsys):
  _photo(tmp_path / "in" / "p1.png")
  for rel in (".DS_Store", "._p1.png", "Thumbs.db", "desktop.ini"):
    (tmp_path / "in" / rel).write_bytes(b"\x00\x05\x16\x07 not an image")
  code = cli.call(inpaint, [str(tmp_path / "in"), "-o", str(tmp_path / "out")])
  log = capsys.readouterr()
  assert code == 0, log.err
  assert "1 restored + 0 no mask + 0 no face + 0 unreadable = 1 file(s)" in log.out
  assert "4 system file(s) left out" in log.out
  assert "FAILED" not in log.err


def test_an_output_folder_inside_the_input_folder_is_never_read(tmp_path, stand_in_restorer,
                                                               capsys):
  src = tmp_path / "in"
  _photo(src / "p1.png")
  for _ in range(2):  # the second run would find p1_restored.png under in/out otherwise
    code = cli.call(inpaint, [str(src), "-o", str(src / "out")])
    assert code == 0
  log = capsys.readouterr().out
  assert log.count("= 1 file(s)") == 2
  assert not (src / "out" / "out").exists()
  assert sorted(p.name for p in (src / "out").iterdir()) == [batch.DONE_LIST, "p1_restored.png"]


def test_skip_existing_continues_a_stopped_batch_where_it_stopped(tmp_path, stand_in_restorer,
                                                                 capsys, monkeypatch):
  src, out = tmp_path / "in", tmp_path / "out"
  for name in ("a.png", "b.png", "c.png"):
    _photo(src / name)
  done = []
  real_run_job = batch.run_job

  def stop_after_two(job, tools, opts):
    if len(done) == 2:
      raise KeyboardInterrupt  # Ctrl-C during the third photo
    done.append(job.path.name)
    return real_run_job(job, tools, opts)

  monkeypatch.setattr(batch, "run_job", stop_after_two)
  with pytest.raises(KeyboardInterrupt):
    cli.call(inpaint, [str(src), "-o", str(out)])
  # A kill can leave half a line at the end of the list: it is not read as a finished photo.
  with (out / batch.DONE_LIST).open("a") as f:
    f.write("resto")
  monkeypatch.setattr(batch, "run_job", real_run_job)
  seen = []
  monkeypatch.setattr(batch, "process_file",
                      lambda job, *a, real=batch.process_file: seen.append(job.path.name) or
                      real(job, *a))
  code = cli.call(inpaint, [str(src), "-o", str(out), "--skip_existing"])
  log = capsys.readouterr().out
  assert code == 0
  assert seen == ["c.png"]
  assert "1 restored + 0 no mask + 0 no face + 0 unreadable + 2 done before = 3 file(s)" in log
  assert sorted(batch.read_done(out).values()) == ["restored"] * 3
  # Without the flag, everything is done again.
  seen.clear()
  cli.call(inpaint, [str(src), "-o", str(out)])
  assert sorted(seen) == ["a.png", "b.png", "c.png"]


def test_grey_photos_come_back_grey_through_the_whole_batch(tmp_path, monkeypatch, capsys):
  tools = restorer.Restorer(64, _coloured_filler, FixedFinder(), FakeCheck(), "stand-ins")
  monkeypatch.setattr(restorer, "load_restorer", lambda *a, **k: tools)
  grey = images.load_rgb(OBAMA).mean(axis=-1).astype(np.uint8)
  photo = marked(np.repeat(grey[..., None], 3, axis=-1))
  photo[:4, :4] = (255, 0, 0)  # the stand-in finder's mark stays red: outside the face
  Image.fromarray(photo).save(tmp_path / "bw.png")
  assert cli.call(inpaint, [str(tmp_path / "bw.png"), "-o", str(tmp_path / "o"),
                            "--add_mask", "surgical"]) == 0
  out = images.load_rgb(tmp_path / "o" / "bw_restored.png")[8:, 8:].astype(int)
  chroma = np.abs(out - out.mean(axis=-1, keepdims=True)).max()
  assert chroma <= 2, chroma  # rounding only


def _coloured_filler(crops, holes):
  """A mouth of colours that vary across it, each channel its own way (a colour match of the
  channels' means and spreads cannot make it grey)."""
  n, h, w, _ = crops.shape
  y, x = np.mgrid[0:h, 0:w] / h
  out = np.stack([128 + 90 * np.sin(6 * x), 128 + 90 * np.cos(5 * y), 128 + 60 * np.sin(4 * (x + y))],
                 axis=-1)
  out = np.broadcast_to(out, crops.shape).clip(0, 255).astype(np.uint8)
  return out, np.where(holes > 0, out, crops)
