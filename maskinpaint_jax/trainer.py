"""The training loop around the pure step (train_step.py): mesh and sharding, data, resume,
logging, validation, checkpoints, signals.

`train_and_evaluate(config, workdir)` trains until config's step budget, resuming from the newest
checkpoint in `workdir`. SIGTERM or Ctrl-C saves a checkpoint and exits; a non-finite loss stops
the run before any checkpoint with it is written. Process 0 holds the workdir for the whole run
(workdir.hold): a second run on it stops before compiling. Data-parallel over every device of every
process: parameters replicated, the global batch split along a 1-D mesh axis "data".
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import json
import math
import pathlib
import signal
import sys
import time
from typing import Any

import jax
import ml_collections
import numpy as np
from jax.experimental import multihost_utils

from maskinpaint_jax import (checkpoint, errors, evaluators, images, input_pipeline, masks,
                             models, runlog)
from maskinpaint_jax import workdir as workdir_lib
from maskinpaint_jax.train_step import (TrainState, from_items, init_state, make_optimizers,
                                        perceptual_variables, to_items, train_step)

# Fields that must match a checkpoint's config to resume from it (Grain's saved iterator state
# holds one position per worker process: it loads only into as many workers).
RESUME_MUST_MATCH = ("model", "disc", "data.image_size", "data.num_workers", "batch_size")



# --- host-side plumbing ----------------------------------------------------------------------

def is_main() -> bool:
  return jax.process_index() == 0


def say(text: str):
  """Prints on process 0 only (every process runs the same loop)."""
  if is_main():
    print(text, flush=True)


def make_mesh(devices=None) -> jax.sharding.Mesh:
  """A 1-D data-parallel mesh over `devices` (default: every device of every process)."""
  devices = devices if devices is not None else jax.devices()
  return jax.make_mesh((len(devices),), ("data",), axis_types=(jax.sharding.AxisType.Auto,),
                       devices=devices)


def mesh_shardings(mesh):
  """(replicated, batch-split) shardings on `mesh`."""
  p = jax.sharding.PartitionSpec
  return (jax.sharding.NamedSharding(mesh, p()), jax.sharding.NamedSharding(mesh, p("data")))


@dataclasses.dataclass(frozen=True)
class Parts:
  g: Any
  init: Any                       # () -> TrainState, replicated on the mesh
  warm_start: Any                 # (state, g_params) -> state with G (and its optimiser) reset
  step: Any                       # jitted train_step(state, batch) on the mesh
  state_sharding: Any


def build(config, mesh) -> Parts:
  """Models, optimisers and the jitted init / train step of `config` on `mesh`."""
  replicated, data_sharding = mesh_shardings(mesh)
  g, d = models.build(config.model), models.build_discriminator(config)
  g_tx, d_tx = make_optimizers(config)
  # Initialised replicated on every device; rbg keys compile the initialisers ~3x faster.
  init = jax.jit(lambda: init_state(config, g, d, g_tx, d_tx,
                                    jax.random.key(config.seed, impl="rbg")),
                 out_shardings=replicated)
  state_sharding = jax.tree.map(lambda _: replicated, jax.eval_shape(init))
  warm_start = jax.jit(lambda state, params: state.replace(g_params=params,
                                                           g_opt=g_tx.init(params)),
                       out_shardings=state_sharding)
  # The perceptual network's weights are constants of the compiled step (never trained).
  step = jax.jit(functools.partial(train_step, g=g, d=d, g_tx=g_tx, d_tx=d_tx, config=config,
                                   perceptual=perceptual_variables(config)),
                 in_shardings=(state_sharding, data_sharding),
                 out_shardings=(state_sharding, replicated), donate_argnums=(0,))
  return Parts(g, init, warm_start, step, state_sharding)


class StopSignal:
  """Remembers SIGTERM / SIGINT so the loop can save and stop at a step boundary. A context
  manager: the previous handlers are back after the run (ablations runs several in turn)."""

  def __enter__(self):
    self.signum = None
    self._saved = {s: signal.signal(s, self._handle) for s in (signal.SIGTERM, signal.SIGINT)}
    return self

  def __exit__(self, *exc):
    for s, handler in self._saved.items():
      signal.signal(s, handler)

  def _handle(self, signum, frame):
    del frame
    if self.signum is not None and signum == signal.SIGINT:
      raise KeyboardInterrupt  # a second Ctrl-C: stop now
    self.signum = signum
    say(f"\n{signal.Signals(signum).name}: saving a checkpoint at the end of this step "
        "(Ctrl-C again to abort without saving)")

  def agreed(self, can_vote: bool) -> bool:
    """Whether every process stops after this step. Each process must take part in the same
    collective, so several vote at log steps only (`can_vote`): a signal that reached some
    processes first cannot make them wait on the others."""
    if jax.process_count() == 1:
      return self.signum is not None
    return can_vote and bool(
        multihost_utils.process_allgather(np.array(self.signum is not None)).any())


def num_train_steps(config, num_examples: int) -> int:
  if config.num_train_steps > 0:
    return config.num_train_steps
  return math.ceil(config.num_epochs * num_examples / config.batch_size)


def check_batch_layout(config, num_devices: int | None = None):
  """Clear errors before any compilation: the global batch splits over devices and processes."""
  input_pipeline.check_split(config.batch_size, num_devices or jax.device_count(), "devices")
  input_pipeline.check_split(config.batch_size, jax.process_count(), "processes")


def validation_batch(config) -> tuple[str, dict[str, np.ndarray]]:
  """(split, fixed batch) of config.data.validation_split. A missing or empty split is an error
  before compiling, never a silent switch: validating on another split is a config choice."""
  split = config.data.validation_split
  try:
    batch = input_pipeline.fixed_batch(config.data.data_dir, config.data.train_datasets,
                                       config.data.image_size, split, config.num_eval_images)
  except (KeyError, ValueError) as e:
    raise errors.MismatchError(
        f"no validation data: split {split!r} of {config.data.train_datasets} in "
        f"{config.data.data_dir} is missing or empty ({str(e).splitlines()[0][:200]}). Rebuild "
        "the datasets with photos in every split (python -m maskinpaint_jax.tools.build; its "
        "--limit draw "
        "keeps every split), or name another split on purpose, e.g. "
        "--config.data.validation_split=train (which then measures fit, not generalisation)."
    ) from None
  return split, batch


def initial_generator(config, like):
  """G's parameters of config.init_generator (an exported model folder or a workdir), checked
  against the architecture of `config` (`like`: this run's freshly initialised G)."""
  source_config, params, _ = checkpoint.load_generator(config.init_generator)
  got = jax.tree.map(lambda a: tuple(a.shape), params)
  want = jax.tree.map(lambda a: tuple(a.shape), like)
  if got != want:  # the shapes fix the architecture (widths, levels, MMRM, non-blind input)
    raise errors.MismatchError(
        f"init_generator {config.init_generator} is another generator than this config's "
        f"(its model config: {source_config.model.to_dict()}); give a model of the same "
        "architecture, or set the --config.model fields to its values")
  return jax.tree.map(jax.numpy.asarray, params)


def check_resumable(saved: ml_collections.ConfigDict, config: ml_collections.ConfigDict):
  def get(c, dotted):
    for part in dotted.split("."):
      c = c[part]
    return c.to_dict() if isinstance(c, ml_collections.ConfigDict) else c
  norm = lambda v: json.loads(json.dumps(v))  # tuples vs lists
  bad = [k for k in RESUME_MUST_MATCH if norm(get(saved, k)) != norm(get(config, k))]
  if bad:
    raise errors.MismatchError(f"cannot resume: the checkpoint was trained with different {bad}. "
                     "Use a new --workdir, or the checkpoint's config.")


class Throughput:
  """Training steps per second between calls; `reset` leaves validation and saving out."""

  def __init__(self, step: int):
    self.reset(step)

  def reset(self, step: int):
    self.step, self.time = step, time.time()

  def rate(self, step: int) -> float:
    rate = (step - self.step) / max(time.time() - self.time, 1e-9)
    self.reset(step)
    return rate


def _fmt_time(seconds: float) -> str:
  seconds = int(seconds)
  return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m" if seconds >= 3600 else \
      f"{seconds // 60}m{seconds % 60:02d}s"


def sample_grid(batch, out8, count: int = 8) -> np.ndarray:
  """clean | masked | inpainted, one example per row."""
  rows = [[batch["clean"][i], batch["masked"][i], np.asarray(out8[i])]
          for i in range(min(count, len(batch["clean"])))]
  return images.make_grid(rows)


# --- the loop's steps --------------------------------------------------------------------------

def write_config(workdir: pathlib.Path, config):
  if is_main():
    (workdir / "config.json").write_text(config.to_json_best_effort(indent=2))


def load_or_init(config, parts: Parts, mngr, data_iter) -> tuple[TrainState, int]:
  """(state, step) of the newest checkpoint in `mngr`, with the data iterator's position set in
  place; else a fresh state at step 0."""
  step = mngr.latest_step()
  if step is None:
    state = parts.init()
    if config.get("init_generator"):
      state = parts.warm_start(state, initial_generator(config, state.g_params))
      say(f"generator initialised from {config.init_generator}")
    return state, 0
  check_resumable(checkpoint.load_config(mngr, step), config)
  abstract = jax.tree.map(lambda s, sh: jax.ShapeDtypeStruct(s.shape, s.dtype, sharding=sh),
                          jax.eval_shape(parts.init), parts.state_sharding)
  items = checkpoint.load_train_items(mngr, step, to_items(abstract), data_iter)
  say(f"resumed from step {step} ({mngr.directory})")
  return from_items(items), step


def device_batches(data_iter, mesh):
  """This process's uint8 batches -> global arrays split along the mesh's "data" axis. Pulls
  one batch per step, so the iterator's saved position is always the next step's batch."""
  _, data_sharding = mesh_shardings(mesh)
  for local in data_iter:
    yield {k: jax.make_array_from_process_local_data(data_sharding, v) for k, v in local.items()}


def compile_step(parts: Parts, state, batch):
  t0 = time.time()
  compiled = parts.step.lower(state, batch).compile()
  say(f"compiled the train step in {time.time() - t0:.1f} s")
  return compiled


def log_train(step: int, total_steps: int, step_metrics, rate: float, epoch: float, config,
              writer: runlog.MetricsWriter) -> dict[str, float]:
  """Losses (host values) and throughput to the writer and (process 0) the console."""
  last = {k: float(v) for k, v in step_metrics.items()}
  last.update(steps_per_s=rate, img_per_s=rate * config.batch_size, epoch=epoch)
  writer.scalars(step, last)
  eta = (total_steps - step) / max(rate, 1e-9)
  say(f"step {step}/{total_steps} | {last['img_per_s']:.1f} img/s ({rate:.2f} steps/s) | "
      f"ETA {_fmt_time(eta)} | d {last['d_loss']:.3f} g {last['g_loss']:.4f} (adv "
      f"{last['g_adv']:.3f} l1 {last['g_l1']:.4f} tv {last['g_tv']:.4f})")
  return last


# The console's words for the validation metrics it knows; any other is shown by its key.
SUMMARY = {"val_psnr": "PSNR {:.2f} dB", "val_psnr_hole": "hole PSNR {:.2f} dB",
           "val_psnr_composite": "composite PSNR {:.2f} dB", "val_ssim": "SSIM {:.2%}",
           "val_lpips": "composite LPIPS-Alex {:.3f}", "val_lpips_vgg": "LPIPS-VGG {:.3f}"}


def validation_summary(val: dict[str, float]) -> str:
  """One console line of a validation row's overall means (the per-style ones stay in
  metrics.jsonl)."""
  styles = tuple(f"_{t}" for t in masks.MASK_TYPES)
  keys = [k for k in SUMMARY if k in val] + [k for k in val if k not in SUMMARY
                                               and not k.endswith(styles)]
  return ", ".join(SUMMARY[k].format(val[k]) if k in SUMMARY
                   else f"{k[len('val_'):]} {val[k]:.4g}" for k in keys)


def make_validator(g, listed, split: str, batch, writer: runlog.MetricsWriter,
                   workdir: pathlib.Path):
  """validate(step, g_params) -> the val_* metrics of `listed` (config.evals.validation) of G on
  the fixed batch, also logged, with the picture grid written (process 0)."""
  device_fn = jax.jit(functools.partial(evaluators.validation_device, g, listed))
  # On the devices once, not at every validation (ids are strings: no jit input).
  inputs = jax.device_put({k: batch[k] for k in ("clean", "masked", "hole")})

  def validate(step: int, g_params) -> dict[str, float]:
    device, out8, comp8 = jax.device_get(device_fn(g_params, inputs))
    val = evaluators.validation_row(listed, {"raw": out8, "composite": comp8}, batch, device)
    writer.scalars(step, val)
    if is_main():
      grid = sample_grid(batch, out8)
      writer.image(step, f"samples/{split}", grid)
      images.save_png(workdir / "samples" / f"step_{step:07d}.png", grid)
    say(f"  validation ({split}, {len(batch['clean'])} images): {validation_summary(val)}")
    return val

  return validate


def exit_if_nonfinite(bad: int, step: int, mngr, workdir: pathlib.Path):
  """Raises errors.NonFiniteLossError (a program exits with status 3), saving nothing, if any
  update so far was skipped as non-finite: the checkpoints on disk stay the last good ones.
  `bad`: the state's count of skipped steps."""
  if not bad:
    return
  mngr.wait_until_finished()
  good = mngr.latest_step()
  where = (f"the last good checkpoint is step {good} in {checkpoint.checkpoint_dir(workdir)}"
           if good is not None else "no checkpoint was written yet")
  raise errors.NonFiniteLossError(
      f"non-finite loss or gradient in {bad} step(s) before step {step} (those updates were "
      f"skipped): training stopped without saving; {where}. Lower the learning rate or check "
      "the data, then resume.")


def due(step: int, total_steps: int, every: int) -> bool:
  return step % every == 0 or step == total_steps


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str) -> dict[str, Any]:
  """Trains until config's step budget, resuming from `workdir`. Returns the last metrics."""
  workdir = pathlib.Path(workdir).expanduser().absolute()
  check_batch_layout(config)
  val_split, val_batch = validation_batch(config)  # before any file is written
  val_metrics = evaluators.names(config, "validation")
  last = {}
  with contextlib.ExitStack() as cleanup:  # also on an error or a second Ctrl-C
    if is_main():  # one writer per workdir, before anything is written or compiled
      workdir = workdir_lib.prepare(workdir)
      cleanup.enter_context(workdir_lib.hold(workdir))
    mesh = make_mesh()
    data_iter, info = input_pipeline.make_train_iterator(config)
    total_steps = num_train_steps(config, info.num_examples)
    parts = build(config, mesh)
    mngr = cleanup.enter_context(checkpoint.manager(workdir, keep=config.keep_checkpoints))
    stop = cleanup.enter_context(StopSignal())
    state, start_step = load_or_init(config, parts, mngr, data_iter)
    # Written after the resume check: a refused config changes nothing in the workdir.
    write_config(workdir, config)
    writer = cleanup.enter_context(runlog.MetricsWriter(workdir, enabled=is_main()))
    validate = make_validator(parts.g, val_metrics, val_split, val_batch, writer, workdir)
    say(f"training {info.names} ({info.num_examples} examples), global batch "
        f"{config.batch_size} on {jax.device_count()} device(s) / {jax.process_count()} "
        f"process(es), steps {start_step} -> {total_steps} "
        f"({total_steps * config.batch_size / info.num_examples:.1f} epochs); validation "
        f"split {val_split!r}")
    batches, step, stopping = device_batches(data_iter, mesh), start_step, False
    while step < total_steps and not stopping:
      batch = next(batches)
      if step == start_step:
        step_fn = compile_step(parts, state, batch)
        meter = Throughput(step)
      state, step_metrics = step_fn(state, batch)
      step += 1
      at_log, at_eval, at_ckpt = (due(step, total_steps, every) for every in (
          config.log_every_steps, config.eval_every_steps, config.checkpoint_every_steps))
      stopping = stop.agreed(can_vote=at_log)
      if at_log or at_ckpt or stopping:  # one device-to-host copy, only where something is written
        nonfinite, host_metrics = jax.device_get((state.nonfinite, step_metrics if at_log else {}))
        exit_if_nonfinite(int(nonfinite), step, mngr, workdir)
      if at_log:
        epoch = step * config.batch_size / info.num_examples
        last.update(log_train(step, total_steps, host_metrics, meter.rate(step), epoch, config,
                              writer))
      if at_eval:
        last.update(validate(step, state.g_params))
      if at_ckpt or stopping:
        checkpoint.save(mngr, step, to_items(state), data_iter, config)
      if at_eval or at_ckpt:
        meter.reset(step)  # throughput counts training steps only
  return finish(last, step, start_step, total_steps, stop.signum if stopping else None)


def finish(last: dict[str, Any], step: int, start_step: int, total_steps: int, signum):
  """The run's last metrics; a stop by Ctrl-C raises errors.TrainingInterrupted (a program exits
  with status 130; SIGTERM: a normal return, which callers tell from a finished run by
  last["step"])."""
  last["step"] = step
  if signum is not None or step < total_steps:
    say(f"stopped at step {step}; checkpoint saved. Run the same command to resume.")
  elif start_step >= total_steps:
    say(f"nothing to do: the checkpoint is already at step {start_step} of {total_steps}")
  if signum == signal.SIGINT:
    raise errors.TrainingInterrupted(f"interrupted at step {step}; checkpoint saved")
  return last


