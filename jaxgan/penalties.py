"""Discriminator regularisers: gradient penalties computed with `jax.grad`, and weight clipping.

Every penalty takes a `critic_fn: x -> scores` closure (inputs of any shape `[batch, ...]`, one
score per example, `[batch]`), never a module, so it works with any model library. Input
gradients are computed as `jax.grad(lambda x: critic_fn(x).sum())(x)`, which gives every example
its own gradient only when the critic does not mix examples: a critic with BatchNorm in training
mode makes every penalty wrong (use LayerNorm, spectral norm or no normalisation).
`jaxgan.step.train` refuses that combination. Inputs may be pytrees (`wrt=` picks the leaves),
critics may return pytrees of score heads (`jaxgan.input_gradients`, re-exported here);
`approx_r1` / `approx_r2` (`jaxgan.noise_penalties`) need no second derivative.

The gradient and its norm are computed in float32 whatever the critic's compute dtype, because
reduced-precision norms are the usual source of NaNs in penalised GANs. Every penalty returns a
float32 scalar, the mean over the batch; multiply it by its weight and add it to the critic loss.
Each penalty a train step names is registered beside its definition (`register`, `PENALTIES`);
`with_options` binds a registered penalty's keywords (e.g. approx_r1's sigma) for a config.

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

import dataclasses
import functools
import inspect
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from jaxgan.input_gradients import (  # re-exported: the gradients every penalty is built on
  CriticFn,
  gradient_norms,
  input_gradients,  # noqa: F401
  per_example,
  per_example_uniform,
  select,
  select_pair,
  split_per_leaf,
  squared_gradient_norms,
)
from jaxgan.noise_penalties import APPROX_SIGMA, approx_r1, approx_r2
from jaxgan.regularizers import clip_weights as clip_weights  # re-exported: WGAN's

_per_example_uniform = per_example_uniform  # the name tests/_sharded_worker.py draws with
# The one signature of every entry of PENALTIES: f(critic_fn, real, fake, key) -> scalar.
PenaltyFn = Callable[[CriticFn, jax.Array, jax.Array, jax.Array], jax.Array]

TAKEN_AT = ("reals", "fakes", "between")


@dataclasses.dataclass(frozen=True)
class Penalty:
  """A penalty under the train step's signature, with where it is taken; calling it calls `fn`.

  A class-conditional critic scores its inputs with labels: the train step closes it over the
  fakes' labels for a penalty taken at the fakes, over the reals' for every other.

  Attributes:
    name: its name (a key of `PENALTIES` when registered).
    fn: `f(critic_fn, real, fake, key) -> scalar`.
    at: where it takes the critic's input gradients (`TAKEN_AT`): at the real examples or points
      made from them alone ('reals'), at the generated ones ('fakes'), or between the two.
  """

  name: str
  fn: PenaltyFn
  at: str

  def __post_init__(self):
    if self.at not in TAKEN_AT:
      raise ValueError(f"Penalty {self.name!r}: at must be one of {TAKEN_AT}; got {self.at!r}.")

  def __call__(self, critic_fn: CriticFn, real: jax.Array, fake: jax.Array, key: jax.Array):
    return self.fn(critic_fn, real, fake, key)


# Every penalty a train step can name, filled by `register` beside each definition below.
PENALTIES: dict[str, Penalty] = {}


def register(name: str, *, at: str) -> Callable[[PenaltyFn], PenaltyFn]:
  """Registers `f(critic_fn, real, fake, key) -> scalar` in `PENALTIES` under `name`.

  Args:
    name: the name configs and `get` use.
    at: where the penalty takes the critic's input gradients, one of `TAKEN_AT`.

  Returns:
    A decorator that records the function and returns it unchanged.

  Raises:
    ValueError: a name registered before, or `at` not in `TAKEN_AT`.
  """

  def add(fn: PenaltyFn) -> PenaltyFn:
    if name in PENALTIES:
      raise ValueError(f"Penalty {name!r} is registered twice.")
    PENALTIES[name] = Penalty(name, fn, at)
    return fn

  return add


@register("wgan_gp", at="between")
def gradient_penalty(
  critic_fn: CriticFn,
  real: Any,
  fake: Any,
  key: jax.Array,
  *,
  target: float = 1.0,
  one_sided: bool = False,
  wrt: Any = None,
) -> jax.Array:
  """WGAN-GP gradient penalty (Gulrajani et al. 2017, eq. 3), or WGAN-LP (Petzka et al. 2018).

  x_hat = eps * real + (1 - eps) * fake with eps ~ U[0, 1] drawn once per example;
  penalty = E[(||grad_x critic(x_hat)|| - target)^2], or with `one_sided=True`
  E[max(0, ||grad_x critic(x_hat)|| - target)^2], which penalises only norms above the target
  (WGAN-LP). Multiply by lambda (10 in both papers). For a pytree input, only the selected leaves
  are interpolated, all with the example's one eps, and the norm is taken over all of them; the
  other leaves are taken from `real`.

  Args:
    critic_fn: maps a batch `[batch, ...]` (or a pytree) to scores `[batch]` or a pytree of heads
      (`jaxgan.input_gradients`).
    real: real examples, `[batch, ...]`, or a pytree of such arrays.
    fake: generated examples, real's structure and (at the selected leaves) shapes.
    key: PRNG key for the interpolation coefficients.
    target: the norm the gradient is pushed towards (1 for a 1-Lipschitz critic).
    one_sided: penalise only norms above the target.
    wrt: the leaves interpolated and differentiated, as in `input_gradients` (None: all).

  Returns:
    The penalty, a float32 scalar.

  Raises:
    ValueError: when `real` and `fake` differ in structure or shape (the message names both), or
      as `input_gradients`.

  Example:
    >>> critic = lambda x: x @ jnp.array([0.3, 0.4])  # gradient norm 0.5 everywhere
    >>> x = jnp.ones((3, 2))
    >>> float(gradient_penalty(critic, x, -x, jax.random.key(0)))  # (0.5 - 1)^2
    0.25
    >>> float(gradient_penalty(critic, x, -x, jax.random.key(0), one_sided=True))
    0.0
  """
  sel, fakes = select_pair(real, fake, "gradient_penalty", wrt)
  eps = jax.random.uniform(key, (sel.n,), jnp.float32)

  def between(r, f):
    e = per_example(eps, r)
    return e * r.astype(jnp.float32) + (1.0 - e) * f.astype(jnp.float32)

  x_hat = sel.rebuild([between(r, f) for r, f in zip(sel.chosen(), fakes, strict=True)])
  excess = gradient_norms(critic_fn, x_hat, wrt=wrt) - target
  if one_sided:
    excess = jax.nn.relu(excess)
  return jnp.mean(jnp.square(excess))


register("wgan_lp", at="between")(functools.partial(gradient_penalty, one_sided=True))


def r1_penalty(critic_fn: CriticFn, real: Any, *, wrt: Any = None) -> jax.Array:
  """Zero-centred R1 penalty on real data (Mescheder et al. 2018, eq. 9).

  penalty = E_real[||grad_x critic(x)||^2]. The paper's regulariser is gamma/2 times this; this
  function returns the plain mean squared norm, so pass weight = gamma / 2 (5.0 for gamma = 10).

  Args:
    critic_fn: maps `[batch, ...]` (or a pytree) to scores `[batch]` or a pytree of heads.
    real: real examples, `[batch, ...]`, or a pytree of such arrays.
    wrt: the leaves differentiated, as in `input_gradients` (None: all).

  Returns:
    The penalty, a float32 scalar.

  Raises:
    ValueError: as `input_gradients`.

  Example:
    >>> float(r1_penalty(lambda x: x @ jnp.array([3.0, 4.0]), jnp.ones((2, 2))))
    25.0
  """
  return jnp.mean(squared_gradient_norms(critic_fn, real, wrt=wrt))


register("r1", at="reals")(lambda c, r, f, k, *, wrt=None: r1_penalty(c, r, wrt=wrt))


def r2_penalty(critic_fn: CriticFn, fake: Any, *, wrt: Any = None) -> jax.Array:
  """Zero-centred R2 penalty on generated data (Mescheder et al. 2018, eq. 10).

  penalty = E_fake[||grad_x critic(x)||^2]; as for `r1_penalty`, weight = gamma / 2.

  Args:
    critic_fn: maps `[batch, ...]` (or a pytree) to scores `[batch]` or a pytree of heads.
    fake: generated examples, `[batch, ...]`, or a pytree of such arrays.
    wrt: the leaves differentiated, as in `input_gradients` (None: all).

  Returns:
    The penalty, a float32 scalar.

  Raises:
    ValueError: as `input_gradients`.
  """
  return jnp.mean(squared_gradient_norms(critic_fn, fake, wrt=wrt))


register("r2", at="fakes")(lambda c, r, f, k, *, wrt=None: r2_penalty(c, f, wrt=wrt))


def dragan_penalty(
  critic_fn: CriticFn,
  real: Any,
  key: jax.Array,
  *,
  scale: float = 0.5,
  target: float = 1.0,
  wrt: Any = None,
) -> jax.Array:
  """DRAGAN penalty around the real data (Kodali et al. 2017).

  Perturbation: x_p = real + scale * std(real) * u with u ~ U[0, 1] per element and std the
  standard deviation of the whole real batch (the authors' reference implementation; the paper
  writes N(0, c I)); then x_hat = alpha * real + (1 - alpha) * x_p with alpha ~ U[0, 1] once per
  example, and penalty = E[(||grad_x critic(x_hat)|| - target)^2]. The paper uses lambda = 10.
  For a pytree input only the selected leaves are perturbed, each by its own batch's std, all
  with the example's one alpha; the norm is taken over all of them.

  Args:
    critic_fn: maps `[batch, ...]` (or a pytree) to scores `[batch]` or a pytree of heads.
    real: real examples, `[batch, ...]`, or a pytree of such arrays.
    key: PRNG key for the perturbation and the interpolation coefficients.
    scale: the perturbation's size, in standard deviations of the real batch.
    target: the norm the gradient is pushed towards.
    wrt: the leaves perturbed and differentiated, as in `input_gradients` (None: all).

  Returns:
    The penalty, a float32 scalar.

  Raises:
    ValueError: as `input_gradients`.

  Example:
    >>> critic = lambda x: x @ jnp.array([3.0, 4.0])
    >>> float(dragan_penalty(critic, jnp.ones((2, 2)), jax.random.key(0)))  # (5 - 1)^2
    16.0
  """
  sel = select(real, wrt, "dragan_penalty")
  noise_key, alpha_key = jax.random.split(key)
  alpha = jax.random.uniform(alpha_key, (sel.n,), jnp.float32)

  def near(r, k):
    r = r.astype(jnp.float32)
    perturbed = r + scale * jnp.std(r) * jax.random.uniform(k, r.shape)
    a = per_example(alpha, r)
    return a * r + (1.0 - a) * perturbed

  keys = split_per_leaf(noise_key, len(sel.chosen()))
  x_hat = sel.rebuild([near(r, k) for r, k in zip(sel.chosen(), keys, strict=True)])
  return jnp.mean(jnp.square(gradient_norms(critic_fn, x_hat, wrt=wrt) - target))


register("dragan", at="reals")(
  lambda c, r, f, k, *, scale=0.5, target=1.0, wrt=None: dragan_penalty(
    c, r, k, scale=scale, target=target, wrt=wrt
  )
)
# The noise penalties of `jaxgan.noise_penalties` (`with_options` binds another sigma).
register("approx_r1", at="reals")(
  lambda c, r, f, k, *, sigma=APPROX_SIGMA, wrt=None: approx_r1(c, r, k, sigma, wrt=wrt)
)
register("approx_r2", at="fakes")(
  lambda c, r, f, k, *, sigma=APPROX_SIGMA, wrt=None: approx_r2(c, f, k, sigma, wrt=wrt)
)


def _registered(name: str) -> Penalty:
  try:
    return PENALTIES[name]
  except (KeyError, TypeError):
    raise ValueError(
      f"Unknown penalty {name!r}. Valid names: {', '.join(PENALTIES)}; or pass a function "
      "f(critic_fn, real, fake, key) -> scalar of your own (or None for no penalty)."
    ) from None


def get(penalty: str | PenaltyFn) -> PenaltyFn:
  """Looks up a penalty by name, with the uniform signature `f(critic_fn, real, fake, key)`.

  Args:
    penalty: a name in `PENALTIES`, or a callable `f(critic_fn, real, fake, key) -> scalar` of
      your own (or a `Penalty`), which passes through unchanged.

  Returns:
    The function: `real` and `fake` `[batch, ...]` of one shape, `key` a PRNG key -> float32 scalar.

  Raises:
    ValueError: for an unknown name; the message lists the valid ones.

  Example:
    >>> float(get("r1")(lambda x: 2.0 * x[:, 0], jnp.ones((3, 1)), None, None))
    4.0
  """
  return penalty if callable(penalty) else _registered(penalty).fn


def _as_penalty(penalty: str | PenaltyFn) -> Penalty:
  if isinstance(penalty, Penalty):
    return penalty
  if callable(penalty):
    return Penalty(getattr(penalty, "__name__", "penalty"), penalty, "reals")
  return _registered(penalty)


def keywords(penalty: str | PenaltyFn) -> list[str]:
  """The keyword-only arguments a penalty (a name, a `Penalty` or a function) accepts.

  >>> keywords("approx_r1"), keywords("r1")
  (['sigma', 'wrt'], ['wrt'])
  """
  params = inspect.signature(_as_penalty(penalty).fn).parameters.values()
  return [p.name for p in params if p.kind is inspect.Parameter.KEYWORD_ONLY]


def with_options(penalty: str | PenaltyFn, **options: Any) -> Penalty:
  """A penalty with some of its keywords bound, under the uniform signature, for configs.

  Args:
    penalty: a name in `PENALTIES`, a `Penalty`, or a function `f(critic_fn, real, fake, key,
      **keywords)` of your own (taken at the reals).
    **options: values for the penalty's keyword-only arguments, e.g. `sigma=0.1` for 'approx_r1',
      `target=0.5` for 'wgan_gp', `wrt={"image": True, "t": False}` for any gradient penalty.

  Returns:
    A `Penalty` (callable as `f(critic_fn, real, fake, key)`) with the same name and `taken_at`.

  Raises:
    ValueError: an unknown name; a keyword the penalty does not accept (the message lists those
      it accepts).

  Example:
    >>> wider = with_options("approx_r1", sigma=0.1)
    >>> taken_at(wider), with_options("r2").at
    ('reals', 'fakes')
    >>> with_options("r1", sigma=0.1)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ValueError: Penalty 'r1' accepts the keywords ['wrt']; got sigma. ...
  """
  found = _as_penalty(penalty)
  accepted = keywords(found)
  unknown = sorted(set(options) - set(accepted))
  if unknown:
    raise ValueError(
      f"Penalty {found.name!r} accepts the keywords {accepted}; got {', '.join(unknown)}. "
      "Pass only those (its docstring says what each does)."
    )
  return Penalty(found.name, functools.partial(found.fn, **options), found.at)


def taken_at(penalty: str | PenaltyFn) -> str:
  """Where a penalty takes the critic's input gradients: 'reals', 'fakes' or 'between'.

  Args:
    penalty: a name in `PENALTIES`, a `Penalty`, or a function of your own (taken at the reals).

  Returns:
    One of `TAKEN_AT`.

  Raises:
    ValueError: for an unknown name.

  Example:
    >>> taken_at("r2"), taken_at("wgan_gp")
    ('fakes', 'between')
  """
  if isinstance(penalty, Penalty):
    return penalty.at
  return "reals" if callable(penalty) else _registered(penalty).at
