"""Benchmark workloads: one description, built the same way in jaxgan and in the PyTorch reference.

A `Workload` fixes the model, image shape, loss, penalty, n_critic, critic normalisation, Adam
hyperparameters and batch size. `build_jax(w)` returns jaxgan's real train step,
`sharding.jit_train_step(make_train_step(gan, ...), mesh)` as in the training loop, with a state,
a fixed batch of `n_critic * batch` examples and a key; `torch_reference.build_torch(w)` returns
the same update written in plain PyTorch.

  W1  MLP WGAN-GP of the seed documents (784-dim, n_critic 5, Adam 1e-4 (0.5, 0.999))
  W2  DCGAN 32x32x1 non-saturating, BatchNorm in G and D (Adam 2e-4 (0.5, 0.999))
  W3  DCGAN 32x32x1 WGAN-GP, LayerNorm critic, n_critic 5 (Adam 1e-4 (0.5, 0.9))
  W4  SNGAN ResNet 32x32x3 hinge, spectral-norm critic, n_critic 5 (Adam 2e-4 (0.0, 0.9))

`sweep_workloads()` adds every loss of `jaxgan.losses.LOSSES` with and without the WGAN-GP
penalty on the DCGAN (LayerNorm critic in both, so the penalty is the only difference).
"""

from __future__ import annotations

import dataclasses
from typing import Any

LATENT_DIM = 100


@dataclasses.dataclass(frozen=True)
class Workload:
  name: str
  model: str                       # 'mlp', 'dcgan' or 'resnet'
  image_shape: tuple[int, ...]     # (784,) for the MLP, (H, W, C) otherwise
  loss: str = 'non_saturating'
  penalty: str | None = None
  n_critic: int = 1
  d_norm: str | None = None        # None: the model's default (jaxgan.models.DEFAULT_D_NORM)
  lr: float = 2e-4
  betas: tuple[float, float] = (0.5, 0.999)
  width: int | None = None         # None: the model's default width
  batch: int = 64
  penalty_weight: float = 10.0
  ema_decay: float = 0.999
  conv: str = 'auto'               # jaxgan only: jaxgan.models.fast_conv.IMPLEMENTATIONS
  description: str = ''

  def resolved_d_norm(self) -> str:
    from jaxgan.models import DEFAULT_D_NORM
    return DEFAULT_D_NORM[self.model] if self.d_norm is None else self.d_norm

  def tiny(self) -> 'Workload':
    """The same workload at toy sizes (for smoke tests): batch 4, narrow models."""
    width = {'mlp': 16, 'dcgan': 8, 'resnet': 16}[self.model]
    return dataclasses.replace(self, width=width, batch=4, name=self.name + '-tiny')

  def to_dict(self) -> dict[str, Any]:
    return dataclasses.asdict(self)

  @classmethod
  def from_dict(cls, d: dict[str, Any]) -> 'Workload':
    d = dict(d)
    d['image_shape'] = tuple(d['image_shape'])
    d['betas'] = tuple(d['betas'])
    return cls(**d)


WORKLOADS: dict[str, Workload] = {
    'W1': Workload('W1', 'mlp', (784,), loss='wgan', penalty='wgan_gp', n_critic=5, lr=1e-4,
                   betas=(0.5, 0.999),
                   description='MLP WGAN-GP (seed documents), n_critic 5'),
    'W2': Workload('W2', 'dcgan', (32, 32, 1), loss='non_saturating', d_norm='batch', lr=2e-4,
                   betas=(0.5, 0.999), width=64,
                   description='DCGAN 32x32 non-saturating, BatchNorm G and D'),
    'W3': Workload('W3', 'dcgan', (32, 32, 1), loss='wgan', penalty='wgan_gp', n_critic=5,
                   d_norm='layer', lr=1e-4, betas=(0.5, 0.9), width=64,
                   description='DCGAN 32x32 WGAN-GP, LayerNorm critic, n_critic 5'),
    'W4': Workload('W4', 'resnet', (32, 32, 3), loss='hinge', n_critic=5, d_norm='spectral',
                   lr=2e-4, betas=(0.0, 0.9),
                   description='SNGAN ResNet 32x32 hinge, spectral norm, n_critic 5'),
}


def sweep_workloads(losses: list[str] | None = None) -> list[Workload]:
  """Every loss x {no penalty, WGAN-GP} on the DCGAN 32x32x1 with a LayerNorm critic, n_critic 1."""
  from jaxgan.losses import LOSSES
  out = []
  for loss in losses or list(LOSSES):
    for penalty in (None, 'wgan_gp'):
      name = f'dcgan-{loss}' + ('+gp' if penalty else '')
      out.append(Workload(name, 'dcgan', (32, 32, 1), loss=loss, penalty=penalty, n_critic=1,
                          d_norm='layer', width=64,
                          description=f'DCGAN 32x32 {loss}' + (' + WGAN-GP' if penalty else '')))
  return out


def get(name: str) -> Workload:
  if name in WORKLOADS:
    return WORKLOADS[name]
  for w in sweep_workloads():
    if w.name == name:
      return w
  raise ValueError(f'unknown workload {name!r}; known: {", ".join(WORKLOADS)} and the sweep names '
                   f'{", ".join(w.name for w in sweep_workloads())}')


# --- jaxgan ----------------------------------------------------------------------------------


# XLA options that cut CPU compile time several-fold at the price of slower code: for smoke tests.
FAST_COMPILE = {'xla_backend_optimization_level': 0, 'xla_llvm_disable_expensive_passes': True}


def _models(w: Workload):
  from jaxgan.models import make_models
  extra = {} if w.model == 'mlp' else dict(conv=w.conv)
  return make_models(w.model, image_shape=w.image_shape, width=w.width, d_norm=w.d_norm,
                     latent_dim=LATENT_DIM, **extra)


def _jit_step(w: Workload, mesh, compiler_options: dict | None = None):
  """jaxgan's train step for `w`, jitted by `sharding.jit_train_step` as the training loop does."""
  import optax

  from jaxgan import GAN, make_train_step, sharding

  g, d = _models(w)
  b1, b2 = w.betas
  gan = GAN(g, d, optax.adam(w.lr, b1=b1, b2=b2), optax.adam(w.lr, b1=b1, b2=b2),
            latent_shape=(LATENT_DIM,))
  step = sharding.jit_train_step(
      make_train_step(gan, loss=w.loss, penalty=w.penalty, penalty_weight=w.penalty_weight,
                      n_critic=w.n_critic, ema_decay=w.ema_decay),
      mesh, compiler_options=compiler_options)
  return gan, step


def build_jax(w: Workload, seed: int = 0, compiler_options: dict | None = None):
  """jaxgan's real train step for `w`.

  Returns a dict with `step` (jitted as the loop does), `state`, `batch` (n_critic * batch
  examples, uniform in [-1, 1]), `key` and `gan`. `compiler_options` go to `jax.jit` (e.g.
  `FAST_COMPILE`; None for the benchmarks).
  """
  import jax
  import jax.numpy as jnp

  from jaxgan import sharding

  # Exactly what the training loop runs: a mesh of this machine's devices (one CPU here), the
  # state replicated and the batch sharded.
  mesh = sharding.make_mesh()
  gan, step = _jit_step(w, mesh, compiler_options)
  init_key, data_key, key = jax.random.split(jax.random.PRNGKey(seed), 3)
  batch = jax.random.uniform(data_key, (w.n_critic * w.batch, *w.image_shape), jnp.float32,
                             -1.0, 1.0)
  state = sharding.replicate(gan.init(init_key, batch[:w.batch]), mesh)
  batch = jax.device_put(batch, sharding.batch_sharding(mesh))
  return dict(step=step, state=state, batch=batch, key=key, gan=gan)


def param_counts(w: Workload) -> tuple[int, int]:
  """Parameter counts of jaxgan's G and D for `w`, from shapes only (nothing is computed)."""
  import jax
  import jax.numpy as jnp
  import numpy as np

  g, d = _models(w)
  key = jax.random.PRNGKey(0)
  z = jax.ShapeDtypeStruct((2, LATENT_DIM), jnp.float32)
  x = jax.ShapeDtypeStruct((2, *w.image_shape), jnp.float32)
  count = lambda v: sum(int(np.prod(a.shape)) for a in jax.tree.leaves(v['params']))
  return (count(jax.eval_shape(lambda z: g.init(key, z, train=False), z)),
          count(jax.eval_shape(lambda x: d.init(key, x, train=False), x)))


def _flops(analysis) -> float:
  if isinstance(analysis, (list, tuple)):  # older jax: one dict per computation
    return float(sum(a.get('flops', 0.0) for a in analysis))
  return float(analysis.get('flops', 0.0))


def model_flops(w: Workload, state, batch, key) -> float:
  """FLOPs of one train step of `w` in the plain formulation (Flax's layers, conv='lax').

  XLA's cost analysis of the step written with Flax's own convolutions, lowered (not compiled) on
  `build_jax(w)`'s state, batch and key (the state's tree is the same for every `conv`): the
  yardstick for "model FLOP/s", so that a reformulation doing extra arithmetic would not count as
  faster. (For W2 it is 19.97 GFLOP lowered and 20.00 compiled, with either conv implementation.)
  """
  import dataclasses

  from jaxgan import sharding
  _, step = _jit_step(dataclasses.replace(w, conv='lax'), sharding.make_mesh())
  return _flops(step.lower(state, batch, key).cost_analysis())
