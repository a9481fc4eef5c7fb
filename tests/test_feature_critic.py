"""The feature-network critic (Projected GAN style): a frozen backbone's named layers, a patch
head per layer; the backbones, the residual backbone classifier, and the run's weight loader.

Fast tier: randomly initialised backbones (the classifier at test width) on small images. Full
tier: the Inception backbone with the published weights (skipped without them, as
tests/test_inception.py). The cached backbone's accuracy on MNIST is logged when a run trains it
(98.9% here, docs/feature_critic.md)."""

import dataclasses
import inspect

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import pytest

from jaxgan.metrics import classifier as clf_lib
from jaxgan.metrics import classifier_cache
from jaxgan.models import backbones, make_models
from jaxgan.models.feature_critic import FeatureCritic, PatchHead
from jaxgan.run import backbones as run_backbones

N = 2


def _images(shape, seed=0):
  return jnp.asarray(np.random.RandomState(seed).uniform(-1, 1, shape), jnp.float32)


def _init(d, x, **kw):
  # One compiled program: op-by-op initialisation compiles every layer apart (slow here).
  return jax.jit(lambda x, kw: d.init(jax.random.key(0, impl='rbg'), x, train=False, **kw))(x, kw)


def _apply(d, v, x, **kw):
  return jax.jit(lambda v, x, kw: d.apply(v, x, train=False, **kw))(v, x, kw)


# The classifier backbone at test size: the mechanisms (freezing, gradients, channels, weights)
# do not depend on its width, and compiling the full-width network in every test cost minutes.
TINY_WIDTHS = (8, 8, 8)


@pytest.fixture(scope='module', autouse=True)
def tiny_classifier_backbone():
  spec = backbones.BACKBONES['classifier']
  tiny = dataclasses.replace(spec, make=lambda: backbones.ResidualClassifier(widths=TINY_WIDTHS))
  with pytest.MonkeyPatch.context() as mp:
    mp.setitem(backbones.BACKBONES, 'classifier', tiny)
    yield


@pytest.fixture(scope='module')
def critic():
  d = FeatureCritic(layers=('stage1', 'stage3'), head_width=8)
  x = _images((N, 16, 16, 1))
  return d, x, _init(d, x)


def test_output_is_one_patch_map_per_chosen_layer(critic):
  d, x, v = critic
  out = _apply(d, v, x)
  assert list(out) == ['stage1', 'stage3']
  assert out['stage1'].shape == (N, 8, 8) and out['stage3'].shape == (N, 2, 2)
  assert all(o.dtype == jnp.float32 for o in out.values())
  # The defaults: every stage of the classifier backbone.
  assert FeatureCritic().layer_names == ('stage1', 'stage2', 'stage3')


def test_unknown_layer_is_refused_listing_the_names():
  with pytest.raises(ValueError, match='stage1, stage2, stage3'):
    FeatureCritic(layers=('stage4',))
  with pytest.raises(ValueError, match='Mixed_5b.*Mixed_7c'):
    FeatureCritic(backbone='inception', layers=('pool3',))
  with pytest.raises(ValueError, match="'classifier', 'inception'|classifier, inception"):
    FeatureCritic(backbone='vgg')


def test_backbone_lives_outside_params_and_gets_no_update(critic):
  d, x, v = critic
  assert set(v['params']) == {'head_stage1', 'head_stage3'}
  bb = v['backbone']['weights']['params']
  assert 'stage1_conv1' in bb and 'stage3_skip' in bb
  assert 'logits' not in bb  # only what the chosen layers read

  others = {k: c for k, c in v.items() if k != 'params'}

  def loss(params):
    out, _ = d.apply({'params': params, **others}, x, train=True, mutable=list(others))
    return sum(o.sum() for o in out.values())

  grads = jax.jit(jax.grad(loss))(v['params'])
  assert set(grads) == {'head_stage1', 'head_stage3'}
  opt = optax.adam(1e-2)
  updates, _ = opt.update(grads, opt.init(v['params']), v['params'])
  params = optax.apply_updates(v['params'], updates)
  step = jax.jit(lambda p: d.apply({'params': p, **others}, x, train=True, mutable=list(others)))
  _, new = step(params)
  for a, b in zip(jax.tree.leaves(new['backbone']), jax.tree.leaves(v['backbone']), strict=True):
    np.testing.assert_array_equal(a, b)


def test_input_gradient_flows_through_the_backbone_and_matches_finite_differences():
  d = FeatureCritic(layers=('stage2',), head_width=4, norm='none')
  x = _images((1, 8, 8, 1), seed=3)
  v = _init(d, x)
  f = jax.jit(lambda x: d.apply(v, x, train=False)['stage2'].sum())
  g = jax.grad(f)(x)
  assert float(jnp.abs(g).max()) > 0
  # A central difference along a random direction, in float32: eps 1e-3 keeps the ReLU kinks it
  # crosses and the rounding to about 1% here.
  direction = _images(x.shape, seed=4)
  eps = 1e-3
  numeric = (f(x + eps * direction) - f(x - eps * direction)) / (2 * eps)
  np.testing.assert_allclose(float(numeric), float(jnp.sum(g * direction)), rtol=3e-2)


@pytest.mark.full  # 10-17 s here: compiles the backbone (init and apply or grad)
def test_finetune_backbone_puts_it_under_params(critic):
  _, x, frozen = critic
  d = FeatureCritic(layers=('stage1', 'stage3'), head_width=8, finetune_backbone=True)
  v = _init(d, x)
  assert 'backbone' in v['params'] and 'stage1_conv1' in v['params']['backbone']
  others = {k: c for k, c in v.items() if k != 'params'}
  loss = lambda p: sum(o.sum() for o in d.apply({'params': p, **others}, x, train=False).values())
  grads = jax.jit(jax.grad(loss))(v['params'])
  assert float(jnp.abs(grads['backbone']['stem']['kernel']).max()) > 0
  # Moving the frozen critic's backbone into 'params' without saying so is refused.
  d_frozen = FeatureCritic(layers=('stage1', 'stage3'), head_width=8)
  params = {**frozen['params'], 'backbone': frozen['backbone']['weights']['params']}
  with pytest.raises(ValueError, match='finetune_backbone=True'):
    d_frozen.apply({'params': params, 'batch_stats': frozen['batch_stats']}, x, train=False)


@pytest.mark.full  # 10-17 s here: compiles the backbone (init and apply or grad)
def test_pretrained_weights_land_bitwise_and_wrong_ones_are_refused():
  x = _images((N, 16, 16, 1))
  full = jax.jit(backbones.ResidualClassifier(widths=TINY_WIDTHS).init)(
    jax.random.key(7), x
  )  # with the head
  d = FeatureCritic(layers=('stage2',), head_width=8, backbone_weights=jax.device_get(full))
  hash(d)  # a module holding weights is still hashable (jit, the GAN dataclass)
  got = _init(d, x)['backbone']['weights']['params']
  assert set(got) == {n for n in full['params'] if n.startswith(('stem', 'stage1', 'stage2'))}
  for name in got:
    for leaf in got[name]:
      np.testing.assert_array_equal(got[name][leaf], full['params'][name][leaf])
  narrow = jax.eval_shape(
    backbones.ResidualClassifier(widths=(16, 16, 16)).init, jax.random.key(7), x
  )
  narrow = jax.tree.map(lambda s: np.zeros(s.shape, s.dtype), narrow)
  with pytest.raises(ValueError, match='wrong shapes'):
    _init(d.clone(backbone_weights=narrow), x)


@pytest.mark.full  # 10-17 s here: compiles the backbone (init and apply or grad)
def test_three_channels_into_a_one_channel_backbone_run_channel_by_channel(critic):
  d, _, _ = critic
  x = _images((N, 16, 16, 3), seed=5)
  v = _init(d, x)
  out = _apply(d, v, x)
  bb = backbones.ResidualClassifier(widths=TINY_WIDTHS)
  run = jax.jit(lambda x: bb.apply(v['backbone']['weights'], x, outputs=('stage1', 'stage3')))
  per_channel = [run(x[..., c : c + 1]) for c in range(3)]
  for name in ('stage1', 'stage3'):
    feats = jnp.concatenate([p[name] for p in per_channel], axis=-1)
    head = PatchHead(8, True, 1, 0, jnp.float32)
    hv = {'params': v['params'][f'head_{name}'], 'batch_stats': v['batch_stats'][f'head_{name}']}
    np.testing.assert_allclose(out[name], head.apply(hv, feats, False, None), rtol=1e-5, atol=1e-5)


def test_one_channel_into_inception_is_repeated_and_resized():
  d = FeatureCritic(backbone='inception', layers=('Mixed_5b',), head_width=4, resize_to=75)
  x = _images((1, 28, 28, 1))
  out = jax.eval_shape(lambda x: d.apply(_init(d, x), x, train=False), x)
  assert out['Mixed_5b'].shape == (1, 7, 7)
  with pytest.raises(ValueError, match='at least 75'):
    jax.eval_shape(lambda: _init(d.clone(resize_to=32), x))


def test_projection_conditioning_changes_the_scores():
  d = FeatureCritic(layers=('stage2',), head_width=8, num_classes=3)
  x = _images((N, 16, 16, 1))
  v = _init(d, x, labels=jnp.zeros(N, jnp.int32))
  assert 'ProjectionEmbed' in v['params']['head_stage2']
  a = _apply(d, v, x, labels=jnp.array([0, 1]))['stage2']
  b = _apply(d, v, x, labels=jnp.array([2, 2]))['stage2']
  assert not np.allclose(a, b)
  with pytest.raises(ValueError, match='needs labels'):
    d.apply(v, x, train=False)


@pytest.mark.parametrize('shape', [(28, 28, 1), (32, 32, 3)])
def test_projected_family_builds_through_make_models(shape):
  g, d = make_models('projected', image_shape=shape, width=8, head_width=8, num_classes=10)
  assert isinstance(d, FeatureCritic) and d.num_classes == 10 and d.norm == 'spectral'
  z, labels = jnp.zeros((N, 100)), jnp.arange(N)

  def run(z):
    gv = g.init(jax.random.key(0), z, train=False, labels=labels)
    x = g.apply(gv, z, train=False, labels=labels)
    return x, d.apply(_init(d, x, labels=labels), x, train=False, labels=labels)

  x, out = jax.eval_shape(run, z)
  assert x.shape == (N, *shape)
  assert out['stage1'].shape == (N, shape[0] // 2, shape[0] // 2)
  with pytest.raises(ValueError, match="'spectral' or 'none'"):
    make_models('projected', image_shape=shape, d_norm='batch')
  with pytest.raises(TypeError, match='head_width'):
    make_models('projected', image_shape=shape, d_width=8)


def _synthetic(n, seed):
  # Two classes: a bright top half or a bright bottom half, plus noise.
  rng = np.random.RandomState(seed)
  y = rng.randint(0, 2, n)
  x = rng.normal(0, 0.3, (n, 16, 16, 1)) - 0.5
  x[y == 0, :8] += 1.0
  x[y == 1, 8:] += 1.0
  return np.clip(x, -1, 1).astype(np.float32), y


def test_residual_classifier_trains_and_round_trips(tmp_path):
  clf, info = clf_lib.train_classifier(
    'synthetic',
    arch='residual',
    steps=40,
    batch_size=32,
    widths=(8, 16, 16),
    feature_dim=16,
    train_data=_synthetic(256, 0),
    test_data=_synthetic(128, 1),
    log=None,
  )
  assert info['test_accuracy'] >= 0.95
  assert clf.meta['arch'] == 'residual' and 'downsample' not in clf.meta
  assert isinstance(clf.module, backbones.ResidualClassifier) and clf.name == 'synthetic_resnet'
  sha = clf_lib.save_classifier(tmp_path / 'r.npz', clf)
  back = clf_lib.load_classifier(tmp_path / 'r.npz')
  assert back.id == sha and isinstance(back.module, backbones.ResidualClassifier)
  images = _synthetic(8, 2)[0]
  np.testing.assert_array_equal(back.features(images), clf.features(images))
  assert 'ResidualClassifier' in back.describe()


def test_fcd_classifier_defaults_are_unchanged(tmp_path):
  assert inspect.signature(clf_lib.train_classifier).parameters['arch'].default == 'conv'
  assert classifier_cache.SETTINGS == dict(
    steps=1500,
    batch_size=64,
    lr=3e-3,
    seed=0,
    widths=(32, 64),
    feature_dim=128,
    downsample='stride',
  )
  path = classifier_cache.cached_classifier_path('stacked_mnist', tmp_path)
  assert path == str(tmp_path / 'classifiers' / 'mnist_convnet_338b9ff1668b34ae.npz')
  backbone = classifier_cache.BACKBONE_SETTINGS
  assert backbone['arch'] == 'residual' and backbone['seed'] != classifier_cache.SETTINGS['seed']
  assert classifier_cache.cached_backbone_path('mnist', tmp_path) != path
  clf, _ = clf_lib.train_classifier(
    'synthetic', steps=1, widths=(4,), feature_dim=4, train_data=_synthetic(32, 0),
    test_data=_synthetic(8, 1), log=None,
  )  # fmt: skip
  assert isinstance(clf.module, clf_lib.ConvClassifier) and 'arch' not in clf.meta
  assert clf.meta['downsample'] == 'max_pool' and clf.name == 'synthetic_convnet'


def _fake_cached_backbone(widths):
  clf, _ = clf_lib.train_classifier(
    'mnist', arch='residual', steps=1, widths=widths, train_data=_synthetic(16, 0),
    test_data=_synthetic(8, 1), log=None,
  )  # fmt: skip
  return lambda dataset, **kw: clf


@pytest.mark.full  # 10-17 s here: compiles the backbone (init and apply or grad)
def test_run_layer_loads_checks_and_hands_over_the_weights(monkeypatch):
  d = FeatureCritic(layers=('stage1',), head_width=8)
  monkeypatch.setattr(classifier_cache, 'cached_backbone', _fake_cached_backbone((16, 16, 16)))
  with pytest.raises(ValueError, match='do not fit'):
    run_backbones.load_backbone_weights('classifier', 'mnist', critic=d)
  fake = _fake_cached_backbone(TINY_WIDTHS)
  monkeypatch.setattr(classifier_cache, 'cached_backbone', fake)
  config = ml_collections.ConfigDict(dict(data=dict(name='mnist'), run=dict(data_dir=None)))
  d2 = run_backbones.with_backbone_weights(d, config)
  want = fake('mnist').params['stem']['kernel']
  got = _init(d2, _images((1, 28, 28, 1)))['backbone']['weights']['params']['stem']['kernel']
  np.testing.assert_array_equal(got, want)
  assert set(d2.backbone_weights.tree['params']) == {'stem', 'stem_norm'} | {
    f'stage1_{n}' for n in ('conv1', 'norm1', 'conv2', 'norm2', 'skip')
  }
  assert (
    run_backbones.with_backbone_weights(d.clone(pretrained=False), config).backbone_weights is None
  )


@pytest.mark.full
def test_inception_backbone_with_the_published_weights():
  from jaxgan.metrics import inception_weights
  from jaxgan.models import inception_net

  try:
    inception_weights.find_weights()
  except inception_weights.MissingWeightsError:
    pytest.skip(f'no Inception weights: `{inception_weights.FETCH_COMMAND}`')
  d = FeatureCritic(
    backbone='inception', layers=('Mixed_5d', 'Mixed_6e'), head_width=8, resize_to=75
  )
  weights = run_backbones.load_backbone_weights('inception', critic=d)
  assert 'Mixed_7c' not in weights['params'] and 'batch_stats' in weights
  d = d.clone(backbone_weights=weights)
  x = _images((2, 32, 32, 3))
  v = _init(d, x)
  np.testing.assert_array_equal(
    v['backbone']['weights']['params']['Mixed_5d']['branch1x1']['conv']['kernel'],
    weights['params']['Mixed_5d']['branch1x1']['conv']['kernel'],
  )
  out = _apply(d, v, x)
  assert out['Mixed_5d'].shape == (2, 7, 7) and out['Mixed_6e'].shape == (2, 3, 3)
  # The named outputs are the network's own: the last block's mean is the pool feature.
  full = run_backbones.load_backbone_weights('inception')
  net, x75 = (
    inception_net.InceptionV3(num_classes=None),
    jax.image.resize(x, (2, 75, 75, 3), 'bilinear'),
  )
  feats, _ = net.apply(full, x75)
  last = net.apply(full, x75, outputs=('Mixed_7c',))['Mixed_7c'].mean(axis=(1, 2))
  np.testing.assert_allclose(last, feats, rtol=1e-5, atol=1e-6)
