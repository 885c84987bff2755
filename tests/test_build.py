"""The dataset builder end to end on real CelebA faces: report, format, determinism, interruption.

Every build finds faces with dlib, so those tests are the slow (end-to-end) tier; the split
arithmetic and the reuse rules are checked without building.
"""

import hashlib
import json
import pathlib
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from conftest import REPO, build_datasets, make_awkward_photo_folder, run_cli
from data_prep import builder
from maskinpaint_jax import input_pipeline, masks
from maskinpaint_jax.tools import build
from maskinpaint_jax import cli


def _read_all(data_dir, name):
  out = {}
  for split in builder.SPLITS:
    source = input_pipeline.data_source(data_dir, name, split)
    for i in range(len(source)):
      ex = source[i]
      out[ex["id"].decode() if isinstance(ex["id"], bytes) else ex["id"]] = (split, ex)
  return out



def _photo_folder(src: pathlib.Path, paths) -> pathlib.Path:
  """A folder holding copies of `paths`."""
  src.mkdir()
  for p in paths:
    (src / p.name).write_bytes(p.read_bytes())
  return src

@pytest.mark.slow  # finds faces with dlib: the end-to-end tier
def test_build_from_an_awkward_folder_reports_every_skip(tmp_path, celeba_paths):
  src = tmp_path / "photos"
  expect = make_awkward_photo_folder(src, celeba_paths)
  (summary,) = build_datasets(["--src", str(src), "--data_dir", str(tmp_path / "tfds"),
                           "--occlusions", "face_mask", "--size", "64", "--workers", "2",
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


@pytest.mark.slow  # finds faces with dlib: the end-to-end tier
def test_the_dataset_does_not_depend_on_the_worker_count(tmp_path, celeba_paths):
  src = _photo_folder(tmp_path / "photos", celeba_paths[:14])
  args = ["--src", str(src), "--occlusions", "face_mask,rect", "--size", "48", "--seed", "7"]
  build_datasets(args + ["--data_dir", str(tmp_path / "one"), "--workers", "1"])
  build_datasets(args + ["--data_dir", str(tmp_path / "two"), "--workers", "2"])
  for name in ("face_mask_48", "rect_48"):
    a, b = _read_all(tmp_path / "one", name), _read_all(tmp_path / "two", name)
    assert sorted(a) == sorted(b) and len(a) == 14
    for k in a:
      assert a[k][0] == b[k][0]
      for field in ("image", "masked", "mask", "landmarks", "mask_type"):
        np.testing.assert_array_equal(a[k][1][field], b[k][1][field])


@pytest.mark.slow  # finds faces with dlib: the end-to-end tier
def test_partition_file_decides_the_splits(tmp_path, celeba_paths):
  src = _photo_folder(tmp_path / "photos", celeba_paths[:6])
  names = [p.name for p in celeba_paths[:6]]
  part = tmp_path / "list_eval_partition.txt"
  part.write_text("".join(f"{n} {i % 3}\n" for i, n in enumerate(names[:5])))  # one missing
  (summary,) = build_datasets(["--src", str(src), "--data_dir", str(tmp_path / "tfds"),
                           "--occlusions", "rect", "--size", "32", "--workers", "1",
                           "--partition", str(part)])
  assert summary["examples"] == {"train": 2, "validation": 2, "test": 1}
  assert [pathlib.Path(s["file"]).name for s in summary["skipped"]] == [names[5]]
  assert "not in the partition file" in summary["skipped"][0]["reason"]
  got = _read_all(tmp_path / "tfds", "rect_32")
  for i, n in enumerate(names[:5]):
    assert got[pathlib.Path(n).stem][0] == builder.SPLITS[i % 3]


@pytest.mark.slow  # finds faces with dlib: the end-to-end tier
def test_a_rerun_of_a_complete_build_changes_nothing(tmp_path, celeba_paths):
  src = _photo_folder(tmp_path / "photos", celeba_paths[:3])
  args = ["--src", str(src), "--data_dir", str(tmp_path / "tfds"), "--occlusions", "rect",
          "--size", "32", "--workers", "1", "--require_splits", "train"]  # 3 photos: no test
  build_datasets(args)
  info = input_pipeline.find_builder_dir(tmp_path / "tfds", "rect_32") / "dataset_info.json"
  before = info.stat().st_mtime_ns
  build_datasets(args)
  assert info.stat().st_mtime_ns == before


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGINT])
def test_an_interrupted_build_is_never_complete_and_a_rerun_finishes_it(tmp_path, sig):
  data_dir = tmp_path / "tfds"
  cmd = [sys.executable, "-m", "maskinpaint_jax.tools.build", "--src",
         str(REPO / "sample_data" / "celeba"),
         "--data_dir", str(data_dir), "--occlusions", "face_mask", "--size", "64", "--workers", "1",
         "--limit", "400"]  # enough writing after the first shard that the signal lands in it
  # Ctrl-C in a terminal: SIGINT handled as by default even when the tests themselves run in a
  # background job (which inherits SIGINT ignored, and so would the build).
  proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
  root = data_dir / "masked_faces" / "face_mask_64"
  deadline = time.time() + 120
  while time.time() < deadline and not list(root.glob("*incomplete*/*train*")):
    time.sleep(0.1)
  assert proc.poll() is None, proc.stdout.read().decode()
  proc.send_signal(sig)
  out = proc.communicate(timeout=60)[0].decode()
  if sig == signal.SIGINT:
    assert proc.returncode == 130 and "run the same command again" in out
  with pytest.raises(FileNotFoundError, match="no complete dataset"):
    input_pipeline.find_builder_dir(data_dir, "face_mask_64")
  assert not (root / "1.0.0" / "dataset_info.json").exists()

  done = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=300)
  assert done.returncode == 0, done.stdout + done.stderr
  summary = json.loads((input_pipeline.find_builder_dir(data_dir, "face_mask_64")
                        / "build_summary.json").read_text())
  assert sum(summary["examples"].values()) + summary["skipped_count"] == 400
  assert not list(root.glob("*incomplete*"))
  assert sum(len(input_pipeline.data_source(data_dir, "face_mask_64", s)) for s in builder.SPLITS) \
      == sum(summary["examples"].values())


def _celeba_style_folder(root, celeba_paths, counts):
  """The first photos (sorted) in train, then validation, then test, like CelebA's
  list_eval_partition.txt, where photos 000001-162770 are all train."""
  src = root / "photos"
  src.mkdir()
  names, lines = [], []
  for split_code, n in enumerate(counts):
    for p in celeba_paths[len(names):len(names) + n]:
      (src / p.name).write_bytes(p.read_bytes())
      names.append(p.name)
      lines.append(f"{p.name} {split_code}\n")
  part = root / "list_eval_partition.txt"
  part.write_text("".join(lines))
  return src, part, names


def test_split_quotas_follow_the_split_sizes_and_keep_every_split():
  celeba = {"train": 162_770, "validation": 19_867, "test": 19_962}
  # 40000 x share = 32135.8 / 3922.4 / 3941.2: floors, then the two largest remainders.
  assert builder.split_quotas(celeba, 40_000) == {"train": 32_136, "validation": 3_923,
                                                  "test": 3_941}
  toy = {"train": 20, "validation": 5, "test": 5}
  assert builder.split_quotas(toy, 15) == {"train": 10, "validation": 3, "test": 2}
  assert builder.split_quotas(toy, 3) == {"train": 1, "validation": 1, "test": 1}
  assert builder.split_quotas(toy, 99) == toy
  for limit in range(3, 31):
    q = builder.split_quotas(toy, limit)
    assert sum(q.values()) == limit and min(q.values()) >= 1
    assert all(q[s] <= toy[s] for s in toy)


@pytest.mark.slow  # finds faces with dlib: the end-to-end tier
def test_limit_draws_the_same_random_subset_with_every_split(tmp_path, celeba_paths):
  """A reproduction: 30 photos, the first 20 train, 5 validation, 5 test; --limit 15
  used to keep the first 15 photos, all of them train."""
  src, part, names = _celeba_style_folder(tmp_path, celeba_paths, (20, 5, 5))
  args = ["--src", str(src), "--partition", str(part), "--occlusions", "rect", "--size", "32",
          "--limit", "15", "--subset_seed", "5"]
  (one,) = build_datasets(args + ["--data_dir", str(tmp_path / "one"), "--workers", "1"])
  (two,) = build_datasets(args + ["--data_dir", str(tmp_path / "two"), "--workers", "2"])
  assert one["examples"] == {"train": 10, "validation": 3, "test": 2}
  assert one["subset_seed"] == 5 and one["limit"] == 15
  assert one["subset_sha256"] == two["subset_sha256"]
  drawn = pathlib.Path(one["subset_file"]).read_text().split()
  assert drawn == pathlib.Path(two["subset_file"]).read_text().split()
  # Independent reference: per split, the photos of lowest sha256("<seed>:<path under --src>").
  rank = lambda n: hashlib.sha256(f"5:{n}".encode()).hexdigest()
  by_split = [sorted(names[:20], key=rank)[:10], sorted(names[20:25], key=rank)[:3],
              sorted(names[25:], key=rank)[:2]]
  assert drawn == sorted(sum(by_split, []))
  assert drawn != names[:15]
  a, b = _read_all(tmp_path / "one", "rect_32"), _read_all(tmp_path / "two", "rect_32")
  assert sorted(a) == sorted(b) == sorted(pathlib.Path(n).stem for n in drawn)
  assert {k: v[0] for k, v in a.items()} == {k: v[0] for k, v in b.items()}

  # Another seed draws other photos, and is never served the dataset of the first one.
  with pytest.raises(builder.BuildError, match=r"other options.*subset_seed: 5 \(now 6\)"):
    build_datasets(args[:-1] + ["6", "--data_dir", str(tmp_path / "one"), "--workers", "1"])
  (other,) = build_datasets(args[:-1] + ["6", "--data_dir", str(tmp_path / "three")])
  assert other["subset_sha256"] != one["subset_sha256"]
  assert other["examples"] == one["examples"]


@pytest.mark.slow  # finds faces with dlib: the end-to-end tier
def test_a_build_that_would_leave_a_split_empty_is_an_error(tmp_path, celeba_paths):
  src, part, _ = _celeba_style_folder(tmp_path, celeba_paths, (8, 0, 2))  # no validation
  base = ["--src", str(src), "--partition", str(part), "--occlusions", "rect", "--size", "32",
          "--workers", "1"]
  with pytest.raises(builder.EmptySplitError,
                     match=r"\['validation'\] would be empty.*puts none of the 10 photos"):
    build_datasets(base + ["--data_dir", str(tmp_path / "a")])
  with pytest.raises(FileNotFoundError, match="no complete dataset"):
    input_pipeline.find_builder_dir(tmp_path / "a", "rect_32")
  with pytest.raises(builder.EmptySplitError, match="--limit 1 is too small"):
    build_datasets(base + ["--data_dir", str(tmp_path / "b"), "--limit", "1",
                       "--require_splits", "train,test"])
  # Saying a split is not needed builds without it.
  (summary,) = build_datasets(base + ["--data_dir", str(tmp_path / "c"),
                                  "--require_splits", "train,test"])
  assert summary["examples"] == {"train": 8, "test": 2} and summary["empty_splits"] == \
      ["validation"]
  r = run_cli(["maskinpaint_jax.tools.build"] + base + ["--data_dir", str(tmp_path / "d")],
              timeout=300)
  assert r.returncode == 2 and "error:" in r.stderr and "--require_splits" in r.stderr
  assert "Traceback" not in r.stderr


def test_a_dataset_of_an_older_build_is_reused_only_if_it_holds_the_same_photos(tmp_path):
  """Summaries written before the random draw had no subset_seed: without --limit they hold
  every photo, as now; with --limit they hold the first N, which is refused."""
  (tmp_path / "photos").mkdir()
  flags_of = lambda *more: cli.parse(build.define_flags, ["--src", str(tmp_path / "photos"),
                                                           "--data_dir", str(tmp_path), *more])[0]
  args = flags_of()
  old = dict(src=str(tmp_path / "photos"), partition=None, limit=None, seed=0, no_face="skip",
             min_face_size=40, examples={"train": 8, "validation": 1, "test": 1})
  build.check_existing(old, args, tmp_path)
  with pytest.raises(builder.EmptySplitError, match=r"no \['test'\] examples"):
    build.check_existing(dict(old, examples={"train": 9, "validation": 1}), args, tmp_path)
  limited = flags_of("--limit", "10")
  with pytest.raises(builder.BuildError, match=r"limit: None \(now 10\)"):
    build.check_existing(old, limited, tmp_path)
  with pytest.raises(builder.BuildError, match=r"subset_seed: None \(now 0\).*--overwrite"):
    build.check_existing(dict(old, limit=10), limited, tmp_path)
  build.check_existing(dict(old, limit=10, subset_seed=0), limited, tmp_path)
