"""The dataset builder end to end on real CelebA faces: report, format, determinism, interruption."""

import json
import pathlib
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from conftest import REPO, make_awkward_photo_folder
from data_prep import build, builder, masks


def _read_all(data_dir, name):
  out = {}
  for split in builder.SPLITS:
    source = builder.data_source(data_dir, name, split)
    for i in range(len(source)):
      ex = source[i]
      out[ex["id"].decode() if isinstance(ex["id"], bytes) else ex["id"]] = (split, ex)
  return out


def test_build_from_an_awkward_folder_reports_every_skip(tmp_path, celeba_paths):
  src = tmp_path / "photos"
  expect = make_awkward_photo_folder(src, celeba_paths)
  (summary,) = build.main(["--src", str(src), "--data_dir", str(tmp_path / "tfds"),
                           "--config", "face_mask", "--size", "64", "--workers", "2",
                           "--preview", "6"])
  skipped = {pathlib.Path(s["file"]).name: s["reason"] for s in summary["skipped"]}
  for name, outcome in expect.items():
    if outcome == "ok":
      assert name not in skipped, (name, skipped.get(name))
    else:
      assert outcome in skipped[name], (name, skipped[name])
  ok = sorted(n for n, o in expect.items() if o == "ok")
  assert sum(summary["examples"].values()) == len(ok)
  assert summary["skipped_count"] == len(expect) - len(ok)
  on_disk = json.loads((pathlib.Path(summary["path"]) / "build_summary.json").read_text())
  assert on_disk["skipped"] == summary["skipped"]
  assert pathlib.Path(summary["preview"]).stat().st_size > 1000

  examples = _read_all(tmp_path / "tfds", "face_mask_64")
  assert sorted(examples) == sorted(pathlib.Path(n).stem for n in ok)
  for split, ex in examples.values():
    assert ex["image"].shape == (64, 64, 3) and ex["image"].dtype == np.uint8
    assert ex["mask"].shape == (64, 64, 1) and set(np.unique(ex["mask"])) <= {0, 255}
    assert ex["landmarks"].shape == (68, 2) and ex["landmarks"].dtype == np.float32
    assert masks.MASK_TYPES[ex["mask_type"]] in masks.FACE_MASK_STYLES
    hole = ex["mask"][..., 0] > 0
    np.testing.assert_array_equal(ex["masked"][~hole], ex["image"][~hole])
    x, y = np.round(ex["landmarks"][33]).astype(int)  # landmarks are in output pixels
    assert hole[y, x]


def test_the_dataset_does_not_depend_on_the_worker_count(tmp_path, celeba_paths):
  src = tmp_path / "photos"
  src.mkdir()
  for p in celeba_paths[:14]:
    (src / p.name).write_bytes(p.read_bytes())
  args = ["--src", str(src), "--config", "face_mask,rect", "--size", "48", "--seed", "7"]
  build.main(args + ["--data_dir", str(tmp_path / "one"), "--workers", "1"])
  build.main(args + ["--data_dir", str(tmp_path / "two"), "--workers", "2"])
  for name in ("face_mask_48", "rect_48"):
    a, b = _read_all(tmp_path / "one", name), _read_all(tmp_path / "two", name)
    assert sorted(a) == sorted(b) and len(a) == 14
    for k in a:
      assert a[k][0] == b[k][0]
      for field in ("image", "masked", "mask", "landmarks", "mask_type"):
        np.testing.assert_array_equal(a[k][1][field], b[k][1][field])


def test_partition_file_decides_the_splits(tmp_path, celeba_paths):
  src = tmp_path / "photos"
  src.mkdir()
  names = [p.name for p in celeba_paths[:6]]
  for p in celeba_paths[:6]:
    (src / p.name).write_bytes(p.read_bytes())
  part = tmp_path / "list_eval_partition.txt"
  part.write_text("".join(f"{n} {i % 3}\n" for i, n in enumerate(names[:5])))  # one missing
  (summary,) = build.main(["--src", str(src), "--data_dir", str(tmp_path / "tfds"),
                           "--config", "rect", "--size", "32", "--workers", "1",
                           "--partition", str(part)])
  assert summary["examples"] == {"train": 2, "validation": 2, "test": 1}
  assert [pathlib.Path(s["file"]).name for s in summary["skipped"]] == [names[5]]
  assert "not in the partition file" in summary["skipped"][0]["reason"]
  got = _read_all(tmp_path / "tfds", "rect_32")
  for i, n in enumerate(names[:5]):
    assert got[pathlib.Path(n).stem][0] == builder.SPLITS[i % 3]


def test_a_rerun_of_a_complete_build_changes_nothing(tmp_path, celeba_paths):
  src = tmp_path / "photos"
  src.mkdir()
  for p in celeba_paths[:3]:
    (src / p.name).write_bytes(p.read_bytes())
  args = ["--src", str(src), "--data_dir", str(tmp_path / "tfds"), "--config", "rect",
          "--size", "32", "--workers", "1"]
  build.main(args)
  info = builder.find_builder_dir(tmp_path / "tfds", "rect_32") / "dataset_info.json"
  before = info.stat().st_mtime_ns
  build.main(args)
  assert info.stat().st_mtime_ns == before


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGINT])
def test_an_interrupted_build_is_never_complete_and_a_rerun_finishes_it(tmp_path, sig):
  data_dir = tmp_path / "tfds"
  cmd = [sys.executable, "-m", "data_prep.build", "--src", str(REPO / "sample_data" / "celeba"),
         "--data_dir", str(data_dir), "--config", "face_mask", "--size", "32", "--workers", "1",
         "--limit", "160"]
  proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
  root = data_dir / "masked_faces" / "face_mask_32"
  deadline = time.time() + 120
  while time.time() < deadline and not list(root.glob("*incomplete*/*train*")):
    time.sleep(0.1)
  assert proc.poll() is None, proc.stdout.read().decode()
  proc.send_signal(sig)
  out = proc.communicate(timeout=60)[0].decode()
  if sig == signal.SIGINT:
    assert proc.returncode == 130 and "run the same command again" in out
  with pytest.raises(FileNotFoundError, match="no complete dataset"):
    builder.find_builder_dir(data_dir, "face_mask_32")
  assert not (root / "1.0.0" / "dataset_info.json").exists()

  done = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=300)
  assert done.returncode == 0, done.stdout + done.stderr
  summary = json.loads((builder.find_builder_dir(data_dir, "face_mask_32")
                        / "build_summary.json").read_text())
  assert sum(summary["examples"].values()) + summary["skipped_count"] == 160
  assert not list(root.glob("*incomplete*"))
  assert sum(len(builder.data_source(data_dir, "face_mask_32", s)) for s in builder.SPLITS) \
      == sum(summary["examples"].values())
