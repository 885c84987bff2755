r"""Trains the masked-face inpainting GAN (paper section II) on the datasets of data_prep.build.

  python -m maskinpaint_jax.train --config configs/default.py --workdir runs/paper \
      [--config.batch_size=1504] [--coordinator_address=host:port --num_processes=N --process_id=i]

Running the same command again resumes from the newest checkpoint in --workdir. SIGTERM or Ctrl-C
saves a checkpoint and exits; a non-finite loss stops the run before any checkpoint with it is
written. Data-parallel over every device of every process: parameters replicated, the global
batch split along a 1-D mesh axis "data".
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

import flax
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
from absl import flags
from jax.experimental import multihost_utils

from data_prep import images as image_utils
from data_prep import masks as data_masks
from maskinpaint_jax import (checkpoint, cli, distributed, inference, input_pipeline, losses,
                             metrics, models)

# Fields that must match a checkpoint's config to resume from it (Grain's saved iterator state
# holds one position per worker process: it loads only into as many workers).
RESUME_MUST_MATCH = ("model", "disc", "data.image_size", "data.num_workers", "batch_size")


@flax.struct.dataclass
class TrainState:
  step: jax.Array
  g_params: Any
  d_params: Any
  spectral_norm: Any  # D's power-iteration state (u, sigma): its "spectral_norm" collection
  g_opt: Any
  d_opt: Any
  nonfinite: jax.Array  # steps whose update was skipped because a loss or gradient was not finite


def to_items(state: TrainState) -> dict[str, Any]:
  """TrainState -> the checkpoint's separately loadable items (see checkpoint.py)."""
  return dict(generator=state.g_params,
              discriminator={"params": state.d_params, "spectral_norm": state.spectral_norm},
              optimizer={"g": state.g_opt, "d": state.d_opt},
              meta={"step": state.step, "nonfinite": state.nonfinite})


def from_items(items: dict[str, Any]) -> TrainState:
  return TrainState(step=items["meta"]["step"], g_params=items["generator"],
                    d_params=items["discriminator"]["params"],
                    spectral_norm=items["discriminator"]["spectral_norm"],
                    g_opt=items["optimizer"]["g"], d_opt=items["optimizer"]["d"],
                    nonfinite=items["meta"]["nonfinite"])


def make_optimizers(config):
  """Adam for G and D (Table I: lr 2e-4; betas 0.5 / 0.999 as pix2pix, the paper gives none)."""
  adam = lambda: optax.adam(config.optim.learning_rate, b1=config.optim.b1, b2=config.optim.b2)
  return adam(), adam()


def init_state(config, g, d, g_tx, d_tx, rng) -> TrainState:
  image, hole = (jnp.zeros(x.shape, x.dtype)
                 for x in models.example_inputs(config.data.image_size))
  g_rng, d_rng = jax.random.split(rng)
  g_params = g.init(g_rng, image, hole)["params"]
  d_vars = d.init(d_rng, image)
  return TrainState(step=jnp.zeros((), jnp.int32), g_params=g_params, d_params=d_vars["params"],
                    spectral_norm=d_vars["spectral_norm"], g_opt=g_tx.init(g_params),
                    d_opt=d_tx.init(d_vars["params"]), nonfinite=jnp.zeros((), jnp.int32))


def train_step(state: TrainState, batch, *, g, d, g_tx, d_tx, config):
  """One D update (eq. 5, hinge) then one G update (eq. 4) on a global batch.

  G's forward pass runs once: D trains on its (stopped) output, and G's gradient is pulled back
  through the same forward pass (jax.vjp) from the loss against the *updated* D, exactly as a
  second forward pass would give. Nothing is random (no dropout or noise), so the step takes no
  key. If any loss or gradient is not finite, the update is skipped and counted in `nonfinite`.
  """
  clean = inference.to_unit_range(batch["clean"])
  masked = inference.to_unit_range(batch["masked"])
  hole = batch["hole"].astype(jnp.float32)

  output, g_vjp = jax.vjp(lambda p: g.apply({"params": p}, masked, hole), state.g_params)

  def d_loss_fn(d_params):
    real_logits, new_vars = d.apply({"params": d_params, "spectral_norm": state.spectral_norm},
                                    clean, update_stats=True, mutable=["spectral_norm"])
    fake_logits = d.apply({"params": d_params, "spectral_norm": new_vars["spectral_norm"]},
                          jax.lax.stop_gradient(output))
    loss = losses.discriminator_hinge_loss(real_logits, fake_logits)
    return loss, (new_vars["spectral_norm"], real_logits, fake_logits)

  (d_loss, (spectral_norm, real_logits, fake_logits)), d_grads = jax.value_and_grad(
      d_loss_fn, has_aux=True)(state.d_params)
  d_updates, d_opt = d_tx.update(d_grads, state.d_opt, state.d_params)
  d_params = optax.apply_updates(state.d_params, d_updates)

  def g_loss_fn(out):
    logits = d.apply({"params": d_params, "spectral_norm": spectral_norm}, out)
    return losses.generator_loss(out, clean, logits, config.loss, hole)

  (g_loss, terms), d_out = jax.value_and_grad(g_loss_fn, has_aux=True)(output)
  (g_grads,) = g_vjp(d_out)
  g_updates, g_opt = g_tx.update(g_grads, state.g_opt, state.g_params)
  g_params = optax.apply_updates(state.g_params, g_updates)

  g_grad_norm, d_grad_norm = optax.tree.norm(g_grads), optax.tree.norm(d_grads)
  finite = jnp.all(jnp.isfinite(jnp.stack([g_loss, d_loss, g_grad_norm, d_grad_norm])))
  keep = lambda new, old: jax.tree.map(lambda n, o: jnp.where(finite, n, o), new, old)
  new_state = TrainState(
      step=state.step + 1,
      g_params=keep(g_params, state.g_params), d_params=keep(d_params, state.d_params),
      spectral_norm=keep(spectral_norm, state.spectral_norm), g_opt=keep(g_opt, state.g_opt),
      d_opt=keep(d_opt, state.d_opt),
      nonfinite=state.nonfinite + (1 - finite.astype(jnp.int32)))
  step_metrics = dict(d_loss=d_loss, g_loss=g_loss, g_adv=terms["adv"], g_l1=terms["l1"],
                      g_tv=terms["tv"], d_real=jnp.mean(real_logits),
                      d_fake=jnp.mean(fake_logits), g_grad_norm=g_grad_norm,
                      d_grad_norm=d_grad_norm, finite=finite.astype(jnp.float32))
  return new_state, step_metrics


def validation_metrics(g, g_params, batch):
  """PSNR (dB) / SSIM of the raw output and the composite, and PSNR in the hole."""
  out, comp = inference.fill(g, g_params, batch["masked"], batch["hole"])
  clean = batch["clean"]
  out8, comp8 = metrics.to_uint8(out), metrics.to_uint8(comp)
  hole_psnr = metrics.psnr(out8, clean, batch["hole"])
  return dict(psnr=jnp.mean(metrics.psnr(out8, clean)), ssim=jnp.mean(metrics.ssim(out8, clean)),
              psnr_composite=jnp.mean(metrics.psnr(comp8, clean)),
              psnr_hole=jnp.mean(hole_psnr)), hole_psnr, out8


def per_style(values: np.ndarray, mask_type: np.ndarray) -> dict[str, float]:
  """Mean of per-image values for each mask style present (the learning curve per style)."""
  names = data_masks.MASK_TYPES
  return {names[t]: float(np.mean(values[mask_type == t])) for t in np.unique(mask_type)}


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
  step: Any                       # jitted train_step(state, batch) on the mesh
  state_sharding: Any


def build(config, mesh) -> Parts:
  """Models, optimisers and the jitted init / train step of `config` on `mesh`."""
  replicated, data_sharding = mesh_shardings(mesh)
  g, d = models.make_generator(config.model), models.make_discriminator(config)
  g_tx, d_tx = make_optimizers(config)
  # Initialised replicated on every device; rbg keys compile the initialisers ~3x faster.
  init = jax.jit(lambda: init_state(config, g, d, g_tx, d_tx,
                                    jax.random.key(config.seed, impl="rbg")),
                 out_shardings=replicated)
  state_sharding = jax.tree.map(lambda _: replicated, jax.eval_shape(init))
  step = jax.jit(functools.partial(train_step, g=g, d=d, g_tx=g_tx, d_tx=d_tx, config=config),
                 in_shardings=(state_sharding, data_sharding),
                 out_shardings=(state_sharding, replicated), donate_argnums=(0,))
  return Parts(g, init, step, state_sharding)


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
    raise ValueError(
        f"no validation data: split {split!r} of {config.data.train_datasets} in "
        f"{config.data.data_dir} is missing or empty ({str(e).splitlines()[0][:200]}). Rebuild "
        "the datasets with photos in every split (python -m data_prep.build; its --limit draw "
        "keeps every split), or name another split on purpose, e.g. "
        "--config.data.validation_split=train (which then measures fit, not generalisation)."
    ) from None
  return split, batch


def check_resumable(saved: ml_collections.ConfigDict, config: ml_collections.ConfigDict):
  def get(c, dotted):
    for part in dotted.split("."):
      c = c[part]
    return c.to_dict() if isinstance(c, ml_collections.ConfigDict) else c
  norm = lambda v: json.loads(json.dumps(v))  # tuples vs lists
  bad = [k for k in RESUME_MUST_MATCH if norm(get(saved, k)) != norm(get(config, k))]
  if bad:
    raise ValueError(f"cannot resume: the checkpoint was trained with different {bad}. "
                     "Use a new --workdir, or the checkpoint's config.")


class Writer:
  """metrics.jsonl and TensorBoard, on process 0; a context manager that closes both."""

  def __init__(self, workdir: pathlib.Path):
    self.enabled = is_main()
    if self.enabled:
      from tensorboardX import SummaryWriter  # pylint: disable=g-import-not-at-top
      self.tb = SummaryWriter(str(workdir / "tensorboard"))
      self.jsonl = (workdir / "metrics.jsonl").open("a")

  def __enter__(self):
    return self

  def __exit__(self, *exc):
    if self.enabled:
      self.tb.close()
      self.jsonl.close()

  def scalars(self, step: int, values: dict[str, float]):
    if not self.enabled:
      return
    for k, v in values.items():
      self.tb.add_scalar(k, v, step)
    self.jsonl.write(json.dumps({"step": step, **{k: float(v) for k, v in values.items()}}) + "\n")
    self.jsonl.flush()

  def image(self, step: int, name: str, grid: np.ndarray):
    if self.enabled:
      self.tb.add_image(name, grid, step, dataformats="HWC")


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
  return image_utils.make_grid(rows)


# --- the loop's steps --------------------------------------------------------------------------

def write_config(workdir: pathlib.Path, config):
  if is_main():
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "config.json").write_text(config.to_json_best_effort(indent=2))


def load_or_init(config, parts: Parts, mngr, data_iter) -> tuple[TrainState, int]:
  """(state, step) of the newest checkpoint in `mngr`, with the data iterator's position set in
  place; else a fresh state at step 0."""
  step = mngr.latest_step()
  if step is None:
    return parts.init(), 0
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
              writer: Writer) -> dict[str, float]:
  """Losses and throughput to the writer and (process 0) the console."""
  last = {k: float(v) for k, v in jax.device_get(step_metrics).items()}
  last.update(steps_per_s=rate, img_per_s=rate * config.batch_size, epoch=epoch)
  writer.scalars(step, last)
  eta = (total_steps - step) / max(rate, 1e-9)
  say(f"step {step}/{total_steps} | {last['img_per_s']:.1f} img/s ({rate:.2f} steps/s) | "
      f"ETA {_fmt_time(eta)} | d {last['d_loss']:.3f} g {last['g_loss']:.4f} (adv "
      f"{last['g_adv']:.3f} l1 {last['g_l1']:.4f} tv {last['g_tv']:.4f})")
  return last


def make_validator(g, split: str, batch, writer: Writer, workdir: pathlib.Path):
  """validate(step, g_params) -> the val_* metrics of G on the fixed batch, also logged, with
  the picture grid written (process 0)."""
  metrics_fn = jax.jit(functools.partial(validation_metrics, g))
  inputs = {k: batch[k] for k in ("clean", "masked", "hole")}  # ids are strings: no jit input

  def validate(step: int, g_params) -> dict[str, float]:
    means, hole_psnr, out8 = jax.device_get(metrics_fn(g_params, inputs))
    val = {f"val_{k}": float(v) for k, v in means.items()}
    val.update({f"val_psnr_hole_{style}": v for style, v in
                per_style(np.asarray(hole_psnr), batch["mask_type"]).items()})
    writer.scalars(step, val)
    if is_main():
      grid = sample_grid(batch, out8)
      writer.image(step, f"samples/{split}", grid)
      image_utils.save_png(workdir / "samples" / f"step_{step:07d}.png", grid)
    say(f"  validation ({split}, {len(batch['clean'])} images): PSNR {val['val_psnr']:.2f} dB "
        f"(hole {val['val_psnr_hole']:.2f}, composite {val['val_psnr_composite']:.2f}) SSIM "
        f"{100 * val['val_ssim']:.2f} %")
    return val

  return validate


def exit_if_nonfinite(state: TrainState, step: int, mngr, workdir: pathlib.Path):
  """Stops with status 3, saving nothing, if any update so far was skipped as non-finite: the
  checkpoints on disk stay the last good ones."""
  bad = int(state.nonfinite)
  if not bad:
    return
  mngr.wait_until_finished()
  good = mngr.latest_step()
  where = (f"the last good checkpoint is step {good} in {checkpoint.checkpoint_dir(workdir)}"
           if good is not None else "no checkpoint was written yet")
  if is_main():
    print(f"ERROR: non-finite loss or gradient in {bad} step(s) before step {step} (those "
          f"updates were skipped): training stopped without saving; {where}. Lower the "
          "learning rate or check the data, then resume.", file=sys.stderr, flush=True)
  raise SystemExit(3)


def due(step: int, total_steps: int, every: int) -> bool:
  return step % every == 0 or step == total_steps


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str) -> dict[str, Any]:
  """Trains until config's step budget, resuming from `workdir`. Returns the last metrics."""
  workdir = pathlib.Path(workdir).expanduser().absolute()
  check_batch_layout(config)
  val_split, val_batch = validation_batch(config)  # before any file is written
  write_config(workdir, config)
  mesh = make_mesh()
  data_iter, info = input_pipeline.make_train_iterator(config)
  total_steps = num_train_steps(config, info.num_examples)
  parts = build(config, mesh)
  last = {}
  with contextlib.ExitStack() as cleanup:  # also on an error or a second Ctrl-C
    mngr = cleanup.enter_context(checkpoint.manager(workdir, keep=config.keep_checkpoints))
    writer = cleanup.enter_context(Writer(workdir))
    stop = cleanup.enter_context(StopSignal())
    state, start_step = load_or_init(config, parts, mngr, data_iter)
    validate = make_validator(parts.g, val_split, val_batch, writer, workdir)
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
      if at_log or at_ckpt or stopping:  # one device sync, only where something is written
        exit_if_nonfinite(state, step, mngr, workdir)
      if at_log:
        epoch = step * config.batch_size / info.num_examples
        last.update(log_train(step, total_steps, step_metrics, meter.rate(step), epoch, config,
                              writer))
      if at_eval:
        last.update(validate(step, state.g_params))
      if at_ckpt or stopping:
        checkpoint.save(mngr, step, to_items(state), data_iter, config)
      if at_eval or at_ckpt:
        meter.reset(step)  # throughput counts training steps only
  return finish(last, step, start_step, total_steps, stop.signum if stopping else None)


def finish(last: dict[str, Any], step: int, start_step: int, total_steps: int, signum):
  """The run's last metrics; a stop by Ctrl-C exits with status 130 (SIGTERM: a normal return,
  which callers tell from a finished run by last["step"])."""
  last["step"] = step
  if signum is not None or step < total_steps:
    say(f"stopped at step {step}; checkpoint saved. Run the same command to resume.")
  elif start_step >= total_steps:
    say(f"nothing to do: the checkpoint is already at step {start_step} of {total_steps}")
  if signum == signal.SIGINT:
    raise SystemExit(130)
  return last


def define_flags(fv: flags.FlagValues = flags.FLAGS):
  """Command-line flags; defined only when run as a program, so importing this is side-effect
  free."""
  cli.define_config_flag(fv=fv)
  flags.DEFINE_string("workdir", None, "Where checkpoints, logs and samples go.", required=True,
                      flag_values=fv)
  distributed.define_flags(fv=fv)


def main(argv, f: flags.FlagValues = flags.FLAGS):
  cli.no_args(argv)
  distributed.initialize(f)
  train_and_evaluate(f.config, f.workdir)


if __name__ == "__main__":
  define_flags()
  cli.run(main)
