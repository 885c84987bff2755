r"""The GPU check in one command: bench, build, train, evaluate on one GPU node, everything
written into one folder.

  launch/gpu_check.sh OUT              (the knobs, and TOY=1 for the CPU rehearsal, are there)
  python -m maskinpaint_jax.tools.gpu_check --out OUT [--work runs/gpu_check]
      [--config configs/default.py] [--size 128] [--src DIR,DIR] [--limit N]
      [--phases bench,build,train,evaluate] ...

1. bench: `bench train` in float32 and in bfloat16, each at the largest per-device batch that fits,
   found by doubling from --batch_start until the device runs out of memory (a probe that fails
   with RESOURCE_EXHAUSTED / out of memory), --batch_max or --bench_budget_s (a ceiling for both
   dtypes together, give or take one probe; see search_batch and run_bench); a first probe that
   does not fit is halved instead. Every probe is a full measurement (img/s, step and compile
   time, peak device memory, MFU against the device's dense peak) with one step profiled by
   jax.profiler (its top ops); all probes go to benchmarks.md, the largest that fit to the summary.
2. build: the face_mask and rect datasets at --size from the photos of every --src folder
   (linked into one folder), on every core.
3. train: the faster dtype of step 1 for --budget_s seconds of training, counted from the
   compiled step; then SIGTERM, on which train saves a checkpoint and exits 0. The batch is the
   smallest probed one within 5 % of that dtype's best img/s (headroom, and more updates in the
   same time); a run that runs out of memory is retried once at half the batch.
4. evaluate: the generator exported to OUT/generator, scored on the test split of both datasets
   next to OpenCV Telea and Navier-Stokes (results, sample grids in OUT/eval).

OUT/summary.md and summary.json hold every number and where it came from, with the seconds each
phase took; logs/ holds each subprocess's output. This process never imports JAX: every step is a
subprocess, so a probe that runs out of memory fails alone, and this one holds no device memory.

Why one long module: the four phases, their subprocess plumbing and the summary they write are one
script that runs once per GPU node and is rehearsed as a whole (tests/test_gpu_check.py); each
phase is a few small functions, and nothing here is imported by the library.
"""

from __future__ import annotations

import dataclasses
import json
import os
import pathlib
import re
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import time
import types
from typing import Callable

from absl import flags

from maskinpaint_jax import cli, input_pipeline, reporting, runlog

REPO = pathlib.Path(__file__).resolve().parents[2]
DTYPES = ("float32", "bfloat16")
OCCLUSIONS = ("face_mask", "rect")
# How XLA / the allocator say that a program does not fit in device memory.
OOM_PATTERN = re.compile(r"RESOURCE_EXHAUSTED|[Oo]ut of memory|OOM when allocating|"
                         r"Allocator .* ran out of memory")
COMPILED_LINE = "compiled the train step"  # the trainer prints it once the loop's step is ready
NEAR_BEST = 0.95  # a smaller batch within 5 % of the best img/s is as good for training


PHASES = ("bench", "build", "train", "evaluate")


def define_flags(fv: flags.FlagValues = flags.FLAGS):
  d = dict(flag_values=fv)
  flags.DEFINE_string("out", None, "Folder for every result (created).", required=True, **d)
  flags.DEFINE_string("work", "runs/gpu_check", "Scratch: linked photos, datasets, training "
                      "workdir, raw profiles.", **d)
  flags.DEFINE_string("config", "configs/default.py", "Config file (configs/*.py).", **d)
  flags.DEFINE_integer("size", 128, "Image side (px) for every phase.", **d)
  flags.DEFINE_list("src", ["../shared/data/celeba", "../shared/data/celeba_extra"],
                    "Photo folders, linked into one for the build.", **d)
  flags.DEFINE_integer("limit", None, "Draw this many photos (build).", **d)
  flags.DEFINE_integer("workers", os.cpu_count() or 1, "Build workers.", **d)
  flags.DEFINE_string("train_datasets", "face_mask", "What the model trains on.", **d)
  flags.DEFINE_list("phases", list(PHASES), "Phases to run, in this order.", **d)
  flags.DEFINE_integer("batch_start", 64, "First per-device batch probed.", **d)
  flags.DEFINE_integer("batch_max", 2048, "Largest per-device batch probed.", **d)
  flags.DEFINE_float("bench_budget_s", 200.0, "Both dtypes' searches: no probe that would end "
                     "past it (estimated from the probe before; the first probe of each dtype "
                     "always runs).", **d)
  flags.DEFINE_integer("bench_steps", 10, "Timed steps per probe.", **d)
  flags.DEFINE_integer("bench_warmup", 2, "Untimed steps per probe.", **d)
  flags.DEFINE_float("probe_timeout_s", 600.0, "A probe that takes longer is stopped.", **d)
  flags.DEFINE_enum("dtype", None, list(DTYPES), "Train in this dtype (default: the faster of "
                    "the bench).", **d)
  flags.DEFINE_integer("train_batch", None, "Global training batch (default: from the bench, "
                       "see above).", **d)
  flags.DEFINE_float("budget_s", 300.0, "Seconds of training.", **d)
  flags.DEFINE_float("startup_timeout_s", 900.0, "Give up when the train step has not compiled "
                     "after this long.", **d)
  flags.DEFINE_integer("log_every", 20, "Training log interval (steps).", **d)
  flags.DEFINE_integer("eval_every", 200, "Validation during training (steps).", **d)
  flags.DEFINE_string("eval_args", "", "More flags of maskinpaint_jax.tools.evaluate.", **d)
  cli.check_choices("phases", PHASES, fv)


def resolve(f: flags.FlagValues) -> types.SimpleNamespace:
  """This program's flags as the phases use them: paths absolute, so subprocesses agree."""
  args = types.SimpleNamespace(**{fl.name: fl.value for fl in f.get_flags_for_module(__name__)})
  args.out, args.work = pathlib.Path(args.out).absolute(), pathlib.Path(args.work).absolute()
  args.config = str(pathlib.Path(args.config).absolute())
  return args


# --- subprocesses ------------------------------------------------------------------------------

def child_env(**extra) -> dict:
  """The environment of every step: unbuffered output, quiet TensorFlow, and (GPU) most of the
  device's memory for the one process that uses it, so the largest batch found is usable."""
  env = dict(os.environ, PYTHONUNBUFFERED="1", **extra)
  env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
  env.setdefault("XLA_PYTHON_CLIENT_MEM_FRACTION", "0.92")
  return env


def python(module: str, *flags) -> list[str]:
  return [sys.executable, "-m", module, *map(str, flags)]


@dataclasses.dataclass
class Result:
  returncode: int
  output: str
  seconds: float
  log: str


def run_logged(cmd: list[str], log: pathlib.Path, timeout: float | None = None,
               env: dict | None = None) -> Result:
  """Runs `cmd` from the repo root with stdout + stderr into `log`; a timeout is returncode
  124, as timeout(1) says it."""
  log.parent.mkdir(parents=True, exist_ok=True)
  print(f"$ {shlex.join(cmd)}\n  (log: {log})", flush=True)
  t0 = time.time()
  with log.open("w") as f:
    f.write(f"$ {shlex.join(cmd)}\n\n")
    f.flush()
    try:
      rc = subprocess.run(cmd, cwd=REPO, stdout=f, stderr=subprocess.STDOUT, env=env or child_env(),
                          timeout=timeout, check=False).returncode
    except subprocess.TimeoutExpired:
      rc = 124
  return Result(rc, log.read_text(errors="replace"), time.time() - t0, str(log))


def tail(text: str, lines: int = 15) -> str:
  return "\n".join(text.rstrip().splitlines()[-lines:])


def is_oom(text: str) -> bool:
  return bool(OOM_PATTERN.search(text))


def json_rows(text: str) -> list[dict]:
  """The JSON objects a command printed, one a line (bench train prints one per measurement)."""
  rows = []
  for line in text.splitlines():
    if line.startswith("{"):
      try:
        rows.append(json.loads(line))
      except json.JSONDecodeError:
        pass
  return rows


# --- 1. bench: the largest per-device batch that fits, per dtype --------------------------------

def bench_probe(args, dtype: str, per_device_batch: int) -> dict:
  """One `bench train` at this per-device batch: {"batch", "status": ok | oom | error, "row",
  "seconds", "log"}. The persistent compilation cache is off: compile time is measured."""
  tag = f"{dtype}_b{per_device_batch}"
  cmd = python("maskinpaint_jax.tools.bench", "train", "--config", args.config,
               f"--config.data.image_size={args.size}", f"--config.model.dtype={dtype}",
               "--per_device_batch", per_device_batch, "--steps", args.bench_steps,
               "--warmup", args.bench_warmup, "--profile_dir", args.work / "profile" / tag,
               "--label", f"gpu_check, {dtype}, per-device batch {per_device_batch}",
               "--write", args.out / "benchmarks.md")
  r = run_logged(cmd, args.out / "logs" / f"bench_{tag}.log", args.probe_timeout_s,
                 child_env(JAX_ENABLE_COMPILATION_CACHE="false"))
  rows = [row for row in json_rows(r.output) if "img_per_s" in row]
  status = "ok" if r.returncode == 0 and rows else "oom" if is_oom(r.output) else "error"
  print(f"  {tag}: {status} in {r.seconds:.0f} s", flush=True)
  return dict(dtype=dtype, batch=per_device_batch, status=status, row=rows[-1] if rows else None,
              seconds=r.seconds, log=r.log, returncode=r.returncode,
              error=None if status == "ok" else tail(r.output))


def search_batch(probe: Callable[[int], dict], start: int, largest: int,
                 budget_s: float) -> tuple[list[dict], dict | None, str]:
  """(every probe, the largest that fitted or None, why the search stopped). Doubles from `start`
  while probes fit; if the first does not fit, halves until one does. Stops at the first probe
  that fails otherwise, past `largest`, or when the next probe would end past `budget_s`,
  taking it to last as long as the one just done (a larger batch compiles about as long and
  steps longer); the first probe always runs."""
  t0, probes, batch = time.time(), [], max(1, min(start, largest))
  best, too_big = None, None  # the largest batch that fitted, the smallest that did not
  while True:
    p = probe(batch)
    probes.append(p)
    if p["status"] == "error":
      return probes, best, f"probe at {batch} failed (not out of memory): see {p['log']}"
    if p["status"] == "ok":
      best = p
    else:
      too_big = min(batch, too_big or batch)
    if best and too_big and 2 * best["batch"] >= too_big:
      return probes, best, f"out of memory at {too_big}"
    if not best and batch == 1:
      return probes, None, "out of memory even at 1"
    batch = 2 * best["batch"] if best else batch // 2
    if best and batch > largest:
      return probes, best, f"reached the largest batch to try ({largest})"
    if time.time() - t0 + p.get("seconds", 0.0) > budget_s:
      return probes, best, (f"time budget ({budget_s:.0f} s) would be passed by trying {batch} "
                            f"(after {time.time() - t0:.0f} s)")


def run_bench(args) -> dict:
  """Both dtypes' searches; bfloat16 starts from float32's largest batch (it needs less). Each
  dtype gets an even share of what is left of --bench_budget_s (float32 half, bfloat16 the rest)."""
  (args.out / "benchmarks.md").unlink(missing_ok=True)  # this run's probes only
  out, start, t0 = {}, args.batch_start, time.time()
  for i, dtype in enumerate(DTYPES):
    share = (args.bench_budget_s - (time.time() - t0)) / (len(DTYPES) - i)
    probes, best, why = search_batch(lambda b, d=dtype: bench_probe(args, d, b), start,
                                     args.batch_max, share)
    out[dtype] = dict(probes=probes, best=best, stopped=why)
    start = best["batch"] if best else start
  fits = {d: r["best"]["row"]["img_per_s"] for d, r in out.items() if r["best"]}
  out["faster"] = max(fits, key=fits.get) if fits else None
  keep_traces(args, out)
  return out


def keep_traces(args, bench: dict):
  """OUT/profile/<dtype>.{trace.json.gz,xplane.pb}: the profiled step of each dtype's largest
  batch, for TensorBoard / XProf / Perfetto."""
  for dtype in DTYPES:
    best = bench[dtype]["best"]
    trace = best and (best["row"].get("profile") or {}).get("trace")
    if trace:
      (args.out / "profile").mkdir(exist_ok=True)
      for f in pathlib.Path(trace).parent.iterdir():
        if f.name.endswith((".trace.json.gz", ".xplane.pb")):
          shutil.copy(f, args.out / "profile" / f"{dtype}.{f.name.split('.', 1)[1]}")


def pick_train_batch(probes: list[dict]) -> int:
  """The smallest per-device batch whose img/s is within 5 % of the best probe's."""
  ok = [p for p in probes if p["status"] == "ok"]
  best = max(p["row"]["img_per_s"] for p in ok)
  return min(p["batch"] for p in ok if p["row"]["img_per_s"] >= NEAR_BEST * best)


# --- 2. build ----------------------------------------------------------------------------------

def link_photos(sources: list[str], dest: pathlib.Path) -> int:
  """dest/<folder name>/<file> -> each source's files (maskinpaint_jax.tools.build takes one
  --src). Links
  of an earlier run are removed first (only links), so `dest` names exactly this run's photos."""
  for old in (dest.rglob("*") if dest.is_dir() else []):
    if old.is_symlink():
      old.unlink()
  count = 0
  for src in map(pathlib.Path, sources):
    if not src.is_dir():
      raise FileNotFoundError(f"--src {src} is not a folder")
    sub = dest / src.name
    sub.mkdir(parents=True, exist_ok=True)
    for f in src.iterdir():
      (sub / f.name).symlink_to(f.resolve())
      count += 1
  return count


def build_summary(data_dir: pathlib.Path, occlusion: str, size: int) -> dict:
  """The build's own summary of one dataset, less the per-photo list of skipped files."""
  path = input_pipeline.find_builder_dir(data_dir, input_pipeline.config_name(occlusion, size))
  s = json.loads((path / "build_summary.json").read_text())
  keep = ("dataset", "photos_found", "photos_drawn", "examples", "mask_types", "skipped_count",
          "fixed_box_fallbacks", "seconds", "workers", "images_per_second",
          "images_per_second_per_worker", "photos_scanned_now", "limit")
  return {k: s.get(k) for k in keep}


def run_build(args) -> dict:
  """Both datasets from one folder of links to every --src photo."""
  photos, data_dir = args.work / "photos", args.work / "tfds"
  n = link_photos(args.src, photos)
  cmd = python("maskinpaint_jax.tools.build", "--src", photos, "--data_dir", data_dir,
               "--occlusions",
               ",".join(OCCLUSIONS), "--size", args.size, "--workers", args.workers)
  if args.limit:
    cmd += ["--limit", str(args.limit)]
  r = run_logged(cmd, args.out / "logs" / "build.log")
  if r.returncode:
    raise RuntimeError(f"maskinpaint_jax.tools.build failed ({r.returncode}):\n{tail(r.output)}")
  return dict(photos_linked=n, seconds=r.seconds,
              datasets={o: build_summary(data_dir, o, args.size) for o in OCCLUSIONS})


# --- 3. train for a wall-clock budget ----------------------------------------------------------

def train_command(args, workdir: pathlib.Path, dtype: str, batch: int) -> list[str]:
  """The config's own training, but stopped by the clock: no step budget, no periodic
  checkpoint (the one written on SIGTERM is the one evaluated)."""
  return python("maskinpaint_jax.tools.train", "--config", args.config, "--workdir", workdir,
                f"--config.data.data_dir={args.work / 'tfds'}",
                f"--config.data.image_size={args.size}",
                f"--config.data.train_datasets={args.train_datasets}",
                f"--config.model.dtype={dtype}", f"--config.batch_size={batch}",
                "--config.num_train_steps=100000000", "--config.checkpoint_every_steps=100000000",
                f"--config.log_every_steps={args.log_every}",
                f"--config.eval_every_steps={args.eval_every}")


def wait_for_line(proc, log: pathlib.Path, line: str, timeout: float) -> bool:
  """True once `line` is in the log; False if the process ended or `timeout` passed first."""
  t0 = time.time()
  while time.time() - t0 < timeout and proc.poll() is None:
    if line in log.read_text(errors="replace"):
      return True
    time.sleep(0.5)
  return line in log.read_text(errors="replace")


def train_for(args, workdir: pathlib.Path, dtype: str, batch: int, log: pathlib.Path) -> dict:
  """Runs train until --budget_s seconds after its step compiled, then SIGTERM (train saves a
  checkpoint at the end of that step and exits 0)."""
  shutil.rmtree(workdir, ignore_errors=True)  # a fresh run: resuming would skew the budget
  cmd = train_command(args, workdir, dtype, batch)
  print(f"$ {shlex.join(cmd)}\n  (log: {log})", flush=True)
  t0 = time.time()
  with log.open("w") as f:
    f.write(f"$ {shlex.join(cmd)}\n\n")
    f.flush()
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=f, stderr=subprocess.STDOUT, env=child_env())
    try:
      compiled = wait_for_line(proc, log, COMPILED_LINE, args.startup_timeout_s)
      train_start = time.time()
      if compiled:
        try:
          proc.wait(timeout=args.budget_s)
        except subprocess.TimeoutExpired:
          proc.send_signal(signal.SIGTERM)
      elif proc.poll() is None:  # never compiled: not worth a checkpoint
        proc.kill()
      rc = proc.wait(timeout=args.startup_timeout_s)
    finally:
      if proc.poll() is None:
        proc.kill()
  output = log.read_text(errors="replace")
  return dict(returncode=rc, compiled=compiled, oom=is_oom(output), dtype=dtype, batch=batch,
              seconds_total=time.time() - t0, seconds_training=time.time() - train_start,
              log=str(log), error=None if rc == 0 else tail(output))


def curve(workdir: pathlib.Path) -> dict:
  """What metrics.jsonl says: steps, median img/s (the first interval, with its warm-up, left
  out), the last losses and every validation."""
  records = runlog.read_metrics(workdir)
  train = runlog.training_rows(records)
  rates = [r["img_per_s"] for r in train[1:]] or [r["img_per_s"] for r in train]
  last = train[-1] if train else {}
  return dict(last_logged_step=last.get("step"),
              img_per_s_median=statistics.median(rates) if rates else None,
              last={k: last.get(k) for k in ("d_loss", "g_loss", "g_adv", "g_l1", "g_tv")},
              validation=[{k: v for k, v in r.items() if k == "step" or k.startswith("val_")}
                          for r in runlog.validation_rows(records)])


def run_train(args, bench: dict | None) -> dict:
  """The faster dtype's training for the budget; its learning curve and sample grid."""
  dtype = args.dtype or (bench or {}).get("faster") or "float32"
  if args.train_batch:
    devices, per_device = 1, args.train_batch
  elif bench and bench.get(dtype, {}).get("best"):
    devices = bench[dtype]["best"]["row"]["devices"]
    per_device = pick_train_batch(bench[dtype]["probes"])
  else:
    raise RuntimeError("no training batch: give --train_batch, or run the bench phase")
  workdir, tries = args.work / "train", []
  # One retry at half the batch if the first does not fit (training holds a little more than
  # the bench: the validation batch, the data prefetch).
  for attempt in sorted({per_device, per_device // 2} - {0}, reverse=True):
    batch = attempt * devices
    t = train_for(args, workdir, dtype, batch, args.out / "logs" / f"train_b{batch}.log")
    tries.append(t)
    if t["returncode"] == 0 or not t["oom"]:
      break
  final = tries[-1]
  if final["returncode"] != 0:
    raise RuntimeError(f"train failed ({final['returncode']}):\n{final['error']}")
  steps = re.findall(r"stopped at step (\d+)", pathlib.Path(final["log"]).read_text())
  for f in ("metrics.jsonl", "config.json"):
    shutil.copy(workdir / f, args.out / f"train_{f}")
  samples = sorted((workdir / "samples").glob("*.png"))
  if samples:  # the last validation grid (clean | masked | ours)
    shutil.copy(samples[-1], args.out / "train_samples.png")
  return dict(dtype=dtype, global_batch=final["batch"], budget_s=args.budget_s,
              steps=int(steps[-1]) if steps else None, tries=tries, workdir=str(workdir),
              **curve(workdir))


# --- 4. export and evaluate --------------------------------------------------------------------

def run_evaluate(args, train: dict | None) -> dict:
  """Exports the newest checkpoint of the training workdir, then scores that folder."""
  workdir, model = args.work / "train", args.out / "generator"
  note = (f"gpu_check: {pathlib.Path(args.config).name} at {args.size} px, "
          f"{(train or {}).get('dtype')}, batch {(train or {}).get('global_batch')}, "
          f"{args.budget_s:.0f} s of training on {args.train_datasets}")
  r = run_logged(python("maskinpaint_jax.tools.export", "--workdir", workdir, "--out", model,
                        "--note", note), args.out / "logs" / "export.log")
  if r.returncode:
    raise RuntimeError(f"export failed ({r.returncode}):\n{tail(r.output)}")
  cmd = python("maskinpaint_jax.tools.evaluate", "--workdir", model, "--config", args.config,
               f"--config.data.data_dir={args.work / 'tfds'}",
               f"--config.data.image_size={args.size}",
               f"--config.data.eval_datasets={','.join(OCCLUSIONS)}", "--split", "test",
               "--out", args.out / "eval", *shlex.split(args.eval_args))
  r = run_logged(cmd, args.out / "logs" / "evaluate.log")
  if r.returncode:
    raise RuntimeError(f"evaluate failed ({r.returncode}):\n{tail(r.output)}")
  results = runlog.read_results(args.out / "eval")
  return dict(seconds=r.seconds, step=results["meta"]["step"],
              generator=sorted(p.name for p in model.iterdir()),
              datasets={name: dict(n=d["summary"]["all"]["n"], in_training=d["in_training"],
                                   **{m: d["summary"]["all"][m] for m in
                                      ("masked_input", "telea", "navier_stokes", "ours_raw",
                                       "ours_composite")})
                        for name, d in results["datasets"].items()})


# --- summary -----------------------------------------------------------------------------------

def bench_markdown(bench: dict) -> list[str]:
  from maskinpaint_jax import profiling  # pylint: disable=g-import-not-at-top  no JAX
  lines = ["| dtype | per-device batch | status | step (s) | img/s | compile (s) | peak memory "
           "| device limit | MFU |", "|---|---:|---|---:|---:|---:|---:|---:|---:|"]
  for dtype in DTYPES:
    for p in bench.get(dtype, {}).get("probes", []):
      r = p["row"] or {}
      mfu = f"{100 * r['mfu']:.1f} %" if r.get("mfu") is not None else "n/a"
      lines.append(f"| {dtype} | {p['batch']} | {p['status']} | "
                   + (f"{r['step_s']:.3f} | {r['img_per_s']:.1f} | {r['compile_s']:.1f} | "
                      f"{reporting.fmt_bytes(r['memory_bytes'])} ({r['memory_kind']}) | "
                      f"{reporting.fmt_bytes(r.get('memory_limit_bytes'))} | {mfu} |" if r else
                      "| | | | | |"))
  lines.append("")
  for dtype in DTYPES:
    s = bench.get(dtype)
    if not s:
      continue
    best = s["best"]
    lines.append(f"- {dtype}: largest per-device batch that fits "
                 f"**{best['batch'] if best else 'none'}**; search stopped: {s['stopped']}.")
  if bench.get("faster"):
    rates = {d: bench[d]["best"]["row"]["img_per_s"] for d in DTYPES if bench[d]["best"]}
    lines.append(f"- faster: **{bench['faster']}**" + (
        f" ({rates['bfloat16'] / rates['float32']:.2f}x bfloat16 / float32 img/s)"
        if len(rates) == 2 else ""))
  for dtype in DTYPES:
    best = (bench.get(dtype) or {}).get("best")
    profile = best and best["row"].get("profile")
    if profile:
      lines += ["", f"Top ops, {dtype} at per-device batch {best['batch']}:", "",
                profile.get("error") or profiling.markdown(profile)]
  return lines


def summary_markdown(s: dict) -> str:
  lines = ["# GPU check", "", f"Command: `{s['command']}`  ", f"Date: {s['date']}; "
           f"total {s['seconds_total']:.0f} s; phases (s): "
           + ", ".join(f"{k} {v:.0f}" for k, v in s["phase_seconds"].items()), ""]
  if s.get("machine"):
    lines += [f"Machine: {s['machine']}", ""]
  for phase, error in s["errors"].items():
    lines += [f"**{phase} failed:**", "", "```", error, "```", ""]
  if s.get("bench"):
    lines += ["## 1. Train step (bench train, synthetic batches)", "",
              "Each row is one `bench train` run; every section with its command is in "
              "benchmarks.md.", ""] + bench_markdown(s["bench"]) + [""]
  if s.get("build"):
    b = s["build"]
    lines += ["## 2. Datasets", "", f"{b['photos_linked']} photos linked; build "
              f"{b['seconds']:.0f} s in all (face detection shared by both).", "",
              "| dataset | examples | skipped | build (s) | img/s | workers |",
              "|---|---|---:|---:|---:|---:|"]
    lines += [f"| {d['dataset']} | {d['examples']} | {d['skipped_count']} | {d['seconds']} | "
              f"{d['images_per_second']} | {d['workers']} |" for d in b["datasets"].values()]
    lines.append("")
  if s.get("train"):
    t = s["train"]
    rate = t["img_per_s_median"]
    lines += ["## 3. Training", "", f"{t['dtype']}, global batch {t['global_batch']}, "
              f"{t['budget_s']:.0f} s of training after compilation: stopped at step "
              f"{t['steps']}; median " + (f"{rate:.1f} img/s." if rate else "img/s n/a.")
              + " Last losses: " + ", ".join(f"{k} {v:.4f}" for k, v in t["last"].items()
                                             if v is not None) + ".", ""]
    every = max(1, len(t["validation"]) // 8)  # at most about 8 lines, the last one always
    for v in t["validation"][::-1][::every][::-1]:
      lines.append(f"- step {v['step']}: val PSNR {v.get('val_psnr', 0):.2f} dB (hole "
                   f"{v.get('val_psnr_hole', 0):.2f}), SSIM {100 * v.get('val_ssim', 0):.2f} %")
    lines.append("")
  results_md = s.get("out") and pathlib.Path(s["out"]) / "eval" / "results.md"
  if s.get("evaluate") and results_md and results_md.exists():
    # evaluate's own results.md, its headings one level down
    lines += ["## 4. Evaluation (test split)", "",
              re.sub(r"^#", "##", results_md.read_text().strip(), flags=re.M), ""]
  return "\n".join(lines)


def machine_line(out: pathlib.Path) -> str | None:
  """reporting.machine() as bench or evaluate wrote it (this process never imports JAX)."""
  bench_md, results = out / "benchmarks.md", out / "eval" / "results.json"
  if bench_md.exists():
    m = re.search(r"^Machine: (.*?)\. Date:", bench_md.read_text(), re.M)
    if m:
      return m.group(1)
  if results.exists():
    return runlog.read_results(results)["meta"].get("machine")
  return None


def write_summary(out: pathlib.Path, summary: dict):
  out.mkdir(parents=True, exist_ok=True)
  (out / "summary.json").write_text(json.dumps(summary, indent=2, default=str))
  (out / "summary.md").write_text(summary_markdown(summary) + "\n")


def main(argv, f: flags.FlagValues = flags.FLAGS) -> int:
  cli.no_args(argv)
  args = resolve(f)
  args.out.mkdir(parents=True, exist_ok=True)
  args.work.mkdir(parents=True, exist_ok=True)
  t_all = time.time()
  summary = dict(command=shlex.join([sys.executable, "-m", "maskinpaint_jax.tools.gpu_check",
                                     *sys.argv[1:]]),
                 date=time.strftime("%Y-%m-%d %H:%M"), out=str(args.out), work=str(args.work),
                 args={k: (str(v) if isinstance(v, pathlib.Path) else v)
                       for k, v in vars(args).items()},
                 phase_seconds={}, seconds_total=0.0, errors={})
  phases = {"bench": lambda: run_bench(args), "build": lambda: run_build(args),
            "train": lambda: run_train(args, summary.get("bench")),
            "evaluate": lambda: run_evaluate(args, summary.get("train"))}
  for name in args.phases:
    print(f"\n== {name}", flush=True)
    t0 = time.time()
    try:  # a failed phase is reported and the others still run where they can
      summary[name] = phases[name]()
    except Exception as e:  # pylint: disable=broad-except
      summary["errors"][name] = f"{type(e).__name__}: {e}"
      print(f"{name} failed: {e}", file=sys.stderr, flush=True)
    summary["phase_seconds"][name] = time.time() - t0
    summary["seconds_total"] = time.time() - t_all
    summary["machine"] = machine_line(args.out)
    write_summary(args.out, summary)  # after every phase: a run cut short keeps what it had
  bench = summary.get("bench") or {}
  if any(bench.get(d, {}).get("stopped", "").startswith("probe at") for d in DTYPES):
    summary["errors"].setdefault("bench", "a probe failed for another reason than memory")
    write_summary(args.out, summary)
  print(f"\nwritten: {args.out}/summary.md ({time.time() - t_all:.0f} s)", flush=True)
  return 1 if summary["errors"] else 0


if __name__ == "__main__":
  define_flags()
  cli.run(main)
