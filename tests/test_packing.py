"""PacGAN packing, the minibatch standard deviation and PacGAN's reverse KL, against NumPy."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxgan import GAN, penalties
from jaxgan import config as config_lib
from jaxgan.metrics.mode_coverage import mode_coverage
from jaxgan.models import layers, make_models
from jaxgan.run.build import build_gan, build_train_step
from jaxgan.step.packing import pack


def test_pack_matches_numpy_concatenation():
  x = np.random.default_rng(0).normal(size=(6, 4, 4, 3)).astype(np.float32)
  want = np.stack([np.concatenate(list(x[i : i + 3]), axis=-1) for i in (0, 3)])
  np.testing.assert_array_equal(pack(jnp.asarray(x), 3), want)
  assert pack(x, 1) is x  # m = 1 is the identity, not a copy
  with pytest.raises(ValueError, match="multiple of 4"):
    pack(jnp.asarray(x), 4)
  with pytest.raises(ValueError, match="positive integer"):
    pack(jnp.asarray(x), 0)


@pytest.mark.parametrize("shape", [(8, 5), (8, 3, 3, 2)])
@pytest.mark.parametrize("group", [2, 4, 16])
def test_minibatch_stddev_matches_numpy(shape, group):
  x = np.random.default_rng(1).normal(size=shape).astype(np.float32)
  n, g = shape[0], min(group, shape[0])
  stat = np.empty(n, np.float32)
  for i in range(n // g):  # group i: examples i, i + n/g, i + 2n/g, ...
    members = x[i :: n // g]
    stat[i :: n // g] = np.sqrt(members.var(axis=0) + 1e-8).mean()
  want = np.concatenate(
    [x, np.broadcast_to(stat.reshape(n, *[1] * (x.ndim - 1)), (*shape[:-1], 1))], -1
  )
  np.testing.assert_allclose(layers.minibatch_stddev(jnp.asarray(x), group), want, rtol=1e-5)


def test_minibatch_stddev_refuses_a_batch_off_its_groups():
  with pytest.raises(ValueError, match="multiple of its group size"):
    layers.minibatch_stddev(jnp.zeros((6, 2)), 4)


@pytest.mark.parametrize(
  "model,shape",
  [
    ("mlp", (2,)),
    pytest.param("dcgan", (28, 28, 1), marks=pytest.mark.full),  # whole networks: full tier
    pytest.param("resnet", (32, 32, 3), marks=pytest.mark.full),
  ],
)
def test_every_critic_takes_minibatch_std(model, shape):
  kw = {} if model == "mlp" else {"conv": "xla"}
  _, d = make_models(model, image_shape=shape, width=8, minibatch_std=4, d_norm="layer", **kw)
  x = jnp.asarray(np.random.default_rng(2).normal(size=(8, *shape)), jnp.float32)
  variables = jax.jit(lambda x: d.init(jax.random.key(0), x, train=False))(x)
  apply = jax.jit(lambda v, x: d.apply(v, x, train=False))
  s = apply(variables, x)
  assert s.shape == (8,)
  # Changing example 0 moves the scores of its group (0, 2, 4, 6: example i joins group i % 2)
  # through the statistic, and only those: every other layer treats examples alone.
  changed = np.abs(np.asarray(apply(variables, x.at[0].add(3.0)) - s))
  assert np.all(changed[[2, 4, 6]] > 0), changed
  np.testing.assert_array_equal(changed[[1, 3, 5, 7]], 0.0)


def _toy_gan(pack_size, norm="layer"):
  g, d = make_models(
    "mlp", image_shape=(2,), g_hidden=(8,), d_hidden=(8,), d_norm=norm, output_activation="none"
  )
  return GAN(g, d, optax.sgd(0.1), optax.sgd(0.1), latent_shape=(2,), pack=pack_size)


def test_packed_critic_is_built_for_packs_and_penalised_on_them():
  gan = _toy_gan(4)
  real = jax.random.normal(jax.random.key(0), (16, 2))
  state = gan.init(jax.random.key(1), real)
  assert state.d_params["Dense_0"]["kernel"].shape == (8, 8)  # 4 packed points of 2 coordinates
  from jaxgan.step.train import make_train_step

  step = make_train_step(gan, loss="wgan", penalty="r1", penalty_weight=1.0, ema_decay=0.0)
  _, metrics = jax.jit(step)(state, real, jax.random.key(2))
  critic = lambda x: gan.discriminator.apply({"params": state.d_params}, x, train=True)
  packed = pack(real, 4)
  want = np.mean(np.sum(np.square(jax.vmap(jax.grad(lambda v: critic(v[None])[0]))(packed)), -1))
  np.testing.assert_allclose(metrics["penalty"], want, rtol=1e-5)
  np.testing.assert_allclose(metrics["d_real"], np.mean(critic(packed)), rtol=1e-5)
  np.testing.assert_allclose(
    metrics["penalty"], penalties.r1_penalty(critic, packed), rtol=1e-6
  )  # and the library's own R1 on the packs agrees


def test_packed_step_refuses_a_batch_off_its_packs():
  gan = _toy_gan(3)
  from jaxgan.step.train import make_train_step

  state = gan.init(jax.random.key(1), jnp.zeros((6, 2)))
  with pytest.raises(ValueError, match="packs of pack=3"):
    make_train_step(gan)(state, jnp.zeros((8, 2)), jax.random.key(0))


def test_config_builds_pack_and_minibatch_std_and_checks_them():
  c = config_lib.toy_config("grid", steps=1000)
  c.model.pack, c.model.minibatch_std = 2, 4
  config_lib.validate(c)
  gan = build_gan(c, (2,))
  assert gan.pack == 2 and gan.discriminator.minibatch_std == 4
  state = gan.init(jax.random.key(0), jnp.zeros((c.data.batch_size, 2)))
  _, m = jax.jit(build_train_step(c, gan))(state, jnp.ones((256, 2)), jax.random.key(1))
  assert np.isfinite(float(m["d_loss"]))
  c.model.pack = 3
  with pytest.raises(
    ValueError, match="packs of config.model.pack=3; make config.data.batch_size per critic update"
  ):
    config_lib.validate(c)
  c.model.pack, c.model.minibatch_std = 1, -1
  with pytest.raises(ValueError, match="minibatch_std"):
    config_lib.validate(c)
  c.model.minibatch_std, c.data.name, c.eval.metrics = 0, "mnist", "fcd,modes"
  c.run.steps_per_call = 1
  with pytest.raises(ValueError, match="data.name='stacked_mnist'"):
    config_lib.validate(c)


def test_reverse_kl_against_closed_forms():
  modes = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0], [10.0, 10.0]])
  even = np.repeat(modes, 5, axis=0)
  assert mode_coverage(even, modes, 0.1)["reverse_kl"] == pytest.approx(0.0, abs=1e-12)
  two = np.repeat(modes[:2], 7, axis=0)
  assert mode_coverage(two, modes, 0.1)["reverse_kl"] == pytest.approx(np.log(2.0))
  # Uneven: 3 samples on mode 0, 1 on mode 1, and a far sample that is not counted.
  uneven = np.concatenate([np.repeat(modes[:1], 3, 0), modes[1:2], [[5.0, 5.0]]])
  p = np.array([0.75, 0.25])
  out = mode_coverage(uneven, modes, 0.1)
  assert out["reverse_kl"] == pytest.approx(np.sum(p * np.log(4 * p)))
  assert out["high_quality"] == pytest.approx(0.8)
  assert mode_coverage(np.array([[5.0, 5.0]]), modes, 0.1)["reverse_kl"] == np.inf
