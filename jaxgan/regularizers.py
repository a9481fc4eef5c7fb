"""The critic's regularisers on its scores, and ADA's controller: pure functions of arrays.

bCR's `consistency_regularizer`, LeCam's `lecam_regularizer` (with `update_lecam_anchors`) and
ADA's `adjust_ada_p` are functions of D's scores (or their statistics), usable with any model
library in any training loop; `clip_weights` is WGAN's projection of D's weights (re-exported by
`jaxgan.penalties`). `jaxgan.step.regularization` applies them in the train step; the gradient
penalties are in `jaxgan.penalties`.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from jaxgan import heads


def consistency_regularizer(scores: Any, transformed_scores: Any) -> jax.Array:
  """Consistency regulariser of bCR (Zhao et al. 2021, "Improved consistency regularization").

  penalty = E[(D(x) - D(T(x)))^2] for a semantics-preserving transform T (bCR: random flip and a
  translation of a few pixels, `jaxgan.augment.flip_translate`). Balanced CR applies it to real
  and to generated examples, each with its own weight (10 and 10 in the paper's CIFAR-10 runs);
  on generated examples it trains D only (the generator's loss does not include it). A
  discriminator with several heads (a pytree of score arrays) gives the sum over its heads of
  each head's mean squared difference.

  Args:
    scores: D(x), `[batch]` raw scores (or `[batch, ...]`, e.g. per patch); or a pytree (list,
      tuple, dict) of such arrays, one per head.
    transformed_scores: D(T(x)) for the same examples: the same tree structure and shapes.

  Returns:
    The mean squared difference (summed over heads), a float32 scalar.

  Raises:
    ValueError: when the two differ in shape, or in tree structure (the message names both).

  Example:
    >>> float(consistency_regularizer(jnp.array([1.0, 2.0]), jnp.array([0.0, 4.0])))
    2.5
    >>> float(consistency_regularizer({"a": jnp.ones(2), "b": jnp.ones(3)}, {"a": -jnp.ones(2),
    ...                                "b": jnp.ones(3)}))  # 4 + 0
    4.0
  """
  if not (heads.is_single(scores) and heads.is_single(transformed_scores)):
    pairs = heads.paired(scores, transformed_scores, name="consistency_regularizer")
    return heads.combine([consistency_regularizer(a, b) for _, a, b in pairs], "sum")
  if jnp.shape(scores) != jnp.shape(transformed_scores):
    raise ValueError(
      f"consistency_regularizer needs scores of one shape; got {jnp.shape(scores)} and "
      f"{jnp.shape(transformed_scores)}."
    )
  diff = jnp.asarray(scores, jnp.float32) - jnp.asarray(transformed_scores, jnp.float32)
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


def clip_weights(params: Any, clip_value: float = 0.01) -> Any:
  """Weight clipping of the original WGAN (Arjovsky et al. 2017, Algorithm 1).

  A projection applied to the critic's parameters after each update: every parameter is clipped
  to [-clip_value, clip_value] (0.01 in the paper).

  Args:
    params: a pytree of arrays.
    clip_value: the bound c > 0.

  Returns:
    A pytree of the same structure, shapes and dtypes, every element in [-c, c].

  Example:
    >>> clipped = clip_weights({"w": jnp.array([-1.0, 0.005, 2.0])}, 0.01)
    >>> [round(float(v), 3) for v in clipped["w"]]
    [-0.01, 0.005, 0.01]
  """
  return jax.tree.map(lambda p: jnp.clip(p, -clip_value, clip_value), params)
