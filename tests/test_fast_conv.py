"""jaxgan.models.fast_conv: the sub-pixel transposed convolution is the same function as Flax's
ConvTranspose (values, first and second derivatives in the input and the kernel), and the DCGAN
generator built with it is the same generator."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxgan.models import DCGANGenerator, fast_conv

jax.config.update('jax_default_matmul_precision', 'highest')

TOL = dict(rtol=1e-4, atol=1e-5)


def _setup(n=2, h=5, w=4, cin=3, cout=2, bias=True, seed=0):
  kx, kp = jax.random.split(jax.random.PRNGKey(seed))
  x = jax.random.normal(kx, (n, h, w, cin))
  ref = nn.ConvTranspose(cout, (4, 4), strides=(2, 2), padding='SAME', use_bias=bias)
  fast = fast_conv.SubPixelConvTranspose(cout, use_bias=bias)
  params = ref.init(kp, x)
  # Non-zero bias, so it is tested too.
  params = jax.tree.map(lambda p: p + 0.1 * jax.random.normal(kp, p.shape), params)
  assert jax.tree.structure(fast.init(kp, x)) == jax.tree.structure(params)
  return x, ref, fast, params


@pytest.mark.parametrize('bias', [True, False])
@pytest.mark.parametrize('shape', [(2, 4, 4, 3, 2), (1, 5, 3, 2, 3), (3, 1, 1, 1, 1)])
def test_values_match(shape, bias):
  n, h, w, cin, cout = shape
  x, ref, fast, params = _setup(n, h, w, cin, cout, bias)
  want = ref.apply(params, x)
  got = fast.apply(params, x)
  assert got.shape == want.shape == (n, 2 * h, 2 * w, cout)
  np.testing.assert_allclose(got, want, **TOL)


def test_first_and_second_derivatives_match():
  x, ref, fast, params = _setup()
  cot = jax.random.normal(jax.random.PRNGKey(3), (2, 10, 8, 2))

  def loss(module):
    # A nonlinear scalar so that second derivatives are non-trivial.
    return lambda p, x: jnp.sum(jnp.tanh(module.apply(p, x)) * cot)

  for argnums in (0, 1):
    g_ref = jax.grad(loss(ref), argnums)(params, x)
    g_fast = jax.grad(loss(fast), argnums)(params, x)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, **TOL), g_fast, g_ref)

  # Second derivatives: gradient-penalty style (d/dparams of ||d/dx||^2) and a Hessian-vector
  # product in the kernel.
  def gp(module):
    return lambda p, x: jnp.sum(jax.grad(loss(module), 1)(p, x) ** 2)

  for argnums in (0, 1):
    h_ref = jax.grad(gp(ref), argnums)(params, x)
    h_fast = jax.grad(gp(fast), argnums)(params, x)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, **TOL), h_fast, h_ref)

  v = jax.tree.map(jnp.ones_like, params)
  hvp = lambda m: jax.jvp(lambda p: jax.grad(loss(m))(p, x), (params,), (v,))[1]
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, **TOL), hvp(fast), hvp(ref))


def test_rejects_other_configurations():
  x = jnp.zeros((1, 4, 4, 1))
  with pytest.raises(ValueError, match='supports'):
    fast_conv.SubPixelConvTranspose(2, kernel_size=(3, 3)).init(jax.random.PRNGKey(0), x)


@pytest.mark.parametrize('size', [28, 32])
def test_dcgan_generator_with_fast_conv_is_the_same_generator(size):
  g_ref = DCGANGenerator(image_size=size, channels=3, width=8, upsample='transpose')
  g_fast = DCGANGenerator(image_size=size, channels=3, width=8, upsample='subpixel')
  z = jax.random.normal(jax.random.PRNGKey(0), (4, 100))
  variables = g_ref.init(jax.random.PRNGKey(1), z, train=False)
  assert (jax.tree.structure(g_fast.init(jax.random.PRNGKey(1), z, train=False))
          == jax.tree.structure(variables))
  out_ref, _ = g_ref.apply(variables, z, train=True, mutable=['batch_stats'])
  out_fast, _ = g_fast.apply(variables, z, train=True, mutable=['batch_stats'])
  np.testing.assert_allclose(out_fast, out_ref, **TOL)
  grad = lambda g: jax.grad(lambda p: jnp.sum(g.apply(
      {**variables, 'params': p}, z, train=True, mutable=['batch_stats'])[0] ** 2))(
          variables['params'])
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-5),
               grad(g_fast), grad(g_ref))


def test_upsample_choices():
  z = jnp.zeros((1, 100))
  with pytest.raises(ValueError, match="auto, transpose, subpixel"):
    DCGANGenerator(image_size=28, channels=1, width=8, upsample='nearest').init(
        jax.random.PRNGKey(0), z, train=False)
  # 'auto' is the sub-pixel form on CPU: the same parameter tree either way.
  trees = [jax.tree.structure(jax.eval_shape(
      lambda: DCGANGenerator(image_size=28, channels=1, width=8, upsample=u).init(
          jax.random.PRNGKey(0), z, train=False))) for u in ('auto', 'transpose')]
  assert trees[0] == trees[1]
