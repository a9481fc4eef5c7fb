"""DCGAN generator and discriminator (Radford, Metz and Chintala 2015, arXiv:1511.06434).

Sizes 28 (7 -> 14 -> 28), 32 (4 -> 8 -> 16 -> 32), 64 (4 -> ... -> 64) and 128 (4 -> ... -> 128):
one stride-2 stage per doubling, any channel count. As in the paper: no pooling or fully connected
hidden layers, stride-2 4x4 (transposed) convolutions, BatchNorm in G everywhere but the output and
in D everywhere but the input, ReLU in G with a tanh output, LeakyReLU(0.2) in D, weights N(0, 0.02)
and BatchNorm scales N(1, 0.02).
Convolutions followed by BatchNorm or LayerNorm have no bias (the norm's offset replaces it).

Class-conditional with `num_classes > 0` (`jaxgan.models.conditioning`): every BatchNorm of G
becomes conditional BatchNorm ('cbn'); D adds the projection ('projection') or an auxiliary
classifier ('acgan') on the flattened features that feed its output layer.
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxgan.models import conditioning as cond
from jaxgan.models import conv_impl, layers, registry

SIZES = (28, 32, 64, 128)
_INIT = nn.initializers.normal(0.02)


def _check_size(size: int) -> None:
  layers.check_image_size('dcgan', size, SIZES)


def _num_up(size: int) -> int:
  """Number of stride-2 stages between the base map (7x7 or 4x4) and the image."""
  return {28: 2, 32: 3, 64: 4, 128: 5}[size]


def _num_down(size: int) -> int:
  """Number of stride-2 convolutions of D: down to 4x4 (28 -> 14 -> 7 -> 4 for size 28)."""
  return max(3, _num_up(size))


class DCGANGenerator(nn.Module):
  """The DCGAN generator: latents `[n, latent_dim]` -> images `[n, size, size, channels]`.

  Dense projection of z to a 4x4 (7x7 for size 28) map with `width * 2**(k-1)` channels, where k
  is the number of stride-2 stages, then BatchNorm and ReLU; each stage but the last is a 4x4
  stride-2 transposed convolution ('SAME' padding) halving the channels, BatchNorm, ReLU; the last
  stage is a 4x4 stride-2 transposed convolution to `channels`, then tanh. E.g. size 32, width
  64: z -> 4x4x256 -> 8x8x128 -> 16x16x64 -> 32x32xC.

  Attributes:
    image_size: 28, 32, 64 or 128 (`SIZES`).
    channels: output channels (any count >= 1).
    width: channels of the last hidden stage; each earlier stage has twice the next one's.
    dtype: compute dtype (e.g. jnp.bfloat16); parameters stay float32 and images are float32.
    conv: 'auto', 'onednn', 'xla' or 'lax': how the convolutions are computed
      (`jaxgan.models.conv_impl`).
    num_classes: 0 (unconditional) or the number of classes of the labels G is given.
    conditioning: 'cbn' (the only one): every BatchNorm is `conditioning.ConditionalBatchNorm`.
    shared_embedding: size of one class embedding shared by every conditional BatchNorm
      (BigGAN); 0: per-layer embeddings.
  """

  image_size: int = 32
  channels: int = 3
  width: int = 64
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
      train: BatchNorm uses the batch's statistics and updates the running ones (apply with
        `mutable=['batch_stats']`) when True, the running statistics when False.
      labels: integer class indices `[n]` in [0, num_classes) when `num_classes > 0`, else None.

    Returns:
      Images `[n, image_size, image_size, channels]`, float32 in [-1, 1].

    Raises:
      ValueError: an unsupported `image_size`, an unknown `conv` or conditioning, or labels
        given to an unconditional generator or missing for a conditional one.
      ImportError: `conv='onednn'` without the `cpu` extra.
    """
    _check_size(self.image_size)
    cond.check_conditioning('dcgan', 'g', self.conditioning, self.num_classes)
    labels = cond.check_labels(labels, self.num_classes, z.shape[0], 'DCGANGenerator')
    embedding = cond.shared_embedding(self, labels)
    num_up = _num_up(self.image_size)
    base = 7 if self.image_size == 28 else 4
    features = self.width * 2 ** (num_up - 1)
    bn = lambda x: cond.generator_norm(
      self, x, train, labels, embedding, scale_init=layers.dcgan_bn_scale_init
    )

    x = z.reshape(z.shape[0], -1)
    x = nn.Dense(base * base * features, use_bias=False, kernel_init=_INIT, dtype=self.dtype)(x)
    x = x.reshape(z.shape[0], base, base, features)
    x = nn.relu(bn(x))
    _, conv_transpose = conv_impl.conv_modules(self.conv)
    up = lambda features, use_bias, name: conv_transpose(
      features,
      (4, 4),
      strides=(2, 2),
      padding='SAME',
      use_bias=use_bias,
      kernel_init=_INIT,
      dtype=self.dtype,
      name=name,
    )
    for i in range(num_up - 1):
      features //= 2
      x = up(features, use_bias=False, name=f'ConvTranspose_{i}')(x)
      x = nn.relu(bn(x))
    x = up(self.channels, use_bias=True, name=f'ConvTranspose_{num_up - 1}')(x)
    return jnp.tanh(x).astype(jnp.float32)


class DCGANDiscriminator(nn.Module):
  """The DCGAN discriminator: images `[n, size, size, c]` -> raw scores (logits) `[n]`.

  4x4 stride-2 convolutions ('SAME' padding) with widths width, 2w, 4w (8w for 64x64, 8w and 16w for
  128x128: one per halving down to 4x4), each followed by LeakyReLU(0.2), then flatten (phi) and a
  dense layer to one score; conditional: `conditioning.discriminator_output` on phi.

  Attributes:
    width: channels of the first convolution.
    norm: 'batch' (default, as in the paper), 'layer' (LayerNorm over H, W, C, as in WGAN-GP) on
      every convolution but the first; 'spectral': spectral norm on every convolution and on the
      output layer (Miyato et al. 2018) and no other normalisation; 'none'.
    sn_steps: power iterations per call for spectral norm.
    minibatch_std: group size of a minibatch standard-deviation feature before the output layer
      (Karras et al. 2018, `layers.minibatch_stddev`); 0: none.
    dtype: compute dtype (e.g. jnp.bfloat16); parameters stay float32 and scores are float32.
    conv: 'auto', 'onednn', 'xla' or 'lax': how the convolutions are computed
      (`jaxgan.models.conv_impl`).
    num_classes: 0 (unconditional) or the number of classes of the labels D is given.
    conditioning: 'projection' (Miyato and Koyama 2018) or 'acgan' (Odena et al. 2017).
  """

  width: int = 64
  norm: str = 'batch'
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
      x: images `[n, size, size, c]` with size in `SIZES` (28, 32, 64, 128).
      train: BatchNorm uses batch statistics and spectral norm updates its vectors (apply with
        `mutable=['batch_stats']`) when True.
      labels: integer class indices `[n]` in [0, num_classes) when `num_classes > 0`, else None.

    Returns:
      Raw scores `[n]`, float32; with 'acgan', `(scores [n], class_logits [n, num_classes])`,
      both float32.

    Raises:
      ValueError: an unknown norm, `conv` or conditioning, images that are not square NHWC of a
        supported size, or labels given to an unconditional D or missing for a conditional one.
      ImportError: `conv='onednn'` without the `cpu` extra.
    """
    layers.check_norm(self.norm, 'dcgan')
    cond.check_conditioning('dcgan', 'd', self.conditioning, self.num_classes)
    labels = cond.check_labels(labels, self.num_classes, x.shape[0], 'DCGANDiscriminator')
    if x.ndim != 4 or x.shape[1] != x.shape[2]:
      raise ValueError(f'dcgan discriminator expects square NHWC images; got shape {x.shape}')
    _check_size(x.shape[1])
    spectral = self.norm == 'spectral'
    num_down = _num_down(x.shape[1])
    conv_module, _ = conv_impl.conv_modules(self.conv)
    for i in range(num_down):
      normed = i > 0 and self.norm in ('batch', 'layer')
      conv = conv_module(
        self.width * 2**i,
        (4, 4),
        strides=(2, 2),
        padding='SAME',
        use_bias=not normed,
        kernel_init=_INIT,
        dtype=self.dtype,
      )
      x = layers.apply_layer(conv, x, spectral=spectral, train=train, sn_steps=self.sn_steps)
      if normed:
        x = layers.normalize(x, self.norm, train, self.dtype, scale_init=layers.dcgan_bn_scale_init)
      x = nn.leaky_relu(x, 0.2)
    if self.minibatch_std:
      x = layers.minibatch_stddev(x, self.minibatch_std)
    phi = x.reshape(x.shape[0], -1)
    return cond.discriminator_output(
      self, phi, labels, spectral=spectral, train=train, kernel_init=_INIT
    )


@registry.register(
  'dcgan',
  sizes=SIZES,
  g_conditionings=('cbn',),
  d_conditionings=('projection', 'acgan'),
  d_norm='batch',
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
) -> tuple[DCGANGenerator, DCGANDiscriminator]:
  """Builds the DCGAN pair for `jaxgan.models.make_models('dcgan', ...)`, which checks the rest.

  Args:
    image_shape: `(size, size, channels)`, size in `SIZES`.
    width: G's last and D's first feature count (None: 64); `g_width`, `d_width` override it.
    d_norm: D's normalisation, one of `layers.NORMS`.
    dtype: the compute dtype.
    g_width: G's width (None: `width`).
    d_width: D's width (None: `width`).
    sn_steps: spectral-norm power iterations per call.
    minibatch_std: D's minibatch standard-deviation group size; 0: none.
    conv: one of `conv_impl.IMPLEMENTATIONS`.

  Returns:
    `(DCGANGenerator, DCGANDiscriminator)`, unbound and unconditional.

  Raises:
    ValueError: an unknown `conv`; ImportError: 'onednn' without the `cpu` extra.
  """
  conv_impl.check(conv)  # the name, and the extra for 'onednn', now rather than at first use
  size, _, channels = image_shape
  w = 64 if width is None else width
  g_width, d_width = (w if x is None else x for x in (g_width, d_width))
  g = DCGANGenerator(image_size=size, channels=channels, width=g_width, dtype=dtype, conv=conv)
  d = DCGANDiscriminator(
    width=d_width,
    norm=d_norm,
    sn_steps=sn_steps,
    minibatch_std=minibatch_std,
    dtype=dtype,
    conv=conv,
  )
  return g, d
