r"""`make demo`: the whole path on the bundled CelebA sample, on CPU, in about ten minutes.

  python -m maskinpaint_jax.demo [--runs runs/demo] [--steps N] [--update_readme]

1. build  the face_mask and rect datasets at 64 px from sample_data/celeba (400 photos)
2. train  configs/demo.py on both (resumes; a finished run is kept)
3. eval   the test split: ours vs. masked input, OpenCV Telea and Navier-Stokes, identity
4. photos restore the faces of sample_data/photos with synthetic masks put on first
5. report runs/demo/report.md with the tables and pictures
Every stage that is already complete is skipped, so running it again is quick.
--update_readme also refreshes README.md's results block and docs/images/demo_samples.png from
this run's evaluation (how the README's numbers are made: never by hand).
"""

from __future__ import annotations

import argparse
import json
import pathlib
import shutil
import subprocess
import sys
import time

REPO = pathlib.Path(__file__).resolve().parents[1]


def parse_args(argv=None):
  p = argparse.ArgumentParser(prog="python -m maskinpaint_jax.demo",
                              description=__doc__.split("\n")[0])
  p.add_argument("--runs", default="runs/demo", help="where everything is written")
  p.add_argument("--steps", type=int, default=None, help="override configs/demo.py's steps")
  p.add_argument("--update_readme", action="store_true")
  return p.parse_args(argv)


def banner(text: str):
  print(f"\n=== {text} ===", flush=True)


def run(args: list[str]):
  """A stage as a child process (own flags, own signal handlers), output streamed."""
  cmd = [sys.executable, "-m", *args]
  print("$ " + " ".join(cmd[1:]), flush=True)
  subprocess.run(cmd, cwd=REPO, check=True)


def final_step(workdir: pathlib.Path):
  ckpts = workdir / "checkpoints"
  steps = [int(p.name) for p in ckpts.iterdir() if p.name.isdigit()] if ckpts.is_dir() else []
  return max(steps) if steps else None


def write_report(runs: pathlib.Path, results: dict, timings: dict, inpaint_dir: pathlib.Path,
                 eval_dir: pathlib.Path, train_dir: pathlib.Path) -> pathlib.Path:
  from maskinpaint_jax import report  # pylint: disable=g-import-not-at-top
  rel = lambda p: pathlib.Path(p).resolve().relative_to(runs.resolve())
  val_lines = []
  metrics_file = train_dir / "metrics.jsonl"
  if metrics_file.exists():
    for line in metrics_file.read_text().splitlines():
      rec = json.loads(line)
      if "val_psnr" in rec:
        val_lines.append(f"| {rec['step']} | {rec['val_psnr']:.2f} | {rec['val_psnr_hole']:.2f} | "
                         f"{100 * rec['val_ssim']:.2f} |")
  lines = ["# maskinpaint-jax demo report", "",
           "A 64 px MMRM U-Net + SN-PatchGAN (`configs/demo.py`) trained on CPU on datasets built "
           "from 400 bundled CelebA photos. It shows the pipeline end to end; it is not the "
           "paper's 128 px model (see README for the GPU path).", "",
           "Stage times (this run; skipped stages show 0): " + ", ".join(
               f"{k} {v:.0f} s" for k, v in timings.items()), "",
           "## Test-set results", "", report.results_markdown(results), ""]
  if val_lines:
    lines += ["## Validation during training (fixed batch)", "",
              "| step | PSNR (dB) | PSNR hole (dB) | SSIM (%) |", "|---:|---:|---:|---:|"]
    lines += val_lines + [""]
  lines += ["## Pictures", "", "clean | masked | OpenCV Telea | OpenCV Navier-Stokes | ours (raw) "
            "| ours (composite):", ""]
  for name in results["datasets"]:
    lines += [f"![{name}]({rel(eval_dir / f'samples_{name}.png')})", ""]
  sides = sorted(inpaint_dir.glob("*_side_by_side.png"))
  if sides:
    lines += ["Your-photo path (`maskinpaint_jax.inpaint --add-mask random`): original | with a "
              "synthetic mask | restored and pasted back:", ""]
    lines += [f"![{p.stem}]({rel(p)})" for p in sides] + [""]
  lines += [f"Full evaluation tables, per mask style and identity: `{rel(eval_dir / 'results.md')}`.",
            ""]
  path = runs / "report.md"
  path.write_text("\n".join(lines))
  return path


def main(argv=None):
  args = parse_args(argv)
  runs = (REPO / args.runs) if not pathlib.Path(args.runs).is_absolute() else pathlib.Path(args.runs)
  data_dir, train_dir, inpaint_dir = runs / "tfds", runs / "train", runs / "inpaint"
  overrides = [f"--config.data.data_dir={data_dir}"]
  if args.steps:
    overrides.append(f"--config.num_train_steps={args.steps}")
  timings = {}

  banner("1/5 build the datasets (face_mask, rect; 64 px) from sample_data/celeba")
  t = time.time()
  run(["data_prep.build", "--src", str(REPO / "sample_data" / "celeba"), "--data_dir",
       str(data_dir), "--config", "face_mask,rect", "--size", "64", "--workers", "2",
       "--preview", "16"])
  timings["build"] = time.time() - t

  banner("2/5 train configs/demo.py (resumes; Ctrl-C saves and stops)")
  t = time.time()
  run(["maskinpaint_jax.train", "--config", str(REPO / "configs" / "demo.py"), "--workdir",
       str(train_dir)] + overrides)
  timings["train"] = time.time() - t
  step = final_step(train_dir)

  banner("3/5 evaluate on the test split")
  t = time.time()
  eval_dir = train_dir / "eval" / f"test-step{step}"
  if (eval_dir / "results.json").exists():
    print(f"already evaluated: {eval_dir}")
  else:
    run(["maskinpaint_jax.evaluate", "--workdir", str(train_dir), "--out", str(eval_dir),
         "--config", str(REPO / "configs" / "demo.py")] + overrides[:1])  # data_dir only
  timings["evaluate"] = time.time() - t
  results = json.loads((eval_dir / "results.json").read_text())

  banner("4/5 restore the faces in sample_data/photos (synthetic masks put on first)")
  t = time.time()
  stamp = inpaint_dir / f".done-step{step}"
  if stamp.exists():
    print(f"already done: {inpaint_dir}")
  else:
    if inpaint_dir.exists():
      shutil.rmtree(inpaint_dir)
    run(["maskinpaint_jax.inpaint", str(REPO / "sample_data" / "photos"), "--workdir",
         str(train_dir), "-o", str(inpaint_dir), "--add-mask", "random", "--side-by-side"])
    stamp.touch()
  timings["photos"] = time.time() - t

  banner("5/5 report")
  path = write_report(runs, results, timings, inpaint_dir, eval_dir, train_dir)
  if args.update_readme:
    from maskinpaint_jax import report  # pylint: disable=g-import-not-at-top
    docs = REPO / "docs"
    (docs / "images").mkdir(parents=True, exist_ok=True)
    shutil.copy(eval_dir / "samples_face_mask_64.png", docs / "images" / "demo_samples.png")
    (docs / "demo_results.json").write_text(json.dumps(results, indent=2))
    report.update_readme(REPO / "README.md", results, "docs/demo_results.json")
    print("README.md results block, docs/demo_results.json and docs/images/demo_samples.png "
          "updated")
  from maskinpaint_jax import report  # pylint: disable=g-import-not-at-top
  print("\n" + report.results_markdown(results))
  print(f"\nreport: {path}")


if __name__ == "__main__":
  try:
    main()
  except subprocess.CalledProcessError as e:
    print(f"\ndemo stopped: `{' '.join(map(str, e.cmd[1:]))}` exited with {e.returncode}; "
          "run `make demo` again to continue from here", file=sys.stderr)
    sys.exit(e.returncode or 1)
  except KeyboardInterrupt:
    print("\ninterrupted: run `make demo` again to continue from here", file=sys.stderr)
    sys.exit(130)
