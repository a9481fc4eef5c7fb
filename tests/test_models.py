"""Tests of the model zoo: shapes, ranges, normalisation variants, spectral norm, errors, and the
choice of convolutions (`conv`), with and without the optional CPU backend.

Widths are tiny and each configuration's forward passes are one `jax.jit` program, so the whole
file runs in well under a minute on two CPU cores. Compiling random number generation dominates
otherwise (see `_key`), so initialisation uses 'rbg' keys or, in the shape tests, `_fast_init`.
"""

import logging
import os
import subprocess
import sys
import warnings

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from _helpers import tiered

from jaxgan import models, onednn
from jaxgan.models import conv_impl, fast_conv, make_models
from jaxgan.onednn import _library

N = 3
LATENT = 16


def _leaf_names(tree):
  return {
    str(getattr(path[-1], 'key', path[-1]))
    for path, _ in jax.tree_util.tree_flatten_with_path(tree)[0]
  }


def _has_bn_stats(variables):
  return {'mean', 'var'} <= _leaf_names(variables.get('batch_stats', {}))


def _key(seed):
  # Flax initialises through jax.random. The default threefry2x32 key with
  # jax_threefry_partitionable=True (this JAX's default) takes seconds to compile per random shape
  # on this CPU; 'rbg' keys a fraction of that. A key carries its implementation, so no global
  # configuration changes.
  return jax.random.key(seed, impl='rbg')


def _normal(seed, shape):
  return jnp.asarray(np.random.RandomState(seed).standard_normal(shape), jnp.float32)


def _fast_init(module, x):
  """The variables `module.init` would give, with numpy values.

  `module.init` is traced in full by `jax.eval_shape` (every shape and check runs); only the values
  come from numpy (LeCun-normal kernels, zero biases and means, unit scales, variances and sigmas,
  normal `u`), which saves compiling random number generation. Real initialisation is exercised
  by the norm, spectral-norm and DCGAN-initialiser tests.
  """
  shapes = jax.eval_shape(lambda: module.init(_key(0), x, train=False))
  rng = np.random.RandomState(0)

  def fill(path, leaf):
    name = str(getattr(path[-1], 'key', path[-1])).split('/')[-1]
    if name in ('bias', 'mean'):
      return jnp.zeros(leaf.shape, leaf.dtype)
    if name in ('scale', 'var', 'sigma'):
      return jnp.ones(leaf.shape, leaf.dtype)
    value = rng.standard_normal(leaf.shape)
    if name == 'kernel':
      value /= np.sqrt(np.prod(leaf.shape[:-1]))
    return jnp.asarray(value, leaf.dtype)

  return jax.tree_util.tree_map_with_path(fill, shapes)


def _run_pair(g, d, image_shape, seed=0):
  """Applies G and D in train and eval mode, in one compiled program."""
  z = _normal(seed, (N, LATENT))
  g_vars = _fast_init(g, z)
  d_vars = _fast_init(d, jnp.zeros((N, *image_shape)))

  @jax.jit
  def run(g_vars, d_vars, z):
    x_train, g_upd = g.apply(g_vars, z, train=True, mutable=['batch_stats'])
    x_eval = g.apply(g_vars, z, train=False)
    s_train, d_upd = d.apply(d_vars, x_train, train=True, mutable=['batch_stats'])
    s_eval = d.apply(d_vars, x_eval, train=False)
    return dict(
      x_train=x_train, x_eval=x_eval, s_train=s_train, s_eval=s_eval, g_upd=g_upd, d_upd=d_upd
    )

  return run(g_vars, d_vars, z)


SHAPE_CASES = [
  ('mlp', (784,), {}),
  ('mlp', (2,), {'output_activation': 'none'}),
  ('mlp', (28, 28, 1), {}),
  ('dcgan', (28, 28, 1), {}),
  ('dcgan', (28, 28, 3), {}),
  ('dcgan', (32, 32, 1), {}),
  ('dcgan', (32, 32, 3), {}),
  ('dcgan', (64, 64, 1), {}),
  ('dcgan', (64, 64, 3), {}),
  ('resnet', (32, 32, 1), {}),
  ('resnet', (32, 32, 3), {}),
]


# The ResNet, and DCGAN at 64 px: whole networks, the full tier's.
@pytest.mark.parametrize(
  'name,image_shape,kwargs',
  tiered(
    SHAPE_CASES,
    [f'{n}-{"x".join(map(str, s))}' for n, s, _ in SHAPE_CASES],
    lambda c: c[0] == 'resnet' or c[1][0] >= 64,
  ),
)
def test_shapes_and_range(name, image_shape, kwargs):
  g, d = make_models(name, image_shape=image_shape, latent_dim=LATENT, width=8, **kwargs)
  out = _run_pair(g, d, image_shape)
  for key in ('x_train', 'x_eval'):
    x = out[key]
    assert x.shape == (N, *image_shape) and x.dtype == jnp.float32
    assert np.all(np.isfinite(x))
    if kwargs.get('output_activation', 'tanh') == 'tanh':
      assert np.all(np.abs(x) <= 1.0)
  for key in ('s_train', 's_eval'):
    s = out[key]
    assert s.shape == (N,) and s.dtype == jnp.float32
    assert np.all(np.isfinite(s))


def test_mlp_default_sizes():
  g, d = make_models('mlp', image_shape=(784,))
  assert g.hidden == (256, 512) and d.hidden == (512, 256) and d.norm == 'none'
  shapes = jax.eval_shape(lambda: g.init(jax.random.key(0), jnp.zeros((1, 100)), train=False))
  assert [shapes['params'][f'Dense_{i}']['kernel'].shape for i in range(3)] == [
    (100, 256),
    (256, 512),
    (512, 784),
  ]
  shapes = jax.eval_shape(lambda: d.init(jax.random.key(0), jnp.zeros((1, 784)), train=False))
  assert [shapes['params'][f'Dense_{i}']['kernel'].shape for i in range(3)] == [
    (784, 512),
    (512, 256),
    (256, 1),
  ]


def test_default_norms_and_widths():
  _, d = make_models('dcgan', image_shape=(32, 32, 3))
  assert d.norm == 'batch' and d.width == 64
  g, d = make_models('resnet', image_shape=(32, 32, 3))
  assert d.norm == 'spectral' and g.width == 256 and d.width == 128
  g, d = make_models('resnet', image_shape=(32, 32, 3), width=32, d_width=16)
  assert g.width == 32 and d.width == 16


def test_dcgan_init_is_normal_002():
  g, d = make_models('dcgan', image_shape=(32, 32, 3), width=32)
  gv = g.init(_key(0), jnp.zeros((1, LATENT)), train=False)
  kernel = gv['params']['ConvTranspose_0']['kernel']
  assert 0.018 < float(jnp.std(kernel)) < 0.022 and abs(float(jnp.mean(kernel))) < 0.002
  scale = gv['params']['BatchNorm_0']['scale']
  assert 0.01 < float(jnp.std(scale)) < 0.03 and abs(float(jnp.mean(scale)) - 1) < 0.01


NORM_CASES = [
  (m, s, n)
  for m, s in [('mlp', (2,)), ('dcgan', (32, 32, 3)), ('resnet', (32, 32, 3))]
  for n in models.NORMS
]


@pytest.mark.parametrize(
  'name,image_shape,norm',
  tiered(NORM_CASES, [f'{m}-{n}' for m, _, n in NORM_CASES], lambda c: c[0] == 'resnet'),
)
def test_discriminator_norms(name, image_shape, norm):
  """Every norm initialises and applies in both modes; only 'batch' has BatchNorm statistics
  or mixes the examples of a batch."""
  _, d = make_models(name, image_shape=image_shape, width=8, d_norm=norm)
  x = _normal(1, (4, *image_shape))
  x_mod = x.at[0].set(_normal(2, image_shape))
  d_vars = d.init(_key(0), x, train=False)

  @jax.jit
  def run(d_vars, x, x_mod):
    out = {}
    for train in (True, False):
      f = lambda v, train=train: d.apply(d_vars, v, train=train, mutable=['batch_stats'])[0]
      out[train] = (f(x), f(x_mod))
    return out

  out = run(d_vars, x, x_mod)
  assert _has_bn_stats(d_vars) == (norm == 'batch')
  if norm == 'spectral':
    assert {'u', 'sigma'} <= {n.split('/')[-1] for n in _leaf_names(d_vars['batch_stats'])}
  elif norm in ('layer', 'none'):
    assert not d_vars.get('batch_stats')
  for train, (s, s_mod) in out.items():
    assert s.shape == (4,) and np.all(np.isfinite(s)) and np.all(np.isfinite(s_mod))
    assert abs(float(s[0] - s_mod[0])) > 1e-6
    if norm == 'batch' and train:
      # BatchNorm in training mode mixes examples: this is why penalised critics must not use it.
      assert not np.allclose(s[1:], s_mod[1:], rtol=0, atol=1e-6)
    else:
      np.testing.assert_allclose(s[1:], s_mod[1:], rtol=1e-5, atol=1e-5)


def test_uses_batch_norm_agrees_with_state_helper():
  from jaxgan.step.state import uses_batch_norm

  x = jnp.zeros((2, 32, 32, 3))
  for norm in models.NORMS:
    _, d = make_models('dcgan', image_shape=(32, 32, 3), width=4, d_norm=norm)
    d_vars = jax.eval_shape(lambda d=d: d.init(jax.random.key(0), x, train=False))
    assert uses_batch_norm(d_vars) == (norm == 'batch')


def _sn_pairs(params, batch_stats):
  """Yields (name, kernel, sigma) for every spectrally normalised kernel."""
  flat_params = {
    tuple(getattr(k, 'key', k) for k in path): v
    for path, v in jax.tree_util.tree_flatten_with_path(params)[0]
  }
  for path, sigma in jax.tree_util.tree_flatten_with_path(batch_stats)[0]:
    keys = tuple(getattr(k, 'key', k) for k in path)
    if not keys[-1].endswith('/sigma'):
      continue
    layer, param, _ = keys[-1].split('/')
    yield '/'.join(keys), flat_params[(*keys[:-2], layer, param)], sigma


def test_spectral_norm_updates_only_in_training():
  _, d = make_models('dcgan', image_shape=(32, 32, 3), width=8, d_norm='spectral')
  x = _normal(1, (2, 32, 32, 3))
  d_vars = d.init(_key(0), x, train=False)
  apply = jax.jit(
    lambda v, x: [d.apply(v, x, train=t, mutable=['batch_stats'])[1] for t in (True, False)]
  )
  upd_train, upd_eval = apply(d_vars, x)
  before = d_vars['batch_stats']
  changed = jax.tree.map(lambda a, b: not np.allclose(a, b), before, upd_train['batch_stats'])
  u_changed = [
    v
    for path, v in jax.tree_util.tree_flatten_with_path(changed)[0]
    if str(path[-1].key).endswith('/u')
  ]
  assert len(u_changed) == 4 and all(u_changed)  # three convs and the dense layer
  jax.tree.map(np.testing.assert_array_equal, before, upd_eval['batch_stats'])


@pytest.mark.parametrize(
  'name,image_shape',
  [
    ('mlp', (784,)),
    ('dcgan', (28, 28, 3)),
    pytest.param('resnet', (32, 32, 3), marks=pytest.mark.full),
  ],
)
def test_spectral_norm_converges_to_top_singular_value(name, image_shape):
  _, d = make_models(name, image_shape=image_shape, width=8, d_norm='spectral')
  x = jnp.zeros((1, *image_shape))
  d_vars = d.init(_key(0), x, train=False)

  @jax.jit
  def iterate(d_vars):
    def body(_, stats):
      _, upd = d.apply(
        {'params': d_vars['params'], 'batch_stats': stats}, x, train=True, mutable=['batch_stats']
      )
      return upd['batch_stats']

    return jax.lax.fori_loop(0, 300, body, d_vars['batch_stats'])

  stats = iterate(d_vars)
  pairs = list(_sn_pairs(d_vars['params'], stats))
  assert len(pairs) == {'mlp': 3, 'dcgan': 4, 'resnet': 11}[name]
  for path, kernel, sigma in pairs:
    matrix = np.asarray(kernel).reshape(-1, kernel.shape[-1])
    top = np.linalg.svd(matrix, compute_uv=False)[0]
    np.testing.assert_allclose(float(sigma), top, rtol=1e-3, err_msg=path)
    top_normalised = np.linalg.svd(matrix / float(sigma), compute_uv=False)[0]
    np.testing.assert_allclose(top_normalised, 1.0, rtol=1e-3, err_msg=path)


def test_generator_batch_norm_statistics_update_in_training():
  g, _ = make_models('dcgan', image_shape=(32, 32, 3), width=8)
  z = _normal(0, (N, LATENT))
  g_vars = g.init(_key(1), z, train=False)
  _, upd = jax.jit(lambda v: g.apply(v, z, train=True, mutable=['batch_stats']))(g_vars)
  means = upd['batch_stats']['BatchNorm_0']['mean']
  assert not np.allclose(means, 0.0)
  assert set(g_vars) == {'params', 'batch_stats'}


# ---- errors -------------------------------------------------------------------------------------


def test_unknown_model_name():
  with pytest.raises(ValueError) as e:
    make_models('biggan', image_shape=(32, 32, 3))
  for name in models.MODELS:
    assert repr(name) in str(e.value)


@pytest.mark.parametrize(
  'name,image_shape,valid',
  [
    ('dcgan', (48, 48, 3), '28, 32, 64, 128'),
    ('dcgan', (32, 16, 3), '28, 32, 64, 128'),
    ('resnet', (48, 48, 3), '32, 64, 128, 256'),
    ('resnet', (512, 512, 3), 'config.data.resolution'),
    ('resnet', (32, 32, 0), '>= 1'),
  ],
)
def test_unsupported_image_shape(name, image_shape, valid):
  with pytest.raises(ValueError, match=valid) as e:
    make_models(name, image_shape=image_shape)
  assert name in str(e.value)


def test_unsupported_image_size_message():
  with pytest.raises(ValueError, match='dcgan supports image sizes 28, 32, 64, 128; got 48'):
    make_models('dcgan', image_shape=(48, 48, 3))
  # The modules themselves check too.
  with pytest.raises(ValueError, match='28, 32, 64, 128'):
    models.DCGANDiscriminator().init(jax.random.key(0), jnp.zeros((1, 48, 48, 3)), train=False)


@pytest.mark.parametrize('name', models.MODELS)
def test_unknown_norm(name):
  shape = (2,) if name == 'mlp' else (32, 32, 3)
  with pytest.raises(ValueError) as e:
    make_models(name, image_shape=shape, d_norm='instance')
  for norm in models.NORMS:
    assert repr(norm) in str(e.value)


def test_module_level_norm_check():
  with pytest.raises(ValueError, match="'spectral'"):
    models.MLPDiscriminator(norm='weight').init(jax.random.key(0), jnp.zeros((1, 2)), train=False)


def test_bad_keyword_and_activation():
  with pytest.raises(TypeError, match='output_activation'):
    make_models('dcgan', image_shape=(32, 32, 3), output_activation='none')
  with pytest.raises(ValueError, match="'tanh', 'none'"):
    make_models('mlp', image_shape=(2,), output_activation='sigmoid')


def test_bad_dtype():
  with pytest.raises(ValueError, match='float32, bfloat16, float16'):
    make_models('mlp', image_shape=(2,), dtype='int8')


# ---- convolution implementations and the optional CPU backend -----------------------------------


def _custom_calls(module, x):
  """How many oneDNN custom calls the program that initialises and applies `module` holds."""
  program = jax.make_jaxpr(
    lambda x: module.apply(module.init(_key(0), x, train=False), x, train=False)
  )(x)
  return str(program).count('ffi_call')


def test_conv_implementation_names():
  with pytest.raises(ValueError, match="'auto', 'onednn', 'xla', 'lax'"):
    make_models('dcgan', image_shape=(32, 32, 1), conv='subpixel')
  assert models.CONV_IMPLEMENTATIONS == ('auto', 'onednn', 'xla', 'lax')
  assert conv_impl.conv_modules('lax') == (nn.Conv, nn.ConvTranspose)
  conv, conv_t = conv_impl.conv_modules('xla')
  assert (conv.func, conv_t.func, conv.keywords) == (
    fast_conv.Conv,
    fast_conv.ConvTranspose,
    dict(backend='xla'),
  )


def test_auto_uses_onednn_where_the_cpu_extra_is_installed():
  if jax.default_backend() != 'cpu':
    assert conv_impl.resolve('auto') == 'lax'
    return
  if not onednn.installed():
    pytest.skip(f'the `cpu` extra is not installed: {onednn.unavailable_reason()}')
  # Installed, it must build: a broken install fails here rather than falling back unseen.
  assert onednn.available(), onednn.unavailable_reason()
  assert conv_impl.resolve('auto') == 'onednn'
  conv, conv_t = conv_impl.conv_modules('auto')
  assert conv.keywords == conv_t.keywords == dict(backend='onednn')
  _, d = make_models('dcgan', image_shape=(32, 32, 1), width=16)
  assert _custom_calls(d, jnp.zeros((2, 32, 32, 1))) > 0


@pytest.fixture
def without_cpu_extra(monkeypatch):
  """This process as if oneDNN's wheels were not installed (the probe looks them up by name)."""
  monkeypatch.setattr(_library, '_DISTRIBUTIONS', ('jaxgan-test-absent-onednn-wheel',))
  assert not onednn.installed()


@pytest.mark.skipif(jax.default_backend() != 'cpu', reason="'auto' is Flax's layers off the CPU")
def test_without_the_cpu_extra_auto_takes_xla_quietly(without_cpu_extra, caplog):
  _, d = make_models('dcgan', image_shape=(32, 32, 1), width=16)
  with warnings.catch_warnings(), caplog.at_level(logging.DEBUG, logger=conv_impl.__name__):
    warnings.simplefilter('error')
    assert conv_impl.resolve('auto') == 'xla'
    conv, conv_t = conv_impl.conv_modules('auto')
    calls = _custom_calls(d, jnp.zeros((2, 32, 32, 1)))
  assert (conv.func, conv_t.func, conv.keywords) == (
    fast_conv.Conv,
    fast_conv.ConvTranspose,
    dict(backend='xla'),
  )
  assert calls == 0
  # A debug log at most, and it says why.
  assert caplog.records and all(r.levelno == logging.DEBUG for r in caplog.records)
  assert onednn.unavailable_reason() in caplog.records[0].getMessage()


def test_without_the_cpu_extra_onednn_raises_naming_the_extra(without_cpu_extra):
  x, k = jnp.zeros((1, 4, 4, 16)), jnp.zeros((3, 3, 16, 16))
  for ask in (
    lambda: make_models('resnet', image_shape=(32, 32, 3), conv='onednn'),
    lambda: conv_impl.conv_modules('onednn'),
    lambda: fast_conv.conv2d(x, k, backend='onednn'),
    onednn.require,
  ):
    with pytest.raises(ImportError, match=r"pip install 'jaxgan\[cpu\]'"):
      ask()
  assert "pip install 'jaxgan[cpu]'" in onednn.unavailable_reason()


@pytest.mark.full
def test_importing_and_making_models_builds_no_library(tmp_path):
  """The oneDNN library is built when a model is first applied, not when one is made."""
  code = """if True:
    import jaxgan.models as m
    from jaxgan import onednn
    from jaxgan.onednn import _library
    m.make_models('dcgan', image_shape=(32, 32, 3))
    if onednn.installed():
      m.make_models('resnet', image_shape=(32, 32, 3), conv='onednn')
    assert _library._load.cache_info().currsize == 0, 'the library was loaded'
    """
  env = {**os.environ, 'JAXGAN_CACHE_DIR': str(tmp_path / 'cache')}
  result = subprocess.run(
    [sys.executable, '-c', code], env=env, capture_output=True, text=True, timeout=300, check=False
  )
  assert result.returncode == 0, result.stderr[-2000:]
  assert not (tmp_path / 'cache').exists()
