"""Fully connected generator and discriminator (Goodfellow et al. 2014).

Defaults are the common MNIST MLP GAN: G 100 -> 256 -> 512 -> 784 with ReLU and tanh, D 784 ->
512 -> 256 -> 1 with LeakyReLU(0.2). The same modules serve the 2-D toy mixtures (`out_shape=(2,)`,
`output_activation='none'`) and image data (`out_shape=(28, 28, 1)`: G reshapes, D flattens).
Flax's default initialisers (LeCun normal kernels, zero biases).

Class-conditional with `num_classes > 0` (`jaxgan.models.conditioning`): G takes one-hot labels
concatenated to z ('concat', Mirza and Osindero 2014); D concatenates them to its flattened input
('concat'), or adds the projection ('projection', Miyato and Koyama 2018, its default) or an
auxiliary classifier ('acgan', Odena et al. 2017) on its last hidden layer.
"""

from __future__ import annotations

import math
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxgan.models import conditioning as cond
from jaxgan.models import layers, registry

_G_ACTIVATIONS = ('relu', 'leaky_relu')
_OUTPUT_ACTIVATIONS = ('tanh', 'none')


class MLPGenerator(nn.Module):
  """A fully connected generator: latents `[n, latent_dim]` -> samples `[n, *out_shape]`.

  Attributes:
    out_shape: shape of one sample, e.g. (784,), (2,) or (28, 28, 1).
    hidden: widths of the hidden layers.
    activation: 'relu' or 'leaky_relu' (slope 0.2) after each hidden layer.
    output_activation: 'tanh' (samples in [-1, 1]) or 'none' (unbounded, for 2-D toy data).
    dtype: compute dtype (e.g. jnp.bfloat16); parameters stay float32 and samples are float32.
    num_classes: 0 (unconditional) or the number of classes of the labels G is given.
    conditioning: 'concat' (the only one): one-hot labels concatenated to the flattened z.
  """

  out_shape: tuple[int, ...] = (784,)
  hidden: tuple[int, ...] = (256, 512)
  activation: str = 'relu'
  output_activation: str = 'tanh'
  dtype: Any = jnp.float32
  num_classes: int = 0
  conditioning: str = 'concat'

  @nn.compact
  def __call__(self, z: jax.Array, train: bool, labels: jax.Array | None = None) -> jax.Array:
    """Generates samples.

    Args:
      z: latents `[n, latent_dim]` (any trailing shape; flattened).
      train: unused (no BatchNorm); taken for the models' common signature.
      labels: integer class indices `[n]` in [0, num_classes) when `num_classes > 0`, else None.

    Returns:
      Samples `[n, *out_shape]`, float32 (in [-1, 1] with the tanh output).

    Raises:
      ValueError: an unknown activation or conditioning, or labels given to an unconditional
        generator or missing for a conditional one.
    """
    del train  # no BatchNorm in the MLP generator
    layers.check_activation(self.activation, _G_ACTIVATIONS, 'MLPGenerator.activation')
    layers.check_activation(
      self.output_activation, _OUTPUT_ACTIVATIONS, 'MLPGenerator.output_activation'
    )
    cond.check_conditioning('mlp', 'g', self.conditioning, self.num_classes)
    labels = cond.check_labels(labels, self.num_classes, z.shape[0], 'MLPGenerator')
    x = z.reshape(z.shape[0], -1)
    if labels is not None:
      x = cond.concat_one_hot(x, labels, self.num_classes)
    for width in self.hidden:
      x = nn.Dense(width, dtype=self.dtype)(x)
      x = nn.relu(x) if self.activation == 'relu' else nn.leaky_relu(x, 0.2)
    x = nn.Dense(math.prod(self.out_shape), dtype=self.dtype)(x)
    if self.output_activation == 'tanh':
      x = jnp.tanh(x)
    return x.astype(jnp.float32).reshape(z.shape[0], *self.out_shape)


class MLPDiscriminator(nn.Module):
  """A fully connected discriminator: samples `[n, ...]` (flattened) -> raw scores `[n]`.

  Attributes:
    hidden: widths of the hidden layers, each followed by LeakyReLU(0.2).
    norm: 'none' (default), 'layer' or 'batch' (on every hidden layer but the first, the DCGAN
      convention), or 'spectral' (spectral norm on every dense layer, Miyato et al. 2018).
    sn_steps: power iterations per call for spectral norm.
    minibatch_std: group size of a minibatch standard-deviation feature before the output layer
      (Karras et al. 2018, `layers.minibatch_stddev`); 0: none.
    dtype: compute dtype (e.g. jnp.bfloat16); parameters stay float32 and scores are float32.
    num_classes: 0 (unconditional) or the number of classes of the labels D is given.
    conditioning: 'projection', 'acgan' (on the last hidden layer) or 'concat' (one-hot labels
      concatenated to the flattened input).
  """

  hidden: tuple[int, ...] = (512, 256)
  norm: str = 'none'
  sn_steps: int = 1
  minibatch_std: int = 0
  dtype: Any = jnp.float32
  num_classes: int = 0
  conditioning: str = 'projection'

  @nn.compact
  def __call__(
    self, x: jax.Array, train: bool, labels: jax.Array | None = None
  ) -> jax.Array | tuple[jax.Array, jax.Array]:
    """Scores samples.

    Args:
      x: samples `[n, ...]`.
      train: BatchNorm uses batch statistics and spectral norm updates its vectors (apply with
        `mutable=['batch_stats']`) when True.
      labels: integer class indices `[n]` in [0, num_classes) when `num_classes > 0`, else None.

    Returns:
      Raw scores (logits) `[n]`, float32; with 'acgan', `(scores [n], class_logits
      [n, num_classes])`, both float32.

    Raises:
      ValueError: an unknown norm or conditioning, or labels given to an unconditional D or
        missing for a conditional one.
    """
    layers.check_norm(self.norm, 'mlp')
    cond.check_conditioning('mlp', 'd', self.conditioning, self.num_classes)
    labels = cond.check_labels(labels, self.num_classes, x.shape[0], 'MLPDiscriminator')
    spectral = self.norm == 'spectral'
    x = x.reshape(x.shape[0], -1)
    if labels is not None and self.conditioning == 'concat':
      x = cond.concat_one_hot(x, labels, self.num_classes)
    for i, width in enumerate(self.hidden):
      x = layers.apply_layer(
        nn.Dense(width, dtype=self.dtype), x, spectral=spectral, train=train, sn_steps=self.sn_steps
      )
      if i > 0:
        x = layers.normalize(x, self.norm, train, self.dtype)
      x = nn.leaky_relu(x, 0.2)
    if self.minibatch_std:
      x = layers.minibatch_stddev(x, self.minibatch_std)
    return cond.discriminator_output(self, x, labels, spectral=spectral, train=train)


@registry.register(
  'mlp',
  sizes=None,
  g_conditionings=('concat',),
  d_conditionings=('projection', 'acgan', 'concat'),
  d_norm='none',
)
def make(
  image_shape: tuple[int, ...],
  *,
  width: int | None = None,
  d_norm: str,
  dtype: Any = jnp.float32,
  g_width: int | None = None,
  d_width: int | None = None,
  sn_steps: int = 1,
  minibatch_std: int = 0,
  g_hidden: tuple[int, ...] | None = None,
  d_hidden: tuple[int, ...] | None = None,
  activation: str = 'relu',
  output_activation: str = 'tanh',
) -> tuple[MLPGenerator, MLPDiscriminator]:
  """Builds the MLP pair for `jaxgan.models.make_models('mlp', ...)`, which checks the rest.

  Args:
    image_shape: one sample's shape, any (G reshapes, D flattens).
    width: hidden widths G (w, 2w) and D (2w, w) (None: 256); `g_width`, `d_width` override it.
    d_norm: D's normalisation, one of `layers.NORMS`.
    dtype: the compute dtype.
    g_width: G's w (None: `width`).
    d_width: D's w (None: `width`).
    sn_steps: spectral-norm power iterations per call.
    minibatch_std: D's minibatch standard-deviation group size; 0: none.
    g_hidden: G's hidden widths (None: from `g_width`).
    d_hidden: D's hidden widths (None: from `d_width`).
    activation: G's hidden activation, 'relu' or 'leaky_relu'.
    output_activation: G's output, 'tanh' or 'none'.

  Returns:
    `(MLPGenerator, MLPDiscriminator)`, unbound and unconditional.

  Raises:
    ValueError: an unknown activation.
  """
  w = 256 if width is None else width
  g_w, d_w = (w if x is None else x for x in (g_width, d_width))
  g = MLPGenerator(
    out_shape=image_shape,
    hidden=tuple((g_w, 2 * g_w) if g_hidden is None else g_hidden),
    activation=activation,
    output_activation=output_activation,
    dtype=dtype,
  )
  # Validate the activations now rather than at the first call.
  layers.check_activation(activation, _G_ACTIVATIONS, 'activation')
  layers.check_activation(output_activation, _OUTPUT_ACTIVATIONS, 'output_activation')
  d = MLPDiscriminator(
    hidden=tuple((2 * d_w, d_w) if d_hidden is None else d_hidden),
    norm=d_norm,
    sn_steps=sn_steps,
    minibatch_std=minibatch_std,
    dtype=dtype,
  )
  return g, d
