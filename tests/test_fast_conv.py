"""jaxgan.models.fast_conv is lax's convolution: values and reverse-mode derivatives of first,
second and third order equal `jax.grad` of `lax.conv_general_dilated` / `lax.conv_transpose`, with
XLA's ops (float64, to 1e-9) and with oneDNN's (float32), and the models built with conv='xla' or
'onednn' are the same models as with conv='lax'."""

import os
import platform
import sys

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxgan import penalties
from jaxgan.models import fast_conv, make_models, onednn

jax.config.update('jax_default_matmul_precision', 'highest')

# Relative tolerance, and absolute tolerance as a fraction of the largest reference entry: the two
# sides sum the same products in different orders, and the differences grow with each derivative.
TOL = dict(rtol=2e-4, atol=2e-5)
DN = ('NHWC', 'HWIO', 'NHWC')


def _close(a, b, tol=TOL, scale=None):
  """`scale` (default: each leaf's largest entry, at least 1) is what `atol` is a fraction of."""
  def close(x, y):
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    s = max(np.abs(y).max(), 1) if scale is None else scale
    np.testing.assert_allclose(x, y, rtol=tol['rtol'], atol=tol['atol'] * s)
  jax.tree.map(close, a, b)


def _derivatives(f, x, k, cot):
  """Values, first, second and third reverse-mode derivatives of a nonlinear scalar of f."""
  loss = lambda x, k: jnp.sum(jnp.tanh(f(x, k)) * cot)
  # Gradient-penalty style: the squared norm of the input gradient, differentiated again.
  gp = lambda x, k: jnp.sum(jax.grad(loss)(x, k) ** 2)
  third = lambda x, k: jnp.sum(jnp.sin(jax.grad(gp, 1)(x, k)))
  return (f(x, k), jax.grad(loss, (0, 1))(x, k), jax.grad(gp, (0, 1))(x, k),
          jax.grad(third, (0, 1))(x, k))


def _check(fast, ref, x_shape, k_shape, seed=0, dtype=jnp.float64):
  """In float64 agreement to 1e-9 shows the same function, not just similar rounding; oneDNN
  computes float32 only, where the two sides agree to float32 rounding, amplified by each
  derivative order (the loose `atol` is a fraction of the largest entry)."""
  with jax.enable_x64(dtype == jnp.float64):
    kx, kk, kc = jax.random.split(jax.random.PRNGKey(seed), 3)
    x = jax.random.normal(kx, x_shape, dtype)
    k = 0.3 * jax.random.normal(kk, k_shape, dtype)
    cot = jax.random.normal(kc, ref(x, k).shape, dtype)
    got = _derivatives(fast, x, k, cot)
    want = _derivatives(ref, x, k, cot)
  assert got[0].shape == want[0].shape
  assert all(a.dtype == dtype for a in jax.tree.leaves(got))
  _close(got, want, dict(rtol=1e-9, atol=1e-10) if dtype == jnp.float64 else dict(rtol=1e-3,
                                                                                 atol=1e-4))


def _onednn_expected() -> bool:
  """oneDNN is a dependency on Linux x86-64: there it must build (CI fails loudly if it does
  not); elsewhere its tests are skipped."""
  return sys.platform == 'linux' and platform.machine() == 'x86_64'


def _require_onednn():
  if not _onednn_expected():
    pytest.skip('oneDNN convolutions are installed on Linux x86-64 only')
  assert onednn.available(), onednn.unavailable_reason()


# Each fast_conv function and the lax function it must equal (NHWC / HWIO).
_PAIRS = {
    'conv2d': (fast_conv.conv2d, lambda x, k, s, p: jax.lax.conv_general_dilated(
        x, k, s, p, dimension_numbers=DN)),
    'conv2d_transpose': (fast_conv.conv2d_transpose, lambda x, k, s, p: jax.lax.conv_transpose(
        x, k, s, p, dimension_numbers=DN)),
}


@pytest.mark.parametrize('op,x_shape,kernel,strides,padding', [
    ('conv2d', (2, 8, 8, 3), 4, 2, 'SAME'),           # the DCGAN critic's layer
    ('conv2d', (2, 7, 7, 2), 4, 2, 'SAME'),           # odd size (7 -> 4): asymmetric padding
    ('conv2d', (3, 6, 5, 2), 3, 1, 'SAME'),           # the ResNet's layers
    ('conv2d', (2, 5, 5, 4), 1, 1, 'VALID'),          # 1x1 shortcut
    ('conv2d', (2, 9, 8, 2), 3, 2, ((2, 0), (1, 1))),  # explicit, unequal padding
    ('conv2d', (2, 9, 9, 2), 3, 1, ((-1, 2), (0, -1))),  # negative (cropping): lax's ops
    ('conv2d', (2, 9, 9, 2), 5, 3, 'VALID'),
    ('conv2d_transpose', (2, 4, 4, 3), 4, 2, 'SAME'),  # the DCGAN generator's layer
    ('conv2d_transpose', (2, 7, 7, 2), 4, 2, 'SAME'),  # 7 -> 14 (28x28 DCGAN)
    ('conv2d_transpose', (1, 3, 5, 2), 3, 2, 'SAME'),
    ('conv2d_transpose', (2, 4, 4, 2), 3, 1, 'SAME'),
    ('conv2d_transpose', (2, 3, 3, 2), 4, 2, 'VALID'),
    ('conv2d_transpose', (2, 4, 3, 2), 5, 3, 'VALID'),
])
@pytest.mark.parametrize('backend', ['xla', 'onednn', 'onednn-kernel-gradient-as-forward'])
def test_function_is_the_lax_function(op, x_shape, kernel, strides, padding, backend,
                                      monkeypatch):
  if backend != 'xla':
    _require_onednn()
    # Every op through oneDNN, including the input gradients into few channels it is slow on.
    monkeypatch.setattr(fast_conv, '_ONEDNN_MIN_INPUT_GRADIENT_CHANNELS', 1)
    # Kernel gradients: these images have too few channels for the forward formulation, which
    # the third variant forces on every one (including forward outputs with rows to cut off).
    if backend == 'onednn-kernel-gradient-as-forward':
      monkeypatch.setattr(onednn, '_AS_FORWARD_MIN_TAPS', 1)
      monkeypatch.setattr(onednn, '_AS_FORWARD_MAX_ROWS', 10**9)
      monkeypatch.setattr(onednn, '_AS_FORWARD_MIN_CHANNELS', 1)
      backend = 'onednn'
  fast, ref = _PAIRS[op]
  s = (strides, strides)
  _check(lambda x, k: fast(x, k, s, padding, backend), lambda x, k: ref(x, k, s, padding),
         x_shape, (kernel, kernel, x_shape[-1], 3),
         dtype=jnp.float64 if backend == 'xla' else jnp.float32)


@pytest.mark.parametrize('batch', [1, 3, 7])
def test_onednn_batch_slices_of_unequal_size(batch, monkeypatch):
  # oneDNN runs one batch slice per thread of XLA's pool: a batch of 1 is one slice, odd batches
  # are cut into slices of different sizes (a primitive each, whose kernel gradients are summed).
  _require_onednn()
  monkeypatch.setattr(fast_conv, '_ONEDNN_MIN_INPUT_GRADIENT_CHANNELS', 1)
  s = (2, 2)
  ref = lambda x, k: jax.lax.conv_general_dilated(x, k, s, 'SAME', dimension_numbers=DN)
  fast = lambda x, k: fast_conv.conv2d(x, k, s, 'SAME', 'onednn')
  _check(fast, ref, (batch, 8, 8, 8), (4, 4, 8, 16), dtype=jnp.float32)


def test_chunked_kernel_gradient_is_the_same(monkeypatch):
  # Force the kernel gradient to be summed over 4 batch chunks (it is one piece at this size).
  monkeypatch.setattr(fast_conv, '_KERNEL_T_ROWS', 2 * 6 * 6)
  ref = lambda x, k: jax.lax.conv_general_dilated(x, k, (1, 1), 'SAME', dimension_numbers=DN)
  fast = lambda x, k: fast_conv.conv2d(x, k, (1, 1), 'SAME')
  _check(fast, ref, (8, 6, 6, 3), (3, 3, 3, 4))


def test_transpose_rejects_explicit_padding():
  with pytest.raises(ValueError, match="'SAME' or 'VALID'"):
    fast_conv.conv2d_transpose(jnp.zeros((1, 4, 4, 1)), jnp.zeros((4, 4, 1, 1)), (2, 2),
                               ((1, 1), (1, 1)))


@pytest.mark.parametrize('backend', ['xla', 'onednn'])
@pytest.mark.parametrize('dtype', [jnp.float32, jnp.bfloat16])
@pytest.mark.parametrize('flax_cls,fast_cls,kw', [
    (nn.Conv, fast_conv.Conv, dict(kernel_size=(4, 4), strides=(2, 2), padding='SAME')),
    (nn.Conv, fast_conv.Conv, dict(kernel_size=(3, 3), padding='SAME', use_bias=False)),
    (nn.ConvTranspose, fast_conv.ConvTranspose,
     dict(kernel_size=(4, 4), strides=(2, 2), padding='SAME')),
])
def test_modules_are_flax_modules(flax_cls, fast_cls, kw, dtype, backend):
  if backend == 'onednn':
    _require_onednn()
  x = jax.random.normal(jax.random.PRNGKey(0), (2, 8, 8, 3))
  ref, fast = flax_cls(5, dtype=dtype, **kw), fast_cls(5, dtype=dtype, backend=backend, **kw)
  params = ref.init(jax.random.PRNGKey(1), x)
  params = jax.tree.map(lambda p: p + 0.1, params)  # a non-zero bias is tested too
  assert jax.tree.map(jnp.shape, fast.init(jax.random.PRNGKey(1), x)) == jax.tree.map(
      jnp.shape, params)
  out_ref, out_fast = ref.apply(params, x), fast.apply(params, x)
  assert out_fast.dtype == out_ref.dtype == dtype
  tol = TOL if dtype == jnp.float32 else dict(rtol=2e-2, atol=2e-2)
  _close(out_fast.astype(jnp.float32), out_ref.astype(jnp.float32), tol)
  grad = lambda m: jax.grad(lambda p: jnp.sum(jnp.tanh(m.apply(p, x).astype(jnp.float32))))(params)
  _close(grad(fast), grad(ref), tol)


@pytest.mark.parametrize('model,shape,d_norm', [
    ('dcgan', (32, 32, 1), 'layer'), ('dcgan', (28, 28, 3), 'spectral'),
    ('dcgan', (64, 64, 1), 'batch'), ('resnet', (32, 32, 3), 'spectral')])
@pytest.mark.parametrize('conv', ['xla', 'onednn'])
def test_models_are_the_same_with_either_implementation(model, shape, d_norm, conv):
  """Same variables, samples, G gradients, scores and WGAN-GP gradients (a second derivative)."""
  if conv == 'onednn':
    _require_onednn()
  # Widths of 16 and more send the input gradients of the inner layers through oneDNN too.
  width = 16
  build = lambda conv: make_models(model, image_shape=shape, width=width, d_norm=d_norm,
                                   latent_dim=16, conv=conv)
  (g_fast, d_fast), (g_lax, d_lax) = build(conv), build('lax')
  kg, kd, kz, kx, kp = jax.random.split(jax.random.PRNGKey(0), 5)
  z = jax.random.normal(kz, (4, 16))
  x = jax.random.uniform(kx, (4, *shape), minval=-1, maxval=1)
  gv, dv = g_lax.init(kg, z, train=False), d_lax.init(kd, x, train=False)
  assert jax.tree.structure(g_fast.init(kg, z, train=False)) == jax.tree.structure(gv)
  assert jax.tree.structure(d_fast.init(kd, x, train=False)) == jax.tree.structure(dv)

  def g_loss(g, p):
    out, _ = g.apply({**gv, 'params': p}, z, train=True, mutable=['batch_stats'])
    return jnp.sum(out ** 2), out

  def d_gp(d, p):
    critic = lambda y: d.apply({**dv, 'params': p}, y, train=False)
    return penalties.gradient_penalty(critic, x, -x, kp), critic(x)

  for loss, module_fast, module_lax, params in ((g_loss, g_fast, g_lax, gv['params']),
                                                (d_gp, d_fast, d_lax, dv['params'])):
    value_and_grad = lambda m: jax.jit(jax.value_and_grad(lambda p: loss(m, p), has_aux=True))
    (v_fast, out_fast), grad_fast = value_and_grad(module_fast)(params)
    (v_lax, out_lax), grad_lax = value_and_grad(module_lax)(params)
    _close((v_fast, out_fast), (v_lax, out_lax))
    # Some gradients are sums of large terms that cancel (a bias before a norm layer): their
    # float32 rounding is relative to the gradient's overall scale, not to their own size.
    scale = max(float(np.abs(np.asarray(g)).max()) for g in jax.tree.leaves(grad_lax))
    _close(grad_fast, grad_lax, dict(rtol=1e-3, atol=1e-5), scale=max(scale, 1))


def test_conv_implementation_names():
  with pytest.raises(ValueError, match="'auto', 'onednn', 'xla', 'lax'"):
    make_models('dcgan', image_shape=(32, 32, 1), conv='subpixel')
  assert fast_conv.conv_modules('lax') == (nn.Conv, nn.ConvTranspose)
  conv, conv_t = fast_conv.conv_modules('xla')
  assert (conv.func, conv_t.func, conv.keywords) == (
      fast_conv.Conv, fast_conv.ConvTranspose, dict(backend='xla'))
  auto = fast_conv.conv_modules('auto')
  if jax.default_backend() != 'cpu':
    assert auto == (nn.Conv, nn.ConvTranspose)
  elif _onednn_expected():
    assert auto[0].keywords == dict(backend='onednn')


def test_onednn_build_failure_names_the_problem_and_the_fix(tmp_path, monkeypatch):
  _require_onednn()
  monkeypatch.setenv('JAXGAN_CACHE_DIR', str(tmp_path))
  monkeypatch.setenv('CXX', str(tmp_path / 'no-such-compiler'))
  with pytest.raises(RuntimeError, match=r'no C\+\+ compiler .*\(g\+\+\)'):
    onednn._build()
  monkeypatch.setenv('CXX', 'false')  # a compiler that fails
  with pytest.raises(RuntimeError, match='building the oneDNN convolutions failed'):
    onednn._build()
  assert os.listdir(tmp_path) == []  # no half-built library left behind


def test_onednn_library_is_cached_and_a_damaged_one_rebuilt(tmp_path, monkeypatch):
  _require_onednn()
  monkeypatch.setenv('JAXGAN_CACHE_DIR', str(tmp_path))
  built = onednn._build()
  assert built.parent == tmp_path and built.stat().st_size > 0
  assert onednn._build() == built and os.listdir(tmp_path) == [built.name]
  size = built.stat().st_size
  built.write_bytes(b'not a shared library')
  assert hasattr(onednn._open(), 'JaxganConvForward')
  assert built.stat().st_size == size
