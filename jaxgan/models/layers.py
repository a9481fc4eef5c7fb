"""Small pieces shared by the model zoo: normalisation choices, spectral norm, resampling.

All non-parameter state (BatchNorm statistics, spectral-norm `u` vectors and `sigma`) lives in the
`batch_stats` collection, so a module is always applied as
`module.apply(variables, x, train=train, mutable=['batch_stats'])` (or without `mutable` in eval).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxgan.errors import OptionError, quote

# Discriminator normalisations, in the order they are listed in error messages.
NORMS = ('batch', 'layer', 'spectral', 'none')

# BatchNorm momentum of the running statistics (PyTorch's 0.1 in Flax's convention).
BN_MOMENTUM = 0.9


def check_norm(norm: str, model: str) -> None:
  """Checks a discriminator normalisation name.

  Args:
    norm: the name to check.
    model: the model's name, for the message.

  Raises:
    ValueError: `norm` is not one of `NORMS` (the message lists them).
  """
  if norm not in NORMS:
    raise ValueError(
      f"{model} discriminator norm must be one of {', '.join(map(repr, NORMS))}; got {norm!r}"
    )


def check_activation(activation: str, valid: tuple[str, ...], what: str) -> None:
  """Checks an activation name.

  Args:
    activation: the name to check.
    valid: the accepted names.
    what: the attribute's name, for the message.

  Raises:
    ValueError: `activation` is not in `valid` (the message lists them).
  """
  if activation not in valid:
    raise ValueError(f"{what} must be one of {', '.join(map(repr, valid))}; got {activation!r}")


def check_image_size(model: str, size: int, sizes: tuple[int, ...]) -> None:
  """Checks that a convolutional model builds images of `size` pixels a side.

  Args:
    model: the model's name, for the message.
    size: the side of the (square) images.
    sizes: the sides the model builds (its module's `SIZES`).

  Raises:
    ValueError: `size` is not in `sizes`; the message lists them and the fix: bring the images
      to one of them with `config.data.resolution`, or pad smaller ones with `config.data.pad_to`.
  """
  if size in sizes:
    return
  larger = [s for s in sizes if s > size]
  pad = f', or pad them up to {larger[0]} (config.data.pad_to)' if larger else ''
  raise ValueError(
    f"{model} supports image sizes {', '.join(map(str, sizes))}; got {size}: resize or crop the "
    f'images to one of them (config.data.resolution){pad}'
  )


def check_minibatch_std(group_size: Any) -> None:
  """Checks a discriminator's minibatch standard-deviation group size (`minibatch_stddev`).

  Args:
    group_size: examples per group, or 0 for no minibatch standard deviation.

  Raises:
    OptionError: (a ValueError) `group_size` is not an integer >= 0.
  """
  if not isinstance(group_size, int) or group_size < 0:
    raise OptionError(
      f'$minibatch_std must be a group size >= 0 (0: none); got {quote(group_size)}'
    )


def dcgan_bn_scale_init(
  key: jax.Array, shape: tuple[int, ...], dtype: Any = jnp.float32
) -> jax.Array:
  """BatchNorm scales drawn from N(1, 0.02), the DCGAN initialisation (Radford et al. 2015).

  Args:
    key: a JAX random key.
    shape: the scale's shape, `(features,)`.
    dtype: its dtype.

  Returns:
    An array of `shape` and `dtype`.
  """
  return 1.0 + 0.02 * jax.random.normal(key, shape, dtype)


def batch_norm(
  train: bool,
  *,
  scale_init: Callable = nn.initializers.ones,
  dtype: Any = jnp.float32,
  affine: bool = True,
  name: str | None = None,
) -> nn.BatchNorm:
  """Flax BatchNorm over the last axis: batch statistics when training, running ones otherwise.

  Momentum `BN_MOMENTUM` and epsilon 1e-5, PyTorch's defaults (Ioffe and Szegedy 2015). The
  batch variance is the two-pass mean of (x - mean)^2, as PyTorch's: Flax's default one-pass
  E[x^2] - E[x]^2 cancels catastrophically in float32 when a channel's mean is large against
  its spread (1e-5 off float64 for a channel of mean 10 and spread 3; the two-pass form stays
  within 1e-6; `tests/test_models.py`). Every BatchNorm of jaxgan's models is this one.

  Args:
    train: normalise with the batch's statistics and update the running ones when True.
    scale_init: initialiser of the scale `[features]`.
    dtype: the output (compute) dtype; Flax computes the statistics in float32 at least, and
      the scale, offset and running statistics stay float32.
    affine: learn a scale and an offset; False for a conditional BatchNorm, whose affine is
      per class (`conditioning.ConditionalBatchNorm`).
    name: the module's name (None: Flax's automatic one).

  Returns:
    An unbound `nn.BatchNorm`, to be called on `[n, ..., features]` inside a compact module.
  """
  return nn.BatchNorm(
    use_running_average=not train,
    momentum=BN_MOMENTUM,
    epsilon=1e-5,
    dtype=dtype,
    use_bias=affine,
    use_scale=affine,
    scale_init=scale_init,
    use_fast_variance=False,
    name=name,
  )


def layer_norm(x: jax.Array, dtype: Any = jnp.float32) -> jax.Array:
  """LayerNorm over every non-batch axis (H, W, C for images) with per-channel scale and offset.

  This is the critic normalisation of WGAN-GP (Gulrajani et al. 2017): it never mixes examples.
  Called inside a compact module (it creates the parameters).

  Args:
    x: `[n, ...]`.
    dtype: the output (compute) dtype.

  Returns:
    `x`'s shape, in `dtype`.
  """
  return nn.LayerNorm(reduction_axes=tuple(range(1, x.ndim)), feature_axes=-1, dtype=dtype)(x)


def normalize(
  x: jax.Array, norm: str, train: bool, dtype: Any = jnp.float32, **bn_kwargs
) -> jax.Array:
  """Applies the activation normalisation named by `norm`, inside a compact module.

  Args:
    x: `[n, ..., features]`.
    norm: one of `NORMS`; 'spectral' and 'none' normalise no activations (x is returned).
    train: for 'batch': the batch's statistics when True, the running ones otherwise.
    dtype: the output (compute) dtype.
    **bn_kwargs: passed to `batch_norm` (e.g. `scale_init`).

  Returns:
    `x`'s shape.
  """
  if norm == 'batch':
    return batch_norm(train, dtype=dtype, **bn_kwargs)(x)
  if norm == 'layer':
    return layer_norm(x, dtype)
  return x


def apply_layer(
  layer: nn.Module, x: jax.Array, *, spectral: bool, train: bool, sn_steps: int = 1
) -> jax.Array:
  """Calls `layer` on `x`, spectrally normalised when `spectral` (Miyato et al. 2018).

  Flax's `nn.SpectralNorm` divides every parameter with two or more axes (kernels, reshaped to
  `(-1, out_features)`) by its top singular value estimated with `sn_steps` power iterations from
  the stored `u`; the updated `u` and `sigma` are written to `batch_stats` only when `train`.
  The wrapped layer's parameters keep the name and place they would have without it.

  Args:
    layer: an unbound Flax layer (Dense or a convolution).
    x: the layer's input.
    spectral: wrap it in spectral norm.
    train: update the power-iteration vector and sigma (needs `mutable=['batch_stats']`).
    sn_steps: power iterations per call.

  Returns:
    `layer(x)`, with the normalised kernel when `spectral`.
  """
  if not spectral:
    return layer(x)
  return nn.SpectralNorm(layer, n_steps=sn_steps, collection_name='batch_stats')(
    x, update_stats=train
  )


def upsample_nearest(x: jax.Array, factor: int = 2) -> jax.Array:
  """Nearest-neighbour upsampling of images by an integer factor.

  Args:
    x: `[n, h, w, c]`.
    factor: the upsampling factor.

  Returns:
    `[n, h * factor, w * factor, c]` of x's dtype.
  """
  return jnp.repeat(jnp.repeat(x, factor, axis=1), factor, axis=2)


def avg_pool2(x: jax.Array) -> jax.Array:
  """2x2 average pooling with stride 2.

  Args:
    x: `[n, h, w, c]`.

  Returns:
    `[n, h // 2, w // 2, c]` of x's dtype.
  """
  return nn.avg_pool(x, (2, 2), strides=(2, 2))


def minibatch_stddev(x: jax.Array, group_size: int) -> jax.Array:
  """Appends the minibatch standard deviation as one more feature (Karras et al. 2018, ProGAN).

  The examples are split into groups of `group_size` (example i joins group i % (n / size), as
  in StyleGAN); within each group the standard deviation of every feature over the group is
  averaged into one number, which is appended to every member as a constant channel. The critic
  thus sees how varied a group of its inputs is, and a collapsed generator's low variety shows.

  Args:
    x: `[n, ..., c]` activations (images `[n, h, w, c]` or vectors `[n, c]`).
    group_size: examples per group; the whole batch when n is smaller; n must be a multiple of
      the group size used.

  Returns:
    `[n, ..., c + 1]` of x's dtype; the statistic is computed in float32.

  Raises:
    ValueError: `group_size` is not a positive integer, or n is not a multiple of it.

  >>> y = minibatch_stddev(jnp.array([[0.0, 1.0], [2.0, 1.0]]), 2)
  >>> jnp.round(y, 3).tolist()  # stds 1 and 0 (plus the 1e-8 that keeps its gradient finite)
  [[0.0, 1.0, 0.5], [2.0, 1.0, 0.5]]
  """
  if not isinstance(group_size, int) or group_size < 1:
    raise ValueError(f'minibatch_std group size must be a positive integer; got {group_size!r}')
  n = x.shape[0]
  g = min(group_size, n)
  if n % g:
    raise ValueError(
      f'minibatch_std needs a batch that is a multiple of its group size: {n} examples, '
      f'groups of {g}; change the batch size or model.minibatch_std.'
    )
  y = x.astype(jnp.float32).reshape(g, n // g, *x.shape[1:])  # y[j, i] = x[j * n/g + i]
  std = jnp.sqrt(jnp.var(y, axis=0) + 1e-8)  # [n/g, ..., c]: over each group's members
  stat = jnp.mean(std, axis=tuple(range(1, std.ndim)))  # [n/g]
  stat = jnp.tile(stat, g).reshape(n, *([1] * (x.ndim - 1)))  # member x[j*n/g + i] -> group i
  stat = jnp.broadcast_to(stat, (*x.shape[:-1], 1)).astype(x.dtype)
  return jnp.concatenate([x, stat], axis=-1)
