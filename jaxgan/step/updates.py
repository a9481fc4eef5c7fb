"""The pieces of one train step: the critic update, the generator update, the EMA, the guard.

Each builder closes over what a run fixes (the modules, the loss, the optimisers, the
regularisation terms of `jaxgan.step.regularization`) and returns a pure function of arrays;
`jaxgan.step.train.make_train_step` composes them into the train step.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax

from jaxgan import losses as losses_lib
from jaxgan import penalties as penalties_lib
from jaxgan.step import critic as critic_lib
from jaxgan.step import packing, sharding
from jaxgan.step.regularization import value
from jaxgan.step.state import GAN, GANState


class Critic(NamedTuple):
  """What the critic updates carry from one to the next: D's state and LeCam's anchors."""

  params: dict
  vars: dict
  opt_state: optax.OptState
  lecam_anchors: jax.Array


def augmented(augment, x: jax.Array, key: jax.Array, p) -> jax.Array:
  """`x` through D's augmentation `augment(x, key, p)`, or unchanged when there is none."""
  return x if augment is None else augment(x, key, p)


def generate(gan: GAN, g_params, g_vars, key: jax.Array, n: int, labels):
  """G on `n` fresh latents in training mode: `(fakes [n, ...], g_vars)`."""
  # Latents are made inside the step: without the constraint XLA would run G in full on every
  # device of a data-parallel mesh.
  z = sharding.shard_batch(gan.latents(key, n))
  return critic_lib.apply_module(gan.generator, g_params, g_vars, z, True, labels)


def make_critic_update(
  gan: GAN,
  gan_loss: losses_lib.GANLoss,
  *,
  augment,
  class_weight: float,
  weight_clip: float | None,
  penalty_term: Callable,
  penalty_names: dict,
  consistency_term: Callable | None,
  lecam_term: Callable | None,
) -> Callable:
  """Builds one critic update: D's loss with its regularisation terms, and D's optimiser step.

  Args:
    gan: the GAN (D, its optimiser, the pack size).
    gan_loss: the adversarial loss.
    augment: None, or D's augmentation `f(images, key, p) -> images`.
    class_weight: the weight of ACGAN's class loss (used when D has a classifier head).
    weight_clip: clip D's parameters to [-c, c] after the update, or None.
    penalty_term: `jaxgan.step.regularization.penalty_term`'s function.
    penalty_names: each penalty's metric name (`Penalties.metric_names()`).
    consistency_term: bCR's (`regularization.consistency_term`), or None when off.
    lecam_term: LeCam's (`regularization.lecam_term`), or None when off.

  Returns:
    `update(critic, real, fake, labels, key, u, step, p, penalize) -> (critic, (signs, count),
    metrics)`: `critic` a `Critic`; real and fake `[b, ...]` (the fakes without gradient to G),
    `labels` `(y_real, y_fake)` (both None when unconditional), `u` the critic update's index
    (LeCam's anchors start at u = 0), `p` the augmentation probability and `penalize` (static)
    whether to compute the penalties; `signs` the sum of sign(D(x_real)) over `count` scores,
    for ADA.
  """
  D, m = gan.discriminator, gan.pack

  def update(critic: Critic, real, fake, labels, key, u, step, p, penalize: bool):
    keys = jax.random.split(key, 5)
    real_aug, fake_aug = augmented(augment, real, keys[0], p), augmented(augment, fake, keys[1], p)
    real_in, fake_in = packing.pack(real_aug, m), packing.pack(fake_aug, m)

    def loss(params):
      # The adversarial loss, then each term in turn; D's collections thread through its passes.
      (s_real, s_fake), logits, d_vars = critic_lib.critic_scores(
        D, params, critic.vars, real_in, fake_in, *labels
      )
      adversarial = gan_loss.d(s_real, s_fake)
      total = adversarial
      aux = {}
      if logits[0] is not None and class_weight > 0:
        cls = losses_lib.acgan_class_loss(logits[0], labels[0])
        cls += losses_lib.acgan_class_loss(logits[1], labels[1])
        total = total + class_weight * cls
        aux["d_class"] = cls
      values = {n: jnp.zeros((), jnp.float32) for n in penalty_names}
      if penalize:
        values, weighted = penalty_term(
          params, d_vars, real, fake, labels, keys[:2], keys[2], step, p
        )
        total = total + weighted
      aux["penalty"] = sum(values.values(), jnp.zeros((), jnp.float32))
      if len(values) > 1:
        aux.update({penalty_names[n]: v for n, v in values.items()})
      if consistency_term is not None:
        aux["consistency"], weighted, d_vars = consistency_term(
          params, d_vars, (real_aug, fake_aug), labels, (keys[3], keys[4]), (s_real, s_fake), step
        )
        total = total + weighted
      anchors = critic.lecam_anchors
      if lecam_term is not None:
        aux["lecam"], weighted, anchors = lecam_term(anchors, s_real, s_fake, u == 0, step)
        total = total + weighted
      mean = critic_lib.mean_score
      aux.update(d_loss=adversarial, d_real=mean(s_real), d_fake=mean(s_fake))
      signs = critic_lib.example_signs(s_real)
      return total, (d_vars, anchors, jnp.sum(signs), signs.size, aux)

    grads, (d_vars, anchors, signs, count, metrics) = jax.grad(loss, has_aux=True)(critic.params)
    updates, opt_state = gan.d_optimizer.update(grads, critic.opt_state, critic.params)
    params = optax.apply_updates(critic.params, updates)
    if weight_clip is not None:
      params = penalties_lib.clip_weights(params, weight_clip)
    metrics["d_grad_norm"] = optax.tree.norm(grads)
    return Critic(params, d_vars, opt_state, anchors), (signs, count), metrics

  return update


def make_generator_update(
  gan: GAN, gan_loss: losses_lib.GANLoss, *, augment, class_weight: float
) -> Callable:
  """Builds the generator update, from the fakes and the pullback of the last critic update.

  G's forward pass is the last critic update's (`jax.vjp`, computed once): the gradient of G's
  loss with respect to those fakes is pulled back through it after D has been updated, which is
  what recomputing G on the same noise would give, G's parameters being unchanged meanwhile.

  Args:
    gan: the GAN (D, G's optimiser, the pack size).
    gan_loss: the adversarial loss.
    augment: None, or D's augmentation `f(images, key, p) -> images`.
    class_weight: the weight of ACGAN's class loss (used when D has a classifier head).

  Returns:
    `update(state, critic, g_vjp, fake, y_fake, reals, y_reals, key, p) -> (g_params,
    g_opt_state, g_grads, metrics)`: `critic` the updated `Critic`, `g_vjp` G's pullback at
    `fake` `[b, ...]`, `reals` the step's real slices `[n_critic, b, ...]` (G's loss sees the
    last critic update's), `y_fake` and `y_reals` their labels (None when unconditional), `key`
    the augmentation's; metrics `g_loss` (and `g_class` with a classifier D).
  """
  D, m = gan.discriminator, gan.pack

  def update(state: GANState, critic: Critic, g_vjp, fake, y_fake, reals, y_reals, key, p):
    fake_key, real_key = jax.random.split(key)

    def loss(fake):
      # D's statistics updates from the generator pass are discarded, as in PyTorch's DCGAN.
      # Two passes: the real one is dead code for the losses whose G term ignores real scores.
      fake_in = packing.pack(augmented(augment, fake, fake_key, p), m)
      s_fake, l_fake, _ = critic_lib.discriminate(D, critic.params, critic.vars, fake_in, y_fake)
      real_in = packing.pack(augmented(augment, reals[-1], real_key, p), m)
      s_real, _, _ = critic_lib.discriminate(D, critic.params, critic.vars, real_in, y_reals[-1])
      g_loss = gan_loss.g(jax.lax.stop_gradient(s_real), s_fake)
      if l_fake is None or class_weight == 0:
        return g_loss, {"g_loss": g_loss}
      cls = losses_lib.acgan_class_loss(l_fake, y_fake)
      return g_loss + class_weight * cls, {"g_loss": g_loss, "g_class": cls}

    (_, metrics), d_fake_image = jax.value_and_grad(loss, has_aux=True)(fake)
    (g_grads,) = g_vjp(d_fake_image)
    g_updates, g_opt_state = gan.g_optimizer.update(g_grads, state.g_opt_state, state.g_params)
    g_params = optax.apply_updates(state.g_params, g_updates)
    return g_params, g_opt_state, g_grads, metrics

  return update


def ema_update(g_params, ema_params, decay, step: jax.Array):
  """The EMA of G's parameters after an update: decay * ema + (1 - decay) * params.

  Args:
    g_params: G's parameters after the update.
    ema_params: their EMA before it.
    decay: the decay, a number or a schedule of the train step.
    step: the train step (int32, may be traced).

  Returns:
    The new EMA, `optax.incremental_update`'s.
  """
  beta = value(decay, step)
  return optax.incremental_update(g_params, ema_params, 1.0 - beta)


def keep_finite(new_state: GANState, state: GANState, metrics: dict) -> tuple[GANState, dict]:
  """Drops a whole update whose losses or gradients are not finite, inside the program.

  Args:
    new_state: the state after the update (`step` advanced).
    state: the state before it.
    metrics: the update's metrics (losses and gradient norms), float32 scalars.

  Returns:
    `(state, metrics)`: `new_state`, or `state` with `step` advanced and `skipped` counting the
    drop; metrics with `skipped` (1.0 when dropped).
  """
  leaves = [jnp.all(jnp.isfinite(x)) for x in jax.tree.leaves(metrics)]
  ok = jnp.all(jnp.stack(leaves)) if leaves else jnp.array(True)
  kept = jax.tree.map(lambda new, old: jnp.where(ok, new, old), new_state, state)
  kept = kept.replace(step=state.step + 1, skipped=state.skipped + (1 - ok.astype(jnp.int32)))
  metrics["skipped"] = 1.0 - ok.astype(jnp.float32)
  return kept, metrics
