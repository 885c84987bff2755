r"""Trains the masked-face inpainting GAN (paper section II) on the datasets of data_prep.build.

  python -m maskinpaint_jax.train --config configs/default.py --workdir runs/paper \
      [--config.batch_size=1504] [--coordinator_address=host:port --num_processes=N --process_id=i]

Running the same command again resumes from the newest checkpoint in --workdir. SIGTERM or Ctrl-C
saves a checkpoint and exits; a non-finite loss stops the run before any checkpoint with it is
written. Data-parallel over every device of every process: parameters replicated, the global
batch split along a 1-D mesh axis "data".
"""

from __future__ import annotations

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

from data_prep import images as image_utils
from maskinpaint_jax import (checkpoint, cli, distributed, inference, input_pipeline, losses,
                             metrics, models)

# Fields that must match a checkpoint's config to resume from it.
RESUME_MUST_MATCH = ("model", "disc", "data.image_size", "batch_size")


@flax.struct.dataclass
class TrainState:
  step: jax.Array
  g_params: Any
  d_params: Any
  d_stats: Any        # spectral-norm u and sigma (flax's "batch_stats" collection)
  g_opt: Any
  d_opt: Any
  nonfinite: jax.Array  # steps whose update was skipped because a loss or gradient was not finite


def to_items(state: TrainState) -> dict[str, Any]:
  """TrainState -> the checkpoint's separately restorable items (see checkpoint.py)."""
  return dict(generator=state.g_params,
              discriminator={"params": state.d_params, "spectral_norm": state.d_stats},
              optimizer={"g": state.g_opt, "d": state.d_opt},
              meta={"step": state.step, "nonfinite": state.nonfinite})


def from_items(items: dict[str, Any]) -> TrainState:
  return TrainState(step=items["meta"]["step"], g_params=items["generator"],
                    d_params=items["discriminator"]["params"],
                    d_stats=items["discriminator"]["spectral_norm"],
                    g_opt=items["optimizer"]["g"], d_opt=items["optimizer"]["d"],
                    nonfinite=items["meta"]["nonfinite"])


def make_optimizers(config):
  """Adam for G and D (Table I: lr 2e-4; betas 0.5 / 0.999 as pix2pix, the paper gives none)."""
  adam = lambda: optax.adam(config.optim.learning_rate, b1=config.optim.b1, b2=config.optim.b2)
  return adam(), adam()


def init_state(config, g, d, g_tx, d_tx, rng) -> TrainState:
  size = config.data.image_size
  image = jnp.zeros((1, size, size, 3), jnp.float32)
  hole = jnp.zeros((1, size, size, 1), jnp.float32)
  g_rng, d_rng = jax.random.split(rng)
  g_params = g.init(g_rng, image, hole)["params"]
  d_vars = d.init(d_rng, image)
  return TrainState(step=jnp.zeros((), jnp.int32), g_params=g_params, d_params=d_vars["params"],
                    d_stats=d_vars["batch_stats"], g_opt=g_tx.init(g_params),
                    d_opt=d_tx.init(d_vars["params"]), nonfinite=jnp.zeros((), jnp.int32))


def train_step(state: TrainState, batch, rng, *, g, d, g_tx, d_tx, config):
  """One D update (eq. 5, hinge) then one G update (eq. 4) on a global batch.

  G's forward pass runs once: D trains on its (stopped) output, and G's gradient is pulled back
  through the same forward pass (jax.vjp) from the loss against the *updated* D, exactly as a
  second forward pass would give. `rng` is the run's base key; this step's key is folded from
  the step number (no layer draws randomness today; stochastic additions stay resumable).
  If any loss or gradient is not finite, the update is skipped and counted in `nonfinite`.
  """
  del rng  # folded per step where needed: jax.random.fold_in(rng, state.step)
  clean = inference.to_unit_range(batch["clean"])
  masked = inference.to_unit_range(batch["masked"])
  hole = batch["hole"].astype(jnp.float32)

  output, g_vjp = jax.vjp(lambda p: g.apply({"params": p}, masked, hole), state.g_params)

  def d_loss_fn(d_params):
    real_logits, new_vars = d.apply({"params": d_params, "batch_stats": state.d_stats}, clean,
                                    update_stats=True, mutable=["batch_stats"])
    fake_logits = d.apply({"params": d_params, "batch_stats": new_vars["batch_stats"]},
                          jax.lax.stop_gradient(output))
    loss = losses.discriminator_hinge_loss(real_logits, fake_logits)
    return loss, (new_vars["batch_stats"], real_logits, fake_logits)

  (d_loss, (d_stats, real_logits, fake_logits)), d_grads = jax.value_and_grad(
      d_loss_fn, has_aux=True)(state.d_params)
  d_updates, d_opt = d_tx.update(d_grads, state.d_opt, state.d_params)
  d_params = optax.apply_updates(state.d_params, d_updates)

  def g_loss_fn(out):
    logits = d.apply({"params": d_params, "batch_stats": d_stats}, out)
    return losses.generator_loss(out, clean, logits, config.loss)

  (g_loss, terms), d_out = jax.value_and_grad(g_loss_fn, has_aux=True)(output)
  if config.debug_nan_at_step >= 0:  # fault injection for the NaN guard's test
    g_loss = g_loss + jnp.where(state.step == config.debug_nan_at_step, jnp.nan, 0.0)
    d_out = d_out + jnp.where(state.step == config.debug_nan_at_step, jnp.nan, 0.0)
  (g_grads,) = g_vjp(d_out)
  g_updates, g_opt = g_tx.update(g_grads, state.g_opt, state.g_params)
  g_params = optax.apply_updates(state.g_params, g_updates)

  g_grad_norm, d_grad_norm = optax.tree.norm(g_grads), optax.tree.norm(d_grads)
  finite = jnp.all(jnp.isfinite(jnp.stack([g_loss, d_loss, g_grad_norm, d_grad_norm])))
  keep = lambda new, old: jax.tree.map(lambda n, o: jnp.where(finite, n, o), new, old)
  new_state = TrainState(
      step=state.step + 1,
      g_params=keep(g_params, state.g_params), d_params=keep(d_params, state.d_params),
      d_stats=keep(d_stats, state.d_stats), g_opt=keep(g_opt, state.g_opt),
      d_opt=keep(d_opt, state.d_opt),
      nonfinite=state.nonfinite + (1 - finite.astype(jnp.int32)))
  step_metrics = dict(d_loss=d_loss, g_loss=g_loss, g_adv=terms["adv"], g_l1=terms["l1"],
                      g_tv=terms["tv"], d_real=jnp.mean(real_logits),
                      d_fake=jnp.mean(fake_logits), g_grad_norm=g_grad_norm,
                      d_grad_norm=d_grad_norm, finite=finite.astype(jnp.float32))
  return new_state, step_metrics


def validation_metrics(g, g_params, batch):
  """PSNR (dB) / SSIM of the raw output and the composite, and PSNR in the hole."""
  out, comp = inference.restore_output(g, g_params, batch["masked"], batch["hole"])
  clean = batch["clean"]
  out8, comp8 = metrics.to_uint8(out), metrics.to_uint8(comp)
  return dict(psnr=jnp.mean(metrics.psnr(out8, clean)), ssim=jnp.mean(metrics.ssim(out8, clean)),
              psnr_composite=jnp.mean(metrics.psnr(comp8, clean)),
              psnr_hole=jnp.mean(metrics.psnr(out8, clean, batch["hole"]))), out8


# --- host-side plumbing ----------------------------------------------------------------------

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
  d: Any
  rng: jax.Array                  # the run's base key
  init: Any                       # () -> TrainState, replicated on the mesh
  step: Any                       # jitted train_step on the mesh
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
                 in_shardings=(state_sharding, data_sharding, replicated),
                 out_shardings=(state_sharding, replicated), donate_argnums=(0,))
  return Parts(g, d, jax.random.key(config.seed), init, step, state_sharding)


class StopSignal:
  """Remembers SIGTERM / SIGINT so the loop can save and stop at a step boundary."""

  def __init__(self):
    self.signum = None
    for s in (signal.SIGTERM, signal.SIGINT):
      signal.signal(s, self._handle)

  def _handle(self, signum, frame):
    del frame
    if self.signum is not None and signum == signal.SIGINT:
      raise KeyboardInterrupt  # a second Ctrl-C: stop now
    self.signum = signum
    if jax.process_index() == 0:
      print(f"\n{signal.Signals(signum).name}: saving a checkpoint at the end of this step "
            "(Ctrl-C again to abort without saving)", flush=True)


def num_train_steps(config, num_examples: int) -> int:
  if config.num_train_steps > 0:
    return config.num_train_steps
  return math.ceil(config.num_epochs * num_examples / config.batch_size)


def check_batch_layout(config):
  """Clear errors before any compilation."""
  n, p = jax.device_count(), jax.process_count()
  if config.batch_size % n:
    lo, hi = (config.batch_size // n) * n, (config.batch_size // n + 1) * n
    raise ValueError(f"global batch {config.batch_size} is not divisible by the {n} devices; "
                     f"use --config.batch_size={hi} (or {lo})")
  if config.batch_size % p:
    raise ValueError(f"global batch {config.batch_size} is not divisible by {p} processes")


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
  """Console (process 0), metrics.jsonl and TensorBoard."""

  def __init__(self, workdir: pathlib.Path, enabled: bool):
    self.enabled = enabled
    if enabled:
      from tensorboardX import SummaryWriter  # pylint: disable=g-import-not-at-top
      self.tb = SummaryWriter(str(workdir / "tensorboard"))
      self.jsonl = (workdir / "metrics.jsonl").open("a")

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

  def close(self):
    if self.enabled:
      self.tb.close()
      self.jsonl.close()


def _fmt_time(seconds: float) -> str:
  seconds = int(seconds)
  return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m" if seconds >= 3600 else \
      f"{seconds // 60}m{seconds % 60:02d}s"


def sample_grid(batch, out8, count: int = 8) -> np.ndarray:
  """clean | masked | restored, one example per row."""
  rows = [[batch["clean"][i], batch["masked"][i], np.asarray(out8[i])]
          for i in range(min(count, len(batch["clean"])))]
  return image_utils.make_grid(rows)


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str) -> dict[str, Any]:
  """Trains until config's step budget, resuming from `workdir`. Returns the last metrics."""
  workdir = pathlib.Path(workdir).expanduser().absolute()
  is_main = jax.process_index() == 0
  check_batch_layout(config)
  if is_main:
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "config.json").write_text(config.to_json_best_effort(indent=2))

  mesh = make_mesh()
  _, data_sharding = mesh_shardings(mesh)

  data_iter, info = input_pipeline.make_train_iterator(config)
  total_steps = num_train_steps(config, info.num_examples)
  val_split = "validation"
  try:
    val_batch = input_pipeline.fixed_batch(config.data.data_dir, config.data.train_datasets,
                                           config.data.image_size, "validation",
                                           config.num_eval_images)
  except (KeyError, ValueError):
    val_split = "train"  # a tiny dataset may have no validation split
    val_batch = input_pipeline.fixed_batch(config.data.data_dir, config.data.train_datasets,
                                           config.data.image_size, "train",
                                           config.num_eval_images)

  val_inputs = {k: val_batch[k] for k in ("clean", "masked", "hole")}  # no ids: jit input

  parts = build(config, mesh)
  g, rng, state_sharding = parts.g, parts.rng, parts.state_sharding
  abstract_state = jax.eval_shape(parts.init)

  mngr = checkpoint.manager(workdir, keep=config.keep_checkpoints)
  start_step = mngr.latest_step()
  if start_step is not None:
    check_resumable(checkpoint.restore_config(mngr, start_step), config)
    abstract = jax.tree.map(lambda s, sh: jax.ShapeDtypeStruct(s.shape, s.dtype, sharding=sh),
                            abstract_state, state_sharding)
    state = from_items(checkpoint.restore_train(mngr, start_step, to_items(abstract), data_iter))
    if is_main:
      print(f"resumed from step {start_step} ({checkpoint.checkpoint_dir(workdir)})", flush=True)
  else:
    state = parts.init()
    start_step = 0

  step_fn = parts.step
  eval_fn = jax.jit(functools.partial(validation_metrics, g))

  def device_batch(local):
    return {k: jax.make_array_from_process_local_data(data_sharding, v)
            for k, v in local.items()}

  def save(step):  # only ever after the non-finite check of the same step (below)
    checkpoint.save(mngr, step, to_items(state), data_iter, config)

  writer = Writer(workdir, is_main)
  stop = StopSignal()
  if is_main:
    print(f"training {info.names} ({info.num_examples} examples), global batch "
          f"{config.batch_size} on {jax.device_count()} device(s) / {jax.process_count()} "
          f"process(es), steps {start_step} -> {total_steps} "
          f"({total_steps * config.batch_size / info.num_examples:.1f} epochs)", flush=True)

  last = {}
  step = start_step
  t_log, step_log = time.time(), step
  exit_code = 0
  try:
    while step < total_steps:
      batch = device_batch(next(data_iter))
      if step == start_step:
        t0 = time.time()
        compiled = step_fn.lower(state, batch, rng).compile()
        if is_main:
          print(f"compiled the train step in {time.time() - t0:.1f} s", flush=True)
        t_log = time.time()
      state, step_metrics = compiled(state, batch, rng)
      step += 1
      at_log = step % config.log_every_steps == 0 or step == total_steps
      at_ckpt = step % config.checkpoint_every_steps == 0 or step == total_steps
      at_eval = step % config.eval_every_steps == 0 or step == total_steps
      stopping = stop.signum is not None
      if jax.process_count() > 1:
        # Every process must take part in the same collective: agree at log steps only, so a
        # signal that reached some processes first cannot make them wait on the others.
        from jax.experimental import multihost_utils  # pylint: disable=g-import-not-at-top
        stopping = at_log and bool(
            multihost_utils.process_allgather(np.array(stopping)).any())
      if at_log or at_ckpt or stopping:
        if int(state.nonfinite):
          raise FloatingPointError(int(state.nonfinite))
      if at_log:
        host = jax.device_get(step_metrics)
        now = time.time()
        rate = (step - step_log) / max(now - t_log, 1e-9)
        t_log, step_log = now, step
        last = {k: float(v) for k, v in host.items()}
        last.update(steps_per_s=rate, img_per_s=rate * config.batch_size,
                    epoch=step * config.batch_size / info.num_examples)
        writer.scalars(step, last)
        if is_main:
          eta = (total_steps - step) / max(rate, 1e-9)
          print(f"step {step}/{total_steps} | {last['img_per_s']:.1f} img/s "
                f"({rate:.2f} steps/s) | ETA {_fmt_time(eta)} | d {last['d_loss']:.3f} "
                f"g {last['g_loss']:.4f} (adv {last['g_adv']:.3f} l1 {last['g_l1']:.4f} "
                f"tv {last['g_tv']:.4f})", flush=True)
      if at_eval:
        val, out8 = eval_fn(state.g_params, val_inputs)
        val = {f"val_{k}": float(v) for k, v in jax.device_get(val).items()}
        last.update(val)
        writer.scalars(step, val)
        if is_main:
          grid = sample_grid(val_batch, jax.device_get(out8))
          writer.image(step, f"samples/{val_split}", grid)
          image_utils.save_png(workdir / "samples" / f"step_{step:07d}.png", grid)
          print(f"  validation ({val_split}, {len(val_batch['clean'])} images): "
                f"PSNR {val['val_psnr']:.2f} dB (hole {val['val_psnr_hole']:.2f}, composite "
                f"{val['val_psnr_composite']:.2f}) SSIM {100 * val['val_ssim']:.2f} %",
                flush=True)
      if at_ckpt or stopping:
        save(step)
      if at_eval or at_ckpt:
        t_log, step_log = time.time(), step  # throughput counts training steps only
      if stopping:
        exit_code = 0 if stop.signum == signal.SIGTERM else 130
        if is_main:
          print(f"stopped at step {step}; checkpoint saved. Run the same command to resume.",
                flush=True)
        break
  except FloatingPointError as e:
    mngr.wait_until_finished()
    good = mngr.latest_step()
    where = (f"the last good checkpoint is step {good} in {checkpoint.checkpoint_dir(workdir)}"
             if good is not None else "no checkpoint was written yet")
    message = (f"non-finite loss or gradient in {e} step(s) before step {step} (those updates "
               f"were skipped): training stopped without saving; {where}. Lower the learning "
               "rate or check the data, then resume.")
    if is_main:
      print("ERROR: " + message, file=sys.stderr, flush=True)
    writer.close()
    mngr.close()
    raise SystemExit(3) from None
  mngr.wait_until_finished()
  mngr.close()
  writer.close()
  last["step"] = step
  if exit_code:
    raise SystemExit(exit_code)
  if is_main and start_step >= total_steps:
    print(f"nothing to do: the checkpoint is already at step {start_step} of {total_steps}")
  return last


def define_flags():
  """Command-line flags; defined only when run as a program, so importing this is side-effect
  free."""
  cli.define_config_flag()
  flags.DEFINE_string("workdir", None, "Where checkpoints, logs and samples go.", required=True)
  distributed.define_flags()


def main(argv):
  del argv
  distributed.initialize()
  train_and_evaluate(flags.FLAGS.config, flags.FLAGS.workdir)


if __name__ == "__main__":
  define_flags()
  cli.run(main)
