"""Class conditioning of the generators and discriminators: names, label checks and layers.

Generators (`g_conditioning`):
  'cbn': conditional BatchNorm (de Vries et al. 2017; Miyato and Koyama 2018; Brock et al. 2019,
    BigGAN): every BatchNorm of G normalises without an affine of its own and applies a
    per-class gain and bias, `ConditionalBatchNorm`. The DCGAN and ResNet generators' default.
  'concat': the class joins the latent. MLP: one-hot labels concatenated to z (its default);
    R3GAN: a learned class embedding concatenated to z, as the official conditional network.
Discriminators (`d_conditioning`), with phi(x) the features that feed D's final dense layer:
  'projection' (Miyato and Koyama 2018; every model's default): score = dense(phi) +
    <embed(y), phi>, `projection_output`; R3GAN: the official form, score = <head(phi), embed(y)>.
  'acgan' (Odena et al. 2017): an auxiliary head phi -> class logits; D returns
    `(scores [n], class_logits [n, num_classes])`.
  'concat' (MLP only): one-hot labels concatenated to the flattened input.

Labels are integer class indices `[n]` in `[0, num_classes)`; the modules check their shape and
dtype, not their values (they are traced): out-of-range values are the caller's to reject.
"""

from __future__ import annotations

import operator
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxgan.errors import OptionError, quote
from jaxgan.models import layers, registry

# Each family's conditionings, the default first: its registration's (`registry.Family`).
G_CONDITIONINGS = registry.Facts('g_conditionings')
D_CONDITIONINGS = registry.Facts('d_conditionings')


def check_num_classes(num_classes: Any) -> int:
  """Checks a class count.

  Args:
    num_classes: 0 (unconditional) or the class count; a NumPy integer is taken too.

  Returns:
    `num_classes` as a Python int.

  Raises:
    OptionError: (a ValueError) `num_classes` is not an integer >= 0.
  """
  if not isinstance(num_classes, bool) and hasattr(num_classes, '__index__'):
    num_classes = operator.index(num_classes)  # NumPy integers too
  if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 0:
    raise OptionError(
      f'$num_classes must be an integer >= 0 (0: unconditional, else the data set\'s class '
      f'count); got {quote(num_classes)}'
    )
  return num_classes


def check_classes(
  num_classes: Any,
  g_conditioning: str | None = None,
  d_conditioning: str | None = None,
  shared_embedding: Any = 0,
) -> int:
  """Checks the class-conditioning arguments that any model takes, whatever its family.

  Args:
    num_classes: 0 (unconditional) or the class count.
    g_conditioning: G's conditioning name, or None for the model's default.
    d_conditioning: D's conditioning name, or None for the model's default.
    shared_embedding: the size of G's shared class embedding; 0: none.

  Returns:
    `num_classes` as a Python int.

  Raises:
    OptionError: (a ValueError) `num_classes` or `shared_embedding` is not an integer >= 0, or a conditioning
      argument is given with `num_classes` 0.

  >>> check_classes(10, 'cbn', None, 128)
  10
  """
  num_classes = check_num_classes(num_classes)
  shared = shared_embedding
  if isinstance(shared, bool) or not isinstance(shared, int) or shared < 0:
    raise OptionError(
      f'$shared_embedding must be an integer >= 0 (0: per-layer); got {quote(shared)}'
    )
  given = [
    f'${k}={quote(v)}'
    for k, v in (
      ('g_conditioning', g_conditioning),
      ('d_conditioning', d_conditioning),
      ('shared_embedding', shared),
    )
    if v
  ]
  if not num_classes and given:
    raise OptionError(
      f'{", ".join(given)} given to an unconditional model ($num_classes is 0); set '
      f"$num_classes > 0 (the data set's class count) or leave them unset"
    )
  return num_classes


def check_conditioning(model: str, side: str, conditioning: str, num_classes: int) -> None:
  """Checks a module's class count and conditioning name.

  Args:
    model: a registered model family's name (`registry.names()`).
    side: 'g' or 'd'.
    conditioning: the module's conditioning name.
    num_classes: the module's class count (0: unconditional; the name is then not checked).

  Raises:
    ValueError: `num_classes` is not an integer >= 0, or `conditioning` is not valid for the
      model's side (the message lists the valid names).
  """
  family = registry.get(model)
  valid = family.g_conditionings if side == 'g' else family.d_conditionings
  if check_num_classes(num_classes) and conditioning not in valid:
    raise ValueError(
      f'{model} {side}_conditioning must be one of {", ".join(map(repr, valid))}; '
      f'got {conditioning!r}'
    )


def check_labels(labels: Any, num_classes: int, n: int, what: str) -> jax.Array | None:
  """Checks that a module gets labels exactly when it is conditional.

  Args:
    labels: None or integer class indices `[n]`.
    num_classes: the module's class count (0: unconditional).
    n: the batch size of the module's input.
    what: the module's name, for the message.

  Returns:
    `labels` as an integer array `[n]`, or None for an unconditional module.

  Raises:
    ValueError: labels for an unconditional module, none for a conditional one, or labels that
      are not integers of shape `[n]`.
  """
  if not num_classes:
    if labels is not None:
      raise ValueError(
        f'{what} is unconditional (num_classes=0) but got labels; pass labels=None, or build '
        f'it with num_classes > 0 (config.model.num_classes)'
      )
    return None
  if labels is None:
    raise ValueError(
      f'{what} is conditional (num_classes={num_classes}) and needs labels: integer class '
      f'indices [n] in [0, {num_classes})'
    )
  labels = jnp.asarray(labels)
  if labels.shape != (n,) or not jnp.issubdtype(labels.dtype, jnp.integer):
    raise ValueError(
      f'{what} needs labels of shape [{n}] (one class index per example, num_classes='
      f'{num_classes}) and an integer dtype; got {labels.dtype} {labels.shape}'
    )
  return labels


def concat_one_hot(x: jax.Array, labels: jax.Array, num_classes: int) -> jax.Array:
  """Concatenates one-hot labels to flattened inputs (Mirza and Osindero 2014, cGAN).

  Args:
    x: `[n, ...]`, flattened to `[n, d]`.
    labels: integer class indices `[n]`.
    num_classes: the one-hot width.

  Returns:
    `[n, d + num_classes]` of x's dtype.
  """
  x = x.reshape(x.shape[0], -1)
  return jnp.concatenate([x, jax.nn.one_hot(labels, num_classes, dtype=x.dtype)], axis=-1)


class ConditionalBatchNorm(nn.Module):
  """BatchNorm with a per-class gain and bias (de Vries et al. 2017; Miyato and Koyama 2018).

  x_hat is x batch-normalised over all axes but the last, without an affine of its own (momentum
  `layers.BN_MOMENTUM`, epsilon 1e-5, running statistics in `batch_stats`, as
  `layers.batch_norm`); the output is `gain[y] * x_hat + bias[y]`. Per-layer embeddings
  (`embedding=None`): gain = 1 + delta[y] with `delta` ('gain', `[num_classes, c]`) and `bias`
  ('bias') zero at init, so a fresh layer is plain BatchNorm; the "+1" keeps the gain from
  starting at 0. Shared embedding (BigGAN, Brock et al. 2019): given G's class embedding e(y),
  gain = 1 + W_g e(y) and bias = W_b e(y), bias-free dense layers 'gain' and 'bias'.

  Attributes:
    num_classes: the number of classes (> 0).
    dtype: the output (compute) dtype; statistics, parameters and the affine are float32.
  """

  num_classes: int
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(
    self, x: jax.Array, labels: jax.Array, train: bool, embedding: jax.Array | None = None
  ) -> jax.Array:
    """Normalises and applies the classes' gains and biases.

    Args:
      x: `[n, ..., c]`.
      labels: integer class indices `[n]` in [0, num_classes).
      train: normalise with the batch's statistics and update the running ones (apply with
        `mutable=['batch_stats']`) when True, the running statistics when False.
      embedding: G's shared class embedding `[n, e]` (float32), or None for per-layer ones.

    Returns:
      `x`'s shape, in `dtype`.
    """
    features = x.shape[-1]
    x_hat = layers.batch_norm(train, affine=False, name='BatchNorm')(x)
    if embedding is None:
      zeros = nn.initializers.zeros
      delta = nn.Embed(self.num_classes, features, embedding_init=zeros, name='gain')(labels)
      bias = nn.Embed(self.num_classes, features, embedding_init=zeros, name='bias')(labels)
    else:
      delta = nn.Dense(features, use_bias=False, name='gain')(embedding)
      bias = nn.Dense(features, use_bias=False, name='bias')(embedding)
    shape = (x.shape[0],) + (1,) * (x.ndim - 2) + (features,)
    y = (1.0 + delta).reshape(shape) * x_hat + bias.reshape(shape)
    return y.astype(self.dtype)


def generator_norm(
  module: nn.Module,
  x: jax.Array,
  train: bool,
  labels: jax.Array | None,
  embedding: jax.Array | None,
  **bn_kwargs: Any,
) -> jax.Array:
  """A generator's BatchNorm: plain when `labels` is None, else `ConditionalBatchNorm`.

  Called inside `module`'s compact method, so that an unconditional generator creates exactly
  the `nn.BatchNorm` (and parameter names) it always has.

  Args:
    module: the calling generator (gives `num_classes` and `dtype`).
    x: `[n, ..., c]`.
    train: batch statistics when True, running ones otherwise.
    labels: integer class indices `[n]`, or None.
    embedding: the shared class embedding `[n, e]`, or None.
    **bn_kwargs: passed to `layers.batch_norm` for the plain one (e.g. `scale_init`).

  Returns:
    `x`'s shape, in `module.dtype`.
  """
  if labels is None:
    return layers.batch_norm(train, dtype=module.dtype, **bn_kwargs)(x)
  return ConditionalBatchNorm(module.num_classes, module.dtype)(x, labels, train, embedding)


def shared_embedding(module: nn.Module, labels: jax.Array | None) -> jax.Array | None:
  """G's shared class embedding e(y) (Brock et al. 2019), when it has one.

  Args:
    module: the calling generator (`num_classes`, `shared_embedding` > 0 for one).
    labels: integer class indices `[n]`, or None.

  Returns:
    float32 `[n, module.shared_embedding]` (parameter 'SharedEmbed', Flax's `nn.Embed` init:
    truncated normal of standard deviation 1/sqrt(shared_embedding)), or None without labels
    or a shared embedding.
  """
  if labels is None or not module.shared_embedding:
    return None
  embed = nn.Embed(module.num_classes, module.shared_embedding, name='SharedEmbed')
  return embed(labels)


def discriminator_output(
  module: nn.Module,
  phi: jax.Array,
  labels: jax.Array | None,
  *,
  spectral: bool,
  train: bool,
  **dense_kwargs: Any,
) -> jax.Array | tuple[jax.Array, jax.Array]:
  """D's final dense layer and its class conditioning, inside `module`'s compact method.

  The score is `dense(phi)`, a one-feature `nn.Dense` created first (the name it has in the
  unconditional network). 'projection' adds <embed(y), phi> (Miyato and Koyama 2018) with
  `nn.Embed(num_classes, d)` 'ProjectionEmbed', Glorot-uniform (their code's initialiser);
  'acgan' adds a dense head 'ClassHead' phi -> class logits (Odena et al. 2017). Both are
  spectrally normalised with `spectral` (their code's SNEmbedID).

  Args:
    module: the calling discriminator (`num_classes`, `conditioning`, `sn_steps`, `dtype`).
    phi: features `[n, d]`.
    labels: integer class indices `[n]`, or None for an unconditional module.
    spectral: spectral norm on the dense layers and the embedding.
    train: update the spectral-norm vectors (apply with `mutable=['batch_stats']`).
    **dense_kwargs: passed to the dense layers (e.g. `kernel_init`).

  Returns:
    float32 scores `[n]`, or `(scores [n], class_logits [n, num_classes])` for 'acgan'.
  """
  apply = lambda layer, x: layers.apply_layer(
    layer, x, spectral=spectral, train=train, sn_steps=module.sn_steps
  )
  scores = apply(nn.Dense(1, dtype=module.dtype, **dense_kwargs), phi)[:, 0].astype(jnp.float32)
  if labels is None or module.conditioning == 'concat':
    return scores
  if module.conditioning == 'acgan':
    head = nn.Dense(module.num_classes, dtype=module.dtype, name='ClassHead', **dense_kwargs)
    return scores, apply(head, phi).astype(jnp.float32)
  init = nn.initializers.glorot_uniform()
  embed = nn.Embed(module.num_classes, phi.shape[-1], embedding_init=init, name='ProjectionEmbed')
  return scores + projection(apply(embed, labels), phi)


def projection(embedded: jax.Array, phi: jax.Array) -> jax.Array:
  """The projection term <embed(y), phi> per example (Miyato and Koyama 2018), in float32.

  Args:
    embedded: the labels' embeddings `[n, d]`.
    phi: D's features `[n, d]`.

  Returns:
    float32 `[n]`.

  >>> projection(jnp.array([[1.0, 2.0]]), jnp.array([[3.0, 4.0]])).tolist()
  [11.0]
  """
  return jnp.sum(embedded.astype(jnp.float32) * phi.astype(jnp.float32), axis=-1)
