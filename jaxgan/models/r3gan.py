"""R3GAN's networks at 32, 64, 128 and 256 px (Huang, Gokaslan, Kuleshov and Tompkin, NeurIPS 2024).

After the official `R3GAN/Networks.py`; no normalisation. G: a learned 4x4 basis times a linear map
of z, one stage per resolution 4, 8, ..., size ([transition] + residual blocks), 1x1 convolution to
the image. D: 1x1 convolution, stages at size, ..., 8, 4 (residual blocks + transition), a depthwise
4x4 head and a linear map to one score. Per-stage widths, blocks and cardinalities, the official
presets and jaxgan's defaults per size: `jaxgan.models.r3gan_stages`. Transitions: [1, 2, 1]
resampling and a 1x1 convolution where widths differ. Weights N(0, gain^2 / fan_in), gain 1 but in
the blocks (`ResidualBlock`: fix-up).

Class-conditional with `num_classes > 0`, as the official conditional networks: G concatenates a
learned class embedding (latent_dim wide) to z ('concat'); D's head maps its features to E =
widths[0] dimensions and the score is their inner product with a class embedding ('projection',
the official form of Miyato and Koyama's projection, with no unconditional term), or D keeps its
score and adds an auxiliary classifier head ('acgan', Odena et al. 2017; not in R3GAN).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jaxgan.models import conditioning as cond
from jaxgan.models import conv_impl, layers, registry
from jaxgan.models import r3gan_stages as _stages
from jaxgan.models.r3gan_ops import conv2d, downsample, upsample
from jaxgan.models.r3gan_stages import (
  DEFAULT_BLOCKS,
  DEFAULT_EXPANSION,
  DEFAULT_WIDTHS,
  RESOLUTIONS,
  SIZES,
  default_cardinality,
  per_stage,
)

_check_size = _stages.check_size
# The paper's CIFAR-10 network and jaxgan's group width, defined beside the other stage tables.
CIFAR10_KWARGS = _stages.CIFAR10_KWARGS
CIFAR10_LATENT_DIM = _stages.CIFAR10_LATENT_DIM
GROUP_WIDTH = _stages.GROUP_WIDTH

OUTPUT_ACTIVATIONS = ('tanh', 'none')
LRELU_GAIN = math.sqrt(2.0 / (1.0 + 0.2**2))  # LeakyReLU(0.2)'s (He et al. 2015), as the official


def msr_init(gain: float) -> nn.initializers.Initializer:
  """He ("MSR") initialiser of the official code: N(0, gain^2 / fan_in), exactly zero at gain 0.

  Args:
    gain: the standard deviation times sqrt(fan_in).

  Returns:
    `init(key, shape, dtype)`, fan_in the product of all axes but the last (`[in, out]`, HWIO).
  """
  std = lambda shape: gain / math.sqrt(np.prod(shape[:-1]))
  return lambda key, shape, dtype=jnp.float32: jax.random.normal(key, shape, dtype) * std(shape)


def _conv(
  module: nn.Module, x: jax.Array, features: int, size: int, gain: float, name: str, groups=1
):
  # A bias-free convolution whose float32 kernel `name` [size, size, c / groups, features] lives
  # in the calling module, He-initialised with `gain` (the official Convolution).
  shape = (size, size, x.shape[-1] // groups, features)
  kernel = module.param(name, msr_init(gain), shape, jnp.float32).astype(module.dtype)
  return conv2d(x.astype(module.dtype), kernel, groups, module.conv)


def _biased_lrelu(module: nn.Module, x: jax.Array, name: str) -> jax.Array:
  # The official BiasedActivation: the blocks' only biases, float32, zero at init; no gain.
  bias = module.param(name, nn.initializers.zeros, (x.shape[-1],), jnp.float32)
  return nn.leaky_relu(x + bias.astype(x.dtype), 0.2)


class ResidualBlock(nn.Module):
  """R3GAN's residual block: x + Conv3(act(Conv2(act(Conv1(x))))), the identity at init.

  Conv1 and Conv3 1x1 (c -> expansion * c -> c), Conv2 3x3 in `cardinality` groups.

  Attributes:
    cardinality: groups of the 3x3 convolution; must divide `expansion * c`.
    expansion: inner width over outer width.
    num_blocks: the network's number of residual blocks L; the first two layers' initial gain
      has the factor L^(-1/4) (fix-up, Zhang et al. 2019, as the official code).
    dtype: compute dtype; parameters stay float32.
    conv: 'auto', 'onednn', 'xla' or 'lax' (`conv2d`).
  """

  cardinality: int
  expansion: int
  num_blocks: int
  dtype: Any = jnp.float32
  conv: str = 'auto'

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    """Applies the block.

    Args:
      x: `[n, h, w, c]`, `expansion * c` a multiple of `cardinality`.

    Returns:
      `[n, h, w, c]` in the compute dtype.
    """
    inner = x.shape[-1] * self.expansion
    # Fix-up: with m = 3 layers per branch, scaling the m - 1 nonzero ones by L^(-1/(2m - 2))
    # keeps the effect of an update on the sum of L branches independent of the depth.
    gain = LRELU_GAIN * self.num_blocks ** (-1 / 4)
    y = _biased_lrelu(self, _conv(self, x, inner, 1, gain, 'Conv1'), 'bias1')
    y = _biased_lrelu(self, _conv(self, y, inner, 3, gain, 'Conv2', self.cardinality), 'bias2')
    y = _conv(self, y, x.shape[-1], 1, 0.0, 'Conv3')
    return x + y


class _Arch(nn.Module):
  """Fields shared by G and D (see `R3GANGenerator` for their meaning); defaults: 32 px's."""

  widths: Sequence[int] = DEFAULT_WIDTHS[32]
  blocks: Sequence[int] = (DEFAULT_BLOCKS,) * 4
  cardinality: Sequence[int] = default_cardinality(DEFAULT_WIDTHS[32], DEFAULT_EXPANSION)
  expansion: int = DEFAULT_EXPANSION
  dtype: Any = jnp.float32
  conv: str = 'auto'
  num_classes: int = 0

  def _stages(self, size: int) -> tuple[int, ...]:
    # The stages' resolutions for `size` px images, checking one value per stage.
    _check_size(size)
    stages = RESOLUTIONS[size]
    for name in ('widths', 'blocks', 'cardinality'):
      if len(getattr(self, name)) != len(stages):
        raise ValueError(
          f'r3gan at {size}x{size} has {len(stages)} stages ({stages} pixels) and needs one '
          f'{name} value per stage; got {getattr(self, name)!r}'
        )
    return stages

  def _blocks(self, x: jax.Array, stage: int, res: int) -> jax.Array:
    kw = dict(num_blocks=sum(self.blocks), dtype=self.dtype, conv=self.conv)
    for i in range(self.blocks[stage]):
      name = f'Block{res}_{i}'
      x = ResidualBlock(self.cardinality[stage], self.expansion, **kw, name=name)(x)
    return x


class R3GANGenerator(_Arch):
  """The R3GAN generator: latents `[n, latent_dim]` -> images `[n, size, size, channels]`.

  Attributes:
    image_size: the image side, one of `SIZES` (32, 64, 128, 256).
    channels: output channels.
    widths, blocks, cardinality: one value per stage (`RESOLUTIONS[image_size]`: 4, 8, ...,
      image_size pixels); expansion: one for all; see `make`. The defaults are 32 px's.
    output_activation: 'tanh' (in [-1, 1], as jaxgan's generators) or 'none' (official, linear).
    dtype: compute dtype (e.g. jnp.bfloat16); parameters stay float32 and images are float32.
    conv: 'auto', 'onednn', 'xla' or 'lax' (`conv2d`).
    num_classes: 0 (unconditional) or the number of classes of the labels G is given.
    conditioning: 'concat' (the only one): a class embedding 'ClassEmbed' `[num_classes,
      latent_dim]`, N(0, 1 / num_classes) (the official one-hot linear layer), joins z.
  """

  image_size: int = 32
  channels: int = 3
  output_activation: str = 'tanh'
  conditioning: str = 'concat'

  @nn.compact
  def __call__(
    self, z: jax.Array, train: bool = False, labels: jax.Array | None = None
  ) -> jax.Array:
    """Generates images.

    Args:
      z: latents `[n, latent_dim]` (any trailing shape; flattened).
      train: unused (no normalisation); kept for the zoo's calling convention.
      labels: integer class indices `[n]` in [0, num_classes) when `num_classes > 0`, else None.

    Returns:
      Images `[n, image_size, image_size, channels]`, float32 (in [-1, 1] with tanh).

    Raises:
      ValueError: an `image_size` not in `SIZES`, per-stage fields of another stage count, an
        unknown `output_activation` or conditioning, or labels given to an unconditional G or
        missing for a conditional one.
    """
    del train
    stages = self._stages(self.image_size)
    layers.check_activation(self.output_activation, OUTPUT_ACTIVATIONS, 'output_activation')
    cond.check_conditioning('r3gan', 'g', self.conditioning, self.num_classes)
    labels = cond.check_labels(labels, self.num_classes, z.shape[0], 'R3GANGenerator')
    z = z.reshape(z.shape[0], -1).astype(self.dtype)
    if labels is not None:
      embed = nn.Embed(
        self.num_classes, z.shape[-1], embedding_init=msr_init(1.0), name='ClassEmbed'
      )
      z = jnp.concatenate([z, embed(labels).astype(self.dtype)], axis=-1)
    w = self.widths
    # Generative basis: a learned 4x4 map whose channels are modulated by a linear map of z.
    basis = self.param('basis', nn.initializers.normal(1.0), (4, 4, w[0]), jnp.float32)
    dense = nn.Dense(w[0], False, self.dtype, kernel_init=msr_init(1.0), name='BasisLinear')
    x = basis.astype(self.dtype)[None] * dense(z)[:, None, None, :]
    for stage, res in enumerate(stages):
      if stage:
        if w[stage] != w[stage - 1]:
          x = _conv(self, x, w[stage], 1, 1.0, f'Transition{res}')
        x = upsample(x)
      x = self._blocks(x, stage, res)
    x = _conv(self, x, self.channels, 1, 1.0, 'Aggregation')
    if self.output_activation == 'tanh':
      x = jnp.tanh(x)
    return x.astype(jnp.float32)


class R3GANDiscriminator(_Arch):
  """The R3GAN discriminator: images `[n, size, size, c]` -> raw scores (logits) `[n]`.

  Attributes:
    widths, blocks, cardinality, expansion: per stage in G's order (D runs them from the input's
      size down to 4); the stage count must be the input size's (`RESOLUTIONS[size]`).
    minibatch_std: group size of a minibatch standard-deviation feature before the 4x4 head
      (Karras et al. 2018, `layers.minibatch_stddev`; not in R3GAN); 0: none.
    dtype: compute dtype (e.g. jnp.bfloat16); parameters stay float32 and scores are float32.
    conv: 'auto', 'onednn', 'xla' or 'lax' (`conv2d`).
    num_classes: 0 (unconditional) or the number of classes of the labels D is given.
    conditioning: 'projection' (official: 'Head' to E = widths[0] features, inner product with
      'ClassEmbed' `[num_classes, E]`, N(0, 1 / (E num_classes))) or 'acgan' ('ClassHead').
  """

  minibatch_std: int = 0
  conditioning: str = 'projection'

  @nn.compact
  def __call__(
    self, x: jax.Array, train: bool = False, labels: jax.Array | None = None
  ) -> jax.Array | tuple[jax.Array, jax.Array]:
    """Scores images.

    Args:
      x: images `[n, size, size, c]`, size in `SIZES`.
      train: unused (no normalisation); kept for the zoo's calling convention.
      labels: integer class indices `[n]` in [0, num_classes) when `num_classes > 0`, else None.

    Returns:
      Raw scores `[n]`, float32; with 'acgan', `(scores [n], class_logits [n, num_classes])`.

    Raises:
      ValueError: images that are not square NHWC of a size in `SIZES`, per-stage fields of
        another stage count, an unknown conditioning, or labels given to an unconditional D or
        missing for a conditional one.
    """
    del train
    cond.check_conditioning('r3gan', 'd', self.conditioning, self.num_classes)
    labels = cond.check_labels(labels, self.num_classes, x.shape[0], 'R3GANDiscriminator')
    if x.ndim != 4 or x.shape[1] != x.shape[2]:
      raise ValueError(f'r3gan discriminator expects square NHWC images; got shape {x.shape}')
    stages = self._stages(x.shape[1])
    w = self.widths
    x = _conv(self, x, w[-1], 1, 1.0, 'Extraction')
    for stage in reversed(range(len(stages))):
      x = self._blocks(x, stage, stages[stage])
      if stage:
        x = downsample(x)
        if w[stage - 1] != w[stage]:
          x = _conv(self, x, w[stage - 1], 1, 1.0, f'Transition{stages[stage - 1]}')
    if self.minibatch_std:
      x = layers.minibatch_stddev(x, self.minibatch_std)
    # Discriminative basis: a depthwise 4x4 'valid' convolution, i.e. a learned per-channel
    # weighting of the 4x4 map summed over space, then linear to one score.
    basis = self.param('basis', msr_init(1.0), (4, 4, 1, x.shape[-1]), jnp.float32)
    phi = jnp.einsum('nhwc,hwc->nc', x, basis[:, :, 0].astype(self.dtype))
    dense = lambda n, name: nn.Dense(n, False, self.dtype, kernel_init=msr_init(1.0), name=name)
    if labels is None or self.conditioning == 'acgan':
      scores = dense(1, 'Head')(phi)[:, 0].astype(jnp.float32)
      if labels is None:
        return scores
      return scores, dense(self.num_classes, 'ClassHead')(phi).astype(jnp.float32)
    e = w[0]  # the official ConditionEmbeddingDimension, WidthPerStage[0]
    init = msr_init(1 / math.sqrt(e))
    embed = nn.Embed(self.num_classes, e, embedding_init=init, name='ClassEmbed')
    return cond.projection(embed(labels), dense(e, 'Head')(phi))


@registry.register(
  'r3gan',
  sizes=SIZES,
  g_conditionings=('concat',),
  d_conditionings=('projection', 'acgan'),
  d_norm='none',
)
def make(
  image_shape: tuple[int, ...],
  *,
  width: int | None = None,
  d_norm: str = 'none',
  dtype: Any = jnp.float32,
  minibatch_std: int = 0,
  output_activation: str = 'tanh',
  conv: str = 'auto',
  widths: Any = None,
  blocks: Any = DEFAULT_BLOCKS,
  cardinality: Any = None,
  expansion: int = DEFAULT_EXPANSION,
) -> tuple[R3GANGenerator, R3GANDiscriminator]:
  """Builds the R3GAN pair for `jaxgan.models.make_models('r3gan', ...)`.

  Args:
    image_shape: `(size, size, channels)`, size one of `SIZES` (32, 64, 128, 256); the network
      has one stage per resolution 4, 8, ..., size (`RESOLUTIONS[size]`).
    width: scales `DEFAULT_WIDTHS[size]` so that the widest stage has `width` channels (None:
      the defaults; at 64-256 px `width=768, blocks=2` is the official FFHQ network of that
      size); not with `widths`.
    d_norm: must be 'none': R3GAN has no normalisation.
    dtype: the compute dtype (a JAX dtype).
    minibatch_std: D's minibatch standard-deviation group size; 0: none.
    output_activation: G's output, 'tanh' or 'none' (the official linear output).
    conv: 'auto', 'onednn', 'xla' or 'lax' (`conv2d`).
    widths: channels per stage (one per resolution 4, ..., size), or an int for all of them.
    blocks: residual blocks per stage, or an int for all (>= 0, one at least in all).
    cardinality: groups of the 3x3 convolutions per stage, or an int; None: `GROUP_WIDTH` each.
    expansion: inner width of a residual block over its width (the official ExpansionFactor).

  Returns:
    `(R3GANGenerator, R3GANDiscriminator)`, unbound; G builds `[n, size, size, channels]`
    images, D scores them `[n]`.

  Raises:
    ValueError: a bad image shape (a size not in `SIZES`: the message lists them and names
      config.data.resolution and config.data.pad_to), d_norm, output activation, `conv` or
      per-stage value (not one per stage), both `width` and `widths`, no block at all, or a
      cardinality that does not divide a width.

  >>> g, d = make((32, 32, 3), width=128)
  >>> g.widths, g.cardinality
  ((128, 64, 32, 16), (16, 8, 4, 2))
  >>> g, d = make((64, 64, 3), width=768, blocks=2)  # the official FFHQ-64 network
  >>> g.widths, g.cardinality
  ((768, 768, 768, 768, 384), (96, 96, 96, 96, 48))
  """
  image_shape = registry.get('r3gan').check_image_shape(image_shape)
  size = image_shape[0]
  if d_norm != 'none':
    raise ValueError(
      f"r3gan has no normalisation (its initialisation and R1/R2 stand in for it): d_norm must "
      f"be 'none'; got {d_norm!r}; set model.d_norm to None or 'none'"
    )
  layers.check_activation(output_activation, OUTPUT_ACTIVATIONS, 'output_activation')
  conv_impl.check(conv)
  if width is not None and widths is not None:
    raise ValueError('r3gan takes model.width (scales the default widths) or widths, not both')
  if widths is None:
    defaults = DEFAULT_WIDTHS[size]
    scale = 1.0 if width is None else per_stage(width, 'width', 1, size)[0] / max(defaults)
    widths = tuple(max(1, round(w * scale)) for w in defaults)
  widths = per_stage(widths, 'widths', 1, size)
  blocks = per_stage(blocks, 'blocks', 0, size)
  if not sum(blocks):
    raise ValueError(f'r3gan needs at least one residual block; got blocks={blocks}')
  expansion = per_stage(expansion, 'expansion', 1, size)[0]
  inner = tuple(w * expansion for w in widths)
  if cardinality is None:
    cardinality = default_cardinality(widths, expansion)
  cardinality = per_stage(cardinality, 'cardinality', 1, size)
  for res, c, g in zip(RESOLUTIONS[size], inner, cardinality, strict=True):
    if c % g:
      raise ValueError(
        f'r3gan cardinality {g} at {res}x{res} does not divide the inner width {c} (width x '
        f'expansion); choose a divisor or leave cardinality unset'
      )
  arch = dict(widths=widths, blocks=blocks, cardinality=cardinality, expansion=expansion)
  arch.update(dtype=dtype, conv=conv)
  g = R3GANGenerator(
    image_size=size, channels=image_shape[2], output_activation=output_activation, **arch
  )
  return g, R3GANDiscriminator(minibatch_std=minibatch_std, **arch)
