"""Tests of the convolutional models at every image size they build (each module's `SIZES`).

For every size: G maps z to `[n, size, size, c]` and D maps those to `[n]` (and class logits with
'acgan'), with each conditioning; the stages follow the papers' rules (BigGAN's channel multipliers
for the ResNet, the official R3GAN presets, DCGAN's doubling), the 32 px networks keep the
parameter trees they had before the other sizes were added (checkpoints depend on them), and an
unsupported size is refused naming the sizes and the fix. Shapes come from `jax.eval_shape` (no
compilation) at tiny widths; a few networks also run, jitted, so the file takes seconds.
"""

import hashlib
import json
import math
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxgan.models import D_CONDITIONINGS, dcgan, make_models, r3gan, r3gan_stages, resnet

LATENT = 8
WIDTH = {'dcgan': 4, 'resnet': 2, 'r3gan': 8}
MODULES = {'dcgan': dcgan, 'resnet': resnet, 'r3gan': r3gan}
# The networks of 64 px and up are the full tier's: tracing them takes most of this file's time.
CASES = [
  pytest.param(name, size, id=f'{name}-{size}', marks=[pytest.mark.full] if size >= 64 else [])
  for name, module in MODULES.items()
  for size in module.SIZES
]


def _key(seed):
  return jax.random.key(seed, impl='rbg')  # compiles faster than threefry (tests/test_models.py)


def _make(name, size, channels=3, **kwargs):
  kwargs = {'width': WIDTH[name], **kwargs}
  return make_models(
    name, image_shape=(size, size, channels), latent_dim=LATENT, conv='xla', **kwargs
  )


def _labels(kwargs, n=2):
  return {'labels': jnp.arange(n) % kwargs['num_classes']} if kwargs.get('num_classes') else {}


def _abstract(g, d, labels, n=2, latent=LATENT):
  """Shapes of G's and D's variables, the images and D's output (nothing is computed)."""

  def run(z):
    gv = g.init(_key(0), z, train=False, **labels)
    x = g.apply(gv, z, train=False, **labels)
    dv = d.init(_key(1), x, train=False, **labels)
    return gv, dv, x, d.apply(dv, x, train=False, **labels)

  return jax.eval_shape(run, jax.ShapeDtypeStruct((n, latent), jnp.float32))


def _conditionings(name):
  out = [{}] + [dict(num_classes=3, d_conditioning=c) for c in D_CONDITIONINGS[name]]
  if name != 'r3gan':  # conditional BatchNorm from one shared class embedding (BigGAN)
    out.append(dict(num_classes=3, shared_embedding=4))
  return out


@pytest.mark.parametrize('name,size', CASES)
def test_every_size_and_conditioning(name, size):
  for kwargs in _conditionings(name):
    g, d = _make(name, size, **kwargs)
    _, _, x, out = _abstract(g, d, _labels(kwargs))
    assert x.shape == (2, size, size, 3) and x.dtype == jnp.float32, kwargs
    if kwargs.get('d_conditioning') == 'acgan':
      out, logits = out
      assert logits.shape == (2, 3) and logits.dtype == jnp.float32
    assert out.shape == (2,) and out.dtype == jnp.float32, kwargs
  g, d = _make(name, size, channels=1)
  _, _, x, out = _abstract(g, d, {})
  assert x.shape == (2, size, size, 1) and out.shape == (2,)


@pytest.mark.full
@pytest.mark.parametrize(
  'name,size,kwargs',
  [
    ('r3gan', 64, dict(num_classes=3)),
  ],
)
def test_networks_run_at_the_new_sizes(name, size, kwargs):
  g, d = _make(name, size, **kwargs)
  labels = _labels(kwargs, 3)
  z = jnp.asarray(np.random.RandomState(0).standard_normal((3, LATENT)), jnp.float32)
  x_real = jnp.asarray(np.random.RandomState(1).uniform(-1, 1, (3, size, size, 3)), jnp.float32)

  @jax.jit
  def run(z, x_real):
    gv = g.init(_key(0), z, train=False, **labels)
    x, _ = g.apply(gv, z, train=True, mutable=['batch_stats'], **labels)
    dv = d.init(_key(1), x, train=False, **labels)
    score = lambda v: d.apply(dv, v, train=True, mutable=['batch_stats'], **labels)[0]
    return x, score(x), score(x_real)

  x, fake, real = run(z, x_real)
  assert x.shape == (3, size, size, 3) and np.all(np.isfinite(x)) and np.all(np.abs(x) <= 1)
  assert np.all(np.isfinite(fake)) and np.all(np.isfinite(real)) and fake.shape == (3,)
  assert float(jnp.std(x)) > 0 and not np.allclose(fake, real)


# ---- the stages per size -----------------------------------------------------------------------


def _blocks(params, prefix):
  return sorted((k for k in params if k.startswith(prefix)), key=lambda k: int(k.split('_')[1]))


CAPTURE = dict(capture_intermediates=True, mutable=['intermediates'])


@pytest.mark.full
def test_resnet_stages_follow_biggan():
  # BigGAN-PyTorch (github.com/ajbrock/BigGAN-PyTorch), BigGAN.py: G_arch's in_channels[0] then
  # out_channels, and D_arch's out_channels, as multiples of ch (BigGAN, Brock et al. 2019,
  # appendix B, Tables 4-6).
  assert resnet.G_MULTIPLIERS == {
    64: (16, 16, 8, 4, 2),
    128: (16, 16, 8, 4, 2, 1),
    256: (16, 16, 8, 8, 4, 2, 1),
  }
  assert resnet.D_MULTIPLIERS == {
    64: (1, 2, 4, 8, 16),
    128: (1, 2, 4, 8, 16, 16),
    256: (1, 2, 4, 8, 8, 16, 16),
  }
  ch = 2
  for size in resnet.SIZES:
    g, d = _make('resnet', size, width=ch)
    gv, dv, x, _ = _abstract(g, d, {})
    gp, dp = gv['params'], dv['params']
    ups = int(math.log2(size // 4))  # one up block per doubling from 4x4
    gblocks = _blocks(gp, 'GBlock_')
    assert len(gblocks) == ups
    widths = resnet.generator_widths(size, ch)
    assert gp['Dense_0']['kernel'].shape == (LATENT, 16 * widths[0])
    assert [gp[b]['Conv_1']['kernel'].shape[-1] for b in gblocks] == list(widths[1:])
    # D: what each block outputs, captured.
    apply = lambda dv, x, d=d: d.apply(dv, x, train=False, **CAPTURE)
    _, state = jax.eval_shape(apply, dv, x)
    inter = state['intermediates']
    dblocks = _blocks(inter, 'DBlock_')
    shapes = [inter[b]['__call__'][0].shape[1:] for b in dblocks]
    if size == 32:  # SNGAN: down to 8x8, then two blocks at 8x8, all `width` wide
      assert shapes == [(16, 16, ch), (8, 8, ch), (8, 8, ch), (8, 8, ch)]
    else:  # one down block per halving to 4x4, then one at 4x4
      sides = [size // 2 ** (i + 1) for i in range(ups)] + [4]
      mults = resnet.D_MULTIPLIERS[size]
      assert shapes == [(s, s, ch * m) for s, m in zip(sides, mults, strict=True)]
    assert dp['Dense_0']['kernel'].shape == (shapes[-1][-1], 1)
  # Defaults: SNGAN's widths at 32, BigGAN-PyTorch's ch 64 (G_ch = D_ch) above.
  for size, (g_width, d_width) in ((32, (256, 128)), (64, (64, 64)), (256, (64, 64))):
    g, d = make_models('resnet', image_shape=(size, size, 3))
    assert (g.width, d.width) == (g_width, d_width) == resnet.DEFAULT_WIDTHS[size]
  g, d = make_models('resnet', image_shape=(128, 128, 3), width=32, d_width=16)
  assert (g.width, d.width) == (32, 16)


@pytest.mark.full
def test_dcgan_128_adds_one_stage():
  g, d = _make('dcgan', 128)
  gv, dv, _, _ = _abstract(g, d, {})
  gp, dp = gv['params'], dv['params']
  # z -> 4x4 x 16w, then 8w, 4w, 2w, w and C: five stride-2 stages (the doubling rule).
  assert gp['Dense_0']['kernel'].shape == (LATENT, 4 * 4 * 16 * WIDTH['dcgan'])
  ups = [gp[f'ConvTranspose_{i}']['kernel'].shape[-1] for i in range(5)]
  assert ups == [8 * 4, 4 * 4, 2 * 4, 4, 3] and 'ConvTranspose_5' not in gp
  # D: w, 2w, 4w, 8w, 16w down to 4x4, flattened to the dense layer.
  downs = [dp[f'Conv_{i}']['kernel'].shape[-1] for i in range(5)]
  assert downs == [4, 8, 16, 32, 64] and 'Conv_5' not in dp
  assert dp['Dense_0']['kernel'].shape == (4 * 4 * 64, 1)


# The official presets, as train.py of github.com/brownvc/R3GAN (HEAD 19a7ddf) writes them.
OFFICIAL = {
  'CIFAR10': (32, [3 * x // 4 for x in [1024] * 4], [2] * 4, [3 * x for x in [32] * 4]),
  'FFHQ-64': (
    64,
    [3 * x // 4 for x in [1024, 1024, 1024, 1024, 512]],
    [2] * 5,
    [3 * x for x in [32, 32, 32, 32, 16]],
  ),
  'FFHQ-256': (
    256,
    [3 * x // 4 for x in [1024, 1024, 1024, 1024, 512, 256, 128]],
    [2] * 7,
    [3 * x for x in [32, 32, 32, 32, 16, 8, 4]],
  ),
  'ImageNet-32': (32, [6 * x // 4 for x in [1024] * 4], [2] * 4, [3 * x for x in [32] * 4]),
  'ImageNet-64': (64, [6 * x // 4 for x in [1024] * 5], [2] * 5, [3 * x for x in [32] * 5]),
}


def test_r3gan_stage_tables_match_the_official_presets():
  assert set(r3gan_stages.OFFICIAL_PRESETS) == set(OFFICIAL)
  for name, (size, widths, blocks, cardinality) in OFFICIAL.items():
    p = r3gan_stages.OFFICIAL_PRESETS[name]
    assert (p['size'], p['widths'], p['blocks'], p['cardinality']) == (
      size,
      tuple(widths),
      tuple(blocks),
      tuple(cardinality),
    ), name
    assert len(widths) == len(r3gan.RESOLUTIONS[size])  # one stage per resolution 4 ... size
  assert r3gan.RESOLUTIONS == {
    32: (4, 8, 16, 32),
    64: (4, 8, 16, 32, 64),
    128: (4, 8, 16, 32, 64, 128),
    256: (4, 8, 16, 32, 64, 128, 256),
  }
  # FFHQ's rule: one width to 32x32, halved per doubling above (128 has no preset).
  assert r3gan_stages.official_widths(32) == tuple(OFFICIAL['CIFAR10'][1])
  assert r3gan_stages.official_widths(64) == tuple(OFFICIAL['FFHQ-64'][1])
  assert r3gan_stages.official_widths(256) == tuple(OFFICIAL['FFHQ-256'][1])
  assert r3gan_stages.official_widths(32, 1536) == tuple(OFFICIAL['ImageNet-32'][1])
  # (ImageNet-64 keeps its doubled width at 64x64 too: a preset, not the FFHQ rule.)
  # jaxgan's defaults: the original CPU-size network at 32, the rule at width 64 above.
  assert r3gan.DEFAULT_WIDTHS == {
    32: (64, 32, 16, 8),
    64: (64, 64, 64, 64, 32),
    128: (64, 64, 64, 64, 32, 16),
    256: (64, 64, 64, 64, 32, 16, 8),
  }
  g, d = make_models('r3gan', image_shape=(128, 128, 3))
  assert g.widths == d.widths == r3gan.DEFAULT_WIDTHS[128] and g.blocks == (1,) * 6
  assert g.cardinality == (8, 8, 8, 8, 4, 2)  # groups of 16 channels, as the official ratio


@pytest.mark.parametrize(
  'preset,g_params,d_params',
  # Counted on the official Generator(64, ...) and Discriminator(reversed ...) of R3GAN/Networks.py
  # built at the preset (unconditional).
  [('FFHQ-64', 22_429_824, 22_381_440), ('FFHQ-256', 23_057_952, 23_009_568)],
)
def test_r3gan_width_768_is_the_official_ffhq_network(preset, g_params, d_params):
  size, widths, blocks, cardinality = OFFICIAL[preset]
  g, d = make_models(
    'r3gan', image_shape=(size, size, 3), latent_dim=64, width=768, blocks=2, conv='xla'
  )
  assert (g.widths, g.blocks, g.cardinality) == (tuple(widths), tuple(blocks), tuple(cardinality))
  gv = jax.eval_shape(lambda: g.init(_key(0), jnp.zeros((1, 64))))['params']
  dv = jax.eval_shape(lambda: d.init(_key(0), jnp.zeros((1, size, size, 3))))['params']
  count = lambda v: sum(math.prod(x.shape) for x in jax.tree_util.tree_leaves(v))
  assert (count(gv), count(dv)) == (g_params, d_params)
  stages = r3gan.RESOLUTIONS[size]
  assert {f'Block{r}_{i}' for r in stages for i in range(2)} <= set(gv) & set(dv)
  # Transitions (1x1) where the width changes: above 32x32 only.
  assert {k for k in gv if k.startswith('Transition')} == {f'Transition{r}' for r in stages[4:]}


# ---- the networks of the sizes built before are unchanged ----------------------------------------

# sha256 (first 16 hex digits) of {'g': G's variable tree, 'd': D's}, each a sorted list of
# [collection/module/.../name, shape], recorded before the sizes above 32 (128 for dcgan) were
# added: the 32 px ResNet and R3GAN and the 28, 32 and 64 px DCGAN, with each conditioning.
SNAPSHOT = [
  ('resnet', 32, 3, None, 'spectral', {}, '1b224438dbc48e2a'),
  ('resnet', 32, 3, None, 'batch', {}, '24a18a0b1dc1a07e'),
  ('resnet', 32, 3, None, 'spectral', {'num_classes': 10}, 'c482e8278ae4f1a7'),
  ('resnet', 32, 3, None, 'batch', {'num_classes': 10}, 'be49adbd93b04a46'),
  ('resnet', 32, 3, None, 'spectral', 'acgan', 'f134356d03a844f3'),
  ('resnet', 32, 3, None, 'batch', 'acgan', 'a8aeab3d828bb79c'),
  ('resnet', 32, 1, 16, 'spectral', {}, '54dc20237ff46392'),
  ('resnet', 32, 1, 16, 'batch', {}, '570f47e6c515dae4'),
  ('resnet', 32, 1, 16, 'spectral', {'num_classes': 10}, '91cd79c8b8063daf'),
  ('resnet', 32, 1, 16, 'batch', {'num_classes': 10}, '690b02ff16a7120e'),
  ('resnet', 32, 1, 16, 'spectral', 'acgan', '4195bb2c9f682d53'),
  ('resnet', 32, 1, 16, 'batch', 'acgan', '16a3a0910a3201d4'),
  ('r3gan', 32, 3, None, None, {}, '89e5d83238a067d2'),
  ('r3gan', 32, 3, None, None, {'num_classes': 10}, '65456bff49ccd72a'),
  ('r3gan', 32, 3, None, None, {'num_classes': 10, 'd_conditioning': 'acgan'}, 'a9844e8e9f06ab6d'),
  ('r3gan', 32, 3, 128, None, {}, '860c74fce3d6fff8'),
  ('r3gan', 32, 3, 128, None, {'num_classes': 10}, '81aafa5a765cfd1e'),
  ('r3gan', 32, 3, 128, None, {'num_classes': 10, 'd_conditioning': 'acgan'}, '78eb33b27326aaf5'),
  ('dcgan', 28, 1, None, 'spectral', {}, 'ab84e881421dccb2'),
  ('dcgan', 28, 1, None, 'batch', {}, 'ee1f87608cf4ec4d'),
  ('dcgan', 28, 1, None, 'spectral', {'num_classes': 10}, 'fb86ceb56a87a9db'),
  ('dcgan', 28, 1, None, 'batch', {'num_classes': 10}, '75a1b86b47386a6b'),
  ('dcgan', 28, 1, None, 'spectral', 'acgan', 'd293b120601e7b85'),
  ('dcgan', 28, 1, None, 'batch', 'acgan', '8ce3e0340a133f39'),
  ('dcgan', 32, 3, None, 'spectral', {}, '1111745472a3764f'),
  ('dcgan', 32, 3, None, 'batch', {}, '340bea914333c4ee'),
  ('dcgan', 32, 3, None, 'spectral', {'num_classes': 10}, '2a98ff228c0a23eb'),
  ('dcgan', 32, 3, None, 'batch', {'num_classes': 10}, '111095b2c49dc011'),
  ('dcgan', 32, 3, None, 'spectral', 'acgan', 'f3873f409e36bf83'),
  ('dcgan', 32, 3, None, 'batch', 'acgan', '172aa75094eafb8e'),
  ('dcgan', 64, 3, 16, 'spectral', {}, '6748b64d3043fa56'),
  ('dcgan', 64, 3, 16, 'batch', {}, '65f0478a8960839c'),
  ('dcgan', 64, 3, 16, 'spectral', {'num_classes': 10}, '8aeac554070c3648'),
  ('dcgan', 64, 3, 16, 'batch', {'num_classes': 10}, '686f79fdd8dea00f'),
  ('dcgan', 64, 3, 16, 'spectral', 'acgan', 'f62d3a5038f72762'),
  ('dcgan', 64, 3, 16, 'batch', 'acgan', '61dd771afb17a6d4'),
]
_ACGAN_SHARED = {'num_classes': 10, 'd_conditioning': 'acgan', 'shared_embedding': 32}


def _tree(variables):
  return sorted(
    ('/'.join(str(getattr(k, 'key', k)) for k in path), list(leaf.shape))
    for path, leaf in jax.tree_util.tree_flatten_with_path(variables)[0]
  )


@pytest.mark.parametrize(
  'name,size,channels,width,norm,cond,digest',
  SNAPSHOT,
  ids=[f'{c[0]}-{c[1]}-{i}' for i, c in enumerate(SNAPSHOT)],
)
def test_variable_trees_are_unchanged(name, size, channels, width, norm, cond, digest):
  cond = _ACGAN_SHARED if cond == 'acgan' else cond
  kwargs = dict(cond, **({'d_norm': norm} if norm else {}))
  g, d = make_models(name, image_shape=(size, size, channels), width=width, latent_dim=16, **kwargs)
  gv, dv, _, _ = _abstract(g, d, _labels(cond), latent=16)
  trees = {'g': _tree(gv), 'd': _tree(dv)}
  got = hashlib.sha256(json.dumps(trees, sort_keys=True).encode()).hexdigest()[:16]
  assert got == digest, json.dumps(trees)


# ---- unsupported sizes ------------------------------------------------------------------------


@pytest.mark.parametrize('name', list(MODULES))
def test_unsupported_size_names_the_sizes_and_the_fix(name):
  sizes = ', '.join(map(str, MODULES[name].SIZES))
  with pytest.raises(ValueError, match=f'{name} supports image sizes {sizes}; got 48') as e:
    make_models(name, image_shape=(48, 48, 3))
  assert 'config.data.resolution' in str(e.value)
  assert 'pad them up to 64 (config.data.pad_to)' in str(e.value)
  with pytest.raises(ValueError, match='config.data.resolution') as e:
    make_models(name, image_shape=(512, 512, 3))
  assert 'pad_to' not in str(e.value)  # nothing to pad up to
  # The modules check too: D on images of an unsupported size, G asked for one.
  g, d = _make(name, 64)
  with pytest.raises(ValueError, match=sizes):
    jax.eval_shape(lambda: d.init(_key(0), jnp.zeros((1, 48, 48, 3)), train=False))
  with pytest.raises(ValueError, match=sizes):
    g.clone(image_size=96).init(_key(0), jnp.zeros((1, LATENT)), train=False)


def test_r3gan_per_stage_values_count_the_stages():
  with pytest.raises(ValueError, match=r'5 of them \(stages at \(4, 8, 16, 32, 64\) pixels\)'):
    make_models('r3gan', image_shape=(64, 64, 3), widths=(8, 8, 8, 8))
  with pytest.raises(ValueError, match='7 of them'):
    make_models('r3gan', image_shape=(256, 256, 3), blocks=(1,) * 6)
  # A module built for 32 px (its per-stage defaults) refuses 64 px images.
  d = r3gan.R3GANDiscriminator(conv='xla')
  with pytest.raises(ValueError, match='5 stages .* one widths value per stage'):
    jax.eval_shape(lambda: d.init(_key(0), jnp.zeros((1, 64, 64, 3))))


# ---- the benchmark workloads at these sizes ----------------------------------------------------


def test_size_workloads(capsys):
  sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
  from benchmarks import run
  from benchmarks import workloads as wl
  from jaxgan.config import validate

  for model in ('resnet', 'r3gan'):
    for size in (64, 128):
      w = wl.get(f'{model}-{size}')
      validate(w.config)
      assert w.image_shape == (size, size, 3) and not w.torch_reference
      assert (w.config.model.name, w.config.data.resolution) == (model, size)
      assert wl.Workload.from_dict(json.loads(json.dumps(w.tiny().to_dict()))) == w.tiny()
  g_sizes, d_sizes = wl.param_sizes(wl.get('r3gan-64'))
  assert sum(g_sizes) == 160_992 and sum(d_sizes) == 156_960  # DEFAULT_WIDTHS[64], 1 block
  with pytest.raises(SystemExit) as exit_info:  # no PyTorch reference: --frameworks jax
    run.main(['--workloads', 'r3gan-64', '--out', ''])
  assert exit_info.value.code == 2
  assert (
    'r3gan-64: no PyTorch reference (jaxgan only); pass --frameworks jax' in capsys.readouterr().err
  )
