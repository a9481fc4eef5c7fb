"""Tests of the R3GAN networks (`jaxgan.models.r3gan`): shapes and dtypes, the [1, 2, 1] resampling
against NumPy, grouped convolutions, the fix-up initialisation, the CIFAR-10 preset's parameter
count, bad input, and a few train steps with the relativistic loss and R1.

Networks are tiny (width 8) so the file runs in seconds; initialisation uses 'rbg' keys, which
compile faster than threefry on the CPU (see tests/test_models.py).
"""

import importlib.util
import math
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxgan import GAN
from jaxgan.models import make_models, r3gan, r3gan_stages
from jaxgan.step.train import make_train_step

TINY = dict(widths=8, blocks=1, conv='xla')


def _key(seed):
  return jax.random.key(seed, impl='rbg')


def _count(tree):
  return sum(int(np.prod(x.shape)) for x in jax.tree_util.tree_leaves(tree))


@pytest.mark.full
def test_shapes_and_dtypes():
  channels = 3
  shape = (32, 32, channels)
  g, d = make_models('r3gan', image_shape=shape, latent_dim=16, **TINY)
  # Mixed precision: the same float32 parameters, bfloat16 compute.
  g16, d16 = make_models('r3gan', image_shape=shape, latent_dim=16, dtype='bfloat16', **TINY)

  @jax.jit
  def run(z):
    gv = g.init(_key(1), z, train=False)
    images = g.apply(gv, z, train=False)
    dv = d.init(_key(2), images, train=False)
    return gv, dv, images, d.apply(dv, images), g16.apply(gv, z), d16.apply(dv, images)

  gv, dv, images, scores, images16, scores16 = run(jax.random.normal(_key(0), (4, 16)))
  assert images.shape == (4, 32, 32, channels) and images.dtype == jnp.float32
  assert scores.shape == (4,) and scores.dtype == jnp.float32
  assert float(jnp.max(jnp.abs(images))) <= 1.0  # tanh by default, as jaxgan's other generators
  assert np.isfinite(np.asarray(scores)).all()
  # No normalisation: no state besides the parameters, all float32.
  assert set(gv) == {'params'} and set(dv) == {'params'}
  assert all(x.dtype == jnp.float32 for x in jax.tree_util.tree_leaves((gv, dv)))
  # bfloat16 outputs are float32 and close to the float32 ones (8 bits of mantissa).
  assert images16.dtype == jnp.float32 and scores16.dtype == jnp.float32
  np.testing.assert_allclose(images16, images, atol=0.05)
  np.testing.assert_allclose(scores16, scores, atol=0.05 * (1 + float(jnp.max(jnp.abs(scores)))))
  assert not np.array_equal(np.asarray(images16), np.asarray(images))  # it did compute in bf16
  # One channel (e.g. MNIST padded to 32): shapes only.
  g, d = make_models('r3gan', image_shape=(32, 32, 1), latent_dim=16, **TINY)
  z = jnp.zeros((4, 16))
  images = jax.eval_shape(lambda: g.apply(g.init(_key(0), z), z))
  assert images.shape == (4, 32, 32, 1) and images.dtype == jnp.float32
  scores = jax.eval_shape(lambda x: d.apply(d.init(_key(0), x), x), images)
  assert scores.shape == (4,) and scores.dtype == jnp.float32


def test_default_network_shape():
  g, d = make_models('r3gan', image_shape=(32, 32, 3))
  assert g.widths == r3gan.DEFAULT_WIDTHS[32] == (64, 32, 16, 8)
  # Groups of 16 channels: inner widths 128, 64, 32, 16.
  assert g.cardinality == d.cardinality == (8, 4, 2, 1)
  # The module defaults agree with the factory's.
  assert r3gan.R3GANGenerator().cardinality == g.cardinality
  # model.width scales the default widths (the widest stage gets `width`).
  g, _ = make_models('r3gan', image_shape=(32, 32, 3), width=256)
  assert g.widths == (256, 128, 64, 32) and g.cardinality == (32, 16, 8, 4)


def _np_kernel():
  # The official CreateLowpassKernel([1, 2, 1], Inplace=False): [1, 2, 1] * [1, 1], outer product,
  # normalised to sum 1.
  k = np.convolve([1.0, 2.0, 1.0], [1.0, 1.0])
  k = np.outer(k, k)
  return k / k.sum()


def _np_upsample(x):
  # StyleGAN2's upfirdn2d.upsample2d: zero insertion, pad (2, 1), correlate with 4 K.
  h, w = x.shape
  u = np.zeros((2 * h, 2 * w))
  u[::2, ::2] = x
  p = np.pad(u, ((2, 1), (2, 1)))
  k = 4 * _np_kernel()
  return np.array(
    [[np.sum(p[i : i + 4, j : j + 4] * k) for j in range(2 * w)] for i in range(2 * h)]
  )


def _np_downsample(x):
  # StyleGAN2's upfirdn2d.downsample2d: pad (1, 1), correlate with K, keep every second sample.
  h, w = x.shape
  p = np.pad(x, 1)
  k = _np_kernel()
  return np.array(
    [
      [np.sum(p[2 * i : 2 * i + 4, 2 * j : 2 * j + 4] * k) for j in range(w // 2)]
      for i in range(h // 2)
    ]
  )


def test_resampling_against_numpy():
  x = np.random.RandomState(0).standard_normal((2, 6, 4, 3)).astype(np.float32)
  up, down = jax.jit(lambda x: (r3gan.upsample(x), r3gan.downsample(x)))(jnp.asarray(x))
  assert up.shape == (2, 12, 8, 3) and down.shape == (2, 3, 2, 3)
  for n in range(2):
    for c in range(3):
      np.testing.assert_allclose(up[n, :, :, c], _np_upsample(x[n, :, :, c]), atol=1e-5)
      np.testing.assert_allclose(down[n, :, :, c], _np_downsample(x[n, :, :, c]), atol=1e-5)
  # Away from the borders a constant image stays constant (the filters are normalised).
  up, down = jax.jit(lambda x: (r3gan.upsample(x), r3gan.downsample(x)))(jnp.ones((1, 8, 8, 1)))
  np.testing.assert_allclose(up[0, 1:-1, 1:-1], 1.0, atol=1e-6)
  np.testing.assert_allclose(down[0, 1:-1, 1:-1], 1.0, atol=1e-6)


@pytest.mark.parametrize('conv', ['xla', 'lax'])
def test_grouped_convolution(conv):
  x = jax.random.normal(_key(0), (2, 5, 5, 6))
  kernel = jax.random.normal(_key(1), (3, 3, 2, 12))  # [kh, kw, in / groups, out], 3 groups
  apply = jax.jit(lambda x: r3gan.conv2d(x, kernel, groups=3, conv=conv))
  y = apply(x)
  expected = jax.lax.conv_general_dilated(
    x, kernel, (1, 1), 'SAME', dimension_numbers=('NHWC', 'HWIO', 'NHWC'), feature_group_count=3
  )
  np.testing.assert_allclose(y, expected, atol=1e-4)
  # Against NumPy: output channel 5 (group 1) sums input channels 2-3 only.
  xp = np.pad(np.asarray(x), ((0, 0), (1, 1), (1, 1), (0, 0)))
  k = np.asarray(kernel)
  ref = sum(
    xp[:, i : i + 5, j : j + 5, 2 + c] * k[i, j, c, 5]
    for i in range(3)
    for j in range(3)
    for c in range(2)
  )
  np.testing.assert_allclose(y[..., 5], ref, atol=1e-4)
  # Grouped: changing the first group's inputs (channels 0-1) changes only its outputs (0-3).
  y2 = apply(x.at[..., :2].add(1.0))
  changed = np.abs(np.asarray(y2 - y)).max(axis=(0, 1, 2)) > 1e-6
  np.testing.assert_array_equal(changed, [True] * 4 + [False] * 8)
  # The residual block's 3x3 convolution is grouped by the stage's cardinality.
  g, _ = make_models('r3gan', image_shape=(32, 32, 3), latent_dim=8, **TINY)
  shapes = jax.eval_shape(lambda: g.init(_key(0), jnp.zeros((1, 8))))['params']
  assert shapes['Block32_0']['Conv2'].shape == (3, 3, 16, 16)  # 16 inner, 1 group
  g, _ = make_models('r3gan', image_shape=(32, 32, 3), latent_dim=8, widths=16, cardinality=4)
  shapes = jax.eval_shape(lambda: g.init(_key(0), jnp.zeros((1, 8))))['params']
  assert shapes['Block32_0']['Conv2'].shape == (3, 3, 8, 32)  # 32 inner, 4 groups


def test_fixup_initialisation():
  blocks_in_network = 8
  block = r3gan.ResidualBlock(cardinality=4, expansion=2, num_blocks=blocks_in_network, conv='xla')
  x = jax.random.normal(_key(0), (2, 8, 8, 64))
  params = jax.jit(block.init)(_key(1), x)
  apply = jax.jit(block.apply)
  p = params['params']
  # The residual branch ends in a zero layer, so the block is the identity at initialisation.
  assert not np.any(np.asarray(p['Conv3']))
  np.testing.assert_array_equal(apply(params, x), x)
  assert not np.any(np.asarray(p['bias1'])) and not np.any(np.asarray(p['bias2']))
  # The other two layers: N(0, gain^2 / fan_in), gain = sqrt(2 / (1 + 0.2^2)) * L^(-1/4).
  gain = math.sqrt(2 / 1.04) * blocks_in_network**-0.25
  for name, fan_in in (('Conv1', 64), ('Conv2', 9 * 128 // 4)):
    std = float(np.std(np.asarray(p[name])))
    assert std == pytest.approx(gain / math.sqrt(fan_in), rel=0.05), name
  # After a perturbation of the last layer the block is no longer the identity.
  p2 = jax.tree_util.tree_map(lambda v: v, p)
  p2['Conv3'] = p2['Conv3'] + 0.01
  assert not np.allclose(apply({'params': p2}, x), x)


def test_cifar10_parameter_count():
  # The official CIFAR10 preset (train.py): widths 768 x 4, 2 blocks per stage (L = 8), cardinality
  # 96, expansion 2, noise 64. A block at width 768: 1x1 768 -> 1536 (1,179,648), grouped 3x3
  # 1536 -> 1536 in 96 groups (16 inputs per output: 1536 * 16 * 9 = 221,184), 1x1 1536 -> 768
  # (1,179,648), two activation biases of 1536 (3,072): 2,583,552; eight blocks 20,668,416. No
  # transition convolutions (equal widths).
  # G: basis 4 * 4 * 768 (12,288) + linear 64 * 768 (49,152) + blocks + aggregation 768 * 3 (2,304)
  # = 20,732,160. D: extraction 3 * 768 (2,304) + blocks + depthwise 4x4 basis 768 * 16 (12,288)
  # + linear 768 * 1 (768) = 20,683,776. (The official modules, instantiated, count the same.)
  block = 768 * 1536 + 1536 * 16 * 9 + 1536 * 768 + 2 * 1536
  expected_g = 4 * 4 * 768 + 64 * 768 + 8 * block + 768 * 3
  expected_d = 3 * 768 + 8 * block + 768 * 16 + 768
  assert (expected_g, expected_d) == (20_732_160, 20_683_776)
  g, d = make_models(
    'r3gan', image_shape=(32, 32, 3), latent_dim=r3gan.CIFAR10_LATENT_DIM, **r3gan.CIFAR10_KWARGS
  )
  z, x = jnp.zeros((1, 64)), jnp.zeros((1, 32, 32, 3))
  assert _count(jax.eval_shape(lambda: g.init(_key(0), z))) == expected_g
  assert _count(jax.eval_shape(lambda: d.init(_key(0), x))) == expected_d


def test_cifar10_config_writes_out_the_preset():
  # experiments/configs/cifar10_r3gan.py writes the preset's numbers out (an experiment config
  # loads no JAX); they must stay those of `r3gan.CIFAR10_KWARGS` and the official preset.
  path = Path(__file__).resolve().parents[1] / 'experiments' / 'configs' / 'cifar10_r3gan.py'
  spec = importlib.util.spec_from_file_location('cifar10_r3gan', path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  config = module.get_config()
  assert config.model.latent_dim == r3gan.CIFAR10_LATENT_DIM == r3gan_stages.OFFICIAL_LATENT_DIM
  assert config.model.kwargs.to_dict() == r3gan.CIFAR10_KWARGS
  preset = r3gan_stages.OFFICIAL_PRESETS['CIFAR10']
  assert {k: config.model.kwargs[k] for k in ('widths', 'blocks', 'cardinality')} == {
    k: preset[k] for k in ('widths', 'blocks', 'cardinality')
  }
  assert config.model.kwargs.expansion == r3gan_stages.OFFICIAL_EXPANSION


def test_minibatch_std():
  _, d = make_models('r3gan', image_shape=(32, 32, 3), minibatch_std=2, **TINY)
  x = jax.random.normal(_key(0), (4, 32, 32, 3))
  params = jax.eval_shape(lambda: d.init(_key(1), x))
  assert params['params']['basis'].shape == (4, 4, 1, 9)  # 8 channels + the statistic
  assert jax.eval_shape(d.apply, params, x).shape == (4,)


def test_bad_input():
  with pytest.raises(ValueError, match="d_norm must be 'none'"):
    make_models('r3gan', image_shape=(32, 32, 3), d_norm='spectral')
  with pytest.raises(ValueError, match='pad_to'):
    make_models('r3gan', image_shape=(28, 28, 1))
  with pytest.raises(ValueError, match='not both'):
    make_models('r3gan', image_shape=(32, 32, 3), width=64, widths=64)
  with pytest.raises(ValueError, match='does not divide'):
    make_models('r3gan', image_shape=(32, 32, 3), widths=8, cardinality=3)
  with pytest.raises(ValueError, match='4 of them'):
    make_models('r3gan', image_shape=(32, 32, 3), blocks=(1, 1))
  with pytest.raises(ValueError, match='output_activation'):
    make_models('r3gan', image_shape=(32, 32, 3), output_activation='sigmoid')
  with pytest.raises(TypeError, match='unexpected keyword'):
    make_models('r3gan', image_shape=(32, 32, 3), sn_steps=2)


@pytest.mark.full
def test_train_steps_rsgan_r1():
  # One block (at 4x4) keeps the compile short; the other tests cover every stage's blocks.
  g, d = make_models(
    'r3gan', image_shape=(32, 32, 3), latent_dim=8, widths=8, blocks=(1, 0, 0, 0), conv='xla'
  )
  adam = optax.adam(2e-4, b1=0.0, b2=0.99)
  gan = GAN(g, d, adam, adam, latent_shape=(8,))
  step = jax.jit(make_train_step(gan, loss='rsgan', penalty='r1', penalty_weight=0.05))
  batch = jax.random.uniform(_key(0), (4, 32, 32, 3), minval=-1.0, maxval=1.0)
  state = jax.jit(gan.init)(_key(1), batch)
  before = state.d_params
  for i in range(2):
    state, metrics = step(state, batch, _key(2 + i))
    assert all(np.isfinite(float(v)) for v in metrics.values()), metrics
    assert float(metrics['skipped']) == 0.0
  assert float(metrics['penalty']) > 0.0
  moved = jax.tree_util.tree_map(
    lambda a, b: float(jnp.max(jnp.abs(a - b))), state.d_params, before
  )
  assert max(jax.tree_util.tree_leaves(moved)) > 0.0
