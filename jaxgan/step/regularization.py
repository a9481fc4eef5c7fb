"""The critic's regularisation inside the train step: penalties, bCR, LeCam, and ADA's p.

The maths is pure and lives above the step (`jaxgan.penalties`, `jaxgan.regularizers`); this
module applies it to a GAN's discriminator: each term is built once by a named builder
(`penalty_term`, `consistency_term`, `lecam_term`) and returns what the critic loss adds, so the
critic update (`jaxgan.step.updates`) reads as the sum of its terms. `Penalties` holds a run's
gradient penalties with their weights and lazy interval (Karras et al. 2020: computed on every
k-th critic update only, weights times k; `lazily` runs the critic update that way), and
`ada_controller` moves ADA's probability after each train step.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Mapping

import jax
import jax.numpy as jnp

from jaxgan import penalties as penalties_lib
from jaxgan import regularizers
from jaxgan.errors import OptionError
from jaxgan.schedules import ScalarOrSchedule
from jaxgan.step import critic as critic_lib
from jaxgan.step import packing
from jaxgan.step.state import GAN


def value(x: ScalarOrSchedule, step: jax.Array) -> jax.Array:
  """A hyperparameter at a train step: a number, or a schedule called with the step.

  Args:
    x: a number or a schedule `step -> value` (`jaxgan.schedules`).
    step: the train step, an int32 scalar (may be traced).

  Returns:
    float32 scalar.
  """
  return jnp.asarray(x(step) if callable(x) else x, jnp.float32)


def penalty_name(penalty: str | penalties_lib.PenaltyFn) -> str:
  """A penalty's name: itself, a `Penalty`'s name, or a function's `__name__`."""
  if isinstance(penalty, str):
    return penalty
  return getattr(penalty, "name", getattr(penalty, "__name__", repr(penalty)))


def check_penalty_critic(gan: GAN, penalties) -> None:
  """Refuses gradient penalties on a BatchNorm critic, from D's variables' shapes alone.

  BatchNorm in training mode mixes the examples of a batch, so the per-example input gradients
  every penalty needs would be wrong. `make_train_step` calls this before anything is compiled.

  Args:
    gan: the GAN whose discriminator is checked.
    penalties: the penalties (names in `jaxgan.penalties.PENALTIES` or functions, named in the
      error by their `__name__`); none: nothing to check.

  Raises:
    ValueError: when there is a penalty and the discriminator uses BatchNorm; the message
      names the penalties and the normalisations that work.
  """
  named = list(penalties)
  if named and gan.critic_uses_batch_norm():
    raise ValueError(
      f"The {', '.join(repr(penalty_name(p)) for p in named)} penalty needs per-example input "
      "gradients, but the discriminator uses BatchNorm, which mixes the examples of a batch. Use "
      "a discriminator normalised with 'layer', 'spectral' or 'none' (in a run config: "
      "--config.model.d_norm=layer)."
    )


def bind_options(penalties, options: Mapping | None) -> dict:
  """Each penalty's function, with the options among its keywords bound (`penalties.with_options`).

  Args:
    penalties: names in `jaxgan.penalties.PENALTIES` or functions.
    options: keyword -> value, each given to every penalty that takes it (e.g. `sigma` to
      'approx_r1' and 'approx_r2', `target` to 'wgan_gp'); None or empty: none.

  Returns:
    A dict from each penalty to `f(critic_fn, real, fake, key) -> scalar`.

  Raises:
    ValueError: an unknown penalty name, or an option value the penalty refuses (a sigma <= 0).
    OptionError: an option that none of the penalties takes (naming those they take).
  """
  options = dict(options or {})
  taken = {p: penalties_lib.keywords(p) for p in penalties}
  unused = sorted(k for k in options if not any(k in kws for kws in taken.values()))
  if unused:
    if not taken:
      raise OptionError(
        f"$penalty_options {unused} are options of penalties, and there is no penalty; name one "
        "($penalty or $penalties, e.g. approx_r1 for sigma) or drop the options."
      )
    names = ", ".join(f"{penalty_name(p)}: {kws}" for p, kws in taken.items())
    raise OptionError(
      f"$penalty_options {unused} are taken by none of the run's penalties ({names}); give "
      "only keywords of those penalties."
    )
  fns = {p: penalties_lib.get(p) for p in penalties}
  for p, kws in taken.items():
    mine = {k: v for k, v in options.items() if k in kws}
    if mine:
      fns[p] = penalties_lib.with_options(p, **mine)
      # Traced once on shapes, with a linear critic of one feature: the penalty's own checks of
      # its options (a sigma <= 0) fire now rather than when the step compiles.
      x, fn = jax.ShapeDtypeStruct((2, 1), jnp.float32), fns[p]
      jax.eval_shape(lambda v, fn=fn: fn(lambda u: u[:, 0], v, v, jax.random.key(0)), x)
  return fns


class Penalties:
  """The gradient penalties of a run, with their weights and lazy interval.

  Args:
    penalties: a mapping from a name in `jaxgan.penalties.PENALTIES` or a function
      `f(critic_fn, real, fake, key) -> scalar` to its weight (a number >= 0 or a schedule;
      checked by `jaxgan.step.options.check_options`).
    every: compute them on every k-th critic update only, weights times k (StyleGAN2's lazy
      regularisation, k = 16); 1: every update.
    options: keyword arguments for the penalties that take them (`bind_options`), e.g.
      `{"sigma": 0.1}` for the approximate R1.

  Raises:
    ValueError: an unknown penalty name, listing the valid ones.

  Example:
    >>> pens = Penalties({"r1": 0.5, "r2": 0.5})
    >>> critic = lambda x: x @ jnp.array([3.0, 4.0])
    >>> values, total = pens(critic, jnp.ones((2, 2)), jnp.ones((2, 2)), jax.random.key(0), 0)
    >>> {k: float(v) for k, v in values.items()}, float(total)
    ({'r1': 25.0, 'r2': 25.0}, 25.0)
  """

  def __init__(self, penalties: Mapping, every: int = 1, options: Mapping | None = None):
    self.weights = dict(penalties)
    self.fns = bind_options(self.weights, options)
    self.every = every

  def __bool__(self) -> bool:
    return bool(self.fns)

  def metric_names(self) -> dict:
    """Each penalty's metric name, `penalty_<name>`."""
    return {p: "penalty_" + re.sub(r"\W", "", penalty_name(p)) for p in self.fns}

  def __call__(self, critic_fn, real, fake, key, step, fake_critic_fn=None):
    """Computes the penalties at a critic update that is due (every one, or every k-th).

    The train step decides which updates are due (`lazily`); here each value is scaled by k.

    Args:
      critic_fn: maps `[batch, ...]` inputs to scores `[batch]`; a class-conditional critic
        closed over the real examples' labels.
      real: real critic inputs, `[batch, ...]`.
      fake: generated critic inputs, the same shape.
      key: a PRNG key, split over the penalties.
      step: the train step (int32, may be traced), for scheduled weights.
      fake_critic_fn: a class-conditional critic closed over the fakes' labels, which the
        penalties taken at the fakes (`jaxgan.penalties.taken_at`) use; None: `critic_fn`.

    Returns:
      `(values, total)`: a dict from each penalty (its key in the mapping) to its unweighted
      value times k (so its mean over all updates is the penalty's), and the weighted sum of
      those, to add to the critic loss. float32 scalars.
    """
    keys = jax.random.split(key, len(self.fns))
    on_fakes = fake_critic_fn or critic_fn
    values = {
      p: self.every
      * f(on_fakes if penalties_lib.taken_at(p) == "fakes" else critic_fn, real, fake, k)
      for (p, f), k in zip(self.fns.items(), keys, strict=True)
    }
    total = sum(value(self.weights[p], step) * v for p, v in values.items())
    return values, total


def penalty_term(D, pens: Penalties, *, augment, pack: int) -> Callable:
  """Builds the penalties' term of the critic loss, on packed raw inputs.

  Args:
    D: the discriminator module.
    pens: the run's penalties.
    augment: None, or `f(images, key, p) -> images`, D's augmentation.
    pack: PacGAN's pack size.

  Returns:
    `term(params, d_vars, real, fake, labels, aug_keys, key, step, p) -> (values, weighted)`:
    real and fake `[b, ...]` unpacked and unaugmented, labels and aug_keys `(real's, fake's)`.
    Each penalty differentiates, with respect to the images only, the function D's loss
    evaluated: behind the augmentation draw and with the labels of the examples it is taken at
    (the fakes' for those taken at the fakes, the reals' otherwise), as R3GAN's and
    StyleGAN2-ADA's trainers do.
  """

  def term(params, d_vars, real, fake, labels, aug_keys, key, step, p):
    def critic_with(y, aug_key):
      return critic_lib.penalty_critic(D, params, d_vars, y, augment, aug_key, p, pack)

    real_p, fake_p = packing.pack(real, pack), packing.pack(fake, pack)
    on_real, on_fake = critic_with(labels[0], aug_keys[0]), critic_with(labels[1], aug_keys[1])
    return pens(on_real, real_p, fake_p, key, step, on_fake)

  return term


def consistency_term(D, weight: ScalarOrSchedule, transform, *, pack: int) -> Callable:
  """Builds bCR's term of the critic loss (Zhao et al. 2021), on real and on fake images.

  Args:
    D: the discriminator module.
    weight: bCR's weight (a number or a schedule).
    transform: bCR's `T(images, key, p) -> images`.
    pack: PacGAN's pack size.

  Returns:
    `term(params, d_vars, images, labels, keys, scores, step) -> (cr, weighted, d_vars)`:
    `images`, `labels`, `keys` and `scores` are pairs (real's, fake's), the images as D's loss
    saw them (augmented, not packed) and the scores D gave them; `cr` is the sum of both
    regularisers, `weighted` the weight times it, `d_vars` D's collections after its passes.
  """

  def term(params, d_vars, images, labels, keys, scores, step):
    transformed = []
    for x, y, k in zip(images, labels, keys, strict=True):
      x = packing.pack(transform(x, k, 1.0), pack)
      s, _, d_vars = critic_lib.discriminate(D, params, d_vars, x, y)
      transformed.append(s)
    cr = regularizers.consistency_regularizer(scores[0], transformed[0])
    cr += regularizers.consistency_regularizer(scores[1], transformed[1])
    return cr, value(weight, step) * cr, d_vars

  return term


def check_lecam_critic(gan: GAN) -> None:
  """Refuses LeCam on a critic of several heads, from D's shapes, before anything is compiled.

  Raises:
    ValueError: D returns several heads; LeCam keeps one pair of anchors.
  """
  if gan.critic_has_heads():
    raise ValueError(
      "LeCam keeps one pair of anchors (EMAs of D's mean real and fake scores), but this "
      "discriminator scores with several heads. Set lecam_weight=0 (in a run config: "
      "--config.loss.lecam_weight=0), or use a critic with one score per example."
    )


def lecam_term(weight: ScalarOrSchedule, decay: float) -> Callable:
  """Builds LeCam's term of the critic loss (Tseng et al. 2021), with its anchors' update.

  Args:
    weight: the regulariser's weight (a number or a schedule).
    decay: the decay of its EMA anchors.

  Returns:
    `term(anchors, s_real, s_fake, first, step) -> (lecam, weighted, anchors)`: the anchors
    (float32 `[2]`) updated with these scores first (set to them on the run's first update).
  """

  def term(anchors, s_real, s_fake, first, step):
    anchors = regularizers.update_lecam_anchors(anchors, s_real, s_fake, decay, first)
    lecam = regularizers.lecam_regularizer(s_real, s_fake, anchors[0], anchors[1])
    return lecam, value(weight, step) * lecam, anchors

  return term


def lazily(critic_update: Callable, pens: Penalties) -> Callable:
  """A critic update that computes the penalties on every k-th update only (`pens.every`).

  Args:
    critic_update: `update(carry, real, fake, labels, key, u, step, p, penalize)`, `penalize`
      static.
    pens: the run's penalties.

  Returns:
    `update(carry, real, fake, labels, key, u, step, p)`, u the critic update's index: with
    k = 1 the update itself (with the penalties when there are any); else a `lax.cond` on
    u % k == 0 between the whole update with and without them, so the skipping branch computes
    no penalty at all (a cond inside the differentiated loss would carry the penalty's
    residuals as zeros).
  """
  if pens.every == 1:
    return functools.partial(critic_update, penalize=bool(pens))
  with_penalty = functools.partial(critic_update, penalize=True)
  without = functools.partial(critic_update, penalize=False)

  def update(carry, real, fake, labels, key, u, step, p):
    args = (carry, real, fake, labels, key, u, step, p)
    return jax.lax.cond(u % pens.every == 0, with_penalty, without, *args)

  return update


def ada_controller(target: float, ada_kimg: float, interval: int, pack: int) -> Callable:
  """Builds ADA's control of the augmentation probability after each train step.

  Args:
    target: the r_t = E[sign(D(x_real))] to hold (0.6 in the paper).
    ada_kimg: thousands of images over which p may move by 1.
    interval: train steps between adjustments of p.
    pack: examples per score (PacGAN).

  Returns:
    `control(p, stats, signs, step) -> (p, stats, r_t)`: `p` float32, `stats` float32 `[2]`
    (the sum of sign(D(x_real)) and its count since the last adjustment), `signs` the step's
    `(sum, count)` per critic update, `step` the train step before this one ended. The sums are
    gathered every step, and p adjusted (`jaxgan.regularizers.adjust_ada_p`) and the sums reset
    every `interval` steps; `r_t` is this step's mean sign.
  """

  def control(p, stats, signs, step):
    sign_sum, count = sum(s for s, _ in signs), sum(c for _, c in signs)
    r_t = sign_sum / count
    due = (step + 1) % interval == 0
    stats = stats + jnp.stack([sign_sum, count])
    adjusted = regularizers.adjust_ada_p(p, stats[0] / stats[1], target, stats[1] * pack, ada_kimg)
    p = jnp.where(due, adjusted, p)
    return p, jnp.where(due, jnp.zeros_like(stats), stats), r_t

  return control
