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

import functools
from collections.abc import Callable, Mapping, Sequence

import jax
import jax.numpy as jnp
import optax

from jaxgan import losses as losses_lib
from jaxgan import penalties as penalties_lib
from jaxgan import regularizers as reg
from jaxgan.augment import AugmentFn, flip_translate
from jaxgan.schedules import ScalarOrSchedule
from jaxgan.step import critic as critic_lib
from jaxgan.step import labels as labels_lib
from jaxgan.step import packing, sharding
from jaxgan.step.state import GAN, GANState

Metrics = dict[str, jax.Array]
Batch = jax.Array | Mapping[str, jax.Array]
TrainStep = Callable[[GANState, Batch, jax.Array], tuple[GANState, Metrics]]


def _all_finite(tree) -> jax.Array:
  leaves = [jnp.all(jnp.isfinite(x)) for x in jax.tree.leaves(tree)]
  return jnp.all(jnp.stack(leaves)) if leaves else jnp.array(True)


def make_train_step(
  gan: GAN,
  *,
  loss: str | losses_lib.GANLoss = "non_saturating",
  penalty: str | penalties_lib.PenaltyFn | None = None,
  penalty_weight: ScalarOrSchedule = 10.0,
  penalties: Mapping[str | penalties_lib.PenaltyFn, ScalarOrSchedule] | None = None,
  penalty_every: int = 1,
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
    penalties: a mapping from a name in `jaxgan.penalties.PENALTIES` ('wgan_gp', 'wgan_lp', 'r1',
      'r2', 'dragan') or a function `f(critic_fn, real, fake, key) -> scalar` to its weight;
      every one is added to the critic loss times its weight (R3GAN: {'r1': g/2, 'r2': g/2}).
    penalty_every: lazy regularisation (Karras et al. 2020, StyleGAN2): the penalties are
      computed on every k-th critic update only, with their weights times k; one program, the
      other updates skip them with `lax.cond`.
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
    the batch does not split into `n_critic` slices, or when a penalty meets a BatchNorm critic
    (`check_penalty_critic`).

  Raises:
    ValueError: an unknown loss or penalty name, `n_critic`, `penalty_every` or `ada_interval`
      not a positive integer, a negative weight, `ema_decay` outside [0, 1), `ada_target`
      outside (0, 1), `ada_target` with `augment_p`, or ADA or bCR options without `augment`;
      fake label probabilities of the wrong length, negative or not summing to 1; a
      class-conditional GAN with packing.

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
  weights = dict(penalties or {})
  if penalty is not None:
    if penalty in weights:
      raise ValueError(
        f"Penalty {reg.penalty_name(penalty)!r} is given twice: as penalty and in penalties."
      )
    weights[penalty] = penalty_weight
  pens = reg.Penalties(weights, penalty_every)
  reg.check_weight("the consistency regulariser", consistency_weight)
  reg.check_weight("the LeCam regulariser", lecam_weight)
  for name, count in (("n_critic", n_critic), ("ada_interval", ada_interval)):
    if not isinstance(count, int) or isinstance(count, bool) or count < 1:
      raise ValueError(f"{name} must be a positive integer; got {count!r}.")
  if not callable(ema_decay) and not 0.0 <= ema_decay < 1.0:
    raise ValueError(f"ema_decay must lie in [0, 1); got {ema_decay}.")
  if not 0.0 <= lecam_decay < 1.0:
    raise ValueError(f"lecam_decay must lie in [0, 1); got {lecam_decay}.")
  reg.check_ada(augment, augment_p, ada_target, ada_kimg)
  if augment_p is None:
    augment_p = 1.0
  use_cr = callable(consistency_weight) or consistency_weight > 0
  use_lecam = callable(lecam_weight) or lecam_weight > 0
  if use_cr and consistency_transform is None:
    consistency_transform = flip_translate
  G, D = gan.generator, gan.discriminator
  m, num_classes = gan.pack, gan.num_classes
  labels_lib.check_conditioning(num_classes, m, fake_label_probs)
  reg.check_weight("the class loss", class_weight)

  def fake_labels(key, n):
    if not num_classes:
      return None
    return labels_lib.sample_labels(key, n, num_classes, fake_label_probs)

  def augmented(x, key, p):
    return x if augment is None else augment(x, key, p)

  def generate(g_params, g_vars, key, n, labels):
    # Latents are made inside the step: without the constraint XLA would run G in full on every
    # device of a data-parallel mesh.
    z = sharding.shard_batch(gan.latents(key, n))
    return critic_lib.apply_module(G, g_params, g_vars, z, True, labels)

  def penalty_terms(params, d_vars, real, fake, labels, aug_keys, pen_key, step, p):
    """The penalties on packed raw inputs, D behind the augmentation draw of its loss.

    Penalties at reals (and their interpolates) use the reals' key and labels, those at fakes
    (`jaxgan.penalties.ON_FAKES`) the fakes': each differentiates, with respect to the images
    only, the function D's loss evaluated, as R3GAN's and StyleGAN2-ADA's trainers do.
    """

    def critic_with(y, aug_key):
      return critic_lib.penalty_critic(D, params, d_vars, y, augment, aug_key, p, m)

    real_p, fake_p = packing.pack(real, m), packing.pack(fake, m)
    on_real, on_fake = critic_with(labels[0], aug_keys[0]), critic_with(labels[1], aug_keys[1])
    return pens(on_real, real_p, fake_p, pen_key, step, on_fake)

  def d_update(carry, real, fake, labels, key, u, step, p, penalize):
    """One critic update; `penalize` (static): compute the penalties (weights x k when lazy).

    `labels` is `(y_real, y_fake)`, both None for an unconditional GAN.
    """
    d_params, d_vars, d_opt_state, anchors = carry
    keys = jax.random.split(key, 5)
    real_aug, fake_aug = augmented(real, keys[0], p), augmented(fake, keys[1], p)
    real_in, fake_in = packing.pack(real_aug, m), packing.pack(fake_aug, m)

    def d_loss_fn(params):
      (s_real, s_fake), logits, new_vars = critic_lib.critic_scores(
        D, params, d_vars, real_in, fake_in, *labels
      )
      adversarial = gan_loss.d(s_real, s_fake)
      total = adversarial
      aux = {}
      if logits[0] is not None and class_weight > 0:
        cls = losses_lib.acgan_class_loss(logits[0], labels[0])
        cls += losses_lib.acgan_class_loss(logits[1], labels[1])
        total = total + class_weight * cls
        aux["d_class"] = cls
      values = {n: jnp.zeros((), jnp.float32) for n in pens.fns}
      if penalize:
        values, weighted = penalty_terms(
          params, new_vars, real, fake, labels, keys[:2], keys[2], step, p
        )
        total = total + weighted
      aux["penalty"] = sum(values.values(), jnp.zeros((), jnp.float32))
      if len(values) > 1:
        aux.update({pens.metric_names()[n]: v for n, v in values.items()})
      if use_cr:
        transformed = []
        for x, y, k in ((real_aug, labels[0], keys[3]), (fake_aug, labels[1], keys[4])):
          x = packing.pack(consistency_transform(x, k, 1.0), m)
          s, _, new_vars = critic_lib.discriminate(D, params, new_vars, x, y)
          transformed.append(s)
        cr = reg.consistency_regularizer(s_real, transformed[0])
        cr += reg.consistency_regularizer(s_fake, transformed[1])
        total = total + reg.value(consistency_weight, step) * cr
        aux["consistency"] = cr
      new_anchors = anchors
      if use_lecam:
        new_anchors = reg.update_lecam_anchors(anchors, s_real, s_fake, lecam_decay, u == 0)
        lecam = reg.lecam_regularizer(s_real, s_fake, new_anchors[0], new_anchors[1])
        total = total + reg.value(lecam_weight, step) * lecam
        aux["lecam"] = lecam
      aux.update(d_loss=adversarial, d_real=jnp.mean(s_real), d_fake=jnp.mean(s_fake))
      signs = jnp.sum(jnp.sign(jax.lax.stop_gradient(s_real)))
      return total, (new_vars, new_anchors, signs, s_real.size, aux)

    grads, (d_vars, anchors, signs, count, metrics) = jax.grad(d_loss_fn, has_aux=True)(d_params)
    updates, d_opt_state = gan.d_optimizer.update(grads, d_opt_state, d_params)
    d_params = optax.apply_updates(d_params, updates)
    if weight_clip is not None:
      d_params = penalties_lib.clip_weights(d_params, weight_clip)
    metrics["d_grad_norm"] = optax.tree.norm(grads)
    return (d_params, d_vars, d_opt_state, anchors), (signs, count), metrics

  def train_step(state: GANState, batch: Batch, key: jax.Array):
    batch, labels = labels_lib.split_batch(batch, num_classes)
    if batch.shape[0] % n_critic:
      raise ValueError(
        f"The batch of {batch.shape[0]} examples does not split into "
        f"n_critic={n_critic} equal slices; use a multiple of {n_critic}."
      )
    reg.check_penalty_critic(gan, state, list(pens.fns))
    b = batch.shape[0] // n_critic
    if b % m:
      raise ValueError(
        f"Each critic update sees {b} examples, which do not split into packs of "
        f"{m}; make the batch size per critic update a multiple of {m}."
      )
    reals = batch.reshape(b, n_critic, *batch.shape[1:]).swapaxes(0, 1)  # reals[i] = batch[i::n]
    real_labels = [None] * n_critic
    if labels is not None:
      real_labels = labels.reshape(b, n_critic).swapaxes(0, 1)
    key = jax.random.fold_in(key, state.step)
    d_keys, z_keys, g_aug_key = jax.random.split(key, 3)
    d_keys = jax.random.split(d_keys, n_critic)
    z_keys = jax.random.split(z_keys, n_critic)
    p = state.aug_p if ada_target is not None else reg.value(augment_p, state.step)

    g_vars = state.g_vars
    carry = (state.d_params, state.d_vars, state.d_opt_state, state.lecam_anchors)
    d_metrics, signs = [], []

    def critic_update(carry, i, fake, y_fake):
      u = state.step * n_critic + i  # the critic update's index, for lazy regularisation
      args = (carry, reals[i], fake, (real_labels[i], y_fake), d_keys[i], u, state.step, p)
      if pens.every == 1:
        return d_update(*args, penalize=bool(pens))
      # Lazy: the whole update in each branch, so the skipping one computes no penalty at all
      # (a cond inside the differentiated loss would carry the penalty's residuals as zeros).
      with_penalty = functools.partial(d_update, penalize=True)
      without = functools.partial(d_update, penalize=False)
      return jax.lax.cond(u % pens.every == 0, with_penalty, without, *args)

    # A Python loop over the static count, not lax.scan: on XLA:CPU a scanned critic update with
    # a gradient penalty runs many times slower than the same update unrolled.
    # The fakes' labels come from a key of their own, so an unconditional run's draws are
    # those of a conditional one.
    y_fakes = [fake_labels(jax.random.fold_in(z, 1), b) for z in z_keys]
    for i in range(n_critic - 1):
      fake, g_vars = generate(state.g_params, g_vars, z_keys[i], b, y_fakes[i])
      carry, sign_count, metrics = critic_update(carry, i, fake, y_fakes[i])
      d_metrics.append(metrics)
      signs.append(sign_count)

    # Last critic update and generator update share one forward pass of G.
    def g_forward(g_params):
      return generate(g_params, g_vars, z_keys[-1], b, y_fakes[-1])

    fake, g_vjp, g_vars = jax.vjp(g_forward, state.g_params, has_aux=True)
    carry, sign_count, last = critic_update(
      carry, n_critic - 1, jax.lax.stop_gradient(fake), y_fakes[-1]
    )
    d_metrics.append(last)
    signs.append(sign_count)
    d_params, d_vars, d_opt_state, lecam_anchors = carry
    fake_key, real_key = jax.random.split(g_aug_key)

    def g_loss_fn(fake):
      # D's statistics updates from the generator pass are discarded, as in PyTorch's DCGAN.
      # Two passes: the real one is dead code for the losses whose G term ignores real scores.
      fake_in = packing.pack(augmented(fake, fake_key, p), m)
      s_fake, l_fake, _ = critic_lib.discriminate(D, d_params, d_vars, fake_in, y_fakes[-1])
      real = packing.pack(augmented(reals[-1], real_key, p), m)
      s_real, _, _ = critic_lib.discriminate(D, d_params, d_vars, real, real_labels[-1])
      loss = gan_loss.g(jax.lax.stop_gradient(s_real), s_fake)
      if l_fake is None or class_weight == 0:
        return loss, {"g_loss": loss}
      cls = losses_lib.acgan_class_loss(l_fake, y_fakes[-1])
      return loss + class_weight * cls, {"g_loss": loss, "g_class": cls}

    (_, g_aux), d_fake_image = jax.value_and_grad(g_loss_fn, has_aux=True)(fake)
    (g_grads,) = g_vjp(d_fake_image)
    g_updates, g_opt_state = gan.g_optimizer.update(g_grads, state.g_opt_state, state.g_params)
    g_params = optax.apply_updates(state.g_params, g_updates)
    beta = reg.value(ema_decay, state.step)
    ema_params = optax.incremental_update(g_params, state.ema_params, 1.0 - beta)

    metrics = jax.tree.map(lambda *xs: sum(xs) / n_critic, *d_metrics)
    metrics.update(g_grad_norm=optax.tree.norm(g_grads), **g_aux)
    aug_p, ada_stats = jnp.asarray(p, jnp.float32), state.ada_stats
    if augment is not None:
      metrics["aug_p"] = aug_p
    if ada_target is not None:
      sign_sum, count = sum(s for s, _ in signs), sum(c for _, c in signs)
      metrics["ada_rt"] = sign_sum / count
      due = (state.step + 1) % ada_interval == 0
      aug_p, ada_stats = reg.ada_update(
        aug_p, ada_stats, sign_sum, count, due, target=ada_target, ada_kimg=ada_kimg, pack=m
      )
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
      aug_p=aug_p,
      ada_stats=ada_stats,
      lecam_anchors=lecam_anchors,
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
