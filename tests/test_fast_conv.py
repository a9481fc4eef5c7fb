"""jaxgan.models.fast_conv is lax's convolution: values and reverse-mode derivatives of first,
second and third order equal `jax.grad` of `lax.conv_general_dilated` / `lax.conv_transpose`, with
XLA's ops (float64, to 1e-9) and with oneDNN's (`jaxgan.onednn`, float32), and the models built
with conv='xla' or 'onednn' are the same models as with conv='lax'.

The oneDNN tests skip, saying why, where the `cpu` extra is not installed; where it is installed
they must pass (a library that does not build fails them). References that several tests compare
against are computed once (`functools.cache`): XLA's compilation is most of this file's time."""

import functools
import os

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from _helpers import tiered

from jaxgan import onednn, penalties
from jaxgan.models import fast_conv, make_models
from jaxgan.onednn import _library, _ops

jax.config.update('jax_default_matmul_precision', 'highest')

# Relative tolerance, and absolute tolerance as a fraction of the largest reference entry: the two
# sides sum the same products in different orders, and the differences grow with each derivative.
TOL = dict(rtol=2e-4, atol=2e-5)
F64_TOL = dict(rtol=1e-9, atol=1e-10)
# oneDNN computes float32 against a float64 reference: float32 rounding, amplified by each
# derivative order (the loose `atol` is a fraction of the largest entry).
F32_TOL = dict(rtol=1e-3, atol=1e-4)
DN = ('NHWC', 'HWIO', 'NHWC')


def _close(a, b, tol=TOL, scale=None):
  """`scale` (default: each leaf's largest entry, at least 1) is what `atol` is a fraction of."""

  def close(x, y):
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    s = max(np.abs(y).max(), 1) if scale is None else scale
    np.testing.assert_allclose(x, y, rtol=tol['rtol'], atol=tol['atol'] * s)

  jax.tree.map(close, a, b)


def _derivatives(f, x, k, cot, order=3):
  """Values and reverse-mode derivatives up to `order` (at most 3) of a nonlinear scalar of f."""
  loss = lambda x, k: jnp.sum(jnp.tanh(f(x, k)) * cot)
  # Gradient-penalty style: the squared norm of the input gradient, differentiated again.
  gp = lambda x, k: jnp.sum(jax.grad(loss)(x, k) ** 2)
  third = lambda x, k: jnp.sum(jnp.sin(jax.grad(gp, 1)(x, k)))
  return (f(x, k),) + tuple(jax.grad(g, (0, 1))(x, k) for g in (loss, gp, third)[:order])


def _operands(x_shape, k_shape, out_shape, seed=0):
  """x, k and the cotangent: float64 numpy arrays of float32 values (exact in either dtype)."""
  rng = np.random.RandomState(seed)
  draw = lambda shape, scale=1.0: (
    (scale * rng.standard_normal(shape)).astype(np.float32).astype(np.float64)
  )
  return draw(x_shape), draw(k_shape, 0.3), draw(out_shape)


def _run(f, operands, dtype, order=3):
  """`_derivatives` of f at the operands cast to `dtype`, as numpy arrays; one compiled program
  (compiling it whole is faster than running its many small operations one by one)."""
  with jax.enable_x64(dtype == jnp.float64):
    x, k, cot = (jnp.asarray(o, dtype) for o in operands)
    got = jax.jit(lambda x, k, cot: _derivatives(f, x, k, cot, order))(x, k, cot)
    assert all(a.dtype == dtype for a in jax.tree.leaves(got))
    return jax.tree.map(np.asarray, got)


def _require_onednn():
  """Skips without the `cpu` extra; where it is installed, the library must build and load."""
  if not onednn.installed():
    pytest.skip(f'the `cpu` extra is not installed: {onednn.unavailable_reason()}')
  assert onednn.available(), onednn.unavailable_reason()


# Each fast_conv function and the lax function it must equal (NHWC / HWIO).
_PAIRS = {
  'conv2d': (
    fast_conv.conv2d,
    lambda x, k, s, p: jax.lax.conv_general_dilated(x, k, s, p, dimension_numbers=DN),
  ),
  'conv2d_transpose': (
    fast_conv.conv2d_transpose,
    lambda x, k, s, p: jax.lax.conv_transpose(x, k, s, p, dimension_numbers=DN),
  ),
}

_CASES = [
  ('conv2d', (2, 8, 8, 3), 4, 2, 'SAME'),  # the DCGAN critic's layer
  ('conv2d', (2, 7, 7, 2), 4, 2, 'SAME'),  # odd size (7 -> 4): asymmetric padding
  ('conv2d', (3, 6, 5, 2), 3, 1, 'SAME'),  # the ResNet's layers
  ('conv2d', (2, 5, 5, 4), 1, 1, 'VALID'),  # 1x1 shortcut
  ('conv2d', (2, 9, 8, 2), 3, 2, ((2, 0), (1, 1))),  # explicit, unequal padding
  ('conv2d', (2, 9, 9, 2), 3, 1, ((-1, 2), (0, -1))),  # negative (cropping): lax's ops
  ('conv2d', (2, 9, 9, 2), 5, 3, 'VALID'),
  ('conv2d_transpose', (2, 4, 4, 3), 4, 2, 'SAME'),  # the DCGAN generator's layer
  ('conv2d_transpose', (2, 7, 7, 2), 4, 2, 'SAME'),  # 7 -> 14 (28x28 DCGAN)
  ('conv2d_transpose', (1, 3, 5, 2), 3, 2, 'SAME'),
  ('conv2d_transpose', (2, 4, 4, 2), 3, 1, 'SAME'),
  ('conv2d_transpose', (2, 3, 3, 2), 4, 2, 'VALID'),
  ('conv2d_transpose', (2, 4, 3, 2), 5, 3, 'VALID'),
]


def _case(index):
  """(fast of (x, k, backend), ref of (x, k), float64 operands) of `_CASES[index]`."""
  op, x_shape, kernel, strides, padding = _CASES[index]
  fast, ref = _PAIRS[op]
  s = (strides, strides)
  k_shape = (kernel, kernel, x_shape[-1], 3)
  reference = lambda x, k: ref(x, k, s, padding)
  out = jax.eval_shape(reference, jnp.zeros(x_shape), jnp.zeros(k_shape))
  return (
    lambda backend: lambda x, k: fast(x, k, s, padding, backend),
    reference,
    _operands(x_shape, k_shape, out.shape),
  )


@functools.cache
def _reference(index):
  """lax's derivatives of a case in float64, shared by the three backends' tests."""
  _, reference, operands = _case(index)
  return _run(reference, operands, jnp.float64)


_CASE_IDS = [
  f'{op}-{"x".join(map(str, x))}-k{k}-s{s}-{p if isinstance(p, str) else "explicit"}'
  for op, x, k, s, p in _CASES
]


# The fast tier: the models' own layers (DCGAN's and the ResNet's), explicit padding, and a
# transpose at stride 3; the full tier every case.
_FAST_CASES = {0, 2, 4, 7, 12}


@pytest.mark.parametrize(
  'index',
  tiered([(i,) for i in range(len(_CASES))], _CASE_IDS, lambda c: c[0] not in _FAST_CASES),
)
@pytest.mark.parametrize('backend', ['xla', 'onednn', 'onednn-kernel-gradient-as-forward'])
def test_function_is_the_lax_function(index, backend, monkeypatch):
  if backend != 'xla':
    _require_onednn()
    # Every op through oneDNN, including the input gradients into few channels it is slow on.
    monkeypatch.setattr(_ops, '_MIN_INPUT_GRADIENT_CHANNELS', 1)
    # Kernel gradients: these images have too few channels for the forward formulation, which
    # the third variant forces on every one (including forward outputs with rows to cut off).
    if backend == 'onednn-kernel-gradient-as-forward':
      monkeypatch.setattr(_ops, '_AS_FORWARD_MIN_TAPS', 1)
      monkeypatch.setattr(_ops, '_AS_FORWARD_MAX_ROWS', 10**9)
      monkeypatch.setattr(_ops, '_AS_FORWARD_MIN_CHANNELS', 1)
      backend = 'onednn'
  fast, _, operands = _case(index)
  want = _reference(index)
  dtype = jnp.float64 if backend == 'xla' else jnp.float32
  got = _run(fast(backend), operands, dtype)
  assert got[0].shape == want[0].shape
  # In float64, agreement to 1e-9 shows the same function, not just similar rounding.
  _close(got, want, F64_TOL if dtype == jnp.float64 else F32_TOL)


@pytest.mark.parametrize('batch', [1, 3, 7])
def test_onednn_batch_slices_of_unequal_size(batch, monkeypatch):
  # oneDNN runs one batch slice per thread of XLA's pool: a batch of 1 is one slice, odd batches
  # are cut into slices of different sizes (a primitive each, whose kernel gradients are summed).
  # First derivatives run all three ops, which is what the slicing concerns.
  _require_onednn()
  monkeypatch.setattr(_ops, '_MIN_INPUT_GRADIENT_CHANNELS', 1)
  s = (2, 2)
  operands = _operands((batch, 8, 8, 8), (4, 4, 8, 16), (batch, 4, 4, 16))
  ref = lambda x, k: jax.lax.conv_general_dilated(x, k, s, 'SAME', dimension_numbers=DN)
  fast = lambda x, k: fast_conv.conv2d(x, k, s, 'SAME', 'onednn')
  _close(
    _run(fast, operands, jnp.float32, order=1), _run(ref, operands, jnp.float64, order=1), F32_TOL
  )


def test_chunked_kernel_gradient_is_the_same(monkeypatch):
  # Force the kernel gradient to be summed over 4 batch chunks (it is one piece at this size).
  # The chunks are in the kernel gradient's primal only, which first derivatives compute.
  monkeypatch.setattr(fast_conv, '_KERNEL_T_ROWS', 2 * 6 * 6)
  operands = _operands((8, 6, 6, 3), (3, 3, 3, 4), (8, 6, 6, 4))
  ref = lambda x, k: jax.lax.conv_general_dilated(x, k, (1, 1), 'SAME', dimension_numbers=DN)
  fast = lambda x, k: fast_conv.conv2d(x, k, (1, 1), 'SAME')
  _close(
    _run(fast, operands, jnp.float64, order=1), _run(ref, operands, jnp.float64, order=1), F64_TOL
  )


def test_transpose_rejects_explicit_padding():
  with pytest.raises(ValueError, match="'SAME' or 'VALID'"):
    fast_conv.conv2d_transpose(
      jnp.zeros((1, 4, 4, 1)), jnp.zeros((4, 4, 1, 1)), (2, 2), ((1, 1), (1, 1))
    )


@pytest.mark.parametrize('backend', ['xla', 'onednn'])
@pytest.mark.parametrize('dtype', [jnp.float32, jnp.bfloat16])
@pytest.mark.parametrize(
  'flax_cls,fast_cls,kw',
  [
    (nn.Conv, fast_conv.Conv, dict(kernel_size=(4, 4), strides=(2, 2), padding='SAME')),
    (nn.Conv, fast_conv.Conv, dict(kernel_size=(3, 3), padding='SAME', use_bias=False)),
    (
      nn.ConvTranspose,
      fast_conv.ConvTranspose,
      dict(kernel_size=(4, 4), strides=(2, 2), padding='SAME'),
    ),
  ],
)
def test_modules_are_flax_modules(flax_cls, fast_cls, kw, dtype, backend):
  if backend == 'onednn':
    _require_onednn()
  rng = np.random.RandomState(0)
  x = jnp.asarray(rng.standard_normal((2, 8, 8, 3)), jnp.float32)
  ref, fast = flax_cls(5, dtype=dtype, **kw), fast_cls(5, dtype=dtype, backend=backend, **kw)
  shapes = lambda m: jax.eval_shape(m.init, jax.random.key(0), x)
  assert jax.tree.map(jnp.shape, shapes(fast)) == jax.tree.map(jnp.shape, shapes(ref))
  # Random parameters (a non-zero bias is tested too) without compiling an initialiser.
  params = jax.tree.map(
    lambda a: jnp.asarray(0.3 * rng.standard_normal(a.shape), a.dtype), shapes(ref)
  )

  def run(m):
    loss = lambda p: jnp.sum(jnp.tanh(m.apply(p, x).astype(jnp.float32)))
    return jax.jit(lambda p: (m.apply(p, x), jax.grad(loss)(p)))(params)

  (out_fast, grad_fast), (out_ref, grad_ref) = run(fast), run(ref)
  assert out_fast.dtype == out_ref.dtype == dtype
  tol = TOL if dtype == jnp.float32 else dict(rtol=2e-2, atol=2e-2)
  _close(out_fast.astype(jnp.float32), out_ref.astype(jnp.float32), tol)
  _close(grad_fast, grad_ref, tol)


_MODEL_CASES = [
  ('dcgan', (32, 32, 1), 'layer'),
  ('dcgan', (28, 28, 3), 'spectral'),
  ('dcgan', (64, 64, 1), 'batch'),
  ('resnet', (32, 32, 3), 'spectral'),
]


def _build(model, shape, d_norm, conv):
  # Widths of 16 and more send the input gradients of the inner layers through oneDNN too.
  return make_models(model, image_shape=shape, width=16, d_norm=d_norm, latent_dim=16, conv=conv)


def _init(module):
  return lambda key, x: module.init(key, x, train=False)


@functools.cache
def _model_inputs(model, shape, d_norm):
  """Latents, images and the variables of the conv='lax' models, shared by every `conv`."""
  g, d = _build(model, shape, d_norm, 'lax')
  rng = np.random.RandomState(0)
  z = jnp.asarray(rng.standard_normal((4, 16)), jnp.float32)
  x = jnp.asarray(rng.uniform(-1, 1, (4, *shape)), jnp.float32)
  key = jax.random.key(0, impl='rbg')
  return z, x, jax.jit(_init(g))(key, z), jax.jit(_init(d))(key, x)


@functools.cache
def _model_run(model, shape, d_norm, conv):
  """Samples, G gradients, scores and WGAN-GP gradients (a second derivative) of the models built
  with `conv`, at the variables of the conv='lax' models; numpy arrays."""
  g, d = _build(model, shape, d_norm, conv)
  z, x, gv, dv = _model_inputs(model, shape, d_norm)
  key = jax.random.key(0, impl='rbg')
  # The same variables: names, nesting and shapes.
  shapes = lambda tree: jax.tree.map(lambda a: (a.shape, a.dtype), tree)
  assert shapes(jax.eval_shape(_init(g), key, z)) == shapes(gv)
  assert shapes(jax.eval_shape(_init(d), key, x)) == shapes(dv)

  def g_loss(p):
    out, _ = g.apply({**gv, 'params': p}, z, train=True, mutable=['batch_stats'])
    return jnp.sum(out**2), out

  def d_gp(p):
    critic = lambda y: d.apply({**dv, 'params': p}, y, train=False)
    return penalties.gradient_penalty(critic, x, -x, key), critic(x)

  results = [
    jax.jit(jax.value_and_grad(loss, has_aux=True))(v['params'])
    for loss, v in ((g_loss, gv), (d_gp, dv))
  ]
  return jax.tree.map(np.asarray, results)


@pytest.mark.full
@pytest.mark.parametrize(
  'model,shape,d_norm', _MODEL_CASES, ids=[f'{m}-{s[0]}-{n}' for m, s, n in _MODEL_CASES]
)
@pytest.mark.parametrize('conv', ['xla', 'onednn'])
def test_models_are_the_same_with_either_implementation(model, shape, d_norm, conv):
  """Same variables, samples, G gradients, scores and WGAN-GP gradients as Flax's layers."""
  if conv == 'onednn':
    _require_onednn()
  got, want = _model_run(model, shape, d_norm, conv), _model_run(model, shape, d_norm, 'lax')
  for ((v_got, out_got), grad_got), ((v_want, out_want), grad_want) in zip(got, want, strict=True):
    _close((v_got, out_got), (v_want, out_want))
    # Some gradients are sums of large terms that cancel (a bias before a norm layer): their
    # float32 rounding is relative to the gradient's overall scale, not to their own size.
    scale = max(float(np.abs(g).max()) for g in jax.tree.leaves(grad_want))
    _close(grad_got, grad_want, dict(rtol=1e-3, atol=1e-5), scale=max(scale, 1))


def test_onednn_build_failure_names_the_problem_and_the_fix(tmp_path, monkeypatch):
  _require_onednn()
  monkeypatch.setenv('JAXGAN_CACHE_DIR', str(tmp_path))
  monkeypatch.setenv('CXX', str(tmp_path / 'no-such-compiler'))
  with pytest.raises(RuntimeError, match=r'no C\+\+ compiler .*\(g\+\+\)'):
    onednn.build()
  monkeypatch.setenv('CXX', 'false')  # a compiler that fails
  with pytest.raises(RuntimeError, match='building the oneDNN convolutions failed'):
    onednn.build()
  assert os.listdir(tmp_path) == []  # no half-built library left behind


@pytest.mark.full
def test_onednn_library_is_cached_and_a_damaged_one_rebuilt(tmp_path, monkeypatch):
  _require_onednn()
  monkeypatch.setenv('JAXGAN_CACHE_DIR', str(tmp_path))
  built = onednn.build()
  assert built.parent == tmp_path and built.stat().st_size > 0
  assert onednn.build() == built and os.listdir(tmp_path) == [built.name]
  size = built.stat().st_size
  built.write_bytes(b'not a shared library')
  assert hasattr(_library._open(), 'JaxganConvForward')
  assert built.stat().st_size == size


def test_onednn_accepts_float32_with_non_negative_padding():
  x, k = jnp.zeros((2, 8, 8, 16), jnp.float32), jnp.zeros((3, 3, 16, 4), jnp.float32)
  same = ((1, 1), (1, 1))
  assert onednn.accepts('conv', x, k, same) and onednn.accepts('input_transpose', x, k, same)
  assert not onednn.accepts('conv', x.astype(jnp.bfloat16), k.astype(jnp.bfloat16), same)
  assert not onednn.accepts('conv', x, k, ((-1, 1), (1, 1)))  # lax's cropping
  assert not onednn.accepts('conv', x[:0], k, same)
  # oneDNN's input gradient into few channels is the slower one.
  assert not onednn.accepts('input_transpose', x[..., :3], k[:, :, :3], same)
  assert onednn.accepts('conv', x[..., :3], k[:, :, :3], same)
  with pytest.raises(ValueError, match="'conv', 'input_transpose', 'kernel_transpose'"):
    onednn.accepts('deconv', x, k, same)
