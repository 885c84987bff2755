r"""`make demo`: the whole path on the bundled samples, on CPU, in about five minutes.

  python -m maskinpaint_jax.tools.demo [--runs runs/demo] [--steps N] [--update_readme]

1. build  the face_mask and rect datasets at 64 px from sample_data/celeba (400 photos), split
          as the shipped model's data was (so its test images were never trained on)
2. train  configs/demo.py from scratch for a few minutes: training works (resumes; kept)
3. eval   the shipped model (pretrained/) on the test split: vs. masked input, OpenCV Telea and
          Navier-Stokes, identity; the short run's validation curve beside it
4. photos restore sample_data/photos (synthetic masks put on first) and sample_data/realmask
          (real masks: the hole is estimated) with the shipped model
5. report runs/demo/report.md with the tables and pictures
Every stage that is already complete is skipped, so running it again is quick.
--update_readme also refreshes docs/images/demo_samples.png and the README's real-photo grid
from this run (how the README's pictures are made: never by hand).
"""

from __future__ import annotations

import pathlib
import shutil
import subprocess
import sys
import time

from absl import flags

from maskinpaint_jax import cli, runlog

REPO = pathlib.Path(__file__).resolve().parents[2]


def define_flags(fv: flags.FlagValues = flags.FLAGS):
  flags.DEFINE_string("runs", "runs/demo", "Where everything is written.", flag_values=fv)
  flags.DEFINE_integer("steps", None, "Override configs/demo.py's steps.", flag_values=fv)
  flags.DEFINE_bool("update_readme", False, "Refresh docs/images/demo_samples.png and the "
                    "README's real-photo grid from this run.", flag_values=fv)


def banner(text: str):
  print(f"\n=== {text} ===", flush=True)


def run_stage(args: list[str], ok_codes=(0,)):
  """A stage as a child process (own flags, own signal handlers), output streamed. Exit codes
  in `ok_codes` are accepted (inpaint exits 1 when some face was skipped, as it should)."""
  cmd = [sys.executable, "-m", *args]
  print("$ " + " ".join(cmd[1:]), flush=True)
  code = subprocess.run(cmd, cwd=REPO, check=False).returncode
  if code not in ok_codes:
    raise subprocess.CalledProcessError(code, cmd)


def own_size_grid(restored_files) -> "np.ndarray":
  """input | hole (red) | restored around each restored face, at the photo's own pixels."""
  from maskinpaint_jax import images  # pylint: disable=g-import-not-at-top
  from maskinpaint_jax.faces import paste  # pylint: disable=g-import-not-at-top
  rows = []
  for path in restored_files:
    stem = path.name.removesuffix("_restored.png")
    original = next((p for p in sorted((REPO / "sample_data" / "realmask").iterdir())
                     if p.stem == stem), None)
    hole_file = path.with_name(f"{stem}_hole.png")
    if original is None or not hole_file.exists():
      continue
    photo = images.load_rgb(original)
    hole = images.load_hole(hole_file, photo.shape[:2])
    top, bottom, left, right = images.region_around(hole)
    cut = lambda image: image[top:bottom, left:right]
    rows.append([cut(photo), cut(paste.hole_overlay(photo, hole)), cut(images.load_rgb(path))])
  return images.rows_at_own_size(rows)


def validation_table(train_dir: pathlib.Path) -> list[str]:
  """The short run's periodic validation (from its metrics.jsonl): training works."""
  rows = runlog.validation_rows(runlog.read_metrics(train_dir))
  if not rows:
    return []
  from maskinpaint_jax import reporting  # pylint: disable=g-import-not-at-top
  x100 = lambda r, k: reporting.fmt(None if k not in r else 100 * r[k])
  return (["## Training from scratch: validation during the short run", "",
           "`configs/demo.py`, trained by this demo for a few minutes (not the shipped model). "
           + reporting.LPIPS_SOURCE + ".", "",
           "| step | PSNR (dB) | PSNR hole (dB) | SSIM (%) | LPIPS-Alex (x100) | "
           "LPIPS-VGG (x100) |", "|---:|---:|---:|---:|---:|---:|"]
          + [f"| {r['step']} | {r['val_psnr']:.2f} | {r['val_psnr_hole']:.2f} | "
             f"{100 * r['val_ssim']:.2f} | {x100(r, 'val_lpips')} | {x100(r, 'val_lpips_vgg')} |"
             for r in rows] + [""])


def write_report(runs: pathlib.Path, results: dict, timings: dict, inpaint_dir: pathlib.Path,
                 eval_dir: pathlib.Path, train_dir: pathlib.Path) -> pathlib.Path:
  from maskinpaint_jax import reporting  # pylint: disable=g-import-not-at-top
  rel = lambda p: pathlib.Path(p).resolve().relative_to(runs.resolve())
  lines = ["# maskinpaint-jax demo report", "",
           "The shipped model (`pretrained/`, see `pretrained/README.md`) on the bundled samples, "
           "and a short training run from scratch.", "",
           "Stage times (this run; skipped stages show 0): " + ", ".join(
               f"{k} {v:.0f} s" for k, v in timings.items()), "",
           "## Shipped model: test-set results", "", reporting.results_markdown(results), ""]
  lines += validation_table(train_dir)
  lines += ["## Pictures", "", "clean | masked | OpenCV Telea | OpenCV Navier-Stokes | ours (raw) "
            "| ours (composite):", ""]
  for res in results["datasets"].values():
    lines += [f"![{pathlib.Path(p).stem}]({rel(p)})" for p in res["samples"].values()] + [""]
  for sub, what in (("photos", "ordinary photos with a synthetic mask put on: original | masked "
                     "| restored"), ("realmask", "real masks: input | estimated hole | restored")):
    sides = sorted((inpaint_dir / sub).glob("*_side_by_side.png"))
    if sides:
      lines += [f"`maskinpaint_jax.tools.inpaint` on {what}:", ""]
      lines += [f"![{p.stem}]({rel(p)})" for p in sides] + [""]
  tables = rel(eval_dir / "results.md")
  lines += [f"Full evaluation tables, per mask style and identity: `{tables}`.", ""]
  path = runs / "report.md"
  path.write_text("\n".join(lines))
  return path


def write_partition(path: pathlib.Path) -> pathlib.Path:
  """The shipped model's split of each bundled photo (its build hashed "celeba/<id>"), as a
  CelebA-style partition file: the demo's test images are the shipped model's test images."""
  from data_prep import builder  # pylint: disable=g-import-not-at-top
  code = {"train": 0, "validation": 1, "test": 2}
  lines = [f"{p.name} {code[builder.hash_split('celeba/' + p.stem)]}"
           for p in sorted((REPO / "sample_data" / "celeba").glob("*.jpg"))]
  path.parent.mkdir(parents=True, exist_ok=True)
  path.write_text("\n".join(lines) + "\n")
  return path


def restore_photos(inpaint_dir: pathlib.Path):
  """The shipped model on ordinary photos (synthetic masks put on) and on real masked ones."""
  stamp = inpaint_dir / ".done"
  if stamp.exists():
    print(f"already done: {inpaint_dir}")
    return
  if inpaint_dir.exists():
    shutil.rmtree(inpaint_dir)
  run_stage(["maskinpaint_jax.tools.inpaint", str(REPO / "sample_data" / "photos"), "-o",
       str(inpaint_dir / "photos"), "--add_mask", "random", "--side_by_side"], ok_codes=(0, 1))
  # The photos by name: the folder also holds their LICENSE, which inpaint would list as
  # unreadable (it accounts for every file of a folder it is given).
  from maskinpaint_jax import images  # pylint: disable=g-import-not-at-top
  realmask = [str(p) for p in images.list_images(REPO / "sample_data" / "realmask")]
  run_stage(["maskinpaint_jax.tools.inpaint", *realmask, "-o",
       str(inpaint_dir / "realmask"), "--side_by_side", "--save_hole"], ok_codes=(0, 1))
  stamp.touch()


def run_demo(f: flags.FlagValues):
  """The five stages (see the top)."""
  runs = REPO / f.runs  # an absolute --runs stays as it is
  data_dir, train_dir, inpaint_dir = runs / "tfds", runs / "train", runs / "inpaint"
  overrides = [f"--config.data.data_dir={data_dir}"]
  timings = {}

  banner("1/5 build the datasets (face_mask, rect; 64 px) from sample_data/celeba")
  t = time.time()
  run_stage(["maskinpaint_jax.tools.build", "--src", str(REPO / "sample_data" / "celeba"),
             "--data_dir",
       str(data_dir), "--occlusions", "face_mask,rect", "--size", "64", "--workers", "2",
       "--partition", str(write_partition(runs / "partition.txt")), "--preview", "16"])
  timings["build"] = time.time() - t

  banner("2/5 train configs/demo.py from scratch (resumes; Ctrl-C saves and stops)")
  t = time.time()
  steps = [f"--config.num_train_steps={f.steps}"] if f.steps else []
  run_stage(["maskinpaint_jax.tools.train", "--config", str(REPO / "configs" / "demo.py"),
             "--workdir",
       str(train_dir)] + overrides + steps)
  timings["train"] = time.time() - t

  banner("3/5 evaluate the shipped model (pretrained/) on the test split")
  t = time.time()
  eval_dir = runs / "eval_shipped"
  if (eval_dir / "results.json").exists():
    print(f"already evaluated: {eval_dir}")
  else:
    run_stage(["maskinpaint_jax.tools.evaluate", "--out", str(eval_dir),
         "--config.data.eval_datasets=face_mask,rect"] + overrides)
  timings["evaluate"] = time.time() - t
  results = runlog.read_results(eval_dir)

  banner("4/5 restore sample_data/photos (synthetic masks) and sample_data/realmask (real masks)")
  t = time.time()
  restore_photos(inpaint_dir)
  timings["photos"] = time.time() - t

  banner("5/5 report")
  path = write_report(runs, results, timings, inpaint_dir, eval_dir, train_dir)
  if f.update_readme:
    update_docs(eval_dir, inpaint_dir)
  from maskinpaint_jax import reporting  # pylint: disable=g-import-not-at-top
  print("\n" + reporting.results_markdown(results))
  print(f"\nreport: {path}")


def update_docs(eval_dir: pathlib.Path, inpaint_dir: pathlib.Path):
  """docs/images/demo_samples.png and docs/images/realmask_restored.png from this run."""
  from maskinpaint_jax import images  # pylint: disable=g-import-not-at-top
  docs = REPO / "docs" / "images"
  docs.mkdir(parents=True, exist_ok=True)
  shutil.copy(sorted(eval_dir.glob("samples_face_mask_64*.png"))[0], docs / "demo_samples.png")
  restored = sorted((inpaint_dir / "realmask").glob("*_restored.png"))
  if restored:
    images.save_png(docs / "realmask_restored.png", own_size_grid(restored))
  print("docs/images/demo_samples.png and docs/images/realmask_restored.png updated")


def main(argv, f: flags.FlagValues = flags.FLAGS) -> int:
  cli.no_args(argv)
  try:
    run_demo(f)
  except subprocess.CalledProcessError as e:
    print(f"\ndemo stopped: `{' '.join(map(str, e.cmd[1:]))}` exited with {e.returncode}; "
          "run `make demo` again to continue from here", file=sys.stderr)
    return e.returncode or 1
  except KeyboardInterrupt:
    print("\ninterrupted: run `make demo` again to continue from here", file=sys.stderr)
    return 130
  return 0


if __name__ == "__main__":
  define_flags()
  cli.run(main)
