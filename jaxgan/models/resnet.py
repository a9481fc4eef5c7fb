"""ResNet generators and discriminators for 32, 64, 128 and 256 px images, SNGAN and BigGAN style.

32x32: Miyato, Kataoka, Koyama and Yoshida 2018, "Spectral Normalization for Generative
Adversarial Networks" (arXiv:1802.05957), Table 4 and appendix B.4 (the CIFAR-10 ResNets, after
Gulrajani et al. 2017), `width` the channels of every block (G 256, D 128 by default):

  G: z -> dense 4x4x256 -> ResBlock up 256 (x3) -> BN, ReLU -> conv3x3 to C -> tanh
  D: optimised ResBlock down 128 -> ResBlock down 128 -> ResBlock 128 (x2) -> ReLU
     -> global sum pooling -> dense to 1, spectral norm on every convolution and dense layer.

64, 128 and 256: the stages of BigGAN (Brock, Donahue and Simonyan 2019, arXiv:1809.11096, Tables
4-6 and appendix B; `G_arch` and `D_arch` of the authors' BigGAN-PyTorch), `width` the base
channel count ch (default 64, BigGAN-PyTorch's `G_ch` = `D_ch`; the paper's ImageNet models use 96):

  G: z -> dense 4x4 x (ch * G_MULTIPLIERS[size][0]) -> one ResBlock up per doubling, to
     ch * G_MULTIPLIERS[size][1:] -> BN, ReLU -> conv3x3 to C -> tanh
     (128 px: 16ch at 4x4, then 16ch, 8ch, 4ch, 2ch, ch at 8 ... 128)
  D: one ResBlock down per halving to 4x4 (the first optimised), then one ResBlock at 4x4, to
     ch * D_MULTIPLIERS[size] (128 px: ch, 2ch, 4ch, 8ch, 16ch at 64 ... 4, then 16ch) -> ReLU
     -> global sum pooling -> dense to 1.

The blocks are the same at every size; BigGAN's self-attention, hierarchical latents and
orthogonal initialisation are not included (its shared class embedding is, `shared_embedding`).

Flax's default initialisers (LeCun normal kernels, zero biases); the paper's code uses Xavier
uniform, which makes no difference under spectral norm.

Class-conditional with `num_classes > 0` (`jaxgan.models.conditioning`; Miyato and Koyama 2018,
arXiv:1802.05637): the BatchNorms of G's blocks become conditional BatchNorm ('cbn'; the last one,
before the output convolution, stays plain as in their code); D adds the projection
('projection') or an auxiliary classifier ('acgan') on the pooled features.
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxgan.models import conditioning as cond
from jaxgan.models import conv_impl, layers, registry

SIZES = (32, 64, 128, 256)

# BigGAN's channels per stage as multiples of ch (BigGAN-PyTorch `G_arch` / `D_arch`). G: the 4x4
# projection, then the output of each up block (8, 16, ... size px). D: the output of each block,
# all down but the last (at 4x4).
G_MULTIPLIERS = {64: (16, 16, 8, 4, 2), 128: (16, 16, 8, 4, 2, 1), 256: (16, 16, 8, 8, 4, 2, 1)}
D_MULTIPLIERS = {64: (1, 2, 4, 8, 16), 128: (1, 2, 4, 8, 16, 16), 256: (1, 2, 4, 8, 8, 16, 16)}
# The default `width` of (G, D) per size: SNGAN's block widths at 32, BigGAN-PyTorch's ch above.
DEFAULT_WIDTHS = {32: (256, 128), 64: (64, 64), 128: (64, 64), 256: (64, 64)}


def _check_size(size: int) -> None:
  layers.check_image_size('resnet', size, SIZES)


def generator_widths(size: int, width: int) -> tuple[int, ...]:
  """The channels of G's 4x4 projection and of each up block's output, for `size` px images.

  Args:
    size: the image side, one of `SIZES`.
    width: the generator's `width`: every block's channels at 32, the base ch above.

  Returns:
    `log2(size / 4) + 1` channel counts, e.g. `(width,) * 4` at 32 and
    `width * (16, 16, 8, 4, 2, 1)` at 128.

  Raises:
    ValueError: a size not in `SIZES`.

  >>> generator_widths(64, 8)
  (128, 128, 64, 32, 16)
  """
  _check_size(size)
  return (width,) * 4 if size == 32 else tuple(width * m for m in G_MULTIPLIERS[size])


def discriminator_stages(size: int, width: int) -> tuple[tuple[int, bool], ...]:
  """D's blocks for `size` px images: `(features, down)` each, the first one optimised.

  Args:
    size: the image side, one of `SIZES`.
    width: the discriminator's `width`: every block's channels at 32, the base ch above.

  Returns:
    SNGAN's four blocks at 32 (down to 8x8, then two at 8x8); above, one down block per halving
    to 4x4 and one block at 4x4 (BigGAN), with `width * D_MULTIPLIERS[size]` channels.

  Raises:
    ValueError: a size not in `SIZES`.

  >>> discriminator_stages(64, 8)
  ((8, True), (16, True), (32, True), (64, True), (128, False))
  """
  _check_size(size)
  if size == 32:
    return ((width, True), (width, True), (width, False), (width, False))
  mults = D_MULTIPLIERS[size]
  return tuple((width * m, i < len(mults) - 1) for i, m in enumerate(mults))


class GBlock(nn.Module):
  """The generator's up ResBlock: `[n, h, w, c]` -> `[n, 2h, 2w, features]`.

  Residual branch: BatchNorm, ReLU, upsample x2 (nearest), conv3x3, BatchNorm, ReLU, conv3x3;
  shortcut: upsample x2, conv1x1. With labels, both BatchNorms are conditional.

  Attributes:
    features: output channels.
    dtype: compute dtype; parameters stay float32.
    conv: 'auto', 'onednn', 'xla' or 'lax' (`jaxgan.models.conv_impl`).
    num_classes: the class count of conditional BatchNorm (used only with labels).
  """

  features: int
  dtype: Any = jnp.float32
  conv: str = 'auto'
  num_classes: int = 0

  @nn.compact
  def __call__(
    self,
    x: jax.Array,
    train: bool,
    labels: jax.Array | None = None,
    embedding: jax.Array | None = None,
  ) -> jax.Array:
    """Applies the block.

    Args:
      x: `[n, h, w, c]`.
      train: BatchNorm uses batch statistics (apply with `mutable=['batch_stats']`) when True.
      labels: integer class indices `[n]` for conditional BatchNorm, or None for plain.
      embedding: G's shared class embedding `[n, e]`, or None for per-layer ones.

    Returns:
      `[n, 2h, 2w, features]` in the compute dtype.
    """
    conv, _ = conv_impl.conv_modules(self.conv)
    h = nn.relu(cond.generator_norm(self, x, train, labels, embedding))
    h = layers.upsample_nearest(h)
    h = conv(self.features, (3, 3), padding='SAME', dtype=self.dtype)(h)
    h = nn.relu(cond.generator_norm(self, h, train, labels, embedding))
    h = conv(self.features, (3, 3), padding='SAME', dtype=self.dtype)(h)
    s = conv(self.features, (1, 1), padding='VALID', dtype=self.dtype)(layers.upsample_nearest(x))
    return h + s


class DBlock(nn.Module):
  """The discriminator's (pre-activation) ResBlock: `[n, h, w, c]` -> `[n, h', w', features]`.

  optimized (first block, acting on the image): conv3x3, ReLU, conv3x3, avgpool;
    shortcut: avgpool, conv1x1.
  otherwise: ReLU, conv3x3, ReLU, conv3x3, [avgpool if down];
    shortcut: conv1x1, [avgpool] when down or the channel count changes, else identity.
  With norm 'batch' or 'layer', the norm goes before each ReLU of the residual branch.
  `h' = h / 2` when down (or optimized), else h.

  Attributes:
    features: output channels.
    down: halve the resolution with 2x2 average pooling.
    optimized: the first block's form (no activation before the first convolution).
    norm: 'spectral' (every convolution), 'layer', 'batch' or 'none'.
    sn_steps: power iterations per call for spectral norm.
    dtype: compute dtype; parameters stay float32.
    conv: 'auto', 'onednn', 'xla' or 'lax' (`jaxgan.models.conv_impl`).
  """

  features: int
  down: bool
  optimized: bool = False
  norm: str = 'spectral'
  sn_steps: int = 1
  dtype: Any = jnp.float32
  conv: str = 'auto'

  @nn.compact
  def __call__(self, x: jax.Array, train: bool) -> jax.Array:
    """Applies the block.

    Args:
      x: `[n, h, w, c]`, h and w even when down.
      train: BatchNorm uses batch statistics and spectral norm updates its vectors (apply with
        `mutable=['batch_stats']`) when True.

    Returns:
      `[n, h', w', features]` in the compute dtype.
    """
    spectral = self.norm == 'spectral'
    conv_module, _ = conv_impl.conv_modules(self.conv)

    def conv(h, kernel):
      layer = conv_module(
        self.features, (kernel, kernel), padding='SAME' if kernel > 1 else 'VALID', dtype=self.dtype
      )
      return layers.apply_layer(layer, h, spectral=spectral, train=train, sn_steps=self.sn_steps)

    act = lambda h: nn.relu(layers.normalize(h, self.norm, train, self.dtype))
    if self.optimized:
      h = conv(act(conv(x, 3)), 3)
      return layers.avg_pool2(h) + conv(layers.avg_pool2(x), 1)
    h = conv(act(conv(act(x), 3)), 3)
    if self.down:
      h = layers.avg_pool2(h)
    if self.down or x.shape[-1] != self.features:
      s = conv(x, 1)
      x = layers.avg_pool2(s) if self.down else s
    return h + x


class ResNetGenerator(nn.Module):
  """The ResNet generator: latents `[n, latent_dim]` -> images `[n, size, size, c]`.

  SNGAN's (Table 4a) at 32 px, BigGAN's stages at 64, 128 and 256 (`generator_widths`).

  Attributes:
    image_size: the image side, one of `SIZES` (32, 64, 128, 256).
    channels: output channels.
    width: at 32, the channels of the 4x4 projection and of every ResBlock (256 in the paper);
      above, BigGAN's base ch (`G_MULTIPLIERS`). None: `DEFAULT_WIDTHS[image_size][0]`.
    dtype: compute dtype (e.g. jnp.bfloat16); parameters stay float32 and images are float32.
    conv: 'auto', 'onednn', 'xla' or 'lax': how the convolutions are computed
      (`jaxgan.models.conv_impl`).
    num_classes: 0 (unconditional) or the number of classes of the labels G is given.
    conditioning: 'cbn' (the only one): the blocks' BatchNorms are conditional.
    shared_embedding: size of one class embedding shared by every conditional BatchNorm
      (BigGAN); 0: per-layer embeddings.
  """

  image_size: int = 32
  channels: int = 3
  width: int | None = None
  dtype: Any = jnp.float32
  conv: str = 'auto'
  num_classes: int = 0
  conditioning: str = 'cbn'
  shared_embedding: int = 0

  @nn.compact
  def __call__(self, z: jax.Array, train: bool, labels: jax.Array | None = None) -> jax.Array:
    """Generates images.

    Args:
      z: latents `[n, latent_dim]` (any trailing shape; flattened).
      train: BatchNorm uses batch statistics and updates the running ones (apply with
        `mutable=['batch_stats']`) when True.
      labels: integer class indices `[n]` in [0, num_classes) when `num_classes > 0`, else None.

    Returns:
      Images `[n, image_size, image_size, channels]`, float32 in [-1, 1].

    Raises:
      ValueError: an `image_size` not in `SIZES`, an unknown `conv` or conditioning, or labels
        given to an unconditional generator or missing for a conditional one.
      ImportError: `conv='onednn'` without the `cpu` extra.
    """
    _check_size(self.image_size)
    cond.check_conditioning('resnet', 'g', self.conditioning, self.num_classes)
    labels = cond.check_labels(labels, self.num_classes, z.shape[0], 'ResNetGenerator')
    embedding = cond.shared_embedding(self, labels)
    width = DEFAULT_WIDTHS[self.image_size][0] if self.width is None else self.width
    widths = generator_widths(self.image_size, width)
    x = z.reshape(z.shape[0], -1)
    x = nn.Dense(4 * 4 * widths[0], dtype=self.dtype)(x).reshape(z.shape[0], 4, 4, widths[0])
    block = dict(dtype=self.dtype, conv=self.conv, num_classes=self.num_classes)
    for features in widths[1:]:
      x = GBlock(features, **block)(x, train, labels, embedding)
    x = nn.relu(layers.batch_norm(train, dtype=self.dtype)(x))
    conv, _ = conv_impl.conv_modules(self.conv)
    x = conv(self.channels, (3, 3), padding='SAME', dtype=self.dtype)(x)
    return jnp.tanh(x).astype(jnp.float32)


class ResNetDiscriminator(nn.Module):
  """The ResNet discriminator: images `[n, size, size, c]` -> raw scores `[n]`.

  SNGAN's (Table 4b) at 32 px, BigGAN's stages at 64, 128 and 256 (`discriminator_stages`); the
  size is the input's.

  Attributes:
    width: at 32, the channels of every ResBlock (128 in the paper); above, BigGAN's base ch
      (`D_MULTIPLIERS`). None: `DEFAULT_WIDTHS[size][1]`.
    norm: 'spectral' (default; every convolution and the dense layer), 'layer' or 'batch' (before
      each ReLU of the residual branches and the final ReLU), or 'none'.
    sn_steps: power iterations per call for spectral norm.
    minibatch_std: group size of a minibatch standard-deviation feature before the output layer
      (Karras et al. 2018, `layers.minibatch_stddev`); 0: none.
    dtype: compute dtype (e.g. jnp.bfloat16); parameters stay float32 and scores are float32.
    conv: 'auto', 'onednn', 'xla' or 'lax': how the convolutions are computed
      (`jaxgan.models.conv_impl`).
    num_classes: 0 (unconditional) or the number of classes of the labels D is given.
    conditioning: 'projection' (Miyato and Koyama 2018) or 'acgan' (Odena et al. 2017), on the
      pooled features.
  """

  width: int | None = None
  norm: str = 'spectral'
  sn_steps: int = 1
  minibatch_std: int = 0
  dtype: Any = jnp.float32
  conv: str = 'auto'
  num_classes: int = 0
  conditioning: str = 'projection'

  @nn.compact
  def __call__(
    self, x: jax.Array, train: bool, labels: jax.Array | None = None
  ) -> jax.Array | tuple[jax.Array, jax.Array]:
    """Scores images.

    Args:
      x: images `[n, size, size, c]`, size in `SIZES`.
      train: BatchNorm uses batch statistics and spectral norm updates its vectors (apply with
        `mutable=['batch_stats']`) when True.
      labels: integer class indices `[n]` in [0, num_classes) when `num_classes > 0`, else None.

    Returns:
      Raw scores `[n]`, float32; with 'acgan', `(scores [n], class_logits [n, num_classes])`,
      both float32.

    Raises:
      ValueError: an unknown norm, `conv` or conditioning, images that are not square NHWC of a
        size in `SIZES`, or labels given to an unconditional D or missing for a conditional one.
      ImportError: `conv='onednn'` without the `cpu` extra.
    """
    layers.check_norm(self.norm, 'resnet')
    cond.check_conditioning('resnet', 'd', self.conditioning, self.num_classes)
    labels = cond.check_labels(labels, self.num_classes, x.shape[0], 'ResNetDiscriminator')
    if x.ndim != 4 or x.shape[1] != x.shape[2]:
      raise ValueError(f'resnet discriminator expects square NHWC images; got shape {x.shape}')
    size = x.shape[1]
    _check_size(size)
    width = DEFAULT_WIDTHS[size][1] if self.width is None else self.width
    kw = dict(norm=self.norm, sn_steps=self.sn_steps, dtype=self.dtype, conv=self.conv)
    for i, (features, down) in enumerate(discriminator_stages(size, width)):
      x = DBlock(features, down=down, optimized=i == 0, **kw)(x, train)
    if self.minibatch_std:
      x = layers.minibatch_stddev(x, self.minibatch_std)
    x = nn.relu(layers.normalize(x, self.norm, train, self.dtype))
    phi = jnp.sum(x, axis=(1, 2))  # global sum pooling
    return cond.discriminator_output(
      self, phi, labels, spectral=self.norm == 'spectral', train=train
    )


@registry.register(
  'resnet',
  sizes=SIZES,
  g_conditionings=('cbn',),
  d_conditionings=('projection', 'acgan'),
  d_norm='spectral',
)
def make(
  image_shape: tuple[int, int, int],
  *,
  width: int | None = None,
  d_norm: str,
  dtype: Any = jnp.float32,
  g_width: int | None = None,
  d_width: int | None = None,
  sn_steps: int = 1,
  minibatch_std: int = 0,
  conv: str = 'auto',
) -> tuple[ResNetGenerator, ResNetDiscriminator]:
  """Builds the ResNet pair for `jaxgan.models.make_models('resnet', ...)`, which checks the rest.

  Args:
    image_shape: `(size, size, channels)`, size in `SIZES`.
    width: both widths (None: `DEFAULT_WIDTHS[size]`); `g_width`, `d_width` override it.
    d_norm: D's normalisation, one of `layers.NORMS`.
    dtype: the compute dtype.
    g_width: G's width (None: `width`).
    d_width: D's width (None: `width`).
    sn_steps: spectral-norm power iterations per call.
    minibatch_std: D's minibatch standard-deviation group size; 0: none.
    conv: one of `conv_impl.IMPLEMENTATIONS`.

  Returns:
    `(ResNetGenerator, ResNetDiscriminator)`, unbound and unconditional.

  Raises:
    ValueError: an unknown `conv`; ImportError: 'onednn' without the `cpu` extra.
  """
  conv_impl.check(conv)  # the name, and the extra for 'onednn', now rather than at first use
  size, _, channels = image_shape
  g_w, d_w = DEFAULT_WIDTHS[size] if width is None else (width, width)
  g_width, d_width = g_w if g_width is None else g_width, d_w if d_width is None else d_width
  g = ResNetGenerator(image_size=size, channels=channels, width=g_width, dtype=dtype, conv=conv)
  kw = dict(sn_steps=sn_steps, minibatch_std=minibatch_std, dtype=dtype, conv=conv)
  d = ResNetDiscriminator(width=d_width, norm=d_norm, **kw)
  return g, d
