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
  fake examples (`jaxgan.step.packing.pack`), and the scores are one per pack.
- Augmentation (`jaxgan.augment`: DiffAugment, ADA) transforms real and fake images before D
  in both players' losses and in the penalties' critic, differentiably, so G learns through it.
  A penalty sees the draw D's loss saw at the same points (R1 the reals', R2 the fakes').
- Hyperparameters given as schedules (`jaxgan.schedules`) are computed from `state.step`, and
  ADA's probability and LeCam's anchors are part of the state: a resumed run continues exactly.
- A class-conditional GAN (`gan.num_classes > 0`) takes batches `{'image', 'label'}`: real
  examples are judged with their labels; each critic update draws labels for its fakes
  (uniformly, or from given class frequencies) and G and D see them. An auxiliary-classifier D
  (ACGAN) adds `jaxgan.losses.acgan_class_loss` to both players' losses.
- Randomness: `jax.random.fold_in(key, state.step)`, so a resumed run draws the same numbers.
- When any loss or gradient is not finite the whole update is dropped inside the program (the
  state keeps its old values, `step` still advances, `skipped` counts it): one bad batch cannot
  poison the parameters, and the host need not look at every step.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import jax
import jax.numpy as jnp
import optax

from jaxgan import losses as losses_lib
from jaxgan import penalties as penalties_lib
from jaxgan.augment import AugmentFn, flip_translate
from jaxgan.schedules import ScalarOrSchedule
from jaxgan.step import labels as labels_lib
from jaxgan.step import options, updates
from jaxgan.step import regularization as reg
from jaxgan.step.state import GAN, GANState

Metrics = dict[str, jax.Array]
Batch = jax.Array | Mapping[str, jax.Array]
TrainStep = Callable[[GANState, Batch, jax.Array], tuple[GANState, Metrics]]


def make_train_step(
  gan: GAN,
  *,
  loss: str | losses_lib.GANLoss = "non_saturating",
  penalty: str | penalties_lib.PenaltyFn | None = None,
  penalty_weight: ScalarOrSchedule = 10.0,
  penalties: Mapping[str | penalties_lib.PenaltyFn, ScalarOrSchedule] | None = None,
  penalty_every: int = 1,
  penalty_options: Mapping[str, object] | None = None,
  n_critic: int = 1,
  ema_decay: ScalarOrSchedule = 0.999,
  weight_clip: float | None = None,
  augment: AugmentFn | None = None,
  augment_p: ScalarOrSchedule | None = None,
  ada_target: float | None = None,
  ada_kimg: float = 500.0,
  ada_interval: int = 4,
  consistency_weight: ScalarOrSchedule = 0.0,
  consistency_transform: AugmentFn | None = None,
  lecam_weight: ScalarOrSchedule = 0.0,
  lecam_decay: float = 0.99,
  fake_label_probs: Sequence[float] | None = None,
  class_weight: float = 1.0,
  skip_nonfinite: bool = True,
) -> TrainStep:
  """Builds the train step of a GAN: `n_critic` critic updates and one generator update.

  The step's semantics are those of the module docstring; it is pure, to be jitted once
  (`jaxgan.step.sharding.jit_train_step` on a mesh, or plain `jax.jit`). Every weight, the EMA decay
  and the augmentation probability may be a number or a schedule `step -> value` of the train
  step (`jaxgan.schedules`), evaluated inside the program from `state.step`.

  Args:
    gan: the static modules, optimizers and latent shape.
    loss: a name in `jaxgan.losses.LOSSES` or a `jaxgan.losses.GANLoss`.
    penalty: shorthand for `penalties={penalty: penalty_weight}`.
    penalty_weight: the weight of `penalty`.
    penalties: a mapping from a name in `jaxgan.penalties.PENALTIES` or a function
      `f(critic_fn, real, fake, key) -> scalar` (a `jaxgan.penalties.Penalty` to say where it is
      taken) to its weight; every one is added to the critic loss times its weight (R3GAN:
      {'r1': g/2, 'r2': g/2}).
    penalty_every: lazy regularisation (Karras et al. 2020, StyleGAN2): the penalties are
      computed on every k-th critic update only, with their weights times k; one program, the
      other updates skip them with `lax.cond`.
    penalty_options: keyword -> value for every penalty that takes it
      (`regularization.bind_options`), e.g. `{"sigma": 0.1}` for 'approx_r1' and 'approx_r2'.
    n_critic: discriminator updates per generator update; the batch must hold n_critic slices.
    ema_decay: decay of the EMA of the generator parameters, in [0, 1), or a schedule of it
      (`jaxgan.schedules.ema_decay_from_half_life`).
    weight_clip: clip every critic parameter to [-c, c] after each update (original WGAN).
    augment: None, or `f(images, key, p) -> images` (`jaxgan.augment`) applied to real and fake
      images before D in both players' losses and inside the penalties' critic (gradients flow
      through it to G and to the penalised inputs, as in DiffAugment and StyleGAN2-ADA).
    augment_p: the augmentation probability, a number or a schedule; None: 1, or ADA's
      adaptive p when `ada_target` is set.
    ada_target: adapt p inside the step (ADA, Karras et al. 2020) to hold
      r_t = E[sign(D(x_real))] at this target, in (0, 1) (0.6 in the paper); p starts at 0 and
      lives in `state.aug_p`, so a resumed run keeps it.
    ada_kimg: thousands of real images over which ADA's p may move by 1 (500 in the paper).
    ada_interval: train steps between adjustments of p (4 in the paper).
    consistency_weight: bCR (Zhao et al. 2021): the weight of
      `regularizers.consistency_regularizer` on real and on fake images, each (10 in the paper).
    consistency_transform: bCR's transform T, `f(images, key, p) -> images`; None: random flip
      and translation (`jaxgan.augment.flip_translate`).
    lecam_weight: the weight of `regularizers.lecam_regularizer` (Tseng et al. 2021: 0.3); its EMA
      anchors live in `state.lecam_anchors`.
    lecam_decay: the decay of the LeCam anchors (0.99 in the paper).
    fake_label_probs: a class-conditional GAN's distribution of fake labels, float
      `[num_classes]` summing to 1 (e.g. the data set's class frequencies); None: uniform.
    class_weight: the weight of ACGAN's class loss (`jaxgan.losses.acgan_class_loss`), added to
      D's loss on real and fake examples and to G's on fakes, when D has a classifier head.
    skip_nonfinite: drop updates whose losses or gradients are not finite.

  Returns:
    `train_step(state, batch, key) -> (state, metrics)`. `batch` is `[n_critic * b, ...]`
    float32 real examples, or for a class-conditional GAN `{'image': those, 'label': int32
    [n_critic * b]}`; `key` a PRNG key (folded with `state.step`, so the same key may be
    passed every step). The metrics are float32 scalars: `d_loss` (the adversarial term) and
    `penalty` (the sum of the unweighted penalties; with `penalty_every` = k, k times it on the
    updates that compute it and 0 on the others, so its mean is the penalty's) as means over the
    critic updates, `g_loss`, `d_real` and `d_fake` (mean scores), `d_grad_norm` and
    `g_grad_norm` (global gradient norms); `penalty_<name>` for each of several penalties,
    `consistency`, `lecam`, `aug_p` and `ada_rt` when those are on; `d_class` and `g_class`
    (ACGAN's class losses, D's on real plus fake) with a classifier D; with `skip_nonfinite`,
    `skipped` (1 when the update was dropped). The step raises a ValueError at trace time when
    the batch does not split into `n_critic` slices (or a slice into packs).

  Raises:
    ValueError: an unknown loss or penalty name; a penalty on a BatchNorm critic
      (`regularization.check_penalty_critic`, from D's shapes, before anything is compiled); an
      option out of its rule (`jaxgan.step.options.check_options`, an `OptionError` naming the
      argument): `penalty` also in `penalties`, `n_critic`, `penalty_every` or `ada_interval` not
      a positive integer, a negative weight, `ema_decay` or `lecam_decay` outside [0, 1),
      `ada_target` outside (0, 1), without `augment` or with `augment_p`, `ada_kimg` not > 0,
      fake label probabilities of the wrong length, negative or not summing to 1, a
      class-conditional GAN with packing, a penalty option that no penalty takes; LeCam on a
      critic of several heads (`regularization.check_lecam_critic`).

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
  weights = options.merge_penalties(penalties, penalty, penalty_weight)
  options.check_options(
    penalties=weights,
    penalty_every=penalty_every,
    n_critic=n_critic,
    ema_decay=ema_decay,
    augment=augment,
    augment_p=augment_p,
    ada_target=ada_target,
    ada_kimg=ada_kimg,
    ada_interval=ada_interval,
    consistency_weight=consistency_weight,
    lecam_weight=lecam_weight,
    lecam_decay=lecam_decay,
    num_classes=gan.num_classes,
    pack=gan.pack,
    fake_label_probs=fake_label_probs,
    class_weight=class_weight,
  )
  pens = reg.Penalties(weights, penalty_every, penalty_options)
  reg.check_penalty_critic(gan, pens.fns)
  if augment_p is None:
    augment_p = 1.0
  D, m, num_classes = gan.discriminator, gan.pack, gan.num_classes
  use_cr = callable(consistency_weight) or consistency_weight > 0
  use_lecam = callable(lecam_weight) or lecam_weight > 0
  if use_lecam:
    reg.check_lecam_critic(gan)
  critic_update = updates.make_critic_update(
    gan,
    gan_loss,
    augment=augment,
    class_weight=class_weight,
    weight_clip=weight_clip,
    penalty_term=reg.penalty_term(D, pens, augment=augment, pack=m),
    penalty_names=pens.metric_names(),
    consistency_term=reg.consistency_term(
      D, consistency_weight, consistency_transform or flip_translate, pack=m
    )
    if use_cr
    else None,
    lecam_term=reg.lecam_term(lecam_weight, lecam_decay) if use_lecam else None,
  )
  critic_update = reg.lazily(critic_update, pens)
  ada = None if ada_target is None else reg.ada_controller(ada_target, ada_kimg, ada_interval, m)
  generator_update = updates.make_generator_update(
    gan, gan_loss, augment=augment, class_weight=class_weight
  )

  def train_step(state: GANState, batch: Batch, key: jax.Array):
    reals, real_labels = _critic_slices(batch, num_classes, n_critic, m)
    b = reals.shape[1]
    key = jax.random.fold_in(key, state.step)
    d_keys, z_keys, g_aug_key = jax.random.split(key, 3)
    d_keys = jax.random.split(d_keys, n_critic)
    z_keys = jax.random.split(z_keys, n_critic)
    p = state.aug_p if ada_target is not None else reg.value(augment_p, state.step)
    # The fakes' labels come from a key of their own, so an unconditional run's draws are
    # those of a conditional one.
    y_fakes = [
      _fake_labels(jax.random.fold_in(z, 1), b, num_classes, fake_label_probs) for z in z_keys
    ]
    critic = updates.Critic(state.d_params, state.d_vars, state.d_opt_state, state.lecam_anchors)
    g_vars, d_metrics, signs = state.g_vars, [], []

    def critic_step(critic: updates.Critic, i: int, fake: jax.Array) -> updates.Critic:
      u = state.step * n_critic + i  # the critic update's index, for lazy regularisation
      args = (critic, reals[i], fake, (real_labels[i], y_fakes[i]), d_keys[i], u, state.step, p)
      critic, sign_count, metrics = critic_update(*args)
      d_metrics.append(metrics)
      signs.append(sign_count)
      return critic

    # A Python loop over the static count, not lax.scan: on XLA:CPU a scanned critic update with
    # a gradient penalty runs many times slower than the same update unrolled.
    for i in range(n_critic - 1):
      fake, g_vars = updates.generate(gan, state.g_params, g_vars, z_keys[i], b, y_fakes[i])
      critic = critic_step(critic, i, fake)
    # The last critic update and the generator update share one forward pass of G.
    g_forward = lambda g_params: updates.generate(gan, g_params, g_vars, z_keys[-1], b, y_fakes[-1])
    fake, g_vjp, g_vars = jax.vjp(g_forward, state.g_params, has_aux=True)
    critic = critic_step(critic, n_critic - 1, jax.lax.stop_gradient(fake))
    g_params, g_opt_state, g_grads, g_metrics = generator_update(
      state, critic, g_vjp, fake, y_fakes[-1], reals, real_labels, g_aug_key, p
    )
    ema_params = updates.ema_update(g_params, state.ema_params, ema_decay, state.step)

    metrics = jax.tree.map(lambda *xs: sum(xs) / n_critic, *d_metrics)
    metrics.update(g_grad_norm=optax.tree.norm(g_grads), **g_metrics)
    aug_p, ada_stats = jnp.asarray(p, jnp.float32), state.ada_stats
    if augment is not None:
      metrics["aug_p"] = aug_p
    if ada is not None:
      aug_p, ada_stats, metrics["ada_rt"] = ada(aug_p, ada_stats, signs, state.step)
    new_state = GANState(
      step=state.step + 1,
      g_params=g_params,
      d_params=critic.params,
      g_vars=g_vars,
      d_vars=critic.vars,
      ema_params=ema_params,
      g_opt_state=g_opt_state,
      d_opt_state=critic.opt_state,
      skipped=state.skipped,
      aug_p=aug_p,
      ada_stats=ada_stats,
      lecam_anchors=critic.lecam_anchors,
    )
    if skip_nonfinite:
      return updates.keep_finite(new_state, state, metrics)
    return new_state, metrics

  return train_step


def _critic_slices(batch: Batch, num_classes: int, n_critic: int, pack: int):
  """The batch as `n_critic` slices of real examples (and labels), slice i = `batch[i::n_critic]`.

  Interleaved, so that every device's shard of a data-parallel batch holds its part of every
  slice. Raises a ValueError (at trace time) for a batch that does not split into `n_critic`
  slices, or slices that do not split into packs.

  Returns:
    `(reals [n_critic, b, ...], labels)`: labels int32 `[n_critic, b]`, or `n_critic` Nones for
    an unconditional GAN.
  """
  batch, labels = labels_lib.split_batch(batch, num_classes)
  options.check_batch(batch.shape[0], n_critic, pack)
  b = batch.shape[0] // n_critic
  reals = batch.reshape(b, n_critic, *batch.shape[1:]).swapaxes(0, 1)  # reals[i] = batch[i::n]
  if labels is None:
    return reals, [None] * n_critic
  return reals, labels.reshape(b, n_critic).swapaxes(0, 1)


def _fake_labels(key: jax.Array, n: int, num_classes: int, probs) -> jax.Array | None:
  """The labels of `n` fakes of a class-conditional GAN; None for an unconditional one."""
  if not num_classes:
    return None
  return labels_lib.sample_labels(key, n, num_classes, probs)
