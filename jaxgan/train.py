"""One GAN update as one compiled program.

`make_train_step(gan, ...)` returns `train_step(state, batch, key) -> (state, metrics)`, a pure
function to jit once (`sharding.jit_train_step` donates the state on accelerators). One call
performs `n_critic` discriminator updates and one generator update:

- The batch holds `n_critic * b` real examples; discriminator update i sees its own slice
  `batch[i::n_critic]` (interleaved, so every device's shard of a data-parallel batch holds its
  part of every slice) and fakes from its own noise, as in Gulrajani et al.'s Algorithm 1.
- The generator update reuses the fakes of the last discriminator update (G's forward pass is
  computed once, with `jax.vjp`, and differentiated after D has been updated), which is exactly
  what recomputing G on the same noise would give: G's parameters do not change during D updates.
- With `gan.pack = m > 1` (PacGAN) the critic, its loss and its penalty see packs of m real or m
  fake examples (`jaxgan.packing.pack`), and the scores are one per pack.
- Randomness: `jax.random.fold_in(key, state.step)`, so a resumed run draws the same numbers.
- When any loss or gradient is not finite the whole update is dropped inside the program (the
  state keeps its old values, `step` still advances, `skipped` counts it): one bad batch cannot
  poison the parameters, and the host need not look at every step.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
import optax

from jaxgan import losses as losses_lib
from jaxgan import packing, sharding
from jaxgan import penalties as penalties_lib
from jaxgan.state import GAN, GANState

Metrics = dict[str, jax.Array]
TrainStep = Callable[[GANState, jax.Array, jax.Array], tuple[GANState, Metrics]]


def _apply(module, params, variables, x, train):
  """Applies a module, threading its non-param collections; returns (output, new collections)."""
  if not variables:
    return module.apply({"params": params}, x, train=train), variables
  out, updates = module.apply(
    {"params": params, **variables}, x, train=train, mutable=list(variables)
  )
  return out, {**variables, **updates}


def _all_finite(tree) -> jax.Array:
  leaves = [jnp.all(jnp.isfinite(x)) for x in jax.tree.leaves(tree)]
  return jnp.all(jnp.stack(leaves)) if leaves else jnp.array(True)


def _penalty_name(penalty: str | penalties_lib.PenaltyFn) -> str:
  return penalty if isinstance(penalty, str) else getattr(penalty, "__name__", repr(penalty))


def check_penalty_critic(
  gan: GAN, state: GANState, penalty: str | penalties_lib.PenaltyFn | None
) -> None:
  """Refuses a gradient penalty on a BatchNorm critic.

  BatchNorm in training mode mixes the examples of a batch, so the per-example input gradients
  every penalty needs would be wrong. The train step calls this at trace time; the loop calls it
  before it touches the workdir.

  Args:
    gan: the GAN whose discriminator is checked.
    state: its state (the BatchNorm statistics live in `state.d_vars`).
    penalty: None, a name in `jaxgan.penalties.PENALTIES`, or a penalty function (named in the
      error by its `__name__`).

  Raises:
    ValueError: when `penalty` is not None and the discriminator uses BatchNorm; the message
      names the penalty and the normalisations that work.
  """
  if penalty is not None and gan.critic_uses_batch_norm(state):
    raise ValueError(
      f"The {_penalty_name(penalty)!r} penalty needs per-example input gradients, but the "
      "discriminator uses BatchNorm, which mixes the examples of a batch. Use a discriminator "
      "normalised with 'layer', 'spectral' or 'none' (in a run config: "
      "--config.model.d_norm=layer)."
    )


def make_train_step(
  gan: GAN,
  *,
  loss: str | losses_lib.GANLoss = "non_saturating",
  penalty: str | penalties_lib.PenaltyFn | None = None,
  penalty_weight: float = 10.0,
  n_critic: int = 1,
  ema_decay: float = 0.999,
  weight_clip: float | None = None,
  skip_nonfinite: bool = True,
) -> TrainStep:
  """Builds the train step of a GAN: `n_critic` critic updates and one generator update.

  The step's semantics are those of the module docstring; it is pure, to be jitted once
  (`jaxgan.sharding.jit_train_step` on a mesh, or plain `jax.jit`).

  Args:
    gan: the static modules, optimizers and latent shape.
    loss: a name in `jaxgan.losses.LOSSES` or a `jaxgan.losses.GANLoss`.
    penalty: None, a name in `jaxgan.penalties.PENALTIES` ('wgan_gp', 'wgan_lp', 'r1', 'r2',
      'dragan'), or a function `f(critic_fn, real, fake, key) -> scalar` with the penalties'
      signature; added to the discriminator loss times `penalty_weight`.
    penalty_weight: the penalty's weight (lambda; gamma / 2 for R1 and R2).
    n_critic: discriminator updates per generator update; the batch must hold n_critic slices.
    ema_decay: decay of the EMA of the generator parameters, in [0, 1) (0 keeps the EMA equal
      to the parameters).
    weight_clip: clip every critic parameter to [-c, c] after each update (original WGAN).
    skip_nonfinite: drop updates whose losses or gradients are not finite.

  Returns:
    `train_step(state, batch, key) -> (state, metrics)`. `batch` is `[n_critic * b, ...]`
    float32 real examples, `key` a PRNG key (folded with `state.step`, so the same key may be
    passed every step). The metrics are float32 scalars: `d_loss` and `penalty` (means over the
    critic updates, the penalty unweighted), `g_loss`, `d_real` and `d_fake` (mean scores),
    `d_grad_norm` and `g_grad_norm` (global gradient norms) and, with `skip_nonfinite`,
    `skipped` (1 when the update was dropped). The step raises a ValueError at trace time when
    the batch does not split into `n_critic` slices, or when `penalty` meets a BatchNorm critic
    (`check_penalty_critic`).

  Raises:
    ValueError: an unknown loss or penalty name, `n_critic` not a positive integer, or
      `ema_decay` outside [0, 1).

  Example:
    >>> import jax, jax.numpy as jnp, optax
    >>> from jaxgan import GAN
    >>> from jaxgan.models import make_models
    >>> g, d = make_models("mlp", image_shape=(2,), g_hidden=(8,), d_hidden=(8,), d_norm="layer")
    >>> gan = GAN(g, d, optax.adam(1e-3), optax.adam(1e-3), latent_shape=(2,))
    >>> step = make_train_step(gan, loss="wgan", penalty="wgan_gp", n_critic=2)
    >>> batch = jnp.ones((2 * 4, 2))  # two critic updates of 4 examples
    >>> state = jax.eval_shape(gan.init, jax.random.key(0), batch[:4])
    >>> _, metrics = jax.eval_shape(step, state, batch, jax.random.key(1))
    >>> sorted(metrics)
    ['d_fake', 'd_grad_norm', 'd_loss', 'd_real', 'g_grad_norm', 'g_loss', 'penalty', 'skipped']
  """
  gan_loss = losses_lib.get(loss)
  penalty_fn = None if penalty is None else penalties_lib.get(penalty)
  if not isinstance(n_critic, int) or n_critic < 1:
    raise ValueError(f"n_critic must be a positive integer; got {n_critic!r}.")
  if not 0.0 <= ema_decay < 1.0:
    raise ValueError(f"ema_decay must lie in [0, 1); got {ema_decay}.")
  G, D = gan.generator, gan.discriminator
  pack = lambda x: packing.pack(x, gan.pack)

  def generate(g_params, g_vars, key, n):
    # Latents are made inside the step: without the constraint XLA would run G in full on every
    # device of a data-parallel mesh.
    return _apply(G, g_params, g_vars, sharding.shard_batch(gan.latents(key, n)), True)

  def critic_scores(params, d_vars, real, fake):
    """D on real and fake: one pass over both for a stateless D on vectors, else two passes.

    A D with state needs two passes, as in PyTorch: BatchNorm gives each its own batch
    statistics and spectral norm does one power iteration per pass. Otherwise the scores are
    the same either way, and speed on the CPU decides: for vectors (MLPs) one pass of twice the
    rows, because small matmuls run well below the machine's peak; for images two, because a
    convolution over twice the images costs no less than two convolutions over half of them.
    """
    if not d_vars and real.ndim == 2:
      # Interleaved rows (real_0, fake_0, real_1, ...), so that on a data-parallel mesh every
      # device's rows stay on it; a plain concatenation would need an all-gather.
      both = jnp.stack([real, fake], axis=1).reshape(2 * real.shape[0], *real.shape[1:])
      scores, _ = _apply(D, params, d_vars, both, True)
      scores = scores.reshape(real.shape[0], 2)
      return scores[:, 0], scores[:, 1], d_vars
    s_real, d_vars = _apply(D, params, d_vars, real, True)
    s_fake, d_vars = _apply(D, params, d_vars, fake, True)
    return s_real, s_fake, d_vars

  def d_update(carry, real, fake, key):
    d_params, d_vars, d_opt_state = carry
    real, fake = pack(real), pack(fake)

    def d_loss_fn(params):
      s_real, s_fake, new_vars = critic_scores(params, d_vars, real, fake)
      adversarial = gan_loss.d(s_real, s_fake)
      if penalty_fn is None:
        pen = jnp.zeros((), jnp.float32)
      else:
        critic = lambda x: _apply(D, params, new_vars, x, True)[0]
        pen = penalty_fn(critic, real, fake, key)
      aux = (new_vars, adversarial, pen, jnp.mean(s_real), jnp.mean(s_fake))
      return adversarial + penalty_weight * pen, aux

    grads, (d_vars, adversarial, pen, s_real, s_fake) = jax.grad(d_loss_fn, has_aux=True)(d_params)
    updates, d_opt_state = gan.d_optimizer.update(grads, d_opt_state, d_params)
    d_params = optax.apply_updates(d_params, updates)
    if weight_clip is not None:
      d_params = penalties_lib.clip_weights(d_params, weight_clip)
    metrics = dict(
      d_loss=adversarial,
      penalty=pen,
      d_real=s_real,
      d_fake=s_fake,
      d_grad_norm=optax.tree.norm(grads),
    )
    return (d_params, d_vars, d_opt_state), metrics

  def train_step(state: GANState, batch: jax.Array, key: jax.Array):
    if batch.shape[0] % n_critic:
      raise ValueError(
        f"The batch of {batch.shape[0]} examples does not split into "
        f"n_critic={n_critic} equal slices; use a multiple of {n_critic}."
      )
    check_penalty_critic(gan, state, penalty)
    b = batch.shape[0] // n_critic
    if b % gan.pack:
      raise ValueError(
        f"Each critic update sees {b} examples, which do not split into packs of "
        f"{gan.pack}; make the batch size per critic update a multiple of {gan.pack}."
      )
    reals = batch.reshape(b, n_critic, *batch.shape[1:]).swapaxes(0, 1)  # reals[i] = batch[i::n]
    key = jax.random.fold_in(key, state.step)
    d_keys, z_keys = jax.random.split(key)
    d_keys = jax.random.split(d_keys, n_critic)
    z_keys = jax.random.split(z_keys, n_critic)

    g_vars = state.g_vars
    carry = (state.d_params, state.d_vars, state.d_opt_state)
    d_metrics = []
    # A Python loop over the static count, not lax.scan: on XLA:CPU a scanned critic update with
    # a gradient penalty runs many times slower than the same update unrolled.
    for i in range(n_critic - 1):
      fake, g_vars = generate(state.g_params, g_vars, z_keys[i], b)
      carry, metrics = d_update(carry, reals[i], fake, d_keys[i])
      d_metrics.append(metrics)

    # Last critic update and generator update share one forward pass of G.
    def g_forward(g_params):
      return generate(g_params, g_vars, z_keys[-1], b)

    fake, g_vjp, g_vars = jax.vjp(g_forward, state.g_params, has_aux=True)
    carry, last = d_update(carry, reals[-1], jax.lax.stop_gradient(fake), d_keys[-1])
    d_metrics.append(last)
    d_params, d_vars, d_opt_state = carry

    def g_loss_fn(fake):
      # D's statistics updates from the generator pass are discarded, as in PyTorch's DCGAN.
      # Two passes: the real one is dead code for the losses whose G term ignores real scores.
      s_fake, _ = _apply(D, d_params, d_vars, pack(fake), True)
      s_real, _ = _apply(D, d_params, d_vars, pack(reals[-1]), True)
      return gan_loss.g(jax.lax.stop_gradient(s_real), s_fake)

    g_loss, d_fake_image = jax.value_and_grad(g_loss_fn)(fake)
    (g_grads,) = g_vjp(d_fake_image)
    g_updates, g_opt_state = gan.g_optimizer.update(g_grads, state.g_opt_state, state.g_params)
    g_params = optax.apply_updates(state.g_params, g_updates)
    ema_params = optax.incremental_update(g_params, state.ema_params, 1.0 - ema_decay)

    metrics = jax.tree.map(lambda *xs: sum(xs) / n_critic, *d_metrics)
    metrics.update(g_loss=g_loss, g_grad_norm=optax.tree.norm(g_grads))
    new_state = GANState(
      step=state.step + 1,
      g_params=g_params,
      d_params=d_params,
      g_vars=g_vars,
      d_vars=d_vars,
      ema_params=ema_params,
      g_opt_state=g_opt_state,
      d_opt_state=d_opt_state,
      skipped=state.skipped,
    )
    if skip_nonfinite:
      ok = _all_finite(metrics)
      new_state = jax.tree.map(lambda new, old: jnp.where(ok, new, old), new_state, state)
      new_state = new_state.replace(
        step=state.step + 1, skipped=state.skipped + (1 - ok.astype(jnp.int32))
      )
      metrics["skipped"] = 1.0 - ok.astype(jnp.float32)
    return new_state, metrics

  return train_step
