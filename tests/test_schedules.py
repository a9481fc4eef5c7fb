"""Schedule specs against R3GAN's formula in NumPy, the EMA half-life, and config-level schedules."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxgan import config as config_lib
from jaxgan import schedules
from jaxgan.run.build import build_gan, build_train_step


def _r3gan_cosine(t, base, total, final, warmup_value=0.0, warmup=0):
  """R3GAN's cosine_decay_with_warmup (training_loop.py), rewritten in NumPy, in steps."""
  decay = 0.5 * (1 + np.cos(np.pi * (t - warmup) / float(total - warmup)))
  value = base + (1 - decay) * (final - base)
  if warmup > 0:
    value = np.where(t < warmup, (base - warmup_value) / warmup * t + warmup_value, value)
  return np.where(t > total, final, value)


@pytest.mark.parametrize(
  "spec,args",
  [
    ("cosine(2e-4, 5e-5, 100)", (2e-4, 100, 5e-5)),
    ("cosine(0, 5e6, 100)", (0.0, 100, 5e6)),  # rising from 0 (R3GAN's EMA half-life)
    ("cosine(0.9, 0.99, 100, warmup=10, warmup_init=0.5)", (0.9, 100, 0.99, 0.5, 10)),
  ],
)
def test_cosine_matches_r3gans_schedule(spec, args):
  t = np.arange(0, 130)
  got = jax.vmap(schedules.parse(spec))(jnp.asarray(t))
  np.testing.assert_allclose(got, _r3gan_cosine(t, *args), rtol=1e-5, atol=1e-6 * max(args))


def test_numbers_linear_and_errors():
  assert float(schedules.parse("3e-4")(10)) == pytest.approx(3e-4)
  np.testing.assert_allclose(
    jax.vmap(schedules.parse("linear(1, 0, 4)"))(jnp.arange(6)), [1, 0.75, 0.5, 0.25, 0, 0]
  )
  for spec, match in [
    ("cosin(1, 0, 10)", "unknown schedule 'cosin'.*valid: constant, linear, cosine"),
    ("linear(1, 0)", r"does not fit linear\(init, end, steps\)"),
    ("cosine(1, 0, 10, warmup=10)", "warmup < steps"),
    ("cosine(1, x, 10)", "every argument must be a number"),
    ([1, 2], "a number or a schedule spec string"),
  ]:
    with pytest.raises(ValueError, match=match):
      schedules.parse(spec, field="optim.g_lr")


def test_ema_half_life_in_images_with_rampup():
  # beta = 0.5 ** (batch / h): after h / batch steps half the weight is gone.
  beta = float(schedules.ema_decay_from_half_life(6400.0, 64)(1000))
  assert beta**100 == pytest.approx(0.5, rel=1e-5)
  # StyleGAN2-ADA's ramp-up: h <= rampup * images seen; 0 images: decay 0 (EMA = params).
  ramp = schedules.ema_decay_from_half_life(6400.0, 64, rampup=0.05)
  assert float(ramp(0)) == 0.0
  assert float(ramp(100)) == pytest.approx(0.5 ** (64 / (0.05 * 100 * 64)), rel=1e-6)
  assert float(ramp(10_000)) == pytest.approx(beta, rel=1e-6)


def test_config_schedules_reach_the_optimizer_and_the_penalty_weights():
  c = config_lib.toy_config("ring", steps=1000)
  c.data.batch_size = 8
  c.optim.g_lr = "linear(1e-3, 0, 4)"
  c.optim.b2 = "cosine(0.9, 0.99, 4)"
  c.loss.penalties = {"r1": "linear(1.0, 0.0, 2)", "r2": 0.5}
  c.optim.ema_half_life = "cosine(0, 800, 4)"
  config_lib.validate(c)
  gan = build_gan(c, (2,))
  step = jax.jit(build_train_step(c, gan))
  state = gan.init(jax.random.key(0), jnp.zeros((8, 2)))
  batch = jax.random.normal(jax.random.key(1), (8, 2))
  hyper = []
  for _ in range(5):
    state, metrics = step(state, batch, jax.random.key(2))
    hyper.append(state.g_opt_state.hyperparams)
  # optax evaluates the schedule at the count of the update just made: 0, 1, 2, ...
  np.testing.assert_allclose([h["learning_rate"] for h in hyper], [1e-3, 7.5e-4, 5e-4, 2.5e-4, 0])
  np.testing.assert_allclose(hyper[4]["b2"], 0.99, rtol=1e-6)
  assert set(metrics) >= {"penalty_r1", "penalty_r2"}


@pytest.mark.parametrize(
  "field,value,match",
  [
    ("optim.g_lr", "linear(1e-3, -1e-3, 10)", "optim.g_lr.*goes below 0"),
    ("optim.d_lr", "cosin(1, 0, 1)", "unknown schedule 'cosin'"),
    ("augment.p", 0.5, "need an augmentation: set config.augment.name"),
  ],
)
def test_bad_schedules_in_a_config_are_refused_naming_the_field(field, value, match):
  c = config_lib.toy_config("ring", steps=1000)
  section, name = field.split(".")
  c[section][name] = value
  with pytest.raises(ValueError, match=match):
    config_lib.validate(c)
    gan = build_gan(c, (2,))
    build_train_step(c, gan)
