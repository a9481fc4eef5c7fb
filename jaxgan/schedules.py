"""Hyperparameter schedules: a value as a function of the train step, from a config field.

A schedulable config field (`optim.g_lr`, `optim.d_lr`, `optim.b2`, penalty weights,
`optim.ema_half_life`, `augment.p`) takes a number or a schedule spec, a string read by `parse`:

- `2e-4` or `constant(2e-4)`: the same value at every step;
- `linear(init, end, steps)`: from `init` at step 0 to `end` at `steps`, then `end`;
- `cosine(init, end, steps, warmup=0, warmup_init=0)`: half a cosine from `init` to `end` over
  `steps` (Loshchilov & Hutter 2017; R3GAN's `cosine_decay_with_warmup`), after a linear warmup
  from `warmup_init` to `init` over the first `warmup` steps; `end` after `steps`. It may rise
  (R3GAN ramps the EMA half-life and the augmentation probability up from 0).

Steps are train steps (`GANState.step`: one generator update and its n_critic critic updates), so a
schedule is a pure function of the state and a resumed run continues it exactly. The schedules are
optax's (`optax.linear_schedule`, `optax.constant_schedule`) where optax has them; optax's cosine
decay cannot rise from 0, hence the cosine here.

  >>> float(parse("linear(1.0, 0.0, 10)")(5))
  0.5
  >>> round(float(parse("cosine(0.05, 0.005, 100)")(50)), 4)
  0.0275
"""

from __future__ import annotations

import ast
import math
from collections.abc import Callable

import jax
import jax.numpy as jnp
import optax

Schedule = Callable[[jax.Array], jax.Array]
ScalarOrSchedule = float | Schedule


def cosine(init: float, end: float, steps: int, warmup: int = 0, warmup_init: float = 0.0):
  """Half a cosine from `init` to `end` over `steps`, after an optional linear warmup.

  value(t) = end + (init - end) * (1 + cos(pi * (t - warmup) / (steps - warmup))) / 2 for
  warmup <= t <= steps, `end` after `steps`, and a line from `warmup_init` to `init` before
  `warmup` (R3GAN's `cosine_decay_with_warmup`, in train steps instead of images).

  Args:
    init: the value after the warmup (at step 0 without one).
    end: the value at `steps` and after.
    steps: the step at which `end` is reached, > warmup.
    warmup: steps of linear warmup, >= 0.
    warmup_init: the value at step 0 when `warmup` > 0.

  Returns:
    A schedule: a traced or concrete step (int) to a float32 scalar.

  Raises:
    ValueError: `steps` not above `warmup`, or a negative `warmup`.
  """
  if warmup < 0 or steps <= warmup:
    raise ValueError(f"cosine(...) needs 0 <= warmup < steps; got steps={steps}, warmup={warmup}.")

  def decay(t):
    frac = jnp.clip((jnp.asarray(t, jnp.float32) - warmup) / (steps - warmup), 0.0, 1.0)
    return end + (init - end) * 0.5 * (1.0 + jnp.cos(math.pi * frac))

  if warmup == 0:
    return decay
  rise = optax.linear_schedule(warmup_init, init, warmup)
  return lambda t: jnp.where(jnp.asarray(t) < warmup, rise(t), decay(t))


def linear(init: float, end: float, steps: int) -> Schedule:
  """A line from `init` at step 0 to `end` at `steps`, then `end` (`optax.linear_schedule`).

  Args:
    init: the value at step 0.
    end: the value at `steps` and after.
    steps: a positive step count.

  Returns:
    A schedule.

  Raises:
    ValueError: `steps` < 1.
  """
  if steps < 1:
    raise ValueError(f"linear(...) needs steps >= 1; got {steps}.")
  return optax.linear_schedule(init, end, steps)


def constant(value: float) -> Schedule:
  """The same value at every step (`optax.constant_schedule`)."""
  return optax.constant_schedule(value)


SCHEDULES: dict[str, Callable[..., Schedule]] = {
  "constant": constant,
  "linear": linear,
  "cosine": cosine,
}


def _number(node: ast.AST, spec: str) -> float:
  try:
    value = ast.literal_eval(node)
  except ValueError:
    value = None
  if isinstance(value, bool) or not isinstance(value, (int, float)):
    raise ValueError(
      f"Schedule {spec!r}: every argument must be a number; got {ast.unparse(node)}."
    )
  return value


def parse(spec: float | int | str, *, field: str = "value") -> Schedule:
  """Reads a config value, a number or a schedule spec, into a schedule of the train step.

  Args:
    spec: a number, or a string: a number, or `name(args, key=value)` with name in `SCHEDULES`
      ('constant', 'linear', 'cosine') and numeric arguments (see the module docstring).
    field: the config field's name, for error messages.

  Returns:
    A schedule `step -> float32 scalar`, jittable (step may be traced).

  Raises:
    ValueError: an unknown schedule name (listing the valid ones), wrong arguments (naming the
      signature), or a value that is neither a number nor a spec.

  Example:
    >>> float(parse(0.5)(123)), float(parse("constant(2)")(0))
    (0.5, 2.0)
    >>> parse("exp(1, 2)", field="optim.g_lr")
    Traceback (most recent call last):
    ...
    ValueError: optim.g_lr: unknown schedule 'exp' in 'exp(1, 2)'; valid: constant, linear, cosine (e.g. 'cosine(2e-4, 5e-5, 10000)'), or a number.
  """
  if isinstance(spec, bool):
    raise ValueError(f"{field}: a number or a schedule spec is needed; got {spec!r}.")
  if isinstance(spec, (int, float)):
    return constant(float(spec))
  if not isinstance(spec, str):
    raise ValueError(
      f"{field}: a number or a schedule spec string is needed (e.g. 'cosine(2e-4, 5e-5, 10000)'); "
      f"got {spec!r} of type {type(spec).__name__}."
    )
  valid = f"valid: {', '.join(SCHEDULES)} (e.g. 'cosine(2e-4, 5e-5, 10000)'), or a number"
  try:
    node = ast.parse(spec.strip(), mode="eval").body
  except SyntaxError:
    raise ValueError(f"{field}: cannot read schedule {spec!r}; {valid}.") from None
  if not isinstance(node, ast.Call):
    return constant(float(_number(node, spec)))
  name = node.func.id if isinstance(node.func, ast.Name) else ast.unparse(node.func)
  if name not in SCHEDULES:
    raise ValueError(f"{field}: unknown schedule {name!r} in {spec!r}; {valid}.")
  args = [_number(a, spec) for a in node.args]
  kwargs = {k.arg: _number(k.value, spec) for k in node.keywords}
  for key in ("steps", "warmup"):
    if key in kwargs:
      kwargs[key] = int(kwargs[key])
  if name in ("linear", "cosine") and len(args) >= 3:
    args[2] = int(args[2])
  fn = SCHEDULES[name]
  try:
    return fn(*args, **kwargs)
  except TypeError as e:
    raise ValueError(f"{field}: {spec!r} does not fit {name}{_signature(fn)} ({e}).") from None
  except ValueError as e:
    raise ValueError(f"{field}: {e}") from None


def _signature(fn) -> str:
  import inspect  # pylint: disable=g-import-not-at-top

  params = inspect.signature(fn).parameters.values()
  return (
    "("
    + ", ".join(p.name if p.default is p.empty else f"{p.name}={p.default}" for p in params)
    + ")"
  )


def value_range(
  spec: float | int | str, steps: int, *, field: str = "value"
) -> tuple[float, float]:
  """The smallest and largest value a spec takes over steps 0..steps (for validation).

  Args:
    spec: a number or a schedule spec.
    steps: the last step to look at.
    field: the config field's name, for error messages.

  Returns:
    (min, max) over the steps 0, ..., `steps`, as Python floats.

  Raises:
    ValueError: as `parse`.
  """
  schedule = parse(spec, field=field)
  values = jax.vmap(schedule)(jnp.arange(max(int(steps), 0) + 1))
  return float(jnp.min(values)), float(jnp.max(values))


def ema_decay_from_half_life(
  half_life: ScalarOrSchedule, images_per_step: int, rampup: float | None = None
) -> Schedule:
  """The EMA decay per generator update from a half-life in images (StyleGAN2-ADA, R3GAN).

  beta(t) = 0.5 ** (images_per_step / h(t)), so the EMA forgets half its weight every h images,
  whatever the batch size. With `rampup` (StyleGAN2-ADA's ema_rampup, 0.05) the half-life is at
  most `rampup` times the images seen so far, so the EMA is not dominated by its initial value
  early in training; R3GAN instead ramps h itself with a schedule.

  Args:
    half_life: h in images: a number or a schedule of the train step.
    images_per_step: images per generator update (the batch size).
    rampup: None, or the fraction of the images seen that bounds h.

  Returns:
    A schedule of the train step giving the decay, float32 in [0, 1).

  Example:
    >>> round(float(ema_decay_from_half_life(640.0, 64)(1000)), 4)  # 10 steps per half-life
    0.933
  """
  h_of = half_life if callable(half_life) else constant(float(half_life))

  def decay(step):
    h = jnp.asarray(h_of(step), jnp.float32)
    if rampup is not None:
      h = jnp.minimum(h, jnp.asarray(step, jnp.float32) * images_per_step * rampup)
    return jnp.where(h > 0, 0.5 ** (images_per_step / jnp.maximum(h, 1e-8)), 0.0)

  return decay
