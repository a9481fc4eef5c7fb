"""Approximate R1 and R2: the critic's sensitivity to input noise, with no second derivative.

R1 (Mescheder et al. 2018) penalises ||grad_x D(x)||^2 at the real data; its gradient with respect
to D's parameters is a second-order derivative (double backward), which some systems lack or make
slow (APT names FSDP and FlashAttention). APT (Lin et al. 2025, "Diffusion Adversarial
Post-Training for One-Step Video Generation", its approximated R1) penalises instead how much D's
output moves when the input is perturbed by Gaussian noise:

  approx_r1 = E_x[ ||D(x) - D(x + sigma * eps)||^2 ],  eps ~ N(0, I),

which needs a second forward pass and first-order gradients only. `approx_r2` is the same at the
generated examples. `jaxgan.penalties` re-exports both and registers them ('approx_r1' taken at the
reals, 'approx_r2' at the fakes, with sigma = `APPROX_SIGMA`; `penalties.with_options` binds
another sigma).

Relation to R1: for a critic linear in x, D(x) - D(x + sigma eps) = -sigma <grad D, eps>, so
E_eps[(D(x) - D(x + sigma eps))^2] = sigma^2 ||grad D||^2 exactly: approx_r1 is sigma^2 * R1 in
expectation. For a smooth critic, approx_r1 / sigma^2 -> R1 as sigma -> 0 (the Taylor remainder
is O(sigma) relative). So to match an R1 weight w (w = gamma / 2 for `penalties.r1_penalty`) use
the weight w / sigma^2, e.g. 5 / 0.05^2 = 2000 for gamma = 10 at the default sigma.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from jaxgan.input_gradients import CriticFn, critic_heads, select, split_per_leaf

# The default noise scale for inputs on the scale of images in [-1, 1] (per-pixel std about 0.5):
# a tenth of that std, as FastGen's default (0.1) is for its unit-variance diffusion latents, a few
# 8-bit quantisation steps (2/255) so D is probed at the data's own resolution and not below it,
# and large enough that D(x) - D(x + sigma eps) stays far above float32 rounding of the scores.
# Inputs on another scale (latents, features) call for their own sigma (`with_options`).
APPROX_SIGMA = 0.05


def approx_r1(
  critic_fn: CriticFn, x: Any, key: jax.Array, sigma: float = APPROX_SIGMA, *, wrt: Any = None
) -> jax.Array:
  """APT's approximate R1 at `x`: E[||D(x) - D(x + sigma * eps)||^2], eps ~ N(0, I).

  The squared norm of an example sums over the critic's heads and their non-batch elements (one
  head `[batch]` or `[batch, 1]`: the squared difference of its scores); the mean is over the
  batch. Gaussian noise is added to the selected leaves of `x` only (at least float32), the other
  leaves are passed unchanged to both calls. Gradients with respect to the critic's parameters
  flow through both forward passes: NVIDIA FastGen's `dmd2.py` (`_compute_r1_regularization`)
  runs its discriminator head with gradients on both the clean and the noisy features (only its
  frozen feature network is under `no_grad`) and takes their mean squared difference, with the
  noise std `gan_r1_reg_alpha` = 0.1 by default and weights of 10 to 1000 in its configs; the same
  as here for one score per example. (The numbers APT itself used were not checked here.) In this
  uniform signature the clean pass is not shared with the loss's, so it costs two critic calls.

  Relation to R1 (module docstring): for a critic linear in x the expectation over eps is exactly
  sigma^2 * R1, and approx_r1 / sigma^2 -> R1 as sigma -> 0 for a smooth critic; so use the weight
  w / sigma^2 where R1 would have w. With several scores per example (heads, patches) the limit
  is the sum of each score's squared gradient norm (the Jacobian's squared Frobenius norm), while
  `r1_penalty` differentiates their sum; the two agree for one score per example.

  Args:
    critic_fn: maps `[batch, ...]` (or a pytree) to scores `[batch]` or a pytree of heads
      (`jaxgan.input_gradients`).
    x: the inputs, `[batch, ...]`, or a pytree of such arrays (every selected leaf `[n, ...]`).
    key: PRNG key for the noise.
    sigma: the noise's standard deviation, a Python number > 0.
    wrt: the leaves perturbed, as in `input_gradients` (None: all).

  Returns:
    The penalty, a float32 scalar.

  Raises:
    ValueError: sigma <= 0; as `jaxgan.input_gradients.select` (a non-floating leaf selected, no
      batch axis) and `critic_heads` (a head without the batch axis first).

  Example:
    >>> critic = lambda x: x @ jnp.array([3.0, 4.0])  # R1 = 25 everywhere
    >>> x = jnp.ones((4096, 2))
    >>> abs(float(approx_r1(critic, x, jax.random.key(0), 0.1)) / 0.1**2 - 25.0) < 2.5
    True
  """
  if not isinstance(sigma, jax.core.Tracer) and not float(sigma) > 0:  # NumPy scalars too
    raise ValueError(
      f"approx_r1 needs a noise scale sigma > 0; got {sigma}. Pass a positive sigma (e.g. "
      f"{APPROX_SIGMA} for images in [-1, 1]), or use r1_penalty for the exact R1."
    )
  sel = select(x, wrt, "approx_r1")
  # At least float32 (a float64 input stays float64: the sigma -> 0 limit is testable).
  clean = [leaf.astype(jnp.promote_types(leaf.dtype, jnp.float32)) for leaf in sel.chosen()]
  keys = split_per_leaf(key, len(clean))
  noisy = [
    c + sigma * jax.random.normal(k, c.shape, c.dtype) for c, k in zip(clean, keys, strict=True)
  ]
  before = critic_heads(critic_fn(sel.rebuild(clean)), sel.n, sel.shapes())
  after = critic_heads(critic_fn(sel.rebuild(noisy)), sel.n, sel.shapes())
  per_example = 0.0
  for a, b in zip(before, after, strict=True):
    per_example = per_example + jnp.sum(jnp.square(a - b), axis=tuple(range(1, a.ndim)))
  return jnp.mean(per_example)


def approx_r2(
  critic_fn: CriticFn, fake: Any, key: jax.Array, sigma: float = APPROX_SIGMA, *, wrt: Any = None
) -> jax.Array:
  """APT's approximate R1 taken at the generated examples: the approximate R2.

  E[||D(x) - D(x + sigma * eps)||^2] over the fakes, eps ~ N(0, I): `approx_r1` applied at the
  generated examples (as R2 is R1 at the fakes, Mescheder et al. 2018, eq. 10); its expectation is
  sigma^2 * R2 for a linear critic, so weight it w / sigma^2 where R2 would have w.

  Args:
    critic_fn: maps `[batch, ...]` (or a pytree) to scores `[batch]` or a pytree of heads.
    fake: generated examples, `[batch, ...]`, or a pytree of such arrays.
    key: PRNG key for the noise.
    sigma: the noise's standard deviation, a Python number > 0.
    wrt: the leaves perturbed, as in `input_gradients` (None: all).

  Returns:
    The penalty, a float32 scalar.

  Raises:
    ValueError: as `approx_r1`.
  """
  return approx_r1(critic_fn, fake, key, sigma, wrt=wrt)
