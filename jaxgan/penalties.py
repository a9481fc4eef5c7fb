"""Discriminator regularisers: gradient penalties computed with `jax.grad`, and weight clipping.

Every penalty takes a `critic_fn: x -> scores` closure (inputs of any shape `[batch, ...]`, one
score per example, `[batch]`), never a module, so it works with any model library. Input
gradients are computed as `jax.grad(lambda x: critic_fn(x).sum())(x)`, which gives every example
its own gradient only when the critic does not mix examples: a critic with BatchNorm in training
mode makes every penalty wrong (use LayerNorm, spectral norm or no normalisation).
`jaxgan.step.train` refuses that combination.

The gradient and its norm are computed in float32 whatever the critic's compute dtype, because
reduced-precision norms are the usual source of NaNs in penalised GANs. Every penalty returns a
float32 scalar, the mean over the batch; multiply it by its weight and add it to the critic loss.

Example:
  >>> import jax, jax.numpy as jnp
  >>> from jaxgan import losses, penalties
  >>> critic = lambda x: x @ jnp.array([3.0, 4.0])  # linear: every input gradient has norm 5
  >>> real, fake = jnp.ones((4, 2)), jnp.zeros((4, 2))
  >>> gp = penalties.gradient_penalty(critic, real, fake, jax.random.key(0))
  >>> d_loss = losses.wasserstein_critic_loss(critic(real), critic(fake)) + 10.0 * gp
  >>> float(gp), float(d_loss)  # (5 - 1)^2, and 0 - 7 + 160
  (16.0, 153.0)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

CriticFn = Callable[[jax.Array], jax.Array]
# The one signature of every entry of PENALTIES: f(critic_fn, real, fake, key) -> scalar.
PenaltyFn = Callable[[CriticFn, jax.Array, jax.Array, jax.Array], jax.Array]

# Inside the square root: the norm's gradient is NaN at exactly zero gradient otherwise.
_EPS = 1e-12


def _check_batch(x: jax.Array, what: str) -> None:
  if jnp.ndim(x) < 1:
    raise ValueError(
      f"{what} needs a batch of shape [batch, ...]; got an array of shape {jnp.shape(x)}."
    )


def input_gradients(critic_fn: CriticFn, x: jax.Array) -> jax.Array:
  """The gradient of each example's score with respect to that example.

  Args:
    critic_fn: maps a batch `[batch, ...]` to one score per example, `[batch]` (or `[batch, 1]`).
    x: the inputs, `[batch, ...]`, any floating dtype.

  Returns:
    d critic(x)_i / d x_i for every example i: float32, the shape of `x`.

  Raises:
    ValueError: when `x` has no batch axis, or the critic does not return one score per example
      (a critic with several outputs per example would have their sum differentiated).

  Example:
    >>> input_gradients(lambda x: 0.5 * jnp.sum(x**2, axis=1), jnp.array([[1.0, -2.0]]))
    Array([[ 1., -2.]], dtype=float32)
  """
  _check_batch(x, "input_gradients")
  x = x.astype(jnp.float32)

  def total_score(v):
    scores = critic_fn(v)
    if jnp.shape(scores) not in ((v.shape[0],), (v.shape[0], 1)):
      raise ValueError(
        f"The critic must return one score per example, shape ({v.shape[0]},); "
        f"it returned shape {jnp.shape(scores)} for inputs of shape {v.shape}."
      )
    return jnp.sum(scores.astype(jnp.float32))

  return jax.grad(total_score)(x)


def squared_gradient_norms(critic_fn: CriticFn, x: jax.Array) -> jax.Array:
  """||d critic / d x_i||^2 for each example i, over all its non-batch axes.

  Args:
    critic_fn: maps `[batch, ...]` to scores `[batch]`.
    x: the inputs, `[batch, ...]`.

  Returns:
    float32, `[batch]`.

  Raises:
    ValueError: as `input_gradients`.
  """
  g = input_gradients(critic_fn, x)
  return jnp.sum(jnp.square(g), axis=tuple(range(1, g.ndim)))


def gradient_norms(critic_fn: CriticFn, x: jax.Array) -> jax.Array:
  """||d critic / d x_i|| for each example i, finite and with a finite gradient at zero.

  Computed as sqrt(||g||^2 + 1e-12): the plain norm has a NaN gradient at g = 0.

  Args:
    critic_fn: maps `[batch, ...]` to scores `[batch]`.
    x: the inputs, `[batch, ...]`.

  Returns:
    float32, `[batch]`.

  Raises:
    ValueError: as `input_gradients`.

  Example:
    >>> gradient_norms(lambda x: x @ jnp.array([3.0, 4.0]), jnp.ones((2, 2)))
    Array([5., 5.], dtype=float32)
  """
  return jnp.sqrt(squared_gradient_norms(critic_fn, x) + _EPS)


def _per_example_uniform(key: jax.Array, x: jax.Array) -> jax.Array:
  # One draw per example, broadcast over the example's own axes.
  return jax.random.uniform(key, (x.shape[0],) + (1,) * (x.ndim - 1), jnp.float32)


def gradient_penalty(
  critic_fn: CriticFn,
  real: jax.Array,
  fake: jax.Array,
  key: jax.Array,
  *,
  target: float = 1.0,
  one_sided: bool = False,
) -> jax.Array:
  """WGAN-GP gradient penalty (Gulrajani et al. 2017, eq. 3), or WGAN-LP (Petzka et al. 2018).

  x_hat = eps * real + (1 - eps) * fake with eps ~ U[0, 1] drawn once per example;
  penalty = E[(||grad_x critic(x_hat)|| - target)^2], or with `one_sided=True`
  E[max(0, ||grad_x critic(x_hat)|| - target)^2], which penalises only norms above the target
  (WGAN-LP). Multiply by lambda (10 in both papers).

  Args:
    critic_fn: maps a batch `[batch, ...]` to scores `[batch]`.
    real: real examples, `[batch, ...]`.
    fake: generated examples, the same shape.
    key: PRNG key for the interpolation coefficients.
    target: the norm the gradient is pushed towards (1 for a 1-Lipschitz critic).
    one_sided: penalise only norms above the target.

  Returns:
    The penalty, a float32 scalar.

  Raises:
    ValueError: when `real` and `fake` differ in shape (the message names both), or as
      `input_gradients`.

  Example:
    >>> critic = lambda x: x @ jnp.array([0.3, 0.4])  # gradient norm 0.5 everywhere
    >>> x = jnp.ones((3, 2))
    >>> float(gradient_penalty(critic, x, -x, jax.random.key(0)))  # (0.5 - 1)^2
    0.25
    >>> float(gradient_penalty(critic, x, -x, jax.random.key(0), one_sided=True))
    0.0
  """
  if jnp.shape(real) != jnp.shape(fake):
    raise ValueError(
      f"gradient_penalty needs real and fake of the same shape; got real "
      f"{jnp.shape(real)} and fake {jnp.shape(fake)}."
    )
  _check_batch(real, "gradient_penalty")
  eps = _per_example_uniform(key, real)
  x_hat = eps * real.astype(jnp.float32) + (1.0 - eps) * fake.astype(jnp.float32)
  excess = gradient_norms(critic_fn, x_hat) - target
  if one_sided:
    excess = jax.nn.relu(excess)
  return jnp.mean(jnp.square(excess))


def r1_penalty(critic_fn: CriticFn, real: jax.Array) -> jax.Array:
  """Zero-centred R1 penalty on real data (Mescheder et al. 2018, eq. 9).

  penalty = E_real[||grad_x critic(x)||^2]. The paper's regulariser is gamma/2 times this; this
  function returns the plain mean squared norm, so pass weight = gamma / 2 (5.0 for gamma = 10).

  Args:
    critic_fn: maps `[batch, ...]` to scores `[batch]`.
    real: real examples, `[batch, ...]`.

  Returns:
    The penalty, a float32 scalar.

  Raises:
    ValueError: as `input_gradients`.

  Example:
    >>> float(r1_penalty(lambda x: x @ jnp.array([3.0, 4.0]), jnp.ones((2, 2))))
    25.0
  """
  return jnp.mean(squared_gradient_norms(critic_fn, real))


def r2_penalty(critic_fn: CriticFn, fake: jax.Array) -> jax.Array:
  """Zero-centred R2 penalty on generated data (Mescheder et al. 2018, eq. 10).

  penalty = E_fake[||grad_x critic(x)||^2]; as for `r1_penalty`, weight = gamma / 2.

  Args:
    critic_fn: maps `[batch, ...]` to scores `[batch]`.
    fake: generated examples, `[batch, ...]`.

  Returns:
    The penalty, a float32 scalar.

  Raises:
    ValueError: as `input_gradients`.
  """
  return jnp.mean(squared_gradient_norms(critic_fn, fake))


def dragan_penalty(
  critic_fn: CriticFn, real: jax.Array, key: jax.Array, *, scale: float = 0.5, target: float = 1.0
) -> jax.Array:
  """DRAGAN penalty around the real data (Kodali et al. 2017).

  Perturbation: x_p = real + scale * std(real) * u with u ~ U[0, 1] per element and std the
  standard deviation of the whole real batch (the authors' reference implementation; the paper
  writes N(0, c I)); then x_hat = alpha * real + (1 - alpha) * x_p with alpha ~ U[0, 1] once per
  example, and penalty = E[(||grad_x critic(x_hat)|| - target)^2]. The paper uses lambda = 10.

  Args:
    critic_fn: maps `[batch, ...]` to scores `[batch]`.
    real: real examples, `[batch, ...]`.
    key: PRNG key for the perturbation and the interpolation coefficients.
    scale: the perturbation's size, in standard deviations of the real batch.
    target: the norm the gradient is pushed towards.

  Returns:
    The penalty, a float32 scalar.

  Raises:
    ValueError: as `input_gradients`.

  Example:
    >>> critic = lambda x: x @ jnp.array([3.0, 4.0])
    >>> float(dragan_penalty(critic, jnp.ones((2, 2)), jax.random.key(0)))  # (5 - 1)^2
    16.0
  """
  _check_batch(real, "dragan_penalty")
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


# Every penalty under one signature, f(critic_fn, real, fake, key), so a train step can call any.
PENALTIES: dict[str, PenaltyFn] = {
  "wgan_gp": gradient_penalty,
  "wgan_lp": lambda critic_fn, real, fake, key: gradient_penalty(
    critic_fn, real, fake, key, one_sided=True
  ),
  "r1": lambda critic_fn, real, fake, key: r1_penalty(critic_fn, real),
  "r2": lambda critic_fn, real, fake, key: r2_penalty(critic_fn, fake),
  "dragan": lambda critic_fn, real, fake, key: dragan_penalty(critic_fn, real, key),
}


# The penalties evaluated at generated examples only. A class-conditional critic scores every
# input with labels; the train step gives these the critic with the fakes' labels and every
# other penalty (real points, and interpolates or perturbations of real points) the real ones.
ON_FAKES = frozenset({"r2"})


def get(penalty: str | PenaltyFn) -> PenaltyFn:
  """Looks up a penalty by name, with the uniform signature `f(critic_fn, real, fake, key)`.

  Args:
    penalty: a name in `PENALTIES` ('wgan_gp', 'wgan_lp', 'r1', 'r2', 'dragan'), or a callable
      `f(critic_fn, real, fake, key) -> scalar` of your own, which passes through unchanged.

  Returns:
    The penalty function. Its `real` and `fake` are `[batch, ...]` of the same shape, `key` a PRNG
    key, and it returns a float32 scalar.

  Raises:
    ValueError: for an unknown name; the message lists the valid ones.

  Example:
    >>> float(get("r1")(lambda x: 2.0 * x[:, 0], jnp.ones((3, 1)), None, None))
    4.0
  """
  if callable(penalty):
    return penalty
  try:
    return PENALTIES[penalty]
  except (KeyError, TypeError):
    raise ValueError(
      f"Unknown penalty {penalty!r}. Valid names: {', '.join(PENALTIES)}; or "
      "pass a function f(critic_fn, real, fake, key) -> scalar of your own (or "
      "None for no penalty)."
    ) from None
