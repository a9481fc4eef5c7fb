"""benchmarks/: the workloads build and run through jaxgan's builder, jaxgan agrees with the PyTorch
reference, and the runner and the ceiling write their JSON and Markdown. No timing assertions.

The PyTorch cross-checks compare jaxgan with values that `benchmarks/make_torch_references.py`
computed with PyTorch and stored in tests/reference/torch_reference.json, so they run without
torch; where torch is installed, one more test checks that the script still writes those values.
"""

import json
import math
import statistics
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
  sys.path.insert(0, str(ROOT))

from benchmarks import make_torch_references as mtr  # noqa: E402
from benchmarks import workloads as wl  # noqa: E402
from jaxgan.run.build import build_gan  # noqa: E402

NAMES = list(wl.WORKLOADS)
REFERENCE = mtr.load()
STALE = 'stale reference: rerun `python benchmarks/make_torch_references.py` with torch installed'


def _tiny(name, n_critic=2):
  # n_critic 2 keeps both code paths (an earlier and the last critic update) at the least work.
  w = wl.get(name).tiny()
  return w.replace({'loss.n_critic': min(w.config.loss.n_critic, n_critic)})


# --- the workloads ---------------------------------------------------------------------------


def test_workloads_are_valid_run_configs():
  from jaxgan.config import validate

  for w in [*wl.WORKLOADS.values(), *wl.sweep_workloads()]:
    validate(w.config)
  w = wl.get('W2')
  assert (w.config.model.name, w.config.model.d_norm, w.config.loss.name) == (
    'dcgan',
    'batch',
    'non_saturating',
  )
  # Derived workloads are copies: the registry's configs do not change.
  tiny = w.tiny().with_conv('xla')
  assert (tiny.config.data.batch_size, tiny.conv(), tiny.name) == (4, 'xla', 'W2-tiny')
  assert (w.config.data.batch_size, w.conv()) == (64, 'auto')
  assert wl.Workload.from_dict(json.loads(json.dumps(tiny.to_dict()))) == tiny
  with pytest.raises(ValueError, match='unknown workload'):
    wl.get('W9')


@pytest.mark.parametrize('name', ['mnist', 'stacked_mnist'])
def test_critic_workloads_mirror_their_configs(name):
  # The DCGAN and projected workloads are the experiment configs' model and update.
  import importlib.util

  prefix = 'mnist' if name == 'mnist' else 'stacked'
  for kind in ('dcgan', 'projected'):
    path = ROOT / 'experiments' / 'configs' / f'{name}_{kind}.py'
    spec = importlib.util.spec_from_file_location(f'_{name}_{kind}', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    want, got = module.get_config(), wl.get(f'{prefix}-{kind}').config
    for section in ('loss', 'augment', 'optim'):
      assert got[section].to_dict() == want[section].to_dict(), (kind, section)
    model = want.model.to_dict()
    if kind == 'projected':  # the one difference: a random backbone, of the same cost
      model['kwargs']['pretrained'] = False
    assert got.model.to_dict() == model, kind
    for field in ('name', 'pad_to', 'batch_size'):
      assert got.data[field] == want.data[field], (kind, field)


@pytest.mark.full
def test_jax_workload_runs_and_counts_the_plain_formulation():
  # One workload through the loop's builder end to end (every workload's architecture is checked
  # against the reference below; several critic updates are covered by tests/test_train.py), with
  # XLA's fast-compile options to keep the compile short.
  w = _tiny('W2', n_critic=1).with_conv('xla')
  b = wl.build_jax(w, compiler_options=wl.FAST_COMPILE)
  step, state = b['step'], b['state']
  assert b['batch'].shape == (4, 32, 32, 1)
  for _ in range(2):
    state, metrics = step(state, b['batch'], b['key'])
  assert int(state.step) == 2
  assert int(state.skipped) == 0
  for k, v in metrics.items():
    assert np.isfinite(float(v)), k
  # fast_conv does lax's arithmetic: the step with conv='xla' lowers to the same count as the
  # plain formulation. (XLA's cost analysis does not see into custom calls, so it undercounts a
  # conv='onednn' step: the reason model_flops lowers the plain formulation.)
  flops = wl.model_flops(w, b['state'], b['batch'], b['key'])
  fast = wl._flops(step.lower(b['state'], b['batch'], b['key']).cost_analysis())
  np.testing.assert_allclose(flops, fast, rtol=1e-3)
  # At least G's forward: the first transposed conv (4x4 -> 8x8, 16 -> 8 channels) of 4 latents,
  # each output pixel summing 4 of the 16 taps.
  assert flops > 2 * 4 * (8 * 8 * 4 * 16 * 8)


def test_w8_mirrors_mnist_cdcgan():
  # W8 is experiments/configs/mnist_cdcgan.py's model and update; W8u the same unconditional.
  import importlib.util

  path = ROOT / 'experiments' / 'configs' / 'mnist_cdcgan.py'
  spec = importlib.util.spec_from_file_location('_mnist_cdcgan', path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  want = module.get_config()
  w8, w8u = wl.get('W8').config, wl.get('W8u').config
  for section in ('data', 'model', 'loss', 'augment', 'optim'):
    assert w8[section].to_dict() == want[section].to_dict(), section
  size = want.data.pad_to or 28  # MNIST's own size unless padded
  assert wl.get('W8').image_shape == wl.get('W8u').image_shape == (size, size, 1)
  assert want.model.shared_embedding > 0  # BigGAN's shared class embedding, as the config's
  unconditional = {
    'num_classes': 0,
    'g_conditioning': None,
    'd_conditioning': None,
    'shared_embedding': 0,
  }
  assert w8u.model.to_dict() == {**want.model.to_dict(), **unconditional}
  for section in ('data', 'loss', 'augment', 'optim'):
    assert w8u[section].to_dict() == want[section].to_dict(), section


@pytest.mark.full
def test_conditional_workload_lowers():
  # W8's labelled batches, {'image', 'label'} sharded alike, through the loop's builder and step
  # (lowered on the state's shapes, not initialised or compiled: the conditional step's
  # arithmetic is tests/test_train.py's).
  from jaxgan.step import sharding

  w = _tiny('W8').with_conv('xla')
  mesh = sharding.make_mesh()
  batch = wl.make_batch(w, jax.random.PRNGKey(0), mesh)
  assert batch['image'].shape == (4, 28, 28, 1) and batch['label'].dtype == jnp.int32
  assert batch['label'].shape == (4,) and 0 <= int(batch['label'].min())
  assert int(batch['label'].max()) < 10
  assert batch['label'].sharding == batch['image'].sharding
  gan, step = wl._jit_step(w, mesh, wl.FAST_COMPILE)
  state = jax.eval_shape(gan.init, jax.random.PRNGKey(0), batch['image'])
  new_state, metrics = step.lower(state, batch, jax.random.PRNGKey(1)).out_info
  assert jax.tree.map(lambda a: a.shape, new_state) == jax.tree.map(lambda a: a.shape, state)
  assert {'d_loss', 'g_loss'} <= set(metrics)


def test_sweep_covers_every_loss():
  from jaxgan.losses import LOSSES

  sweep = wl.sweep_workloads()
  assert {(w.config.loss.name, w.config.loss.penalty) for w in sweep} == {
    (name, p) for name in LOSSES for p in (None, 'wgan_gp')
  }
  assert all(wl.get(w.name) == w for w in sweep)  # every name the README lists can be run


# --- jaxgan against the stored PyTorch values ------------------------------------------------


@pytest.mark.parametrize('scores', ['moderate', 'large'])
def test_losses_match_torch(scores):
  from jaxgan.losses import LOSSES

  ref = REFERENCE['losses']
  real = np.asarray(ref['scores'][scores]['real'], np.float32)
  fake = np.asarray(ref['scores'][scores]['fake'], np.float32)
  values = ref['values'][scores]
  assert set(values) == set(LOSSES), STALE
  for name, loss in LOSSES.items():
    np.testing.assert_allclose(
      float(loss.d(real, fake)), values[name]['d'], rtol=1e-5, atol=1e-6, err_msg=name
    )
    np.testing.assert_allclose(
      float(loss.g(real, fake)), values[name]['g'], rtol=1e-5, atol=1e-6, err_msg=name
    )


def test_g_losses_that_read_real_scores_match_torch():
  # The reference computes real scores in the G update exactly for these losses.
  from jaxgan.losses import LOSSES

  real = np.asarray(REFERENCE['losses']['scores']['moderate']['real'], np.float32)
  fake = np.asarray(REFERENCE['losses']['scores']['moderate']['fake'], np.float32)
  depends = {
    name
    for name, loss in LOSSES.items()
    if float(loss.g(real, fake)) != float(loss.g(real + 1.0, fake))
  }
  assert depends == set(REFERENCE['losses']['g_needs_real'])


def test_penalties_match_torch():
  from jaxgan import penalties

  ref = REFERENCE['penalties']
  w1, w2 = (np.asarray(ref['critic'][k], np.float32) for k in ('w1', 'w2'))
  real, fake = np.asarray(ref['real'], np.float32), np.asarray(ref['fake'], np.float32)
  critic = lambda x: jnp.tanh(x @ w1) @ w2
  key = jax.random.PRNGKey(0)
  values = ref['values']
  for name in ('r1', 'r2'):
    np.testing.assert_allclose(
      float(penalties.get(name)(critic, real, fake, key)), values[name], rtol=1e-5, err_msg=name
    )
  # WGAN-GP and -LP draw their interpolation; at real == fake it is the identity.
  for name, one_sided in (('wgan_gp_at_real', False), ('wgan_lp_at_real', True)):
    got = float(penalties.gradient_penalty(critic, real, real, key, one_sided=one_sided))
    np.testing.assert_allclose(got, values[name], rtol=1e-5, atol=1e-7, err_msg=name)
  np.testing.assert_allclose(
    penalties.squared_gradient_norms(critic, real), ref['squared_grad_norms_at_real'], rtol=1e-5
  )


def _ref_critic():
  ref = REFERENCE['penalties']
  w1, w2 = (np.asarray(ref['critic'][k], np.float32) for k in ('w1', 'w2'))
  real, fake = np.asarray(ref['real'], np.float32), np.asarray(ref['fake'], np.float32)
  return (lambda x: jnp.tanh(x @ w1) @ w2), real, fake


def test_r1_plus_r2_matches_torch():
  # W5's penalties as jaxgan's step weighs them (R3GAN: R1 + R2, each gamma / 2).
  from jaxgan.step import regularization as reg

  ref = REFERENCE['recipes']['r1_r2']
  weights = wl.get('W5').config.loss.penalties.to_dict()
  assert weights == ref['weights'], STALE
  critic, real, fake = _ref_critic()
  values, total = reg.Penalties(weights)(critic, real, fake, jax.random.PRNGKey(0), 0)
  np.testing.assert_allclose(float(total), ref['total'], rtol=1e-5)
  assert set(values) == {'r1', 'r2'}


def test_lazy_r1_matches_torch():
  # W6's lazy R1 against the reference's Python `if`, update by update: the step computes the
  # penalties (weights x k) on the due updates only (its lax.cond: tests/test_recipes.py).
  from jaxgan.step import regularization as reg

  ref = REFERENCE['recipes']['lazy_r1']
  c = wl.get('W6').config.loss
  assert (c.penalties.to_dict(), c.penalty_every) == (ref['weights'], ref['every']), STALE
  pens = reg.Penalties(c.penalties.to_dict(), c.penalty_every)
  critic, real, fake = _ref_critic()
  due_total = float(pens(critic, real, fake, jax.random.PRNGKey(0), 0)[1])
  for update, want in ref['totals'].items():
    got = due_total if int(update) % pens.every == 0 else 0.0
    np.testing.assert_allclose(got, want, rtol=1e-5, err_msg=update)
  assert ref['totals']['1'] == 0.0 and ref['totals']['0'] > 0


# --- the approximate R1 and R2 (APT, Lin et al. 2025): W5-approx against W5 and W5-none -------


def test_w5_variants_differ_from_w5_by_their_penalties_alone():
  from jaxgan import penalties

  # The copy the PyTorch worker reads (workloads.py loads no JAX) is jaxgan's sigma.
  assert wl.APPROX_SIGMA == penalties.APPROX_SIGMA
  w5 = wl.get('W5').config
  strength = 0.05 / penalties.APPROX_SIGMA**2  # approx_r1 ~ sigma^2 R1: W5's strength
  want = {'W5-approx': {'approx_r1': strength, 'approx_r2': strength}, 'W5-none': {}}
  for name, weights in want.items():
    c = wl.get(name).config
    assert c.loss.penalties.to_dict() == pytest.approx(weights, rel=1e-9), name
    assert wl.get(name).image_shape == wl.get('W5').image_shape
    for section in ('data', 'model', 'augment', 'optim'):
      assert c[section].to_dict() == w5[section].to_dict(), (name, section)
    same = lambda lo: {k: v for k, v in lo.to_dict().items() if k != 'penalties'}
    assert same(c.loss) == same(w5.loss), name
  # Taken where R1 and R2 are: at the reals and at the fakes.
  assert (penalties.taken_at('approx_r1'), penalties.taken_at('approx_r2')) == ('reals', 'fakes')


def _noisy_inputs(name, critic, real, fake, key):
  """jaxgan's penalty `name` and the noisy copy x + sigma eps of its inputs that its critic saw."""
  from jaxgan import penalties

  seen = []

  def recording(x):
    jax.debug.callback(lambda v: seen.append(np.array(v, np.float32)), x)
    return critic(x)

  value = float(penalties.get(name)(recording, real, fake, key))
  jax.effects_barrier()
  at = real if name == 'approx_r1' else fake
  rows = np.concatenate([v.reshape(-1, *at.shape[1:]) for v in seen])
  clean = (rows[:, None] == at[None]).reshape(len(rows), len(at), -1).all(-1).any(1)
  noisy = rows[~clean]
  assert noisy.shape == at.shape, f'{name}: the critic saw {[v.shape for v in seen]}'
  return value, at, noisy


def test_approx_penalties_match_torch():
  # The reference's approximate R1 / R2 on fixed noise (stored) is mean (D(x) - D(x + s eps))^2,
  # written below; jaxgan's is the same formula on the noise it draws, read back from its critic.
  from jaxgan import penalties

  ref = REFERENCE['penalties']['approx']
  assert ref['sigma'] == penalties.APPROX_SIGMA, STALE
  critic, real, fake = _ref_critic()
  sigma = ref['sigma']
  formula = lambda x, noisy: float(jnp.mean((critic(x) - critic(noisy)) ** 2))
  for name, x in (('approx_r1', real), ('approx_r2', fake)):
    eps = np.asarray(ref['noise_' + ('real' if name == 'approx_r1' else 'fake')], np.float32)
    np.testing.assert_allclose(formula(x, x + sigma * eps), ref[name], rtol=1e-4, err_msg=name)
    for seed in range(3):
      value, at, noisy = _noisy_inputs(name, critic, real, fake, jax.random.PRNGKey(seed))
      np.testing.assert_array_equal(at, x)
      np.testing.assert_allclose(value, formula(x, noisy), rtol=1e-5, err_msg=name)
      # Each example moved by sigma times a standard normal draw (24 of them: a loose check).
      assert 0.4 < float(np.std((noisy - x) / sigma)) < 2.0, name


def test_approx_r1_is_sigma_squared_r1_for_a_linear_critic():
  # Why W5-approx weighs 0.05 / sigma^2: for D(x) = <w, x>, D(x) - D(x + s eps) = -s <w, eps>, of
  # mean square s^2 ||w||^2 = s^2 R1. 4096 examples: the mean is within 2.2% (one std) of it.
  from jaxgan import penalties

  w = jnp.asarray(REFERENCE['penalties']['critic']['w1'], jnp.float32)[:, 0]
  critic = lambda x: x @ w
  x = jnp.asarray(np.random.default_rng(0).uniform(-1, 1, (4096, w.shape[0])), jnp.float32)
  r1 = float(penalties.get('r1')(critic, x, x, jax.random.PRNGKey(0)))
  np.testing.assert_allclose(r1, float(w @ w), rtol=1e-5)
  weights = wl.get('W5-approx').config.loss.penalties
  for name in ('approx_r1', 'approx_r2'):
    approx = float(penalties.get(name)(critic, x, x, jax.random.PRNGKey(1)))
    np.testing.assert_allclose(approx, penalties.APPROX_SIGMA**2 * r1, rtol=0.1, err_msg=name)
    np.testing.assert_allclose(weights[name] * approx, 0.05 * r1, rtol=0.1, err_msg=name)


@pytest.mark.full
def test_ada_ops_match_torch():
  # The reference's ADA does jaxgan's work: the same matrices from the same parameters, the same
  # warps (F.grid_sample, bilinear, reflection; ADA's filtered execution with its own margin)
  # and the same colour transform.
  from jaxgan.augment import transforms as T

  ref = REFERENCE['ada']
  p = {k: np.asarray(v, np.float32) for k, v in ref['params'].items()}
  n = len(p['flip'])
  g = (
    T.scale2d(p['flip'], 1.0)
    @ T.rotate90_2d(p['quarter_turns'].astype(np.int32))
    @ T.rotate2d(p['theta'])
    @ T.scale2d(1 / p['aniso'], p['aniso'])
    @ T.translate2d(p['shift'][:, 0], p['shift'][:, 1])
  )
  b, s = p['brightness'], p['contrast']
  c = (
    T.saturate3d(p['saturation'])
    @ T.hue_rotate3d(p['hue'])
    @ T.luma_flip3d(p['lumaflip'])
    @ T.scale3d(s, s, s)
    @ T.translate3d(b, b, b)
  )
  np.testing.assert_allclose(np.ravel(g), ref['geometry'], rtol=1e-6, atol=1e-6)
  np.testing.assert_allclose(np.ravel(c), ref['colour'], rtol=1e-6, atol=1e-6)
  shape = tuple(ref['image_shape'])
  x = np.asarray(ref['images'], np.float32).reshape(shape)
  g_ref = np.asarray(ref['geometry'], np.float32).reshape(n, 3, 3)
  c_ref = np.asarray(ref['colour'], np.float32).reshape(n, 4, 4)
  np.testing.assert_allclose(np.ravel(T.warp(x, g_ref)), ref['warped'], atol=2e-5)
  np.testing.assert_allclose(np.ravel(T.filtered_warp(x, g_ref)), ref['filtered'], atol=2e-5)
  np.testing.assert_allclose(np.ravel(T.apply_colour(x, c_ref)), ref['coloured_rgb'], atol=1e-5)
  grey = T.apply_colour(x[..., :1], c_ref)
  np.testing.assert_allclose(np.ravel(grey), ref['coloured_grey'], atol=1e-5)


@pytest.mark.parametrize('name', [n + t for n in NAMES for t in ('', '-tiny')])
def test_architecture_matches_torch(name):
  ref = REFERENCE['workloads'][name]
  w = wl.get(name.removesuffix('-tiny'))
  w = w.tiny() if name.endswith('-tiny') else w
  assert mtr.fingerprint(w) == ref['config'] and list(w.image_shape) == ref['image_shape'], STALE
  # The same layers: parameter tensors of the same sizes, in G and in D.
  g_sizes, d_sizes = wl.param_sizes(w)
  assert g_sizes == ref['g_param_sizes']
  assert d_sizes == ref['d_param_sizes']
  g, d = wl._variables(w)
  gan = build_gan(w.config, w.image_shape)
  z = jax.ShapeDtypeStruct((2, w.config.model.latent_dim), jnp.float32)
  kw = wl.label_kwargs(w, 2)  # the reference's labels: 0, 1
  fake = jax.eval_shape(lambda v, z: gan.generator.apply(v, z, train=False, **kw), g, z)
  scores = jax.eval_shape(lambda v, x: gan.discriminator.apply(v, x, train=False, **kw), d, fake)
  assert list(fake.shape) == ref['g_output_shape']
  assert list(scores.shape) == ref['d_output_shape']


def _torch_to_flax(weights: dict, flax_params: dict, model: str, side: str) -> dict:
  """PyTorch's tensors (named as its modules name them) in jaxgan's parameter tree.

  Modules are matched by kind and order (the k-th Linear is Dense_k, the k-th convolution Conv_k
  or ConvTranspose_k, the k-th norm BatchNorm_k or LayerNorm_k), and layouts converted: Linear
  (out, in) -> (in, out); Conv2d OIHW -> HWIO; ConvTranspose2d (in, out, H, W) -> HWIO flipped in
  space (PyTorch's transposed convolution is the gradient of a convolution, Flax's a convolution
  of the dilated input); features flattened or reshaped in CHW order -> HWC. Conditional modules:
  the reference's `CondBatchNorm2d` i is ConditionalBatchNorm_i, its per-layer embeddings
  ('norms.i.delta', 'norms.i.bias') the 'gain' and 'bias' tables, or with a shared embedding
  ('shared', G's SharedEmbed) its bias-free Linear layers ('norms.i.gain', 'norms.i.bias') the
  'gain' and 'bias' Dense kernels; the projection 'embed' is ProjectionEmbed (its columns the
  flattened features, CHW -> HWC).
  """
  modules = {}
  for name, a in weights.items():
    module, field = name.rsplit('.', 1)
    modules.setdefault(module, {})[field] = a
  shared = 'shared' in modules
  norm = 'BatchNorm' if any(k.startswith('BatchNorm') for k in flax_params) else 'LayerNorm'
  counts, out = {}, {}
  convs = [m['weight'] for m in modules.values() if m['weight'].ndim == 4]

  def chw_to_hwc(kernel, c):  # rows of `kernel` indexed by a flattened (c, s, s) map
    s = math.isqrt(kernel.shape[0] // c)
    return kernel.reshape(c, s, s, -1).transpose(1, 2, 0, 3).reshape(kernel.shape)

  for module, m in modules.items():
    w = m['weight']
    parts = module.split('.')
    if module == 'shared':  # G's shared class embedding: one row per class in both
      out['SharedEmbed'] = {'embedding': jnp.asarray(w)}
      continue
    if parts[0] == 'norms':  # conditional BatchNorm: per-class gain offsets and biases
      cbn = out.setdefault(f'ConditionalBatchNorm_{parts[1]}', {})
      field = {'delta': 'gain', 'gain': 'gain', 'bias': 'bias'}[parts[2]]
      # A shared embedding's Linear (C, E) is a Dense kernel (E, C); a per-layer table (K, C).
      cbn[field] = {'kernel': jnp.asarray(w.T)} if shared else {'embedding': jnp.asarray(w)}
      continue
    if module == 'embed':  # the projection's class embeddings, one row per class
      embedding = chw_to_hwc(w.T, convs[-1].shape[0]).T
      out['ProjectionEmbed'] = {'embedding': jnp.asarray(np.ascontiguousarray(embedding))}
      continue
    if w.ndim == 2:
      kind, kernel = 'Dense', w.T
      if model == 'dcgan' and side == 'G':  # the first layer's output is reshaped to (b, b, f)
        f = convs[0].shape[0]
        b = math.isqrt(kernel.shape[1] // f)
        kernel = kernel.reshape(-1, f, b, b).transpose(0, 2, 3, 1).reshape(kernel.shape)
      elif model == 'dcgan' and side == 'D':  # the last layer reads the flattened (h, w, c) map
        kernel = chw_to_hwc(kernel, convs[-1].shape[0])
      fields = {'kernel': kernel}
    elif w.ndim == 4 and side == 'G':
      kind, fields = 'ConvTranspose', {'kernel': w.transpose(2, 3, 0, 1)[::-1, ::-1]}
    elif w.ndim == 4:
      kind, fields = 'Conv', {'kernel': w.transpose(2, 3, 1, 0)}
    else:
      kind, fields = norm, {'scale': w}
    if 'bias' in m:
      fields['bias'] = m['bias']
    i = counts[kind] = counts.get(kind, -1) + 1
    out[f'{kind}_{i}'] = {k: jnp.asarray(np.ascontiguousarray(v)) for k, v in fields.items()}
  assert jax.tree.map(jnp.shape, out) == jax.tree.map(jnp.shape, flax_params)
  return out


@pytest.mark.parametrize('key', list(REFERENCE['forward']))
def test_forward_matches_torch(key):
  # The same function, not just the same shapes: G and D on the same weights and inputs.
  ref = REFERENCE['forward'][key]
  w = mtr.forward_workload(ref['workload'], ref['overrides']).with_conv('lax')
  gan = build_gan(w.config, w.image_shape)
  module = gan.generator if ref['side'] == 'G' else gan.discriminator
  shape = (
    (mtr.FORWARD_BATCH, w.config.model.latent_dim)
    if ref['side'] == 'G'
    else (mtr.FORWARD_BATCH, *w.image_shape)
  )
  x = mtr.uniform(ref['input_seed'], shape)
  kw = {} if ref['labels'] is None else {'labels': jnp.asarray(ref['labels'], jnp.int32)}
  # Shapes only (no initialiser runs): the parameters come from the reference, and the running
  # statistics are not read in train mode.
  shapes = jax.eval_shape(lambda x: module.init(jax.random.PRNGKey(0), x, train=False, **kw), x)
  variables = jax.tree.map(lambda a: jnp.zeros(a.shape, a.dtype), shapes)
  weights = mtr.forward_weights(ref['param_shapes'], ref['weight_seed'])
  params = _torch_to_flax(weights, variables['params'], w.config.model.name, ref['side'])
  # train=True: BatchNorm normalises by the batch's statistics, as the reference's train mode.
  apply = jax.jit(lambda v, x: module.apply(v, x, train=True, mutable=['batch_stats'], **kw)[0])
  y = apply({**variables, 'params': params}, x)
  assert list(y.shape) == ref['output_shape']
  np.testing.assert_allclose(np.ravel(y), ref['output'], rtol=1e-4, atol=1e-5)


# --- the PyTorch side (only where torch is installed) ----------------------------------------


def _assert_close_tree(got, want, path=''):
  if isinstance(want, dict):
    assert isinstance(got, dict) and set(got) == set(want), f'{path}: {STALE}'
    for k in want:
      _assert_close_tree(got[k], want[k], f'{path}/{k}')
  elif isinstance(want, list) and want and isinstance(want[0], float):
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6, err_msg=f'{path}: {STALE}')
  elif isinstance(want, float):
    assert got == pytest.approx(want, rel=1e-5, abs=1e-6), f'{path}: {STALE}'
  else:
    assert got == want, f'{path}: {STALE}'


def test_reference_script_writes_the_stored_values(tmp_path):
  pytest.importorskip('torch')
  out = mtr.main(['--out', str(tmp_path / 'ref.json')])
  got = mtr.load(out)
  del got['torch_version']  # values agree across versions to the tolerances, not bit for bit
  _assert_close_tree(got, {k: v for k, v in REFERENCE.items() if k != 'torch_version'})


@pytest.mark.full
@pytest.mark.parametrize('name', NAMES)
def test_torch_workload_runs(name):
  torch = pytest.importorskip('torch')
  from benchmarks import torch_reference as tr

  threads = torch.get_num_threads()
  torch.set_num_threads(1)  # tiny ops on a shared machine: OpenMP's threads only get in the way
  try:
    gan = tr.build_torch(_tiny(name))
    before = [p.detach().clone() for p in gan.G.parameters()]
    for _ in range(2):
      d_loss, g_loss = gan.step()
  finally:
    torch.set_num_threads(threads)
  assert math.isfinite(float(d_loss)) and math.isfinite(float(g_loss))
  grads = [p.grad for p in gan.G.parameters() if p.grad is not None]
  assert grads and all(torch.isfinite(g).all() for g in grads)
  assert any(not torch.equal(a, p) for a, p in zip(before, gan.G.parameters(), strict=True))


def test_torch_approx_penalties():
  # The reference's approximate R1 / R2 on jaxgan's own noise gives jaxgan's value; the critic
  # update reuses the loss's scores (one more forward pass per penalty, no create_graph); and for
  # a linear critic it is sigma^2 R1 in expectation.
  torch = pytest.importorskip('torch')
  from benchmarks import torch_reference as tr

  critic, real, fake = _ref_critic()
  ref = REFERENCE['penalties']['critic']
  w1, w2 = (torch.tensor(ref[k], requires_grad=True) for k in ('w1', 'w2'))
  calls = []

  def torch_critic(x):
    calls.append(x.shape[0])
    return torch.tanh(x @ w1) @ w2

  for name in ('approx_r1', 'approx_r2'):
    value, x, noisy = _noisy_inputs(name, critic, real, fake, jax.random.PRNGKey(3))
    eps = torch.from_numpy((noisy - x) / tr.APPROX_SIGMA)
    got = tr.approx_squared_differences(torch_critic, torch.from_numpy(x), noise=eps)
    np.testing.assert_allclose(float(got.detach()), value, rtol=1e-4, err_msg=name)
  r, f = torch.from_numpy(real), torch.from_numpy(fake)
  scores = (torch_critic(r), torch_critic(f))
  calls.clear()
  weights = tr.penalty_weights(wl.get('W5-approx'))
  total = tr.penalty_loss(torch_critic, r, f, weights, scores=scores)
  assert calls == [4, 4] and total.requires_grad  # the noisy reals, the noisy fakes
  calls.clear()
  tr.penalty_loss(torch_critic, r, f, weights)  # without the scores: D(x) as well
  assert calls == [4, 4, 4, 4]
  torch.manual_seed(0)
  wv = w1[:, 0]
  x = torch.rand(4096, wv.shape[0]) * 2 - 1
  approx = float(tr.approx_squared_differences(lambda v: v @ wv, x).detach())
  np.testing.assert_allclose(approx, tr.APPROX_SIGMA**2 * float((wv @ wv).detach()), rtol=0.1)


def test_torch_conditional_layers():
  # The reference's conditional pieces against their definitions: conditional BatchNorm's gain
  # starts at exactly 1 (so at initialisation it is plain BatchNorm), a per-class gain and bias
  # afterwards; the projection discriminator adds <embed[y], phi(x)> to its unconditional score.
  torch = pytest.importorskip('torch')
  from benchmarks import torch_reference as tr

  torch.manual_seed(0)
  cbn = tr.CondBatchNorm2d(4, 3)
  x, y = torch.randn(6, 4, 3, 3), torch.tensor([0, 1, 2, 2, 1, 0])
  x_hat = torch.nn.functional.batch_norm(x, None, None, training=True, eps=1e-5)
  assert torch.equal(cbn.delta.weight, torch.zeros(3, 4))
  torch.testing.assert_close(cbn(x, y), x_hat)
  with torch.no_grad():
    cbn.delta.weight.uniform_(-0.5, 0.5)
    cbn.bias.weight.uniform_(-0.5, 0.5)
  gain, bias = 1 + cbn.delta.weight[y], cbn.bias.weight[y]
  torch.testing.assert_close(cbn(x, y), x_hat * gain[:, :, None, None] + bias[:, :, None, None])

  w = wl.get('W8').tiny().replace({'model.d_norm': 'none'})
  g, d = tr.make_models(w)
  assert isinstance(d, tr.ProjectionDCGANDiscriminator)
  images = g(torch.randn(3, w.config.model.latent_dim), torch.tensor([1, 2, 3]))
  assert images.shape == (3, 1, 28, 28)
  y = torch.tensor([7, 0, 3])
  phi = d.net(images).flatten(1)
  torch.testing.assert_close(
    d(images, y) - d.fc(phi)[:, 0], (d.embed.weight[y] * phi).sum(1), rtol=1e-4, atol=1e-5
  )
  for bad in ({'model.d_conditioning': 'acgan'}, {'model.shared_embedding': -1}):
    with pytest.raises(ValueError, match='PyTorch reference'):
      tr.make_models(wl.get('W8').tiny().replace(bad))


def test_torch_shared_embedding_cbn():
  # BigGAN's shared embedding (Brock et al. 2019), W8's G: each conditional BatchNorm computes
  # gain 1 + W_g e(y) and bias W_b e(y) from G's one class embedding e, with bias-free Linear
  # layers at jaxgan's Dense initialiser (LeCun normal truncated at 2 sigma), e of std 1/sqrt(E).
  torch = pytest.importorskip('torch')
  from benchmarks import torch_reference as tr

  torch.manual_seed(0)
  cbn = tr.CondBatchNorm2d(4, 3, embedding_dim=5)
  x, e = torch.randn(6, 4, 3, 3), torch.randn(6, 5)
  x_hat = torch.nn.functional.batch_norm(x, None, None, training=True, eps=1e-5)
  assert cbn.gain.bias is None and cbn.bias.bias is None
  gain, bias = 1 + e @ cbn.gain.weight.T, e @ cbn.bias.weight.T
  torch.testing.assert_close(cbn(x, e), x_hat * gain[:, :, None, None] + bias[:, :, None, None])
  torch.testing.assert_close(cbn(x, torch.zeros(6, 5)), x_hat)  # a zero embedding: plain BN

  w = wl.get('W8')
  g, _ = tr.make_models(w)
  assert (
    g.shared.weight.shape == (10, 128)
    and abs(float(g.shared.weight.detach().std()) * 128**0.5 - 1) < 0.1
  )
  for norm in g.norms:
    k = norm.gain.weight.detach()
    assert k.shape[1] == 128 and float(k.abs().max()) <= 2 / 0.8796 / 128**0.5 + 1e-6
    assert abs(float(k.std()) * 128**0.5 - 1) < 0.1  # variance 1 / fan_in, not DCGAN's 0.02


# --- the runner ------------------------------------------------------------------------------


@pytest.mark.full
def test_runner_writes_json_and_markdown(tmp_path, monkeypatch):
  from benchmarks import run

  monkeypatch.setenv(run.SMOKE_ENV, '1')  # fast compiles and a small matmul, in the workers too
  frameworks = 'jax,torch'
  try:
    import torch  # noqa: F401
  except ImportError:
    frameworks = 'jax'
  out = tmp_path / 'bench'
  start = time.monotonic()
  run.main(
    [
      '--workloads',
      'W1',
      '--tiny',
      '--reps',
      '2',
      '--rep_seconds',
      '0.01',
      '--warmup',
      '1',
      '--frameworks',
      frameworks,
      '--torch_threads',
      '1',
      '--out',
      str(out),
    ]
  )
  took = time.monotonic() - start
  data = json.loads(out.with_suffix('.json').read_text())
  (result,) = data['results']
  assert result['model_gflop_per_step'] > 0 and len(result['matmul_peaks']) == 2
  for fw in frameworks.split(','):
    r = result[fw]
    # Steps per second (not seconds per step): each rep's steps ran within this test's time.
    assert len(r['rates']) == 2 and r['steps_per_s'] == statistics.median(r['rates'])
    assert min(r['rates']) >= result['steps_per_rep'][fw] / took, (r, took)
    assert 0 < r['first_step_s'] < took
    assert 50 < r['rss_mb'] <= r['peak_rss_mb'] < 100_000  # MB of a Python process, not kB
  if frameworks == 'jax,torch':
    want = [a / b for a, b in zip(result['jax']['rates'], result['torch']['rates'], strict=True)]
    assert result['ratios'] == pytest.approx(want)
    assert result['ratio_jax_over_torch'] == statistics.median(result['ratios'])
  md = out.with_suffix('.md').read_text()
  assert 'W1-tiny' in md and 'load average' in md


def test_conditioning_summary_pairs_reps():
  # W8 against W8u: ratios are taken rep by rep (the pair timed within one rep), then the median.
  from benchmarks import conditioning

  rates = {
    'jax': {'W8': [9.0, 4.0, 8.0], 'W8u': [10.0, 5.0, 8.0]},
    'torch': {'W8': [3.0, 1.0, 2.0], 'W8u': [3.0, 2.0, 2.0]},
  }
  s = conditioning.summarize(rates)
  assert s['jax']['ratios'] == pytest.approx([0.9, 0.8, 1.0])
  assert s['jax']['conditional_over_unconditional'] == pytest.approx(0.9)
  assert (s['jax']['W8_steps_per_s'], s['torch']['W8u_steps_per_s']) == (8.0, 2.0)
  assert s['jax_over_torch'] == pytest.approx({'W8': 4.0, 'W8u': 10 / 3})
  meta = dict(command='c', date='d', host='h', cpus=2, versions='v')
  md = conditioning.markdown(dict(rates=rates, summary=s, load_avg_1min=[1, 2, 3]), meta, 1)
  assert '| jaxgan | 8 | 8 | 0.900 |' in md and 'PyTorch (1 thread)' in md


# --- the ceiling -----------------------------------------------------------------------------


def test_ceiling_finds_live_products_in_nested_jaxprs():
  from benchmarks import ceiling

  def f(a, b):
    # The second product is dead: XLA would not run it, so the ceiling must not time it.
    inner = jax.jit(lambda a, b: (a @ b, a.T @ b)[0])
    return jnp.tanh(inner(a, b)) @ b

  a = jnp.ones((8, 8))
  ops = ceiling.heavy_ops(ceiling.live_jaxpr(f, a, a))
  assert [ceiling.kind(e) for e in ops] == ['XLA dot', 'XLA dot']
  assert [ceiling.model_flops(e) for e in ops] == [2 * 8**3, 2 * 8**3]


@pytest.mark.full
def test_ceiling_writes_json_and_markdown(tmp_path, monkeypatch):
  from benchmarks import ceiling, run

  monkeypatch.setenv(run.SMOKE_ENV, '1')  # fast compiles and a small matmul
  out = tmp_path / 'ceiling'
  start = time.monotonic()
  ceiling.main(
    [
      '--workloads',
      'W1',
      '--tiny',
      '--step_seconds',
      '0.05',
      '--reps',
      '1',
      '--op_seconds',
      '0.005',
      '--out',
      str(out),
    ]
  )
  (result,) = json.loads(out.with_suffix('.json').read_text())
  dots = result['kinds']['XLA dot']
  # The MLP's products are most of its FLOPs: everything else is elementwise.
  model = result['model_gflop_per_step']
  assert 0.5 * model < dots['gflop'] <= model
  took = time.monotonic() - start
  # Milliseconds of one step and of its heavy operations alone, each within this test's time,
  # and the fractions of the matmul rate they stand for.
  assert 0 < result['step_ms'] < 1e3 * took and 0 < result['heavy_ms'] < 1e3 * took
  assert result['heavy_ms'] == pytest.approx(
    1e3 * sum(k['seconds'] for k in result['kinds'].values())
  )
  peak = result['matmul_gflops']
  assert result['achieved_fraction'] == pytest.approx(model / (result['step_ms'] / 1e3) / peak)
  assert result['ceiling_fraction'] == pytest.approx(model / (result['heavy_ms'] / 1e3) / peak)
  assert 'W1-tiny' in out.with_suffix('.md').read_text()


# (op, operands' shapes, strides, padding, the kind the ceiling names): padding that leaves taps
# out of the count, and a kernel gradient in each of oneDNN's two formulations (small 4x4 kernels
# on >= 16 channels run as a forward convolution, `jaxgan.onednn.kernel_transpose`).
_ONEDNN_CASES = {
  'conv': ((2, 9, 9, 16), (3, 3, 16, 7), (2, 2), ((2, 0), (1, 1)), 'oneDNN forward'),
  'input_transpose': ((2, 5, 5, 7), (3, 3, 16, 7), (2, 2), ((2, 0), (1, 1)), 'oneDNN input grad'),
  'kernel_transpose': ((2, 9, 9, 5), (2, 5, 5, 7), (2, 2), ((2, 0), (1, 1)), 'oneDNN kernel grad'),
  'kernel_transpose_as_forward': (
    (2, 8, 8, 16),
    (2, 4, 4, 8),
    (2, 2),
    ((1, 1), (1, 1)),
    'oneDNN kernel grad as forward',
  ),
}


@pytest.mark.parametrize('case', list(_ONEDNN_CASES))
def test_ceiling_counts_onednn_flops_like_xla(case):
  # XLA leaves a convolution's taps in the padding out of its count; so must the ceiling.
  from benchmarks import ceiling

  onednn = pytest.importorskip('jaxgan.onednn')
  if not onednn.available():
    pytest.skip(onednn.unavailable_reason())
  a_shape, b_shape, strides, padding, kind = _ONEDNN_CASES[case]
  a, b = jnp.ones(a_shape), jnp.ones(b_shape)
  lax_conv = lambda x, k: jax.lax.conv_general_dilated(
    x, k, strides, padding, dimension_numbers=('NHWC', 'HWIO', 'NHWC')
  )
  if case == 'conv':
    op = lambda x, k: onednn.conv(x, k, strides=strides, padding=padding)
    xla = lax_conv
  elif case == 'input_transpose':
    op = lambda dy, k: onednn.input_transpose(
      dy, k, strides=strides, padding=padding, in_spatial=(9, 9)
    )
    x0 = jnp.ones((2, 9, 9, 16))
    xla = lambda dy, k: jax.linear_transpose(lambda x: lax_conv(x, k), x0)(dy)[0]
  else:
    size = 3 if case == 'kernel_transpose' else 4
    k0 = jnp.ones((size, size, a_shape[3], b_shape[3]))
    op = lambda x, dy: onednn.kernel_transpose(
      x, dy, strides=strides, padding=padding, kernel_spatial=k0.shape[:2]
    )
    xla = lambda x, dy: jax.linear_transpose(lambda k: lax_conv(x, k), k0)(dy)[0]
  (eqn,) = ceiling.heavy_ops(ceiling.live_jaxpr(op, a, b))
  assert ceiling.kind(eqn) == kind
  np.testing.assert_allclose(op(a, b), xla(a, b), rtol=1e-5)  # the op the count is for
  want = wl._flops(jax.jit(xla).lower(a, b).cost_analysis())
  assert ceiling.model_flops(eqn) == pytest.approx(want, rel=1e-6)
  # The custom call runs alone too: seconds per call of an op on a few kB.
  assert 0 < ceiling.time_op(eqn, min_seconds=0.001, reps=1) < 1.0


# --- lazy regularisation: one program with lax.cond against two programs -----------------------


def test_lazy_variants_do_the_same_penalised_work():
  # The variants the script times (no compile here): 'two' is a program with the penalty at
  # k times its weight on every step and one without, 'every' the penalty at its weight.
  from benchmarks import lazy_regularization as lazy
  from jaxgan.config import validate

  w = wl.get('W6')
  variants = lazy.variant_workloads(w)
  assert list(variants) == list(lazy.VARIANTS)
  (cond,), (penalised, plain), (every,), (none,) = variants.values()
  assert cond is w
  loss = lambda v: (v.config.loss.penalties.to_dict(), v.config.loss.penalty_every)
  assert loss(penalised) == ({'r1': 5.0 * 16}, 1)
  assert loss(plain) == loss(none) == ({}, 1)
  assert loss(every) == ({'r1': 5.0}, 1)
  assert w.config.loss.penalty_every == 16  # the registry's config is unchanged
  for v in (penalised, plain, every, none):
    validate(v.config)
    assert v.config.model == w.config.model and v.config.optim == w.config.optim
  with pytest.raises(ValueError, match='penalty_every'):
    lazy.variant_workloads(wl.get('W2'))
