"""ResNet generator and discriminator for 32x32 images, SNGAN style.

Miyato, Kataoka, Koyama and Yoshida 2018, "Spectral Normalization for Generative Adversarial
Networks" (arXiv:1802.05957), Table 4 and appendix B.4 (the CIFAR-10 ResNets, after Gulrajani et
al. 2017):

  G: z -> dense 4x4x256 -> ResBlock up 256 (x3) -> BN, ReLU -> conv3x3 to C -> tanh
  D: optimised ResBlock down 128 -> ResBlock down 128 -> ResBlock 128 (x2) -> ReLU
     -> global sum pooling -> dense to 1, spectral norm on every convolution and dense layer.

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
from jaxgan.models import conv_impl, layers

SIZES = (32,)


def _check_size(size: int) -> None:
  if size not in SIZES:
    raise ValueError(f"resnet supports image sizes {', '.join(map(str, SIZES))}; got {size}")


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
  """The SNGAN ResNet generator (Table 4a): latents `[n, latent_dim]` -> images `[n, 32, 32, c]`.

  Attributes:
    image_size: must be 32.
    channels: output channels.
    width: channels of the 4x4 projection and of every ResBlock (256 in the paper).
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
  width: int = 256
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
      Images `[n, 32, 32, channels]`, float32 in [-1, 1].

    Raises:
      ValueError: an `image_size` other than 32, an unknown `conv` or conditioning, or labels
        given to an unconditional generator or missing for a conditional one.
      ImportError: `conv='onednn'` without the `cpu` extra.
    """
    _check_size(self.image_size)
    cond.check_conditioning('resnet', 'g', self.conditioning, self.num_classes)
    labels = cond.check_labels(labels, self.num_classes, z.shape[0], 'ResNetGenerator')
    embedding = cond.shared_embedding(self, labels)
    x = z.reshape(z.shape[0], -1)
    x = nn.Dense(4 * 4 * self.width, dtype=self.dtype)(x).reshape(z.shape[0], 4, 4, self.width)
    block = dict(dtype=self.dtype, conv=self.conv, num_classes=self.num_classes)
    for _ in range(3):
      x = GBlock(self.width, **block)(x, train, labels, embedding)
    x = nn.relu(layers.batch_norm(train, dtype=self.dtype)(x))
    conv, _ = conv_impl.conv_modules(self.conv)
    x = conv(self.channels, (3, 3), padding='SAME', dtype=self.dtype)(x)
    return jnp.tanh(x).astype(jnp.float32)


class ResNetDiscriminator(nn.Module):
  """The SNGAN ResNet discriminator (Table 4b): images `[n, 32, 32, c]` -> raw scores `[n]`.

  Attributes:
    width: channels of every ResBlock (128 in the paper).
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

  width: int = 128
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
      x: images `[n, 32, 32, c]`.
      train: BatchNorm uses batch statistics and spectral norm updates its vectors (apply with
        `mutable=['batch_stats']`) when True.
      labels: integer class indices `[n]` in [0, num_classes) when `num_classes > 0`, else None.

    Returns:
      Raw scores `[n]`, float32; with 'acgan', `(scores [n], class_logits [n, num_classes])`,
      both float32.

    Raises:
      ValueError: an unknown norm, `conv` or conditioning, images that are not square NHWC of
        size 32, or labels given to an unconditional D or missing for a conditional one.
      ImportError: `conv='onednn'` without the `cpu` extra.
    """
    layers.check_norm(self.norm, 'resnet')
    cond.check_conditioning('resnet', 'd', self.conditioning, self.num_classes)
    labels = cond.check_labels(labels, self.num_classes, x.shape[0], 'ResNetDiscriminator')
    if x.ndim != 4 or x.shape[1] != x.shape[2]:
      raise ValueError(f'resnet discriminator expects square NHWC images; got shape {x.shape}')
    _check_size(x.shape[1])
    kw = dict(norm=self.norm, sn_steps=self.sn_steps, dtype=self.dtype, conv=self.conv)
    x = DBlock(self.width, down=True, optimized=True, **kw)(x, train)  # 16x16
    x = DBlock(self.width, down=True, **kw)(x, train)  # 8x8
    x = DBlock(self.width, down=False, **kw)(x, train)
    x = DBlock(self.width, down=False, **kw)(x, train)
    if self.minibatch_std:
      x = layers.minibatch_stddev(x, self.minibatch_std)
    x = nn.relu(layers.normalize(x, self.norm, train, self.dtype))
    phi = jnp.sum(x, axis=(1, 2))  # global sum pooling
    return cond.discriminator_output(
      self, phi, labels, spectral=self.norm == 'spectral', train=train
    )
