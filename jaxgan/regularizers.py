"""The critic's regularisation beyond the gradient penalties, and how the train step applies it.

bCR's `consistency_regularizer` and LeCam's `lecam_regularizer` (with `update_lecam_anchors`) are
pure functions of D's scores, usable with any model library.

`Penalties` holds the gradient penalties of a run, each with a weight that may be a schedule of
the train step, and the interval of lazy regularisation (Karras et al. 2020): the train step
computes them on every k-th critic update only, with their weights times k. `adjust_ada_p` is ADA's controller of the augmentation
probability. The penalty functions themselves are in `jaxgan.penalties`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import jax
import jax.numpy as jnp

from jaxgan import penalties as penalties_lib
from jaxgan.schedules import ScalarOrSchedule
from jaxgan.step.state import GAN, GANState


def consistency_regularizer(scores: jax.Array, transformed_scores: jax.Array) -> jax.Array:
  """Consistency regulariser of bCR (Zhao et al. 2021, "Improved consistency regularization").

  penalty = E[(D(x) - D(T(x)))^2] for a semantics-preserving transform T (bCR: random flip and a
  translation of a few pixels, `jaxgan.augment.flip_translate`). Balanced CR applies it to real
  and to generated examples, each with its own weight (10 and 10 in the paper's CIFAR-10 runs);
  on generated examples it trains D only (the generator's loss does not include it).

  Args:
    scores: D(x), `[batch]` raw scores.
    transformed_scores: D(T(x)) for the same examples, `[batch]`.

  Returns:
    The mean squared difference, a float32 scalar.

  Raises:
    ValueError: when the two differ in shape.

  Example:
    >>> float(consistency_regularizer(jnp.array([1.0, 2.0]), jnp.array([0.0, 4.0])))
    2.5
  """
  if jnp.shape(scores) != jnp.shape(transformed_scores):
    raise ValueError(
      f"consistency_regularizer needs scores of one shape; got {jnp.shape(scores)} and "
      f"{jnp.shape(transformed_scores)}."
    )
  diff = scores.astype(jnp.float32) - transformed_scores.astype(jnp.float32)
  return jnp.mean(jnp.square(diff))


def lecam_regularizer(
  real_scores: jax.Array, fake_scores: jax.Array, anchor_real: jax.Array, anchor_fake: jax.Array
) -> jax.Array:
  """LeCam regulariser (Tseng et al. 2021, eq. 3): real scores to the fake anchor and back.

  penalty = E[(D(x_real) - a_fake)^2] + E[(D(x_fake) - a_real)^2], where a_real and a_fake are
  exponential moving averages of D's mean scores on real and generated examples
  (`update_lecam_anchors`; treat them as constants). It bounds how far D's real and fake scores
  drift apart, which the paper ties to the LeCam divergence; lambda = 0.3 on CIFAR-10 with
  BigGAN. (The authors' code clips each difference at 0 from one side; this is the paper's
  formula.)

  Args:
    real_scores: D(x_real), `[batch]`.
    fake_scores: D(x_fake), `[batch]`.
    anchor_real: a_real, a scalar.
    anchor_fake: a_fake, a scalar.

  Returns:
    The penalty, a float32 scalar.

  Example:
    >>> float(lecam_regularizer(jnp.array([2.0]), jnp.array([-1.0]), 1.0, -1.0))  # 9 + 4
    13.0
  """
  anchor_real = jax.lax.stop_gradient(jnp.asarray(anchor_real, jnp.float32))
  anchor_fake = jax.lax.stop_gradient(jnp.asarray(anchor_fake, jnp.float32))
  real_term = jnp.mean(jnp.square(real_scores.astype(jnp.float32) - anchor_fake))
  fake_term = jnp.mean(jnp.square(fake_scores.astype(jnp.float32) - anchor_real))
  return real_term + fake_term


def update_lecam_anchors(
  anchors: jax.Array, real_scores: jax.Array, fake_scores: jax.Array, decay: float, first: bool
) -> jax.Array:
  """The EMA anchors of the LeCam regulariser after one critic update.

  Args:
    anchors: float32 `[2]`, (a_real, a_fake) before the update.
    real_scores: D(x_real), `[batch]`.
    fake_scores: D(x_fake), `[batch]`.
    decay: the EMA decay (0.99 in the paper).
    first: a boolean (may be traced): the first update, which sets the anchors to the means.

  Returns:
    float32 `[2]`: decay * anchors + (1 - decay) * (mean real score, mean fake score), or the
    means themselves on the first update; no gradient flows through them.

  Example:
    >>> update_lecam_anchors(jnp.zeros(2), jnp.array([1.0]), jnp.array([-1.0]), 0.9, False)
    Array([ 0.1, -0.1], dtype=float32)
  """
  means = jnp.stack([jnp.mean(real_scores), jnp.mean(fake_scores)]).astype(jnp.float32)
  means = jax.lax.stop_gradient(means)
  return jnp.where(first, means, decay * anchors + (1.0 - decay) * means)


def value(x: ScalarOrSchedule, step: jax.Array) -> jax.Array:
  """A hyperparameter at a train step: a number, or a schedule called with the step.

  Args:
    x: a number or a schedule `step -> value` (`jaxgan.schedules`).
    step: the train step, an int32 scalar (may be traced).

  Returns:
    float32 scalar.
  """
  return jnp.asarray(x(step) if callable(x) else x, jnp.float32)


def check_weight(name: str, weight: ScalarOrSchedule) -> None:
  """Refuses a weight that is neither a number >= 0 nor a schedule.

  Args:
    name: what the weight weighs, for the message.
    weight: the weight.

  Raises:
    ValueError: a negative or non-numeric weight.
  """
  ok = callable(weight) or (
    isinstance(weight, (int, float)) and not isinstance(weight, bool) and weight >= 0
  )
  if not ok:
    raise ValueError(f"The weight of {name} must be a number >= 0 or a schedule; got {weight!r}.")


def penalty_name(penalty: str | penalties_lib.PenaltyFn) -> str:
  """A penalty's name: itself, or a function's `__name__`."""
  return penalty if isinstance(penalty, str) else getattr(penalty, "__name__", repr(penalty))


def check_penalty_critic(gan: GAN, state: GANState, penalty) -> None:
  """Refuses a gradient penalty on a BatchNorm critic.

  BatchNorm in training mode mixes the examples of a batch, so the per-example input gradients
  every penalty needs would be wrong. The train step calls this at trace time; the loop calls it
  before it touches the workdir.

  Args:
    gan: the GAN whose discriminator is checked.
    state: its state (the BatchNorm statistics live in `state.d_vars`).
    penalty: None, a name in `jaxgan.penalties.PENALTIES` or a penalty function (named in the
      error by its `__name__`), or a list of them.

  Raises:
    ValueError: when there is a penalty and the discriminator uses BatchNorm; the message
      names the penalty and the normalisations that work.
  """
  named = [
    p for p in (penalty if isinstance(penalty, (list, tuple)) else [penalty]) if p is not None
  ]
  if named and gan.critic_uses_batch_norm(state):
    raise ValueError(
      f"The {', '.join(repr(penalty_name(p)) for p in named)} penalty needs per-example input "
      "gradients, but the discriminator uses BatchNorm, which mixes the examples of a batch. Use "
      "a discriminator normalised with 'layer', 'spectral' or 'none' (in a run config: "
      "--config.model.d_norm=layer)."
    )


def adjust_ada_p(
  p: jax.Array, mean_sign: jax.Array, target: float, images: float, ada_kimg: float
) -> jax.Array:
  """One adjustment of ADA's augmentation probability (Karras et al. 2020, section 3).

  r_t = E[sign(D(x_real))] measures how sure D is about the (augmented) real images; p moves
  towards the target by sign(r_t - target) * images / (ada_kimg * 1000), so it can cross [0, 1]
  in `ada_kimg` thousand images, and is clipped to [0, 1].

  Args:
    p: float32 scalar, the probability before.
    mean_sign: r_t, the mean of sign(D(x_real)) since the last adjustment.
    target: the r_t to hold (0.6 in the paper).
    images: real images seen since the last adjustment.
    ada_kimg: thousands of images over which p may move by 1 (500 in the paper).

  Returns:
    The new p, float32 in [0, 1].

  Example:
    >>> round(float(adjust_ada_p(jnp.float32(0.5), jnp.float32(0.9), 0.6, 1000.0, 10.0)), 6)
    0.6
  """
  step = jnp.sign(mean_sign - target) * images / (ada_kimg * 1000.0)
  return jnp.clip(p + step, 0.0, 1.0).astype(jnp.float32)


def check_ada(augment, augment_p, ada_target: float | None, ada_kimg: float) -> None:
  """Checks ADA's options (Karras et al. 2020) as the train step takes them.

  Raises:
    ValueError: `ada_target` without an augmentation, outside (0, 1), or with a fixed
      `augment_p`; `ada_kimg` not > 0.
  """
  if ada_target is not None:
    if augment is None:
      raise ValueError("ada_target adapts the probability of an augmentation: pass augment too.")
    if not 0.0 < ada_target < 1.0:
      raise ValueError(f"ada_target must lie in (0, 1) (the paper: 0.6); got {ada_target}.")
    if augment_p is not None:
      raise ValueError("ADA adapts p itself (ada_target is set): leave augment_p unset.")
  if ada_kimg <= 0:
    raise ValueError(f"ada_kimg must be > 0; got {ada_kimg}.")


def ada_update(p, stats, sign_sum, count, due, *, target: float, ada_kimg: float, pack: int = 1):
  """ADA's state after one train step: the sign statistics gathered, p adjusted when due.

  Args:
    p: float32 scalar, the augmentation probability.
    stats: float32 `[2]`, the sum of sign(D(x_real)) and its count since the last adjustment.
    sign_sum: this step's sum of sign(D(x_real)).
    count: this step's number of real scores (packs when `pack` > 1).
    due: bool scalar, adjust p now (every `ada_interval` steps).
    target: the r_t to hold.
    ada_kimg: thousands of images over which p may move by 1.
    pack: examples per score.

  Returns:
    `(p, stats)`: the statistics reset to zero when p was adjusted.
  """
  stats = stats + jnp.stack([sign_sum, count])
  adjusted = adjust_ada_p(p, stats[0] / stats[1], target, stats[1] * pack, ada_kimg)
  p = jnp.where(due, adjusted, p)
  return p, jnp.where(due, jnp.zeros_like(stats), stats)


class Penalties:
  """The gradient penalties of a run, with their weights and lazy interval.

  Args:
    penalties: a mapping from a name in `jaxgan.penalties.PENALTIES` or a function
      `f(critic_fn, real, fake, key) -> scalar` to its weight (a number >= 0 or a schedule).
    every: compute them on every k-th critic update only, weights times k (StyleGAN2's lazy
      regularisation, k = 16); 1: every update.

  Raises:
    ValueError: an unknown penalty name (listing the valid ones), a negative weight, or `every`
      not a positive integer.

  Example:
    >>> pens = Penalties({"r1": 0.5, "r2": 0.5})
    >>> critic = lambda x: x @ jnp.array([3.0, 4.0])
    >>> values, total = pens(critic, jnp.ones((2, 2)), jnp.ones((2, 2)), jax.random.key(0), 0)
    >>> {k: float(v) for k, v in values.items()}, float(total)
    ({'r1': 25.0, 'r2': 25.0}, 25.0)
  """

  def __init__(self, penalties: Mapping, every: int = 1):
    if not isinstance(every, int) or isinstance(every, bool) or every < 1:
      raise ValueError(f"The lazy interval (penalty_every) must be an integer >= 1; got {every!r}.")
    self.weights = dict(penalties)
    for p, w in self.weights.items():
      check_weight(f"penalty {penalty_name(p)!r}", w)
    self.fns = {p: penalties_lib.get(p) for p in self.weights}
    self.every = every

  def __bool__(self) -> bool:
    return bool(self.fns)

  def metric_names(self) -> dict:
    """Each penalty's metric name, `penalty_<name>`."""
    return {p: "penalty_" + re.sub(r"\W", "", penalty_name(p)) for p in self.fns}

  def __call__(self, critic_fn, real, fake, key, step, fake_critic_fn=None):
    """Computes the penalties at a critic update that is due (every one, or every k-th).

    The train step decides which updates are due (a `lax.cond` around the whole critic update,
    so the others compute no penalty at all); here each value is scaled by k = `every`.

    Args:
      critic_fn: maps `[batch, ...]` inputs to scores `[batch]`; a class-conditional critic
        closed over the real examples' labels.
      fake_critic_fn: a class-conditional critic closed over the fakes' labels, which the
        penalties at fakes only (`jaxgan.penalties.ON_FAKES`: R2) use; None: `critic_fn`.
      real: real critic inputs, `[batch, ...]`.
      fake: generated critic inputs, the same shape.
      key: a PRNG key, split over the penalties.
      step: the train step (int32, may be traced), for scheduled weights.

    Returns:
      `(values, total)`: a dict from each penalty (its key in the mapping) to its unweighted
      value times k (so its mean over all updates is the penalty's), and the weighted sum of
      those, to add to the critic loss. float32 scalars.
    """
    keys = jax.random.split(key, len(self.fns))
    on_fakes = fake_critic_fn or critic_fn
    values = {
      p: self.every * f(on_fakes if p in penalties_lib.ON_FAKES else critic_fn, real, fake, k)
      for (p, f), k in zip(self.fns.items(), keys, strict=True)
    }
    total = sum(value(self.weights[p], step) * v for p, v in values.items())
    return values, total
