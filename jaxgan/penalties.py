"""Discriminator regularisers: gradient penalties computed with `jax.grad`, and weight clipping.

Every penalty takes a `critic_fn: x -> scores` closure (inputs of any shape `(n, ...)`, one score
per example), never a module, so it works with any model library. Input gradients are computed as
`jax.grad(lambda x: critic_fn(x).sum())(x)`, which gives every example its own gradient only when
the critic does not mix examples: a critic with BatchNorm in training mode makes every penalty
wrong (use LayerNorm, spectral norm or no normalisation). `jaxgan.train` refuses that combination.

The gradient and its norm are computed in float32 whatever the critic's compute dtype, because
reduced-precision norms are the usual source of NaNs in penalised GANs.

Example:
  >>> penalty = gradient_penalty(lambda x: critic.apply(params, x), real, fake, key)
  >>> d_loss = losses.wasserstein_critic_loss(s_real, s_fake) + 10.0 * penalty
"""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp

CriticFn = Callable[[jax.Array], jax.Array]

# Inside the square root: the norm's gradient is NaN at exactly zero gradient otherwise.
_EPS = 1e-12


def input_gradients(critic_fn: CriticFn, x: jax.Array) -> jax.Array:
  """d critic / d x for each example, same shape as `x`, in float32."""
  x = x.astype(jnp.float32)
  return jax.grad(lambda v: jnp.sum(critic_fn(v).astype(jnp.float32)))(x)


def squared_gradient_norms(critic_fn: CriticFn, x: jax.Array) -> jax.Array:
  """||d critic / d x_i||^2 for each example i, over all non-batch axes; shape (n,)."""
  g = input_gradients(critic_fn, x)
  return jnp.sum(jnp.square(g), axis=tuple(range(1, g.ndim)))


def gradient_norms(critic_fn: CriticFn, x: jax.Array) -> jax.Array:
  """||d critic / d x_i|| for each example i; shape (n,). Finite, with a finite gradient, at 0."""
  return jnp.sqrt(squared_gradient_norms(critic_fn, x) + _EPS)


def _per_example_uniform(key: jax.Array, x: jax.Array) -> jax.Array:
  # One draw per example, broadcast over the example's own axes.
  return jax.random.uniform(key, (x.shape[0],) + (1,) * (x.ndim - 1), jnp.float32)


def gradient_penalty(critic_fn: CriticFn, real: jax.Array, fake: jax.Array, key: jax.Array, *,
                     target: float = 1.0, one_sided: bool = False) -> jax.Array:
  """WGAN-GP gradient penalty (Gulrajani et al. 2017, eq. 3).

  x_hat = eps * real + (1 - eps) * fake with eps ~ U[0, 1] drawn once per example;
  penalty = E[(||grad_x critic(x_hat)|| - target)^2].
  With `one_sided=True` only norms above the target are penalised:
  E[max(0, ||grad|| - target)^2] (WGAN-LP, Petzka et al. 2018). Multiply by lambda (10 in the paper).

  Args:
    critic_fn: maps a batch `(n, ...)` to scores `(n,)`.
    real, fake: batches of the same shape.
    key: PRNG key for the interpolation coefficients.
    target: the norm the gradient is pushed towards (1 for a 1-Lipschitz critic).
    one_sided: penalise only norms above the target.
  """
  if real.shape != fake.shape:
    raise ValueError(f"gradient_penalty needs real and fake of the same shape; got {real.shape} "
                     f"and {fake.shape}.")
  eps = _per_example_uniform(key, real)
  x_hat = eps * real.astype(jnp.float32) + (1.0 - eps) * fake.astype(jnp.float32)
  excess = gradient_norms(critic_fn, x_hat) - target
  if one_sided:
    excess = jax.nn.relu(excess)
  return jnp.mean(jnp.square(excess))


def r1_penalty(critic_fn: CriticFn, real: jax.Array) -> jax.Array:
  """Zero-centred R1 penalty on real data (Mescheder et al. 2018, eq. 9).

  penalty = E_real[||grad_x critic(x)||^2]. The paper's regulariser is gamma/2 times this; we
  return the plain mean squared norm, so pass weight = gamma / 2 (e.g. 5.0 for gamma = 10).
  """
  return jnp.mean(squared_gradient_norms(critic_fn, real))


def r2_penalty(critic_fn: CriticFn, fake: jax.Array) -> jax.Array:
  """Zero-centred R2 penalty on generated data (Mescheder et al. 2018, eq. 10).

  penalty = E_fake[||grad_x critic(x)||^2]; as for `r1_penalty`, weight = gamma / 2.
  """
  return jnp.mean(squared_gradient_norms(critic_fn, fake))


def dragan_penalty(critic_fn: CriticFn, real: jax.Array, key: jax.Array, *, scale: float = 0.5,
                   target: float = 1.0) -> jax.Array:
  """DRAGAN penalty around the real data (Kodali et al. 2017).

  Perturbation: x_p = real + scale * std(real) * u with u ~ U[0, 1] per element and std the
  standard deviation of the whole real batch (the authors' reference implementation; the paper
  writes N(0, c I)); then x_hat = alpha * real + (1 - alpha) * x_p with alpha ~ U[0, 1] once per
  example, and penalty = E[(||grad_x critic(x_hat)|| - target)^2]. The paper uses lambda = 10.
  """
  real = real.astype(jnp.float32)
  noise_key, alpha_key = jax.random.split(key)
  perturbed = real + scale * jnp.std(real) * jax.random.uniform(noise_key, real.shape)
  alpha = _per_example_uniform(alpha_key, real)
  x_hat = alpha * real + (1.0 - alpha) * perturbed
  return jnp.mean(jnp.square(gradient_norms(critic_fn, x_hat) - target))


def clip_weights(params: Any, clip_value: float = 0.01) -> Any:
  """Weight clipping of the original WGAN (Arjovsky et al. 2017, Algorithm 1).

  A projection applied to the critic's parameters after each update: every parameter is clipped
  to [-clip_value, clip_value] (0.01 in the paper).
  """
  return jax.tree.map(lambda p: jnp.clip(p, -clip_value, clip_value), params)


# Every penalty under one signature, f(critic_fn, real, fake, key), so a train step can call any.
PENALTIES: dict[str, Callable[..., jax.Array]] = {
    "wgan_gp": gradient_penalty,
    "wgan_lp": lambda critic_fn, real, fake, key: gradient_penalty(
        critic_fn, real, fake, key, one_sided=True),
    "r1": lambda critic_fn, real, fake, key: r1_penalty(critic_fn, real),
    "r2": lambda critic_fn, real, fake, key: r2_penalty(critic_fn, fake),
    "dragan": lambda critic_fn, real, fake, key: dragan_penalty(critic_fn, real, key),
}


def get(name: str) -> Callable[[CriticFn, jax.Array, jax.Array, jax.Array], jax.Array]:
  """Returns the penalty `name` with the uniform signature `f(critic_fn, real, fake, key)`."""
  try:
    return PENALTIES[name]
  except (KeyError, TypeError):
    raise ValueError(f"Unknown penalty {name!r}. Valid names: {', '.join(PENALTIES)} "
                     "(or None for no penalty).") from None
