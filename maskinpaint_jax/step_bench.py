"""The train step's benchmark of `gpu_run`: JAX in float32 and bfloat16 at a few batches (with
compile times), and the same D + G step in PyTorch (`torch_twin`), eager and through
torch.compile, timed in one alternating run against JAX.

The ratio: JAX step, twin step, JAX step, twin step, ... on the same batch, the same weights
and the same device, each step waited for (block_until_ready / torch.cuda.synchronize); per
pair, JAX seconds / PyTorch seconds; the median over the pairs is `jax_over_torch` (below 1:
the JAX step is faster). Alternating makes both see the same machine state (clocks, other
load), so the ratio is steadier than two separate runs' medians, which are reported too.
Synthetic uint8 batches (`synthetic_batch`): the input pipeline is not timed.
"""

from __future__ import annotations

import statistics
import threading
import time
from typing import Any

import numpy as np

from maskinpaint_jax import torch_twin


# Compilations that outlived their deadline: waited for before the process ends
# (`wait_for_compilations`), as XLA aborts the process when it exits under a running one.
_PENDING: list[threading.Thread] = []


def wait_for_compilations(timeout: float | None = None):
  """Waits for the compilations `compile_concurrently` left running (at most `timeout` s)."""
  end = None if timeout is None else time.time() + timeout
  while _PENDING:
    _PENDING.pop().join(None if end is None else max(0.0, end - time.time()))


# --- timing the JAX step -----------------------------------------------------------------------

def synthetic_batch(batch: int, size: int, seed: int = 0) -> dict[str, np.ndarray]:
  """uint8 {"clean", "masked", "hole"} of the shapes the train step takes (what `bench`
  times: the input pipeline does not limit it)."""
  rng = np.random.default_rng(seed)
  return {"clean": rng.integers(0, 256, (batch, size, size, 3), dtype=np.uint8),
          "masked": rng.integers(0, 256, (batch, size, size, 3), dtype=np.uint8),
          "hole": (rng.random((batch, size, size, 1)) < 0.25).astype(np.uint8)}


def compile_concurrently(jitted, state, batches: dict[int, dict], deadline: float,
                         first_by: float | None = None) -> dict:
  """{batch: (compiled program, seconds) or an exception} of `jitted` lowered at each batch,
  compiled in threads at once (XLA compiles outside the GIL). Programs still compiling at
  `deadline` are left out (their threads finish in the background), except that when none has
  finished by then, the first to finish is waited for until `first_by` (a run needs one)."""
  results: dict[int, Any] = {}

  def work(b):  # pylint: disable=missing-docstring
    t0 = time.perf_counter()
    try:
      results[b] = (jitted.lower(state, batches[b]).compile(), time.perf_counter() - t0)
    except Exception as e:  # pylint: disable=broad-except  (out of memory: that batch fails)
      results[b] = e
  threads = {b: threading.Thread(target=work, args=(b,), daemon=True) for b in batches}
  for t in threads.values():
    t.start()
    _PENDING.append(t)
  for t in threads.values():
    t.join(timeout=max(0.0, deadline - time.time()))
  while not results and first_by is not None and time.time() < first_by:
    time.sleep(0.05)
  return dict(results)


def time_program(compiled, state, batch, steps: int, deadline: float):
  """(state, [seconds of each step]): one untimed warm-up step, then up to `steps` timed ones
  while `deadline` allows (each blocked on until done)."""
  import jax  # pylint: disable=g-import-not-at-top
  state, m = compiled(state, batch)
  jax.block_until_ready((state, m))
  times = []
  while len(times) < steps and time.time() < deadline:
    t0 = time.perf_counter()
    state, m = compiled(state, batch)
    jax.block_until_ready((state, m))
    times.append(time.perf_counter() - t0)
  return state, times


def measure_batches(parts, state, size: int, batches, steps: int, deadline: float,
                    data_sharding, first_by: float | None = None) -> tuple[list[dict], dict, Any]:
  """([row per batch], {batch: compiled program}, state): compile time, median step (s) and
  img/s of the train step at each batch; a batch that fails (out of memory) or has no time
  left has its error in its row instead."""
  import jax  # pylint: disable=g-import-not-at-top
  device = {b: jax.device_put(synthetic_batch(b, size), data_sharding) for b in batches}
  compiled = compile_concurrently(parts.step, state, device, deadline, first_by)
  rows, programs = [], {}
  for b in batches:
    got = compiled.get(b)
    if got is None or isinstance(got, Exception):
      why = "not compiled by the deadline" if got is None else f"{type(got).__name__}: {got}"
      rows.append(dict(batch=b, error=why[:500]))
      continue
    program, compile_s = got
    try:
      state, times = time_program(program, state, device[b], steps,
                                  deadline if programs or first_by is None else first_by)
    except Exception as e:  # pylint: disable=broad-except
      rows.append(dict(batch=b, compile_s=compile_s, error=f"{type(e).__name__}: {e}"[:500]))
      continue
    programs[b] = program
    row = dict(batch=b, compile_s=compile_s, concurrent_compiles=len(batches), steps=len(times))
    if times:
      med = statistics.median(times)
      row.update(step_s=med, img_per_s=b / med)
    rows.append(row)
  return rows, programs, state


def best_batch(rows: list[dict]) -> dict | None:
  """The row of highest img/s, None when no batch was measured."""
  ok = [r for r in rows if r.get("img_per_s")]
  return max(ok, key=lambda r: r["img_per_s"]) if ok else None


def jax_rows(config, dtype: str, batches, steps: int, deadline: float, mesh) -> dict:
  """{"rows": [...], "programs": {batch: compiled}, "state": TrainState} of the train step of
  `config` in `dtype` at each batch (measure_batches: compile seconds, median step
  seconds, img/s; a batch that failed or ran out of time says why)."""
  from maskinpaint_jax import trainer  # pylint: disable=g-import-not-at-top
  config = config.copy_and_resolve_references()
  config.model.dtype = dtype
  parts = trainer.build(config, mesh)
  _, data_sharding = trainer.mesh_shardings(mesh)
  rows, programs, state = measure_batches(parts, parts.init(), config.data.image_size,
                                                  batches, steps, deadline, data_sharding)
  return dict(rows=[dict(r, dtype=dtype) for r in rows], programs=programs, state=state,
              data_sharding=data_sharding)


def profile_step(program, state, batch, log_dir, top: int = 10):
  """(state, top ops) of one more step of `program` traced by jax.profiler into `log_dir`
  (profiling.top_ops of the train step: ms and share per op and op kind), or (state,
  {"error": ...}) where the profiler cannot trace."""
  import jax  # pylint: disable=g-import-not-at-top
  from maskinpaint_jax import profiling  # pylint: disable=g-import-not-at-top
  try:
    with jax.profiler.trace(str(log_dir)):
      state, m = program(state, batch)
      jax.block_until_ready((state, m))
    return state, profiling.top_ops(log_dir, module="train_step", top=top)
  except Exception as e:  # pylint: disable=broad-except  (the profile is a bonus)
    return state, {"error": f"{type(e).__name__}: {e}"[:500]}


def _sync(torch, device: str):
  if device.startswith("cuda"):
    torch.cuda.synchronize()


def alternate(config, program, state, batch: int, mode: str, pairs: int, deadline: float,
              data_sharding) -> dict:
  """The JAX step (`program`, compiled at `batch`, with its `state`) against the twin in
  `mode` ("eager" or "compile"), alternated `pairs` times (fewer, at least one, if `deadline`
  comes first)
  after two warm-up steps of each (the first twin step in "compile" mode compiles: its
  seconds are `torch_first_step_s`). Returns the row: medians, the per-pair ratio's median."""
  import jax  # pylint: disable=g-import-not-at-top
  import torch  # pylint: disable=g-import-not-at-top
  device = "cuda" if torch.cuda.is_available() else "cpu"
  host = synthetic_batch(batch, config.data.image_size, seed=1)
  jax_batch = jax.device_put(host, data_sharding)
  params = jax.device_get((state.g_params, state.d_params, state.spectral_norm))
  twin = torch_twin.from_jax(config, *params, device=device)
  torch_batch = torch_twin.to_device_batch(host, device)
  dtype = torch.bfloat16 if config.model.dtype == "bfloat16" else None
  fns = torch_twin.step_functions("default" if mode == "compile" else None)
  holder = {"state": state}

  def jax_step():
    t0 = time.perf_counter()
    holder["state"], m = program(holder["state"], jax_batch)
    jax.block_until_ready((holder["state"], m))
    return time.perf_counter() - t0

  def torch_step():
    t0 = time.perf_counter()
    torch_twin.train_step(twin, torch_batch, config, dtype, fns)
    _sync(torch, device)
    return time.perf_counter() - t0

  first = torch_step()
  torch_step()
  jax_step()
  jax_step()
  jax_times, torch_times = [], []
  while len(jax_times) < pairs and (not jax_times or time.time() < deadline):
    jax_times.append(jax_step())
    torch_times.append(torch_step())
  row: dict[str, Any] = dict(mode=mode, batch=batch, dtype=config.model.dtype, device=device,
                             torch=torch.__version__, pairs=len(jax_times),
                             torch_first_step_s=first)
  if jax_times:
    ratios = [j / t for j, t in zip(jax_times, torch_times)]
    row.update(jax_step_s=statistics.median(jax_times),
               torch_step_s=statistics.median(torch_times),
               jax_over_torch=statistics.median(ratios),
               jax_img_per_s=batch / statistics.median(jax_times),
               torch_img_per_s=batch / statistics.median(torch_times))
  row["state"] = holder["state"]
  return row


def run(config, mesh, *, dtypes, batches, steps: int, torch_modes, pairs: int,
        deadline: float, reuse: dict | None = None, compare_batch: int | None = None,
        torch_compile_min_s: float = 90.0, profile_dir=None, on_progress=None) -> dict:
  """The whole benchmark until `deadline`, in this order: JAX rows in config.model.dtype at
  each batch (`reuse`: {dtype: jax_rows result} already measured, e.g. the probe's), the twin
  in each of `torch_modes` alternated with that JAX step at `compare_batch` (default: the
  fastest measured batch; with `profile_dir`, that step's top XLA ops first, "profile"), then
  JAX rows in the other `dtypes`. A part is skipped, with why,
  when less time is left than it needs to start: torch.compile `torch_compile_min_s`, another
  dtype 1.2 x the longest compilation of the first (compiling cannot be cut short).
  `on_progress(result)` after each part (to write what there is). Returns {"jax": [rows],
  "torch": [rows], "skipped": [why]}."""
  result: dict[str, Any] = {"jax": [], "torch": [], "skipped": []}
  measured = dict(reuse or {})
  own_dtype = config.model.dtype
  left = lambda: deadline - time.time()

  def measure(dtype, need: float = 0.0):
    if dtype not in measured:
      if left() <= max(need, 0.0):
        result["skipped"].append(f"JAX {dtype}: {max(left(), 0):.0f} s left, compiling needs "
                                 f"about {need:.0f} s")
        return
      measured[dtype] = jax_rows(config, dtype, batches, steps, deadline, mesh)
    result["jax"] += measured[dtype]["rows"]
    if on_progress:
      on_progress(result)

  measure(own_dtype)
  own = measured.get(own_dtype)
  best = best_batch(own["rows"]) if own else None
  batch = compare_batch if own and compare_batch in own["programs"] else (
      best and best["batch"])
  missing = torch_twin.torch_missing()
  state = own and own["state"]
  if profile_dir is not None and batch and left() > 10:
    import jax  # pylint: disable=g-import-not-at-top
    host = synthetic_batch(batch, config.data.image_size, seed=2)
    state, result["profile"] = profile_step(own["programs"][batch], state,
                                            jax.device_put(host, own["data_sharding"]),
                                            profile_dir)
    result["profile"]["batch"] = batch
    if on_progress:
      on_progress(result)
  for mode in torch_modes:
    need = torch_compile_min_s if mode == "compile" else 0.0
    if missing or not batch or left() <= need:
      why = missing or (f"{max(left(), 0):.0f} s left, it needs about {need:.0f} s" if batch
                        else f"no JAX step of {own_dtype} measured")
      result["skipped"].append(f"PyTorch {mode}: {why}")
      continue
    try:
      row = alternate(config, own["programs"][batch], state, batch, mode, pairs, deadline,
                      own["data_sharding"])
      state = row.pop("state")
      result["torch"].append(row)
    except Exception as e:  # pylint: disable=broad-except  (torch.compile may fail alone)
      result["torch"].append(dict(mode=mode, batch=batch, error=f"{type(e).__name__}: {e}"[:800]))
    if on_progress:
      on_progress(result)
  compile_s = max((r.get("compile_s", 0.0) for r in own["rows"]), default=0.0) if own else 0.0
  for dtype in dtypes:
    if dtype != own_dtype:
      measure(dtype, 1.2 * compile_s)
  return result
