"""Smoke tests of benchmarks/: every workload runs a couple of steps at toy sizes in jaxgan and in
the PyTorch reference (the PyTorch half is skipped when torch is not installed), the reference's
losses and architectures match jaxgan's, and the runner writes its JSON and Markdown. No timing
assertions."""

import dataclasses
import json
import math
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
  sys.path.insert(0, str(ROOT))

from benchmarks import workloads as wl  # noqa: E402

NAMES = list(wl.WORKLOADS)


def _tiny(name, n_critic=2):
  # n_critic 2 keeps both code paths (an earlier and the last critic update) at the least work.
  w = wl.WORKLOADS[name].tiny()
  return dataclasses.replace(w, n_critic=min(w.n_critic, n_critic))


@pytest.fixture(autouse=True, scope='module')
def _one_torch_thread():
  # Tiny ops on a shared machine: OpenMP's spinning threads only get in each other's way.
  try:
    import torch
  except ImportError:
    yield
    return
  threads = torch.get_num_threads()
  torch.set_num_threads(1)
  yield
  torch.set_num_threads(threads)


@pytest.mark.parametrize('name', NAMES)
def test_jax_workload_runs(name):
  # Several critic updates (n_critic > 1) are covered by tests/test_train.py; n_critic 1 and
  # XLA's fast-compile options keep this test's compile time low.
  w = _tiny(name, n_critic=1)
  b = wl.build_jax(w, compiler_options=wl.FAST_COMPILE)
  step, state = b['step'], b['state']
  for _ in range(2):
    state, metrics = step(state, b['batch'], b['key'])
  assert int(state.step) == 2
  assert int(state.skipped) == 0
  for k, v in metrics.items():
    assert np.isfinite(float(v)), k


def test_model_flops_count_the_plain_formulation():
  # fast_conv does lax's arithmetic: the step with conv='xla' lowers to the same count. (XLA's
  # cost analysis does not see into custom calls, so it undercounts a conv='onednn' step: the
  # reason model_flops lowers the plain formulation.)
  w = dataclasses.replace(_tiny('W2'), conv='xla')
  b = wl.build_jax(w, compiler_options=wl.FAST_COMPILE)
  flops = wl.model_flops(w, b['state'], b['batch'], b['key'])
  fast = b['step'].lower(b['state'], b['batch'], b['key']).cost_analysis()['flops']
  np.testing.assert_allclose(flops, fast, rtol=1e-3)
  # At least G's forward: the first transposed conv (4x4 -> 8x8, 16 -> 8 channels) of 4 latents,
  # each output pixel summing 4 of the 16 taps.
  assert flops > 2 * 4 * (8 * 8 * 4 * 16 * 8)


def test_sweep_covers_every_loss():
  from jaxgan.losses import LOSSES
  sweep = wl.sweep_workloads()
  assert {(w.loss, w.penalty) for w in sweep} == {(l, p) for l in LOSSES for p in (None, 'wgan_gp')}
  assert all(wl.get(w.name) == w for w in sweep)  # every name the README lists can be run


# --- the PyTorch reference -------------------------------------------------------------------


@pytest.mark.parametrize('name', NAMES)
def test_torch_workload_runs_and_matches_jaxgan_architecture(name):
  torch = pytest.importorskip('torch')
  from benchmarks import torch_reference as tr
  w = _tiny(name)
  gan = tr.build_torch(w)
  for _ in range(2):
    d_loss, g_loss = gan.step()
  assert math.isfinite(float(d_loss)) and math.isfinite(float(g_loss))
  assert all(p.grad is None or torch.isfinite(p.grad).all() for p in gan.G.parameters())
  # Same architecture: the same number of parameters in G and in D.
  n_g = sum(p.numel() for p in gan.G.parameters())
  n_d = sum(p.numel() for p in gan.D.parameters())
  assert (n_g, n_d) == wl.param_counts(w)
  # Same output shapes.
  fake = gan.G(torch.randn(3, wl.LATENT_DIM))
  assert tuple(fake.shape[1:]) == (w.image_shape if len(w.image_shape) == 1 else
                                   (w.image_shape[2], *w.image_shape[:2]))
  assert tuple(gan.D(fake).shape) == (3,)


def test_torch_losses_match_jaxgan():
  torch = pytest.importorskip('torch')
  from benchmarks import torch_reference as tr
  from jaxgan.losses import LOSSES
  assert set(tr.LOSSES) == set(LOSSES)
  rng = np.random.default_rng(0)
  real, fake = rng.normal(size=16).astype(np.float32) * 3, rng.normal(size=16).astype(np.float32)
  for name, (d, g) in tr.LOSSES.items():
    r, f = torch.from_numpy(real), torch.from_numpy(fake)
    np.testing.assert_allclose(float(d(r, f)), float(LOSSES[name].d(real, fake)), rtol=1e-5,
                               err_msg=name)
    np.testing.assert_allclose(float(g(r, f)), float(LOSSES[name].g(real, fake)), rtol=1e-5,
                               atol=1e-6, err_msg=name)
  # The G losses that read real scores are exactly the ones the reference computes them for.
  for name in LOSSES:
    depends = float(LOSSES[name].g(real, fake)) != float(LOSSES[name].g(real + 1.0, fake))
    assert depends == (name in tr.G_NEEDS_REAL), name


def test_torch_penalties_match_jaxgan():
  torch = pytest.importorskip('torch')
  from benchmarks import torch_reference as tr
  from jaxgan import penalties
  rng = np.random.default_rng(1)
  w1 = rng.normal(size=(6, 5)).astype(np.float32)
  w2 = rng.normal(size=(5,)).astype(np.float32)
  real, fake = rng.normal(size=(4, 6)).astype(np.float32), rng.normal(size=(4, 6)).astype(np.float32)
  critic_j = lambda x: jnp.tanh(x @ w1) @ w2
  critic_t = lambda x: torch.tanh(x @ torch.from_numpy(w1)) @ torch.from_numpy(w2)
  for name in ('r1', 'r2'):
    got = float(tr.PENALTIES[name](critic_t, torch.from_numpy(real),
                                   torch.from_numpy(fake)).detach())
    want = float(penalties.get(name)(critic_j, real, fake, jax.random.PRNGKey(0)))
    np.testing.assert_allclose(got, want, rtol=1e-5, err_msg=name)
  # WGAN-GP draws its own interpolation: check it at real == fake, where it is deterministic.
  got = float(tr.PENALTIES['wgan_gp'](critic_t, torch.from_numpy(real),
                                      torch.from_numpy(real)).detach())
  want = float(penalties.gradient_penalty(critic_j, real, real, jax.random.PRNGKey(0)))
  np.testing.assert_allclose(got, want, rtol=1e-5)


# --- the runner ------------------------------------------------------------------------------


def test_runner_writes_json_and_markdown(tmp_path, monkeypatch):
  from benchmarks import run
  monkeypatch.setenv('JAXGAN_BENCH_FAST_COMPILE', '1')  # inherited by the worker processes
  frameworks = 'jax,torch'
  try:
    import torch  # noqa: F401
  except ImportError:
    frameworks = 'jax'
  out = tmp_path / 'bench'
  run.main(['--workloads', 'W1', '--tiny', '--reps', '2', '--rep_seconds', '0.01', '--warmup',
            '1', '--frameworks', frameworks, '--torch_threads', '1', '--out', str(out)])
  data = json.loads(out.with_suffix('.json').read_text())
  (result,) = data['results']
  assert result['jax']['steps_per_s'] > 0 and result['model_gflop_per_step'] > 0
  assert result['jax']['peak_rss_mb'] > 0 and result['jax']['first_step_s'] > 0
  if frameworks == 'jax,torch':
    assert result['ratio_jax_over_torch'] > 0 and len(result['ratios']) == 2
  md = out.with_suffix('.md').read_text()
  assert 'W1-tiny' in md and 'load average' in md


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


@pytest.mark.parametrize('op', ['conv', 'input_transpose', 'kernel_transpose',
                                'kernel_transpose_as_forward'])
def test_ceiling_counts_onednn_flops_like_xla(op, monkeypatch):
  # XLA leaves a convolution's taps in the padding out of its count; so must the ceiling.
  from benchmarks import ceiling
  from jaxgan.models import fast_conv, onednn
  if not onednn.available():
    pytest.skip(onednn.unavailable_reason())
  kind = {'conv': 'oneDNN forward', 'input_transpose': 'oneDNN input grad',
          'kernel_transpose': 'oneDNN kernel grad',
          'kernel_transpose_as_forward': 'oneDNN kernel grad as forward'}[op]
  if op == 'kernel_transpose_as_forward':
    monkeypatch.setattr(onednn, '_AS_FORWARD_MIN_TAPS', 1)
    monkeypatch.setattr(onednn, '_AS_FORWARD_MIN_CHANNELS', 1)
    op = 'kernel_transpose'
  spec = fast_conv.ConvSpec((2, 2), ((2, 0), (1, 1)), (9, 9), (3, 3), 'onednn')
  x, k, dy = jnp.ones((2, 9, 9, 5)), jnp.ones((3, 3, 5, 7)), jnp.ones((2, 5, 5, 7))
  args = {'conv': (x, k), 'input_transpose': (dy, k), 'kernel_transpose': (x, dy)}[op]
  (eqn,) = ceiling.heavy_ops(ceiling.live_jaxpr(lambda a, b: getattr(onednn, op)(a, b, spec),
                                                *args))
  assert ceiling.kind(eqn) == kind
  lax_op = {'conv': fast_conv._lax_conv, 'input_transpose': fast_conv._lax_input_transpose,
            'kernel_transpose': fast_conv._lax_kernel_transpose}[op]
  xla_spec = spec._replace(backend='xla')
  want = wl._flops(jax.jit(lambda a, b: lax_op(a, b, xla_spec)).lower(*args).cost_analysis())
  assert ceiling.model_flops(eqn) == pytest.approx(want, rel=1e-6)
  assert ceiling.time_op(eqn, min_seconds=0.001, reps=1) > 0  # the custom call runs alone too


def test_ceiling_writes_json_and_markdown(tmp_path):
  from benchmarks import ceiling
  out = tmp_path / 'ceiling'
  ceiling.main(['--workloads', 'W1', '--tiny', '--step_seconds', '0.05', '--reps', '1',
                '--op_seconds', '0.005', '--out', str(out)])
  (result,) = json.loads(out.with_suffix('.json').read_text())
  dots = result['kinds']['XLA dot']
  # The MLP's products are most of its FLOPs: everything else is elementwise.
  model = result['model_gflop_per_step']
  assert 0.5 * model < dots['gflop'] <= model
  assert result['heavy_ms'] > 0 and result['step_ms'] > 0 and 0 < result['ceiling_fraction']
  assert 'W1-tiny' in out.with_suffix('.md').read_text()
