"""Benchmark workloads: each one a run config, built by jaxgan's own builder and by PyTorch's.

A `Workload` is a name, a description, the shape of one example and a run config made with
`jaxgan.config.default_config()`: the model (`config.model`), the loss, penalty and n_critic
(`config.loss`), Adam's hyperparameters and the EMA (`config.optim`) and the batch
(`config.data.batch_size`). `build_jax(w)` builds jaxgan's train step exactly as the training loop
does, `jaxgan.run.build.build_gan` and `build_train_step`, jitted by `sharding.jit_train_step`;
`torch_reference.build_torch(w)` writes the same update in plain PyTorch from the same config.

  W1  MLP WGAN-GP of the seed documents (784-dim, n_critic 5, Adam 1e-4 (0.5, 0.999))
  W2  DCGAN 32x32x1 non-saturating, BatchNorm in G and D (Adam 2e-4 (0.5, 0.999))
  W3  DCGAN 32x32x1 WGAN-GP, LayerNorm critic, n_critic 5 (Adam 1e-4 (0.5, 0.9))
  W4  SNGAN ResNet 32x32x3 hinge, spectral-norm critic, n_critic 5 (Adam 2e-4 (0.0, 0.9))
  W5  R3GAN's loss (Huang et al. 2024) on the DCGAN 32x32x1: rsgan + R1 + R2 (each 0.05),
      LayerNorm critic, n_critic 1 (Adam 2e-4 (0.0, 0.99))
  W5-approx  W5 with the approximate R1 and R2 of APT (Lin et al. 2025) instead of R1 and R2:
      `approx_r1` + `approx_r2`, each mean_i (D(x_i) - D(x_i + sigma eps_i))^2, eps ~ N(0, I),
      sigma = `APPROX_SIGMA`, weighted 0.05 / sigma^2 so the regularisation matches W5's
  W5-none  W5 without penalties: rsgan alone on the same networks (what R1 and R2 cost)
  W6  lazy R1 (Karras et al. 2020, StyleGAN2): the DCGAN 32x32x1 non-saturating + R1 (weight 5)
      on every 16th critic update with weight x 16, LayerNorm critic (Adam 2e-4 (0.5, 0.999))
  W7  ADA (Karras et al. 2020): W2's DCGAN on 32x32x3 with a LayerNorm critic (as W5 and W6),
      non-saturating, policy 'bgc' with p adapted towards r_t = 0.6 (Adam 2e-4 (0.5, 0.999))
  W8  the class-conditional DCGAN of experiments/configs/mnist_cdcgan.py: 28x28x1, width 32,
      10 classes, conditional BatchNorm in G (de Vries et al. 2017) from one shared 128-wide
      class embedding (BigGAN, Brock et al. 2019), projection discriminator with spectral norm
      (Miyato & Koyama 2018), hinge, EMA 0.99 (Adam 4e-4 (0.5, 0.999))
  W8u W8 unconditional (num_classes 0, shared_embedding 0): the same networks without the class
      embeddings

Conditional workloads (`config.model.num_classes` > 0) are fed batches `{'image', 'label'}`.

`SIZE_WORKLOADS` time the networks at the image sizes a user brings, jaxgan only (the PyTorch
reference writes 32 px networks; `Workload.torch_reference` is False), each model at its defaults
for the size (`make_models` with `model.width` None) and batch 64:

  resnet-S  the ResNet at S = 32, 64, 128, 256 px (SNGAN's at 32, BigGAN's stages above, ch 64),
            BigGAN's recipe: hinge, spectral-norm D, n_critic 2 (Adam G 1e-4, D 4e-4 (0, 0.999))
  r3gan-S   R3GAN's networks at S px (jaxgan's CPU-size defaults, `r3gan_stages.DEFAULT_WIDTHS`),
            its recipe: rsgan + R1 + R2 (each 0.05), n_critic 1, latent 64 (Adam 2e-4 (0, 0.99))

`sweep_workloads()` adds every loss of `jaxgan.losses.LOSSES` with and without the WGAN-GP
penalty on the DCGAN (LayerNorm critic in both, so the penalty is the only difference).

  >>> w = get('W3')
  >>> w.config.loss.name, w.config.loss.n_critic, w.config.data.batch_size, w.image_shape
  ('wgan', 5, 64, (32, 32, 1))
  >>> w.tiny().config.data.batch_size
  4
  >>> w = get('W5')
  >>> w.config.loss.name, w.config.loss.penalties.to_dict(), w.config.optim.b1, w.config.optim.b2
  ('rsgan', {'r1': 0.05, 'r2': 0.05}, 0.0, 0.99)
  >>> APPROX_SIGMA, get('W5-approx').config.loss.penalties.to_dict()  # 0.05 / sigma^2 each
  (0.05, {'approx_r1': 20.0, 'approx_r2': 20.0})
  >>> get('W5-none').config.loss.penalties.to_dict(), get('W5-none').config.model == w.config.model
  ({}, True)
  >>> get('W6').config.loss.penalty_every, get('W7').config.augment.name
  (16, 'ada')
  >>> m8, m8u = get('W8').config.model, get('W8u').config.model
  >>> (m8.num_classes, m8.shared_embedding), (m8u.num_classes, m8u.shared_embedding)
  ((10, 128), (0, 0))
  >>> w = get('r3gan-64')
  >>> w.image_shape, w.config.data.resolution, w.torch_reference
  ((64, 64, 3), 64, False)
"""

from __future__ import annotations

import dataclasses
from typing import Any

import ml_collections

from jaxgan.config import default_config

# The noise scale sigma of the approximate R1 and R2 (APT, Lin et al. 2025), as
# `jaxgan.penalties.APPROX_SIGMA`: copied here so that this module, which PyTorch's worker imports,
# loads no JAX (tests/test_benchmarks.py checks the two agree). W5-approx's weights and the
# PyTorch reference's `approx_r1` / `approx_r2` read it.
APPROX_SIGMA = 0.05
# W5-approx's weights: W5's 0.05 over sigma^2 (see WORKLOADS), rounded off float error (20.0).
_APPROX_WEIGHT = round(0.05 / APPROX_SIGMA**2, 9)

# Widths of the tiny variants: the smallest that keep every layer of each model.
_TINY_WIDTH = {'mlp': 16, 'dcgan': 8, 'resnet': 16, 'r3gan': 8}


@dataclasses.dataclass(frozen=True)
class Workload:
  """One benchmark: a run config and the shape of one example.

  Attributes:
    name: e.g. 'W2' or 'dcgan-hinge+gp'; derived variants append to it ('W2-tiny').
    description: one line for tables.
    image_shape: one example without the batch axis. `(784,)` for W1: the seed documents' MLP
      reads flat vectors, so its stateless critic scores real and fake in one pass (as
      `jaxgan.step.train` does for 2-D batches); `(H, W, C)` for the convolutional models.
    config: the run config (`jaxgan.config.default_config()` with overrides); `config.data`
      names the data set the workload stands for, the benchmarks feed uniform noise of
      `image_shape`.
    torch_reference: whether `torch_reference.build_torch` writes it (False: jaxgan only).
  """

  name: str
  description: str
  image_shape: tuple[int, ...]
  config: ml_collections.ConfigDict
  torch_reference: bool = True

  def replace(self, overrides: dict[str, Any], name: str | None = None) -> Workload:
    """A copy with some config fields changed.

    Args:
      overrides: dotted field names to values, e.g. `{'loss.n_critic': 1}`.
      name: the copy's name (default: this one's).

    Returns:
      A new `Workload`; this one is unchanged.
    """
    config = ml_collections.ConfigDict(self.config.to_dict())
    config.update_from_flattened_dict(overrides)
    return dataclasses.replace(self, name=name or self.name, config=config)

  def with_conv(self, conv: str) -> Workload:
    """This workload with jaxgan's convolutions computed by `conv` ('auto', 'onednn', 'xla',
    'lax'; `jaxgan.models.fast_conv`); the MLP has none and is returned as it is."""
    if self.config.model.name == 'mlp':
      return self
    return self.replace({'model.kwargs.conv': conv})

  def conv(self) -> str:
    """How jaxgan computes this workload's convolutions ('auto' unless set)."""
    return self.config.model.kwargs.get('conv', 'auto')

  def tiny(self) -> Workload:
    """The same workload at toy sizes for smoke tests: batch 4, narrow models."""
    return self.replace(
      {'model.width': _TINY_WIDTH[self.config.model.name], 'data.batch_size': 4},
      name=self.name + '-tiny',
    )

  def to_dict(self) -> dict[str, Any]:
    """A JSON-serialisable form (for the worker processes and the result files)."""
    return dict(
      name=self.name,
      description=self.description,
      image_shape=list(self.image_shape),
      config=self.config.to_dict(),
      torch_reference=self.torch_reference,
    )

  @classmethod
  def from_dict(cls, d: dict[str, Any]) -> Workload:
    """The inverse of `to_dict`."""
    config = default_config()
    config.update(d['config'])
    return cls(
      d['name'],
      d['description'],
      tuple(d['image_shape']),
      config,
      d.get('torch_reference', True),
    )


def workload_config(
  model: str,
  *,
  data: str,
  loss: str,
  d_norm: str,
  lr: float,
  betas: tuple[float, float],
  penalty: str | None = None,
  n_critic: int = 1,
  width: int | None = None,
  pad_to: int | None = None,
  batch_size: int = 64,
  penalties: dict[str, float] | None = None,
  penalty_every: int = 1,
  augment: dict[str, Any] | None = None,
  num_classes: int = 0,
  g_conditioning: str | None = None,
  d_conditioning: str | None = None,
  shared_embedding: int = 0,
) -> ml_collections.ConfigDict:
  """A benchmark's run config: `default_config()` with the fields a workload fixes.

  Args:
    model: 'mlp', 'dcgan', 'resnet' or 'r3gan'.
    data: the data set the workload stands for (`config.data.name`).
    loss: a name in `jaxgan.losses.LOSSES`.
    d_norm: the critic's normalisation ('batch', 'layer', 'spectral' or 'none').
    lr: Adam's learning rate for G and D.
    betas: Adam's (b1, b2) for G and D.
    penalty: a name in `jaxgan.penalties.PENALTIES`, or None.
    n_critic: discriminator updates per generator update.
    width: the model's base width; None for its default.
    pad_to: pad images to this size (`config.data.pad_to`).
    batch_size: examples per discriminator update.
    penalties: names in `jaxgan.penalties.PENALTIES` -> weights (`config.loss.penalties`), e.g.
      R3GAN's `{'r1': 0.05, 'r2': 0.05}`; None for none.
    penalty_every: lazy regularisation: the penalties on every k-th critic update, weight x k.
    augment: fields of `config.augment` (name, policy, p, ada_target); None for no augmentation.
    num_classes: classes of a class-conditional GAN (`config.model.num_classes`); 0 for none.
    g_conditioning: `config.model.g_conditioning` ('cbn', ...); None for the model's default.
    d_conditioning: `config.model.d_conditioning` ('projection', ...); None for the default.
    shared_embedding: `config.model.shared_embedding`: the width of G's shared class embedding
      for conditional BatchNorm (BigGAN); 0 for per-layer embeddings.

  Returns:
    The config; the rest (latent size 100, penalty weight 10, EMA 0.999, float32) is the
    default's.
  """
  c = default_config()
  c.data.name, c.data.pad_to, c.data.batch_size = data, pad_to, batch_size
  c.model.name, c.model.width, c.model.d_norm = model, width, d_norm
  c.loss.name, c.loss.penalty, c.loss.n_critic = loss, penalty, n_critic
  c.optim.g_lr = c.optim.d_lr = lr
  c.optim.b1, c.optim.b2 = betas
  c.loss.penalties = dict(penalties or {})
  c.loss.penalty_every = penalty_every
  for k, v in (augment or {}).items():
    c.augment[k] = v
  c.model.num_classes = num_classes
  c.model.g_conditioning, c.model.d_conditioning = g_conditioning, d_conditioning
  c.model.shared_embedding = shared_embedding
  return c


def _cdcgan(num_classes: int) -> ml_collections.ConfigDict:
  """W8's (and, with `num_classes` 0, W8u's) config: experiments/configs/mnist_cdcgan.py's
  data, model, loss and optimiser sections (tests/test_benchmarks.py checks they agree)."""
  conditioning = (
    dict(g_conditioning='cbn', d_conditioning='projection', shared_embedding=128)
    if num_classes
    else {}
  )
  c = workload_config(
    'dcgan',
    data='mnist',
    loss='hinge',
    d_norm='spectral',
    lr=4e-4,
    betas=(0.5, 0.999),
    width=32,
    num_classes=num_classes,
    **conditioning,
  )
  c.optim.ema_decay = 0.99
  return c


def _r3gan_dcgan(penalties: dict[str, float]) -> ml_collections.ConfigDict:
  """W5's config (R3GAN's loss on the DCGAN 32x32x1, LayerNorm critic) with `penalties`: W5,
  W5-approx and W5-none differ by `loss.penalties` alone."""
  return workload_config(
    'dcgan',
    data='mnist',
    pad_to=32,
    loss='rsgan',
    penalties=penalties,
    d_norm='layer',
    lr=2e-4,
    betas=(0.0, 0.99),
    width=64,
  )


WORKLOADS: dict[str, Workload] = {
  'W1': Workload(
    'W1',
    'MLP WGAN-GP (seed documents), n_critic 5',
    (784,),
    workload_config(
      'mlp',
      data='mnist',
      loss='wgan',
      penalty='wgan_gp',
      n_critic=5,
      d_norm='none',
      lr=1e-4,
      betas=(0.5, 0.999),
    ),
  ),
  'W2': Workload(
    'W2',
    'DCGAN 32x32 non-saturating, BatchNorm G and D',
    (32, 32, 1),
    workload_config(
      'dcgan',
      data='mnist',
      pad_to=32,
      loss='non_saturating',
      d_norm='batch',
      lr=2e-4,
      betas=(0.5, 0.999),
      width=64,
    ),
  ),
  'W3': Workload(
    'W3',
    'DCGAN 32x32 WGAN-GP, LayerNorm critic, n_critic 5',
    (32, 32, 1),
    workload_config(
      'dcgan',
      data='mnist',
      pad_to=32,
      loss='wgan',
      penalty='wgan_gp',
      n_critic=5,
      d_norm='layer',
      lr=1e-4,
      betas=(0.5, 0.9),
      width=64,
    ),
  ),
  'W4': Workload(
    'W4',
    'SNGAN ResNet 32x32 hinge, spectral norm, n_critic 5',
    (32, 32, 3),
    workload_config(
      'resnet',
      data='cifar10',
      loss='hinge',
      n_critic=5,
      d_norm='spectral',
      lr=2e-4,
      betas=(0.0, 0.9),
    ),
  ),
  'W5': Workload(
    'W5',
    'DCGAN 32x32 rsgan + R1 + R2 (R3GAN loss), LayerNorm critic',
    (32, 32, 1),
    _r3gan_dcgan({'r1': 0.05, 'r2': 0.05}),
  ),
  # W5's model and loss with the approximate R1 and R2 of APT (Lin et al. 2025): one more forward
  # pass of the critic at x + sigma eps instead of R1's double backward. For a critic linear in x,
  # D(x) - D(x + sigma eps) = -sigma <grad D, eps>, whose square has expectation
  # sigma^2 ||grad D||^2: approx_r1 ~ sigma^2 R1 (to first order for any smooth critic), so the
  # weight 0.05 / sigma^2 regularises as strongly as W5's 0.05.
  'W5-approx': Workload(
    'W5-approx',
    'DCGAN 32x32 rsgan + approximate R1 + R2 (APT), LayerNorm critic',
    (32, 32, 1),
    _r3gan_dcgan({'approx_r1': _APPROX_WEIGHT, 'approx_r2': _APPROX_WEIGHT}),
  ),
  'W5-none': Workload(
    'W5-none',
    'DCGAN 32x32 rsgan, no penalty (W5 without R1 + R2), LayerNorm critic',
    (32, 32, 1),
    _r3gan_dcgan({}),
  ),
  'W6': Workload(
    'W6',
    'DCGAN 32x32 non-saturating + lazy R1 (every 16), LayerNorm critic',
    (32, 32, 1),
    workload_config(
      'dcgan',
      data='mnist',
      pad_to=32,
      loss='non_saturating',
      penalties={'r1': 5.0},
      penalty_every=16,
      d_norm='layer',
      lr=2e-4,
      betas=(0.5, 0.999),
      width=64,
    ),
  ),
  'W7': Workload(
    'W7',
    'DCGAN 32x32x3 non-saturating + ADA (bgc, target 0.6), LayerNorm critic',
    (32, 32, 3),
    workload_config(
      'dcgan',
      data='cifar10',
      loss='non_saturating',
      augment={'name': 'ada', 'policy': 'bgc', 'ada_target': 0.6},
      d_norm='layer',
      lr=2e-4,
      betas=(0.5, 0.999),
      width=64,
    ),
  ),
  'W8': Workload(
    'W8',
    'conditional DCGAN 28x28 hinge (mnist_cdcgan): shared-embedding CBN G, projection D, SN',
    (28, 28, 1),
    _cdcgan(10),
  ),
  'W8u': Workload(
    'W8u',
    'W8 unconditional: DCGAN 28x28 hinge, BatchNorm G, spectral-norm D',
    (28, 28, 1),
    _cdcgan(0),
  ),
}


def _size_workload(model: str, size: int) -> Workload:
  """`SIZE_WORKLOADS`' entry for `model` ('resnet' or 'r3gan') at `size` px (see the module doc)."""
  if model == 'resnet':
    c = workload_config(
      'resnet',
      data='tfds:celeb_a',
      loss='hinge',
      n_critic=2,
      d_norm='spectral',
      lr=1e-4,
      betas=(0.0, 0.999),
    )
    c.optim.d_lr = 4e-4
    what = 'SNGAN ResNet' if size == 32 else 'ResNet, BigGAN stages (ch 64),'
    recipe = 'hinge, spectral norm, n_critic 2'
  else:
    c = workload_config(
      'r3gan',
      data='tfds:celeb_a',
      loss='rsgan',
      penalties={'r1': 0.05, 'r2': 0.05},
      d_norm='none',
      lr=2e-4,
      betas=(0.0, 0.99),
    )
    c.model.latent_dim = 64
    what, recipe = 'R3GAN (CPU-size default widths)', 'rsgan + R1 + R2'
  c.data.resolution = size
  description = f'{what} {size}x{size}x3 {recipe} (jaxgan only)'
  return Workload(f'{model}-{size}', description, (size, size, 3), c, torch_reference=False)


SIZE_WORKLOADS: dict[str, Workload] = {
  f'{m}-{s}': _size_workload(m, s) for m in ('resnet', 'r3gan') for s in (32, 64, 128, 256)
}


def _critic_workload(name: str, description: str, shape, **fields) -> Workload:
  """A `CRITIC_WORKLOADS` entry: an experiment config's data, model, loss and optimiser."""
  c = default_config()
  c.update_from_flattened_dict(fields)
  return Workload(name, description + ' (jaxgan only)', shape, c, torch_reference=False)


# The projected critic's step beside the DCGAN critic's on the same G: the data, model, loss and
# optimiser sections of experiments/configs/{mnist,stacked_mnist}_{dcgan,projected}.py
# (tests/test_benchmarks.py checks they agree), the backbone randomly initialised
# (`pretrained=False`: the same cost as the trained one, without its data or cache). Their ratio
# sizes the projected configs' steps to the DCGAN configs' wall-clock.
_PROJECTED = {
  'model.name': 'projected',
  'model.d_norm': 'spectral',
  'model.kwargs.backbone': 'classifier',
  'model.kwargs.head_width': 32,
  'model.kwargs.pretrained': False,
  'loss.name': 'hinge',
  'optim.b1': 0.0,
  'optim.b2': 0.99,
}
_DCGAN = {'model.name': 'dcgan', 'loss.name': 'non_saturating'}
CRITIC_WORKLOADS: dict[str, Workload] = {
  w.name: w
  for w in (
    _critic_workload(
      'mnist-dcgan', 'mnist_dcgan: DCGAN 28x28 non-saturating', (28, 28, 1),
      **_DCGAN, **{'data.name': 'mnist', 'model.width': 32, 'optim.ema_decay': 0.99},
    ),
    _critic_workload(
      'mnist-projected', 'mnist_projected: DCGAN G, heads on a frozen classifier, hinge',
      (28, 28, 1),
      **_PROJECTED, **{'data.name': 'mnist', 'model.width': 32, 'optim.ema_decay': 0.99},
    ),
    _critic_workload(
      'stacked-dcgan', 'stacked_mnist_dcgan: DCGAN 32x32x3 non-saturating', (32, 32, 3),
      **_DCGAN,
      **{'data.name': 'stacked_mnist', 'data.pad_to': 32, 'model.width': 32,
         'optim.ema_decay': 0.999},
    ),
    _critic_workload(
      'stacked-projected', 'stacked_mnist_projected: heads on the per-channel classifier',
      (32, 32, 3),
      **_PROJECTED,
      **{'data.name': 'stacked_mnist', 'data.pad_to': 32, 'model.width': 32,
         'optim.ema_decay': 0.999},
    ),
  )
}  # fmt: skip


def sweep_workloads(losses: list[str] | None = None) -> list[Workload]:
  """Every loss with and without WGAN-GP on the DCGAN 32x32x1 (LayerNorm critic, n_critic 1).

  Args:
    losses: names in `jaxgan.losses.LOSSES`; None for all of them.

  Returns:
    Two workloads per loss, named 'dcgan-<loss>' and 'dcgan-<loss>+gp'.
  """
  from jaxgan.losses import LOSSES

  out = []
  for loss in losses or list(LOSSES):
    for penalty in (None, 'wgan_gp'):
      suffix = '+gp' if penalty else ''
      out.append(
        Workload(
          f'dcgan-{loss}{suffix}',
          f'DCGAN 32x32 {loss}' + (' + WGAN-GP' if penalty else ''),
          (32, 32, 1),
          workload_config(
            'dcgan',
            data='mnist',
            pad_to=32,
            loss=loss,
            penalty=penalty,
            d_norm='layer',
            lr=2e-4,
            betas=(0.5, 0.999),
            width=64,
          ),
        )
      )
  return out


def get(name: str) -> Workload:
  """The workload called `name`: one of `WORKLOADS`, `SIZE_WORKLOADS`, `CRITIC_WORKLOADS` or
  `sweep_workloads()`.

  Raises:
    ValueError: an unknown name; the message lists the known ones.
  """
  if name in WORKLOADS:
    return WORKLOADS[name]
  if name in SIZE_WORKLOADS:
    return SIZE_WORKLOADS[name]
  if name in CRITIC_WORKLOADS:
    return CRITIC_WORKLOADS[name]
  sweep = sweep_workloads()
  for w in sweep:
    if w.name == name:
      return w
  raise ValueError(
    f'unknown workload {name!r}; known: {", ".join([*WORKLOADS, *SIZE_WORKLOADS, *CRITIC_WORKLOADS])} and the sweep '
    f'names {", ".join(w.name for w in sweep)}'
  )


# --- jaxgan ----------------------------------------------------------------------------------


# XLA options that cut CPU compile time several-fold at the price of slower code: for smoke tests.
FAST_COMPILE = {'xla_backend_optimization_level': 0, 'xla_llvm_disable_expensive_passes': True}


def _jit_step(w: Workload, mesh, compiler_options: dict | None = None):
  """jaxgan's GAN and train step for `w`: the loop's builder, jitted as the loop jits it."""
  from jaxgan.run.build import build_gan, build_train_step
  from jaxgan.step import sharding

  gan = build_gan(w.config, w.image_shape)
  step = sharding.jit_train_step(
    build_train_step(w.config, gan), mesh, compiler_options=compiler_options
  )
  return gan, step


def build_jax(w: Workload, compiler_options: dict | None = None) -> dict[str, Any]:
  """jaxgan's real train step for `w`, with its inputs.

  Args:
    w: the workload; `w.config.seed` seeds the parameters, the batch and the step's key.
    compiler_options: passed to `jax.jit` (e.g. `FAST_COMPILE`); None for the benchmarks.

  Returns:
    A dict with `step` (jitted as the loop does: `step(state, batch, key) -> (state, metrics)`),
    `state` (replicated `GANState`), `batch` (float32 `[n_critic * batch_size, *image_shape]`,
    uniform in [-1, 1], sharded over the mesh's 'data' axis; for a conditional workload
    `{'image': that, 'label': int32 [n_critic * batch_size]}`, labels uniform over the
    classes and sharded alike), `key` and `gan`.
  """
  import jax

  from jaxgan.step import sharding

  # Exactly what the training loop runs: a mesh of this machine's devices, the state replicated
  # and the batch sharded.
  mesh = sharding.make_mesh()
  gan, step = _jit_step(w, mesh, compiler_options)
  c = w.config
  init_key, data_key, key = jax.random.split(jax.random.PRNGKey(c.seed), 3)
  batch = make_batch(w, data_key, mesh)
  images = batch['image'] if isinstance(batch, dict) else batch
  state = sharding.replicate(gan.init(init_key, images[: c.data.batch_size]), mesh)
  return dict(step=step, state=state, batch=batch, key=key, gan=gan)


def make_batch(w: Workload, key, mesh):
  """The benchmarks' batch for `w`: uniform noise of the example shape, labels if conditional.

  Args:
    w: the workload.
    key: a PRNG key.
    mesh: a mesh from `jaxgan.step.sharding.make_mesh`.

  Returns:
    float32 `[n_critic * batch_size, *image_shape]` uniform in [-1, 1], or for a conditional
    workload `{'image': that, 'label': int32 [n_critic * batch_size]}` uniform over the
    classes, sharded over the mesh's 'data' axis as the loop shards its batches.
  """
  import jax
  import jax.numpy as jnp

  from jaxgan.step import sharding

  c = w.config
  n = c.loss.n_critic * c.data.batch_size
  batch = jax.random.uniform(key, (n, *w.image_shape), jnp.float32, -1.0, 1.0)
  if c.model.num_classes:
    labels = jax.random.randint(jax.random.fold_in(key, 1), (n,), 0, c.model.num_classes)
    batch = {'image': batch, 'label': labels.astype(jnp.int32)}
  return jax.device_put(batch, sharding.batch_sharding(mesh))


def _variables(w: Workload):
  """Shapes of G's and D's variables for `w` (nothing is computed)."""
  import jax
  import jax.numpy as jnp

  from jaxgan.run.build import build_gan

  gan = build_gan(w.config, w.image_shape)
  key = jax.random.PRNGKey(0)
  z = jax.ShapeDtypeStruct((2, w.config.model.latent_dim), jnp.float32)
  x = jax.ShapeDtypeStruct((2, *w.image_shape), jnp.float32)
  kw = label_kwargs(w, 2)
  return (
    jax.eval_shape(lambda z: gan.generator.init(key, z, train=False, **kw), z),
    jax.eval_shape(lambda x: gan.discriminator.init(key, x, train=False, **kw), x),
  )


def label_kwargs(w: Workload, n: int) -> dict[str, Any]:
  """The label keyword of `w`'s modules for `n` examples: `{'labels': int32 [n]}` (the classes
  0, 1, ... cycled) for a conditional workload, `{}` for an unconditional one (its modules take
  no labels)."""
  import jax.numpy as jnp

  k = w.config.model.num_classes
  return {'labels': jnp.arange(n, dtype=jnp.int32) % k} if k else {}


def param_sizes(w: Workload) -> tuple[list[int], list[int]]:
  """Sizes of jaxgan's G and D parameter arrays for `w`, each list sorted.

  A layout-free fingerprint of an architecture: PyTorch's modules name and lay out their tensors
  differently, but the same layers have parameter arrays of the same sizes.

  Returns:
    `(g_sizes, d_sizes)`: element counts of every parameter array (BatchNorm statistics and
    spectral-norm vectors are state, not parameters), in ascending order.
  """
  import jax
  import numpy as np

  sizes = lambda v: sorted(int(np.prod(a.shape)) for a in jax.tree.leaves(v['params']))
  g, d = _variables(w)
  return sizes(g), sizes(d)


def _flops(analysis) -> float:
  if isinstance(analysis, (list, tuple)):  # older jax: one dict per computation
    return float(sum(a.get('flops', 0.0) for a in analysis))
  return float(analysis.get('flops', 0.0))


def model_flops(w: Workload, state, batch, key) -> float:
  """FLOPs of one train step of `w` in the plain formulation (Flax's layers, conv='lax').

  XLA's cost analysis of the step written with Flax's own convolutions, lowered (not compiled) on
  `build_jax(w)`'s state, batch and key (the state's tree is the same for every `conv`): the
  yardstick for "model FLOP/s", so that a reformulation doing extra arithmetic would not count as
  faster, and so that oneDNN's custom calls, which XLA's cost analysis cannot see into, are
  counted.

  With lazy regularisation (`loss.penalty_every` = k > 1) the count is amortised: the step
  without the penalties plus 1/k of what they add when computed on every update. (XLA's cost
  analysis of the lazy program counts the `lax.cond`'s penalty branch as if it ran every time.)

  Returns:
    FLOPs (2 x multiply-adds, as XLA counts them) per train step.
  """
  from jaxgan.step import sharding

  def count(w):
    _, step = _jit_step(w.with_conv('lax'), sharding.make_mesh())
    return _flops(step.lower(state, batch, key).cost_analysis())

  k = w.config.loss.penalty_every
  if k == 1:
    return count(w)
  every, plain = (w.config.copy_and_resolve_references() for _ in range(2))
  every.loss.penalty_every = plain.loss.penalty_every = 1
  plain.loss.penalties, plain.loss.penalty = {}, None
  f_every, f_plain = (count(dataclasses.replace(w, config=c)) for c in (every, plain))
  return f_plain + (f_every - f_plain) / k
