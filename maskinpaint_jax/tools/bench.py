r"""Benchmarks: the train step, the input pipeline, the dataset build. Writes docs/benchmarks.md.

  python -m maskinpaint_jax.tools.bench train --config configs/demo.py [--devices 1,2,4,8]
      [--fake_cpu_devices 8] [--steps 20] [--warmup 3] [--per_device_batch N] [--profile_dir DIR]
  python -m maskinpaint_jax.tools.bench input --config configs/demo.py [--steps 50]
  python -m maskinpaint_jax.tools.bench build --src ../shared/data/celeba [--workers 1,2] \
      [--limit 4000]
  python -m maskinpaint_jax.tools.bench attention --config configs/demo.py
  ... [--write docs/benchmarks.md]  (adds or replaces this benchmark's section)

train: median step time and images/s over --steps steps after --warmup, compile time, peak
memory (device allocator on GPU; process RSS on CPU), FLOPs per step from XLA's cost analysis of
the compiled step and model FLOPs utilisation against the device's peak (bf16 dense for bf16,
TF32 for float32 on GPUs; CPU peak only if --peak_tflops is given). Synthetic uint8 batches, so
the input pipeline does not limit it. --devices runs one measurement per device count (fake CPU
devices test the layout; speed is only meaningful on real accelerators). --profile_dir traces one
more step with jax.profiler (after the timed ones, so it changes no number above) and adds its top
XLA ops by time (maskinpaint_jax.tools.profiling).
input: examples/s of the Grain pipeline alone, next to what the train step consumes.
build: images/s per worker of maskinpaint_jax.tools.build over a photo folder.
"""

from __future__ import annotations

import ast
import dataclasses
import json
import os
import pathlib
import resource
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any

from absl import app, flags

from maskinpaint_jax import cli
from maskinpaint_jax import reporting

# Dense peak TFLOP/s by device kind substring: (bfloat16, float32 via TF32).
PEAKS = {"H100": (989.0, 494.0), "H200": (989.0, 494.0), "A100": (312.0, 156.0)}


def peak_flops(dtype: str, peak_tflops: float | None = None):
  import jax  # pylint: disable=g-import-not-at-top
  if peak_tflops:
    return peak_tflops * 1e12
  kind = getattr(jax.devices()[0], "device_kind", "")
  for name, (bf16, f32) in PEAKS.items():
    if name in kind:
      return (bf16 if dtype == "bfloat16" else f32) * 1e12
  return None


def memory_limit_bytes(devices):
  """What the device allocator may use (GPU: `bytes_limit`), or None where it does not say."""
  stats = devices[0].memory_stats() if devices else None
  return stats.get("bytes_limit") if stats else None


def peak_memory_bytes(devices) -> tuple[int, str]:
  stats = [d.memory_stats() for d in devices]
  if stats and stats[0] and "peak_bytes_in_use" in stats[0]:
    return max(s["peak_bytes_in_use"] for s in stats), "device peak"
  rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
  return rss, "process max RSS"


@dataclasses.dataclass
class TrainRunner:
  """A compiled train step with its state and a synthetic batch, ready to be timed."""
  compiled: Any
  state: Any
  batch: Any
  devices: list
  compile_s: float
  flops: float

  def time_steps(self, n: int) -> list[float]:
    import jax  # pylint: disable=g-import-not-at-top
    times = []
    for _ in range(n):
      t = time.perf_counter()
      self.state, m = self.compiled(self.state, self.batch)
      jax.block_until_ready((self.state, m))
      times.append(time.perf_counter() - t)
    return times


def prepare_train(config, n_devices: int, f: flags.FlagValues) -> TrainRunner:
  import jax  # pylint: disable=g-import-not-at-top
  from maskinpaint_jax import step_bench, trainer  # pylint: disable=g-import-not-at-top
  devices = jax.devices()[:n_devices]
  if f.per_device_batch:
    config.batch_size = f.per_device_batch * n_devices
  size, b = config.data.image_size, config.batch_size
  trainer.check_batch_layout(config, n_devices)
  mesh = trainer.make_mesh(devices)
  parts = trainer.build(config, mesh)
  _, data_sharding = trainer.mesh_shardings(mesh)
  host = step_bench.synthetic_batch(b, size)
  batch = {k: jax.device_put(v, data_sharding) for k, v in host.items()}
  state = parts.init()
  t0 = time.perf_counter()
  compiled = parts.step.lower(state, batch).compile()
  compile_s = time.perf_counter() - t0
  cost = compiled.cost_analysis()
  cost = cost[0] if isinstance(cost, (list, tuple)) else cost
  # An SPMD-partitioned step reports the FLOPs of one device's program.
  flops = (float(cost.get("flops", 0.0)) if cost else 0.0) * n_devices
  runner = TrainRunner(compiled, state, batch, devices, compile_s, flops)
  runner.time_steps(f.warmup)
  return runner


def train_row(config, runner: TrainRunner, times: list[float], peak_tflops=None) -> dict:
  med, n = statistics.median(times), len(runner.devices)
  mem, mem_kind = peak_memory_bytes(runner.devices)
  peak = peak_flops(config.model.dtype, peak_tflops)
  return dict(devices=n, batch=config.batch_size, image_size=config.data.image_size,
              dtype=config.model.dtype, compile_s=runner.compile_s, step_s=med,
              step_s_min=min(times), img_per_s=config.batch_size / med,
              flops_per_step=runner.flops, tflops=runner.flops / med / 1e12,
              mfu=(runner.flops / med / n / peak) if peak else None, memory_bytes=mem,
              memory_kind=mem_kind, memory_limit_bytes=memory_limit_bytes(runner.devices))


def profile_step(runner: TrainRunner, log_dir: str, top: int) -> dict:
  """Traces one more step and returns its top ops (profiling.top_ops of the train step), or
  {"error": ...}: a profiler that cannot trace here costs the top ops, not the measurement."""
  import jax  # pylint: disable=g-import-not-at-top
  from maskinpaint_jax import profiling  # pylint: disable=g-import-not-at-top
  try:
    with jax.profiler.trace(log_dir):
      runner.time_steps(1)
    return profiling.top_ops(log_dir, module="train_step", top=top)
  except Exception as e:  # pylint: disable=broad-except
    return {"error": f"{type(e).__name__}: {e}"}


def bench_train(config, n_devices: int, f: flags.FlagValues) -> dict:
  runner = prepare_train(config, n_devices, f)
  row = train_row(config, runner, runner.time_steps(f.steps), f.peak_tflops)
  if f.profile_dir:  # after the row: the trace does not touch the peak memory measured
    row["profile"] = profile_step(runner, os.path.join(f.profile_dir, f"devices{n_devices}"),
                                  f.profile_top)
  return row


def bench_compare(config, key: str, values: list[str], f: flags.FlagValues,
                  rounds: int = 5) -> list[dict]:
  """Before / after in one run: each variant of `key` compiled once, then timed in alternating
  blocks of --steps / rounds steps, so machine noise hits every variant alike."""
  import jax  # pylint: disable=g-import-not-at-top
  variants = []
  for v in values:
    c = config.copy_and_resolve_references()
    c.update_from_flattened_dict({key: _parse_value(v)})
    variants.append((v, c, prepare_train(c, jax.device_count(), f)))
  times = {v: [] for v in values}
  per_round = max(1, f.steps // rounds)
  for _ in range(rounds):
    for v, _, runner in variants:
      times[v] += runner.time_steps(per_round)
  return [dict(variant=f"{key}={v}", **train_row(c, r, times[v], f.peak_tflops))
          for v, c, r in variants]


def _parse_value(text: str):
  """'16' -> 16, 'True' -> True, 's2d' -> 's2d': a --compare value as the config field's type."""
  try:
    return ast.literal_eval(text)
  except (ValueError, SyntaxError):
    return text


def bench_spatial_attention(config, steps: int) -> list[dict]:
  """Forward + backward of the spatial-attention conv (2 -> 1 channels, k x k) at the config's
  full resolution and batch, for each implementation."""
  import jax  # pylint: disable=g-import-not-at-top
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  from maskinpaint_jax.models import attention  # pylint: disable=g-import-not-at-top
  size, k = config.data.image_size, config.model.spatial_attention_kernel
  x = jax.random.normal(jax.random.key(0), (config.batch_size, size, size,
                                            config.model.base_width))
  rows = []
  for impl in ("conv", "s2d"):
    sa = attention.SpatialAttention(k, impl)
    v = sa.init(jax.random.key(1), x)
    grad = jax.jit(jax.value_and_grad(lambda p, x: jnp.sum(sa.apply(p, x) ** 2), argnums=(0, 1)))
    jax.block_until_ready(grad(v, x))
    times = []
    for _ in range(steps):
      t = time.perf_counter()
      jax.block_until_ready(grad(v, x))
      times.append(time.perf_counter() - t)
    rows.append(dict(impl=impl, ms=1000 * statistics.median(times)))
  return rows


def bench_input(config, f: flags.FlagValues) -> dict:
  import grain  # pylint: disable=g-import-not-at-top
  from maskinpaint_jax import input_pipeline  # pylint: disable=g-import-not-at-top
  it, info = input_pipeline.make_train_iterator(config, shard=grain.sharding.ShardOptions(0, 1))
  for _ in range(f.warmup):
    next(it)
  t = time.perf_counter()
  for _ in range(f.steps):
    next(it)
  dt = time.perf_counter() - t
  return dict(examples_per_s=f.steps * config.batch_size / dt, batch=config.batch_size,
              workers=config.data.num_workers, num_examples=info.num_examples)


def bench_build(src: str, workers: list[int], limit) -> list[dict]:
  rows = []
  for w in workers:
    with tempfile.TemporaryDirectory() as tmp:
      cmd = [sys.executable, "-m", "maskinpaint_jax.tools.build", "--src", src, "--data_dir", tmp,
             "--occlusions", "face_mask", "--workers", str(w)]
      if limit:
        cmd += ["--limit", str(limit)]
      subprocess.run(cmd, check=True, capture_output=True, text=True)
      summary = json.loads(next(pathlib.Path(tmp).glob("masked_faces/*/*/build_summary.json"))
                           .read_text())
    rows.append(dict(workers=w, images=sum(summary["examples"].values())
                     + summary["skipped_count"], seconds=summary["seconds"],
                     img_per_s=summary["images_per_second"],
                     img_per_s_per_worker=summary["images_per_second_per_worker"]))
  return rows


def describe(config) -> str:
  m = config.model
  return (f"Config: {config.data.image_size} px, base width {m.base_width}, widths "
          f"x{tuple(m.width_multipliers)}, D {tuple(config.disc.widths)}, dtype {m.dtype}, "
          f"spatial attention impl `{m.spatial_attention_impl}`. Synthetic batches")


def train_markdown(rows, config, steps: int, warmup: int) -> str:
  lines = [f"{describe(config)}; median of {steps} steps after {warmup} warm-up.",
           "",
           "| devices | global batch | step (s, median) | img/s | compile (s) | GFLOP/step (all "
           "devices) | TFLOP/s | MFU | memory |", "|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
  for r in rows:
    mfu = f"{100 * r['mfu']:.1f} %" if r["mfu"] is not None else "n/a (no peak)"
    lines.append(f"| {r['devices']} | {r['batch']} | {r['step_s']:.3f} | {r['img_per_s']:.1f} | "
                 f"{r['compile_s']:.1f} | {r['flops_per_step'] / 1e9:.1f} | {r['tflops']:.3f} | "
                 f"{mfu} | {reporting.fmt_bytes(r['memory_bytes'])} ({r['memory_kind']}) |")
  if len(rows) > 1:
    import jax  # pylint: disable=g-import-not-at-top
    if jax.default_backend() == "cpu":
      lines += ["", "These are fake CPU devices (--xla_force_host_platform_device_count) sharing "
                "the same cores: the table shows that the data-parallel layout compiles and runs "
                "on 1-8 devices with the same FLOPs, not how real devices scale."]
    else:
      base = rows[0]["img_per_s"] / rows[0]["devices"]
      lines += ["", "Scaling efficiency (img/s per device vs. the first row): " + ", ".join(
          f"{r['devices']}: {100 * r['img_per_s'] / r['devices'] / base:.0f} %" for r in rows)]
  for r in rows:
    if r.get("profile"):
      from maskinpaint_jax import profiling  # pylint: disable=g-import-not-at-top
      lines += ["", f"Top ops of one profiled step on {r['devices']} device(s) (jax.profiler):",
                "", r["profile"].get("error") or profiling.markdown(r["profile"])]
  return "\n".join(lines)


def compare_markdown(rows, config, steps: int) -> str:
  lines = [f"{describe(config)}, batch {config.batch_size}. Each variant compiled once, then "
           f"timed in alternating blocks (5 rounds, {steps} steps each in all); medians.",
           "",
           "| variant | step (s, median) | img/s | GFLOP/step |", "|---|---:|---:|---:|"]
  for r in rows:
    lines.append(f"| `{r['variant']}` | {r['step_s']:.3f} | {r['img_per_s']:.1f} | "
                 f"{r['flops_per_step'] / 1e9:.1f} |")
  lines += ["", f"Speed-up of the last over the first: "
            f"{rows[0]['step_s'] / rows[-1]['step_s']:.2f}x"]
  return "\n".join(lines)


def define_flags(fv: flags.FlagValues = flags.FLAGS):
  """Command-line flags (only when run as a program)."""
  cli.define_config_flag(required=False, fv=fv)
  flags.DEFINE_integer("steps", 20, "Timed steps (train, input).", flag_values=fv)
  flags.DEFINE_integer("warmup", 3, "Untimed steps after compilation.", flag_values=fv)
  flags.DEFINE_string("devices", None, "Comma-separated device counts to scale over.",
                      flag_values=fv)
  flags.DEFINE_integer("fake_cpu_devices", None, "Expose N fake CPU devices (layout tests).",
                       flag_values=fv)
  flags.DEFINE_integer("per_device_batch", None,
                       "Per-device batch (default: config.batch_size / devices).", flag_values=fv)
  flags.DEFINE_float("peak_tflops", None, "Device peak TFLOP/s for MFU (default: table).",
                     flag_values=fv)
  flags.DEFINE_string("write", None, "Markdown file to add this benchmark's section to.",
                      flag_values=fv)
  flags.DEFINE_string("src", None, "Photo folder (build).", flag_values=fv)
  flags.DEFINE_string("workers", "1,2", "Worker counts (build).", flag_values=fv)
  flags.DEFINE_integer("limit", None, "Photos to use (build).", flag_values=fv)
  flags.DEFINE_string("label", None, "Section title suffix in the markdown file.", flag_values=fv)
  flags.DEFINE_string("profile_dir", None, "train: trace one more step with jax.profiler "
                      "into this folder and report its top ops.", flag_values=fv)
  flags.DEFINE_integer("profile_top", 15, "train: ops listed from the profiled step.",
                       flag_values=fv)
  flags.DEFINE_string("compare", None, "train: key=v1,v2 (e.g. model.spatial_attention_impl="
                      "conv,s2d): the variants timed in alternation in one run.", flag_values=fv)


def section_build(f: flags.FlagValues) -> tuple[str, str]:
  """(title, markdown body) of `bench build`."""
  if not f.src:
    raise app.UsageError("bench build needs --src", exitcode=2)
  rows = bench_build(f.src, [int(w) for w in f.workers.split(",")], f.limit)
  body = "\n".join(["| workers | photos | seconds | img/s | img/s per worker |",
                    "|---:|---:|---:|---:|---:|"] +
                   [f"| {r['workers']} | {r['images']} | {r['seconds']:.1f} | "
                    f"{r['img_per_s']:.1f} | {r['img_per_s_per_worker']:.1f} |" for r in rows])
  return (f"Dataset build: {pathlib.Path(f.src).name}, {rows[0]['images']} photos, "
          "face_mask, 128 px"), body


def section_train(config, f: flags.FlagValues) -> tuple[str, str]:
  import jax  # pylint: disable=g-import-not-at-top
  if f.compare:
    key, values = f.compare.split("=", 1)
    rows = bench_compare(config, key, values.split(","), f)
    for r in rows:
      print(json.dumps(r), flush=True)
    return f"Train step: {f.label or key}", compare_markdown(rows, config, f.steps)
  counts = [int(c) for c in f.devices.split(",")] if f.devices else [jax.device_count()]
  rows = []
  for n in counts:
    rows.append(bench_train(config.copy_and_resolve_references(), n, f))
    print(json.dumps(rows[-1]), flush=True)
  body = train_markdown(rows, config, f.steps, f.warmup)
  return f"Train step: {f.label or _config_name(f)}", body


def section_attention(config, f: flags.FlagValues) -> tuple[str, str]:
  conv, s2d = bench_spatial_attention(config, f.steps)
  c, k = config, config.model.spatial_attention_kernel
  body = "\n".join(
      [f"Spatial attention ({k}x{k}, 2 -> 1 channels) on a {c.batch_size} x "
       f"{c.data.image_size} x {c.data.image_size} x {c.model.base_width} map, forward + "
       f"backward, median of {f.steps}:", "", "| impl | ms |", "|---|---:|"] +
      [f"| {r['impl']} | {r['ms']:.1f} |" for r in (conv, s2d)] +
      ["", f"s2d is {conv['ms'] / s2d['ms']:.1f}x faster than conv (conv ms / s2d ms)"])
  return f"Spatial attention conv: {f.label or _config_name(f)}", body


def section_input(config, f: flags.FlagValues) -> tuple[str, str]:
  import jax  # pylint: disable=g-import-not-at-top
  r = bench_input(config, f)
  step = bench_train(config.copy_and_resolve_references(), jax.device_count(), f)
  body = (f"Grain pipeline alone: **{r['examples_per_s']:.0f} examples/s** (batch "
          f"{r['batch']}, {r['workers']} worker process(es), {r['num_examples']} examples, "
          f"decoding 3 PNGs and flipping per example). The train step of the same config "
          f"consumes **{step['img_per_s']:.1f} img/s** on {step['devices']} device(s): the "
          f"pipeline has {r['examples_per_s'] / step['img_per_s']:.0f}x headroom.")
  return f"Input pipeline: {f.label or _config_name(f)}", body


SECTIONS = {"train": section_train, "input": section_input, "attention": section_attention}


def main(argv, f: flags.FlagValues = flags.FLAGS):
  if len(argv) != 1 or argv[0] not in ("build", *SECTIONS):
    raise app.UsageError("name one benchmark: train, input, build or attention", exitcode=2)
  what = argv[0]
  if f.fake_cpu_devices:
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") +
                               f" --xla_force_host_platform_device_count={f.fake_cpu_devices}")
  command = "python -m maskinpaint_jax.tools.bench " + shlex.join(sys.argv[1:])
  if what == "build":
    title, body = section_build(f)
  elif f.config is None:
    raise app.UsageError(f"bench {what} needs --config", exitcode=2)
  else:
    title, body = SECTIONS[what](f.config, f)
  print(f"\n## {title}\n\n{body}\n")
  if f.write:
    reporting.write_section(f.write, title, body, command)
    print(f"written to {f.write}")


def _config_name(f: flags.FlagValues) -> str:
  """The --config file's stem: the default section label."""
  path = f["config"].config_filename if "config" in f else "config"
  return pathlib.Path(path).stem


if __name__ == "__main__":
  define_flags()
  cli.run(main)
