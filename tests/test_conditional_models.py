"""Tests of the class-conditional modules: conditional BatchNorm, the projection and ACGAN
discriminators and label concatenation against NumPy, the gains' initial values, every model with
each of its conditionings, the unconditional modules against a snapshot, and the errors.

Widths are tiny and modules run eagerly (or under `jax.eval_shape`) with 'rbg' keys, which
compile far faster on the CPU than the default threefry keys (see tests/test_models.py); only the
snapshot uses the default key, because its values must not depend on the backend.
"""

import hashlib

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from _helpers import tiered

from jaxgan.models import D_CONDITIONINGS, G_CONDITIONINGS, layers, make_models
from jaxgan.models.conditioning import ConditionalBatchNorm
from jaxgan.models.dcgan import DCGANGenerator
from jaxgan.models.mlp import MLPDiscriminator, MLPGenerator

N = 6
C = 3
LATENT = 8
LABELS = jnp.array([0, 1, 0, 1, 1, 0], jnp.int32)  # class 2 never occurs
SHAPES = {
  'mlp': (8,),
  'dcgan': (28, 28, 1),
  'resnet': (32, 32, 3),
  'r3gan': (32, 32, 3),
  'projected': (28, 28, 1),
}
WIDTHS = {'mlp': 8, 'dcgan': 4, 'resnet': 8, 'r3gan': 16, 'projected': 4}


def _key(seed):
  return jax.random.key(seed, impl='rbg')


def _normal(seed, shape, scale=1.0, shift=0.0):
  return np.asarray(np.random.RandomState(seed).standard_normal(shape) * scale + shift, np.float32)


def _make(name, **kwargs):
  conv = {} if name == 'mlp' else {'conv': 'xla'}
  return make_models(
    name, image_shape=SHAPES[name], latent_dim=LATENT, width=WIDTHS[name], **conv, **kwargs
  )


def _capture(module, variables, *args, **kwargs):
  """`module.apply`, recording every `nn.Dense` and `nn.Embed` call as (module, input, output)."""
  calls = []

  def interceptor(next_fun, call_args, call_kwargs, context):
    out = next_fun(*call_args, **call_kwargs)
    if context.method_name == '__call__' and isinstance(context.module, (nn.Dense, nn.Embed)):
      calls.append((context.module, np.asarray(call_args[0]), np.asarray(out)))
    return out

  with nn.intercept_methods(interceptor):
    return module.apply(variables, *args, **kwargs), calls


def _numpy_bn(x, eps=1e-5):
  axes = tuple(range(x.ndim - 1))
  mean, var = x.mean(axes), x.var(axes)
  return (x - mean) / np.sqrt(var + eps), mean, var


def _per_example(v, ndim):
  return v.reshape(v.shape[0], *([1] * (ndim - 2)), v.shape[-1])


# Conditional BatchNorm.


def test_conditional_batch_norm_against_numpy():
  x = _normal(0, (N, 2, 3, 4), scale=2.0, shift=1.0)
  cbn = ConditionalBatchNorm(num_classes=C)
  variables = cbn.init(_key(0), x, LABELS, False)
  delta, bias = _normal(1, (C, 4), 0.5), _normal(2, (C, 4))
  params = {'gain': {'embedding': delta}, 'bias': {'embedding': bias}}
  out, updates = cbn.apply(
    {'params': params, 'batch_stats': variables['batch_stats']},
    x,
    LABELS,
    True,
    mutable=['batch_stats'],
  )
  x_hat, mean, var = _numpy_bn(x)
  y = np.asarray(LABELS)
  gain, shift = _per_example(1.0 + delta[y], 4), _per_example(bias[y], 4)
  np.testing.assert_allclose(out, gain * x_hat + shift, rtol=1e-5, atol=1e-5)
  # Running statistics as layers.batch_norm's: momentum BN_MOMENTUM from mean 0 and variance 1.
  stats = updates['batch_stats']['BatchNorm']
  m = layers.BN_MOMENTUM
  np.testing.assert_allclose(stats['mean'], (1 - m) * mean, rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(stats['var'], m + (1 - m) * var, rtol=1e-5)
  # Evaluation normalises with the running statistics.
  evaluated = cbn.apply({'params': params, **updates}, x, LABELS, False)
  x_run = (x - np.asarray(stats['mean'])) / np.sqrt(np.asarray(stats['var']) + 1e-5)
  np.testing.assert_allclose(evaluated, gain * x_run + shift, rtol=1e-5, atol=1e-5)


def test_conditional_batch_norm_starts_as_batch_norm():
  x = _normal(3, (N, 5), scale=3.0, shift=-2.0)
  cbn = ConditionalBatchNorm(num_classes=C)
  variables = cbn.init(_key(0), x, LABELS, False)
  for name in ('gain', 'bias'):  # gain = 1 + delta[y], delta and bias zero: exactly 1 and 0
    assert not np.any(np.asarray(variables['params'][name]['embedding']))
  bn = layers.batch_norm(True)
  bn_vars = bn.init(_key(0), x)
  for dtype in (jnp.float32, jnp.bfloat16):
    got, got_stats = ConditionalBatchNorm(C, dtype).apply(
      variables, x, LABELS, True, mutable=['batch_stats']
    )
    want, want_stats = layers.batch_norm(True, dtype=dtype).apply(
      bn_vars, x, mutable=['batch_stats']
    )
    assert got.dtype == want.dtype == dtype
    np.testing.assert_array_equal(np.asarray(got, np.float32), np.asarray(want, np.float32))
    jax.tree.map(
      np.testing.assert_array_equal,
      got_stats['batch_stats']['BatchNorm'],
      want_stats['batch_stats'],
    )


def test_shared_embedding_gain_is_one_plus_projection():
  x = _normal(4, (N, 2, 2, 4))
  e = _normal(5, (N, 5))
  cbn = ConditionalBatchNorm(num_classes=C)
  variables = cbn.init(_key(1), x, LABELS, False, jnp.asarray(e))
  w_g = np.asarray(variables['params']['gain']['kernel'])
  w_b = np.asarray(variables['params']['bias']['kernel'])
  assert w_g.shape == w_b.shape == (5, 4) and np.all(w_g != 0)
  assert set(variables['params']) == {'gain', 'bias'}  # bias-free dense layers
  out = cbn.apply(variables, x, LABELS, True, jnp.asarray(e), mutable=['batch_stats'])[0]
  gain, shift = _per_example(1.0 + e @ w_g, 4), _per_example(e @ w_b, 4)
  np.testing.assert_allclose(out, gain * _numpy_bn(x)[0] + shift, rtol=1e-5, atol=1e-5)


def test_shared_embedding_in_the_generator():
  g, _ = _make('dcgan', num_classes=C, shared_embedding=5)
  z = jnp.asarray(_normal(6, (N, LATENT)))
  params = jax.eval_shape(lambda: g.init(_key(0), z, train=False, labels=LABELS))['params']
  assert params['SharedEmbed']['embedding'].shape == (C, 5)
  cbns = [k for k in params if k.startswith('ConditionalBatchNorm')]
  assert len(cbns) == 2  # 28x28: after the dense layer and after the one hidden stage
  assert not any(k.startswith('BatchNorm') for k in params)
  assert all(params[k]['gain']['kernel'].shape[0] == 5 for k in cbns)


@pytest.mark.full
def test_conditional_resnet_generator_at_init_is_the_unconditional_one():
  # Conditional BatchNorm starts as BatchNorm, and the conditional G adds modules without moving
  # any: with the same key, it generates the unconditional G's images for every label.
  g, _ = _make('resnet')
  gc, _ = _make('resnet', num_classes=C)
  z = jnp.asarray(_normal(7, (N, LATENT)))
  variables = g.init(_key(2), z, train=False)
  cond_vars = gc.init(_key(2), z, train=False, labels=LABELS)
  params = cond_vars['params']
  assert 'BatchNorm_0' in params  # the last BatchNorm, before the output convolution, is plain
  assert {'ConditionalBatchNorm_0', 'ConditionalBatchNorm_1'} <= set(params['GBlock_0'])
  want = g.apply(variables, z, train=True, mutable=['batch_stats'])[0]
  for labels in (LABELS, 2 - LABELS):
    got = gc.apply(cond_vars, z, train=True, labels=labels, mutable=['batch_stats'])[0]
    np.testing.assert_array_equal(got, want)


# Discriminators.


def _dense_calls(calls, features):
  return [c for c in calls if isinstance(c[0], nn.Dense) and c[0].features == features]


# The ResNet and R3GAN (whole networks) are the full tier's, here and below.
@pytest.mark.parametrize(
  'name,kwargs',
  tiered(
    [('mlp', {}), ('dcgan', {}), ('resnet', {'d_norm': 'none'}), ('resnet', {'sn_steps': 100})],
    ['mlp', 'dcgan', 'resnet-no-norm', 'resnet-spectral'],
    lambda c: c[0] == 'resnet',
  ),
)
def test_projection_against_numpy(name, kwargs):
  _, d = _make(name, num_classes=C, **kwargs)
  x = jnp.asarray(_normal(8, (N, *SHAPES[name])))
  variables = d.init(_key(3), x, train=False, labels=LABELS)
  embedding = np.asarray(variables['params']['ProjectionEmbed']['embedding'])
  dim = embedding.shape[1]
  bound = np.sqrt(6 / (C + dim))  # Glorot uniform
  assert np.abs(embedding).max() <= bound and np.abs(embedding).max() > bound / 2
  (scores, _), calls = _capture(d, variables, x, train=True, labels=LABELS, mutable=['batch_stats'])
  [(_, phi, dense_out)] = _dense_calls(calls, 1)
  [(_, _, embedded)] = [c for c in calls if isinstance(c[0], nn.Embed)]
  y = np.asarray(LABELS)
  if d.norm == 'spectral':  # the embedding matrix divided by its top singular value
    embedding = embedding / np.linalg.svd(embedding, compute_uv=False)[0]
  else:
    dense = variables['params'][f'Dense_{len(d.hidden) if name == "mlp" else 0}']
    np.testing.assert_allclose(dense_out, phi @ dense['kernel'] + dense['bias'], rtol=1e-4)
  np.testing.assert_allclose(embedded, embedding[y], rtol=1e-4, atol=1e-7)
  projection = np.sum(embedding[y].astype(np.float64) * phi, axis=-1)
  np.testing.assert_allclose(scores - dense_out[:, 0], projection, rtol=1e-4, atol=1e-4)


@pytest.mark.full
def test_r3gan_projection_is_the_official_inner_product():
  _, d = make_models(
    'r3gan', image_shape=(32, 32, 3), widths=4, blocks=(1, 0, 0, 0), cardinality=1, num_classes=C
  )
  x = jnp.asarray(_normal(9, (N, 32, 32, 3)))
  variables = d.init(_key(4), x, labels=LABELS)
  params = variables['params']
  width = d.widths[0]  # the official ConditionEmbeddingDimension
  assert params['Head']['kernel'].shape == (d.widths[0], width)
  assert params['ClassEmbed']['embedding'].shape == (C, width)
  scores, calls = _capture(d, variables, x, labels=LABELS)
  [(_, phi, head)] = _dense_calls(calls, width)
  np.testing.assert_allclose(head, phi @ params['Head']['kernel'], rtol=1e-4, atol=1e-6)
  want = np.sum(head * np.asarray(params['ClassEmbed']['embedding'])[np.asarray(LABELS)], -1)
  np.testing.assert_allclose(scores, want, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize(
  'name',
  tiered(
    [(n,) for n in SHAPES if 'acgan' in D_CONDITIONINGS[n]],
    [n for n in SHAPES if 'acgan' in D_CONDITIONINGS[n]],
    lambda c: c[0] in ('resnet', 'r3gan'),
  ),
)
def test_acgan_outputs(name):
  _, d = _make(name, num_classes=C, d_conditioning='acgan', dtype='bfloat16')
  x = jnp.zeros((N, *SHAPES[name]))

  def run(key):
    return d.apply(d.init(key, x, labels=LABELS, train=False), x, labels=LABELS, train=False)

  scores, logits = jax.eval_shape(run, _key(0))
  assert (scores.shape, scores.dtype, logits.shape, logits.dtype) == (
    (N,),
    jnp.float32,
    (N, C),
    jnp.float32,
  )


def test_acgan_head_against_numpy():
  _, d = _make('mlp', num_classes=C, d_conditioning='acgan')
  x = jnp.asarray(_normal(10, (N, 8)))
  variables = d.init(_key(5), x, train=False, labels=LABELS)
  (scores, logits), calls = _capture(d, variables, x, train=False, labels=LABELS)
  [(_, phi, dense_out)] = _dense_calls(calls, 1)
  head = variables['params']['ClassHead']
  np.testing.assert_allclose(logits, phi @ head['kernel'] + head['bias'], rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(scores, dense_out[:, 0], rtol=1e-6)


def test_mlp_concat_is_the_unconditional_mlp_on_one_hot_inputs():
  g, d = _make('mlp', num_classes=C, d_conditioning='concat')
  z = jnp.asarray(_normal(11, (N, LATENT)))
  x = jnp.asarray(_normal(12, (N, 8)))
  one_hot = np.eye(C, dtype=np.float32)[np.asarray(LABELS)]
  g_vars = g.init(_key(6), z, train=False, labels=LABELS)
  d_vars = d.init(_key(7), x, train=False, labels=LABELS)
  assert g_vars['params']['Dense_0']['kernel'].shape[0] == LATENT + C
  assert d_vars['params']['Dense_0']['kernel'].shape[0] == 8 + C
  plain_g = MLPGenerator(out_shape=g.out_shape, hidden=g.hidden)
  plain_d = MLPDiscriminator(hidden=d.hidden)
  np.testing.assert_array_equal(
    g.apply(g_vars, z, train=False, labels=LABELS),
    plain_g.apply(g_vars, jnp.concatenate([z, one_hot], -1), train=False),
  )
  np.testing.assert_array_equal(
    d.apply(d_vars, x, train=False, labels=LABELS),
    plain_d.apply(d_vars, jnp.concatenate([x, one_hot], -1), train=False),
  )


# Every model with each conditioning.

COMBINATIONS = [
  ('mlp', 'concat', 'projection', 0, None),
  ('mlp', 'concat', 'acgan', 0, 'spectral'),
  ('mlp', 'concat', 'concat', 0, None),
  ('dcgan', 'cbn', 'projection', 0, None),
  ('dcgan', 'cbn', 'acgan', 4, 'spectral'),
  ('resnet', 'cbn', 'projection', 4, None),
  ('resnet', 'cbn', 'acgan', 0, None),
  ('r3gan', 'concat', 'projection', 0, None),
  ('r3gan', 'concat', 'acgan', 0, None),
  ('projected', 'cbn', 'projection', 0, None),
]


def test_the_combinations_cover_every_conditioning():
  covered = {(c[0], 'g', c[1]) for c in COMBINATIONS} | {(c[0], 'd', c[2]) for c in COMBINATIONS}
  valid = {(m, 'g', c) for m, cs in G_CONDITIONINGS.items() for c in cs}
  valid |= {(m, 'd', c) for m, cs in D_CONDITIONINGS.items() for c in cs}
  assert covered == valid


@pytest.mark.parametrize(
  'name,g_cond,d_cond,shared,d_norm',
  COMBINATIONS,
  ids=['-'.join(map(str, c)) for c in COMBINATIONS],
)
def test_every_conditioning_builds_and_differentiates(name, g_cond, d_cond, shared, d_norm):
  # Traced only (jax.eval_shape): every shape and check runs, nothing compiles.
  g, d = _make(
    name,
    num_classes=C,
    g_conditioning=g_cond,
    d_conditioning=d_cond,
    shared_embedding=shared,
    d_norm=d_norm,
  )
  grads, out = jax.eval_shape(_conditional_grads(g, d), _key(8))
  for tree, params in zip(grads, out['params'], strict=True):
    assert jax.tree.structure(tree) == jax.tree.structure(params)
    assert all(
      a.shape == b.shape
      for a, b in zip(jax.tree.leaves(tree), jax.tree.leaves(params), strict=True)
    )
  scores = out['d_out'][0] if d_cond == 'acgan' else out['d_out']
  for s in scores.values() if isinstance(scores, dict) else [scores]:
    assert s.shape[0] == N and s.ndim in (1, 3) and s.dtype == jnp.float32
  assert out['images'].shape == (N, *SHAPES[name]) and out['images'].dtype == jnp.float32
  if d_cond == 'acgan':
    assert out['d_out'][1].shape == (N, C)


def _conditional_grads(g, d):
  """key -> (gradients of D's mean score (plus ACGAN's class loss) for G and D, outputs)."""
  z = jnp.asarray(_normal(13, (N, LATENT)))
  acgan = d.conditioning == 'acgan'

  def run(key):
    g_vars = g.init(key, z, train=False, labels=LABELS)
    d_vars = d.init(
      key, jnp.zeros((N, *g.apply(g_vars, z, False, LABELS).shape[1:])), False, LABELS
    )

    def loss(g_params, d_params):
      images = g.apply({**g_vars, 'params': g_params}, z, True, LABELS, mutable=['batch_stats'])[0]
      out = d.apply({**d_vars, 'params': d_params}, images, True, LABELS, mutable=['batch_stats'])
      scores = out[0][0] if acgan else out[0]
      if isinstance(scores, dict):  # a feature-network critic: patch maps, one per layer
        scores = sum(s.mean(axis=(1, 2)) for s in scores.values())
      class_loss = -jnp.mean(jax.nn.log_softmax(out[0][1])[jnp.arange(N), LABELS]) if acgan else 0
      return jnp.mean(scores) + class_loss, dict(images=images, d_out=out[0])

    grads, out = jax.grad(loss, argnums=(0, 1), has_aux=True)(g_vars['params'], d_vars['params'])
    return grads, dict(out, params=(g_vars['params'], d_vars['params']))

  return run


def test_class_parameters_learn_from_the_classes_present_only():
  # Class 2 is absent from the labels: its rows get no gradient, the others do.
  g, d = _make('mlp', num_classes=C, d_conditioning='projection')
  (_, d_grads), _ = jax.jit(_conditional_grads(g, d))(_key(8))
  tables = [d_grads['ProjectionEmbed']['embedding']]
  x = jnp.asarray(_normal(14, (N, 2, 2, 4)))
  cbn = ConditionalBatchNorm(num_classes=C)
  variables = cbn.init(_key(9), x, LABELS, False)
  target = jnp.asarray(_normal(15, (N, 2, 2, 4)))

  def loss(params):
    out = cbn.apply({**variables, 'params': params}, x, LABELS, True, mutable=['batch_stats'])[0]
    return jnp.sum((out - target) ** 2)

  grads = jax.grad(loss)(variables['params'])
  tables += [grads['gain']['embedding'], grads['bias']['embedding']]
  for table in tables:
    table = np.asarray(table)
    assert np.all(np.isfinite(table)) and np.all(table[2] == 0) and np.all(table[:2] != 0)


# Unconditional modules: the parameters of the code before conditioning for the same key, tree
# paths, shapes and dtypes hashed, and for two models the values as a weighted sum (with 'rbg'
# keys, whose values are the CPU's: checked on the CPU only). The values of the others follow
# from their unchanged paths, shapes and initialisers (Flax draws each from the module path).
SNAPSHOT = {
  'mlp': (dict(d_norm='spectral'), '82490a45ea3563c6', 6.87949, 'd614aac606bb7802', 11.928778),
  'dcgan': (dict(d_norm='spectral'), '0fa01f577fc209c1', 35.033162, '9854f485b6335738', 25.946517),
  'resnet': ({}, '50856d285951e571', None, 'd79165791f542f4f', None),
  'r3gan': ({}, '58c603effed8ae0b', None, 'd8d3d7d2e41f0650', None),
}


def _digest(tree):
  flat = jax.tree_util.tree_flatten_with_path(tree)[0]
  text = ';'.join(f'{jax.tree_util.keystr(p)}:{tuple(v.shape)}:{v.dtype}' for p, v in flat)
  return hashlib.sha256(text.encode()).hexdigest()[:16]


def _weighted_sum(tree):
  weights = lambda v: np.linspace(1, 2, v.size).reshape(v.shape)
  return sum(float(np.sum(np.asarray(v, np.float64) * weights(v))) for v in jax.tree.leaves(tree))


@pytest.mark.parametrize('name', list(SNAPSHOT))
def test_unconditional_parameters_match_the_snapshot(name):
  kwargs, g_tree, g_sum, d_tree, d_sum = SNAPSHOT[name]
  g, d = _make(name, **kwargs)
  z, x = jnp.zeros((2, LATENT)), jnp.zeros((2, *SHAPES[name]))
  init = lambda k: (g.init(k, z, train=False), d.init(k, x, train=False))
  g_vars, d_vars = jax.eval_shape(init, _key(0))
  assert (_digest(g_vars), _digest(d_vars)) == (g_tree, d_tree)
  if g_sum is not None and jax.default_backend() == 'cpu':
    g_vars, d_vars = jax.jit(init)(_key(0))
    sums = [_weighted_sum(g_vars), _weighted_sum(d_vars)]
    np.testing.assert_allclose(sums, [g_sum, d_sum], rtol=1e-6, atol=2e-6)


# Errors.


@pytest.mark.parametrize(
  'kwargs,match',
  [
    ({'num_classes': -1}, 'num_classes must be an integer >= 0'),
    ({'num_classes': 2.0}, 'num_classes must be an integer >= 0'),
    ({'num_classes': True}, 'num_classes must be an integer >= 0'),
    ({'num_classes': 3, 'g_conditioning': 'concat'}, "g_conditioning must be one of 'cbn'"),
    ({'num_classes': 3, 'd_conditioning': 'concat'}, "one of 'projection', 'acgan'; got 'concat'"),
    ({'g_conditioning': 'cbn'}, r"g_conditioning='cbn' given to an unconditional model"),
    ({'d_conditioning': 'acgan'}, 'num_classes > 0'),
    ({'shared_embedding': 4}, 'unconditional model'),
    ({'num_classes': 3, 'shared_embedding': -1}, 'shared_embedding must be an integer >= 0'),
  ],
)
def test_make_models_errors(kwargs, match):
  with pytest.raises(ValueError, match=match):
    _make('dcgan', **kwargs)


def test_shared_embedding_needs_conditional_batch_norm():
  with pytest.raises(ValueError, match="shared_embedding is for conditional BatchNorm"):
    _make('mlp', num_classes=3, shared_embedding=4)
  g, _ = _make('dcgan', num_classes=np.int64(3))  # NumPy integers are integers
  assert g.num_classes == 3 and type(g.num_classes) is int


@pytest.mark.parametrize('side', ['g', 'd'])
def test_label_errors(side):
  g, d = _make('mlp', num_classes=C)
  g0, d0 = _make('mlp')
  module, plain, x = (g, g0, jnp.zeros((N, LATENT))) if side == 'g' else (d, d0, jnp.zeros((N, 8)))
  init = lambda m, **kw: jax.eval_shape(lambda: m.init(_key(0), x, train=False, **kw))
  with pytest.raises(ValueError, match=r'num_classes=3\) and needs labels'):
    init(module)
  with pytest.raises(ValueError, match=r'unconditional \(num_classes=0\) but got labels'):
    init(plain, labels=LABELS)
  with pytest.raises(ValueError, match=r'labels of shape \[6\].*num_classes=3'):
    init(module, labels=LABELS[:4])
  with pytest.raises(ValueError, match='integer dtype; got float32'):
    init(module, labels=jnp.zeros(N))


def test_module_level_conditioning_check():
  g = DCGANGenerator(image_size=28, channels=1, width=4, num_classes=C, conditioning='concat')
  with pytest.raises(ValueError, match="dcgan g_conditioning must be one of 'cbn'"):
    jax.eval_shape(lambda: g.init(_key(0), jnp.zeros((N, LATENT)), train=False, labels=LABELS))


# BatchNorm's variance in float32.


def test_conditional_batch_norm_variance_is_two_pass():
  # The layer: channel c ~ N(3 + c, (1 + c/4)^2), a mean large against the spread.
  # Flax's default E[x^2] - E[x]^2 was 1.1e-5 off float64 in channel 7; PyTorch's BatchNorm2d
  # is within 1.0e-6 and the two-pass variance within 8.8e-7.
  c = np.arange(8)
  x = np.random.default_rng(0).normal(size=(16, 4, 4, 8)) * (1 + c / 4) + 3 + c
  labels = jnp.arange(16) % 10
  cbn = ConditionalBatchNorm(num_classes=10)
  variables = cbn.init(_key(0), jnp.asarray(x, jnp.float32), labels, False)
  out, _ = cbn.apply(variables, jnp.asarray(x, jnp.float32), labels, True, mutable=['batch_stats'])
  want = (x - x.mean((0, 1, 2))) / np.sqrt(x.var((0, 1, 2)) + 1e-5)  # float64
  assert np.abs(np.asarray(out, np.float64) - want).max() < 2e-6


def _batch_norms(module, *args, **kwargs):
  # Every nn.BatchNorm a module calls, through Flax's method interception.
  found = []

  def record(next_fun, args_, kwargs_, context):
    if isinstance(context.module, nn.BatchNorm):
      found.append(context.module)
    return next_fun(*args_, **kwargs_)

  with nn.intercept_methods(record):
    module.init(_key(0), *args, **kwargs)
  return found


@pytest.mark.parametrize(
  'name,num_classes',
  [
    ('dcgan', 0),
    ('dcgan', C),
    pytest.param('resnet', 0, marks=pytest.mark.full),
    pytest.param('resnet', C, marks=pytest.mark.full),
  ],
)
def test_every_batch_norm_uses_the_two_pass_variance(name, num_classes):
  g, d = make_models(
    name, image_shape=(32, 32, 3), width=8, d_norm='batch', num_classes=num_classes
  )
  kw = {'labels': LABELS[:2]} if num_classes else {}
  norms = _batch_norms(g, jnp.zeros((2, 100)), train=True, **kw)
  norms += _batch_norms(d, jnp.zeros((2, 32, 32, 3)), train=True, **kw)
  assert norms and all(not bn.use_fast_variance for bn in norms)
