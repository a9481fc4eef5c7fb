"""Mixed precision: G and D compute in bfloat16 with float32 parameters, statistics, outputs,
gradients and optimizer states; the gradient penalty stays float32 and finite."""

import jax
import jax.extend
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxgan import GAN, make_train_step
from jaxgan.config import default_config
from jaxgan.data import toy as toy_data
from jaxgan.metrics.mode_coverage import mode_coverage
from jaxgan.models import make_models
from jaxgan.run.build import build_gan

# The convolutional networks whole: the full tier.
CASES = [
  ("mlp", (2,), "layer"),
  ("mlp", (2,), "spectral"),
  pytest.param("dcgan", (28, 28, 1), "batch", marks=pytest.mark.full),
  pytest.param("resnet", (32, 32, 3), "spectral", marks=pytest.mark.full),
]


def _heavy_op_dtypes(fn, *args, batch=5):
  """Input dtypes of every matmul and convolution on activations (an operand with the leading
  batch axis) in fn's jaxpr, nested jaxprs included. Spectral norm's power iterations act on
  the parameters only and stay float32 by design."""
  found = []

  def visit(jaxpr):
    for eqn in jaxpr.eqns:
      if eqn.primitive.name in ("dot_general", "conv_general_dilated") and any(
        v.aval.shape[:1] == (batch,) for v in eqn.invars
      ):
        found.extend(str(v.aval.dtype) for v in eqn.invars)
      for param in eqn.params.values():
        for sub in param if isinstance(param, (list, tuple)) else [param]:
          if isinstance(sub, jax.extend.core.ClosedJaxpr):
            visit(sub.jaxpr)
          elif isinstance(sub, jax.extend.core.Jaxpr):
            visit(sub)

  visit(jax.make_jaxpr(fn)(*args).jaxpr)
  return found


@pytest.mark.parametrize("name,shape,norm", CASES)
def test_bfloat16_models_compute_in_bfloat16_and_keep_float32_state(name, shape, norm):
  g, d = make_models(name, image_shape=shape, latent_dim=8, width=8, d_norm=norm, dtype="bfloat16")
  assert g.dtype == jnp.bfloat16 and d.dtype == jnp.bfloat16
  z = jax.random.normal(jax.random.PRNGKey(0), (5, 8))
  g_vars = g.init(jax.random.PRNGKey(1), z, train=False)
  x, _ = g.apply(g_vars, z, train=True, mutable=["batch_stats"])
  d_vars = d.init(jax.random.PRNGKey(2), x, train=False)
  scores, d_updates = d.apply(d_vars, x, train=True, mutable=["batch_stats"])
  assert x.dtype == jnp.float32 and scores.dtype == jnp.float32
  assert scores.shape == (5,) and bool(jnp.all(jnp.isfinite(scores)))
  for leaf in jax.tree.leaves((g_vars, d_vars, d_updates)):
    assert leaf.dtype == jnp.float32  # params, BatchNorm statistics, spectral-norm vectors
  g_ops = _heavy_op_dtypes(lambda v, z: g.apply(v, z, train=False), g_vars, z)
  d_ops = _heavy_op_dtypes(lambda v, x: d.apply(v, x, train=False), d_vars, x)
  assert g_ops and d_ops
  assert set(g_ops) == {"bfloat16"} and set(d_ops) == {"bfloat16"}, (g_ops, d_ops)

  # Same parameters in float32: close, but not identical, outputs.
  g32, d32 = make_models(name, image_shape=shape, latent_dim=8, width=8, d_norm=norm)
  x32 = g32.apply(g_vars, z, train=False)
  x16 = g.apply(g_vars, z, train=False)
  assert not np.array_equal(np.asarray(x32), np.asarray(x16))
  np.testing.assert_allclose(x16, x32, atol=0.1)
  assert set(_heavy_op_dtypes(lambda v, z: g32.apply(v, z, train=False), g_vars, z)) == {"float32"}


def test_float32_is_the_default_and_bad_dtypes_are_refused():
  g, d = make_models("mlp", image_shape=(2,))
  assert g.dtype == jnp.float32 and d.dtype == jnp.float32
  with pytest.raises(ValueError, match="compute dtype must be one of float32, bfloat16"):
    make_models("mlp", image_shape=(2,), dtype="int8")


def test_config_compute_dtype_reaches_the_models():
  config = default_config()
  assert config.model.compute_dtype == "float32"
  config.model.name, config.model.compute_dtype, config.model.width = "dcgan", "bfloat16", 8
  gan = build_gan(config, (28, 28, 1))
  assert gan.generator.dtype == jnp.bfloat16 and gan.discriminator.dtype == jnp.bfloat16
  config.model.compute_dtype = "float64"
  with pytest.raises(ValueError, match="compute dtype"):
    build_gan(config, (28, 28, 1))


@pytest.mark.full
def test_bfloat16_wgan_gp_step_has_a_finite_float32_penalty():
  g, d = make_models(
    "dcgan", image_shape=(28, 28, 1), latent_dim=8, width=8, d_norm="layer", dtype=jnp.bfloat16
  )
  gan = GAN(
    g, d, optax.adam(1e-4, b1=0.0, b2=0.9), optax.adam(1e-4, b1=0.0, b2=0.9), latent_shape=(8,)
  )
  step = jax.jit(make_train_step(gan, loss="wgan", penalty="wgan_gp", n_critic=2))
  real = jnp.tanh(jax.random.normal(jax.random.PRNGKey(0), (2 * 8, 28, 28, 1)))
  state = gan.init(jax.random.PRNGKey(1), real[:8])
  for _ in range(3):
    state, metrics = step(state, real, jax.random.PRNGKey(2))
  assert int(state.skipped) == 0
  for k, v in metrics.items():
    assert v.dtype == jnp.float32 and np.isfinite(float(v)), (k, v)
  assert float(metrics["penalty"]) > 0.0
  for leaf in jax.tree.leaves(
    (state.g_params, state.d_params, state.ema_params, state.g_opt_state, state.d_opt_state)
  ):
    if jnp.issubdtype(leaf.dtype, jnp.floating):
      assert leaf.dtype == jnp.float32


@pytest.mark.full
def test_bfloat16_toy_run_captures_the_ring():
  # The thresholds sit below what this seed reaches, so that they test training in bfloat16 and
  # leave room for rounding differences between CPUs.
  mixture = toy_data.get("ring")
  g, d = make_models(
    "mlp",
    image_shape=(2,),
    g_hidden=(128,) * 3,
    d_hidden=(128,) * 3,
    output_activation="none",
    dtype="bfloat16",
  )
  adam = lambda: optax.adam(2e-4, b1=0.5, b2=0.999)
  gan = GAN(g, d, adam(), adam(), latent_shape=(2,))
  step = make_train_step(gan, loss="non_saturating", ema_decay=0.99)
  state = gan.init(jax.random.PRNGKey(0), jnp.zeros((256, 2)))
  key = jax.random.PRNGKey(1)

  @jax.jit
  def train_many(state):
    def body(state, _):
      batch = mixture.sample(jax.random.fold_in(jax.random.fold_in(key, 1), state.step), 256)
      return step(state, batch, key)

    return jax.lax.scan(body, state, length=1000)

  for _ in range(3):
    state, metrics = train_many(state)
  assert not bool(jnp.any(metrics["skipped"]))
  samples = gan.sample(state, jax.random.PRNGKey(2), 2500)
  assert samples.dtype == jnp.float32
  result = mode_coverage(samples, mixture.modes, mixture.std)
  assert result["modes_captured"] >= 7, result
  assert result["high_quality"] >= 0.4, result
