"""Small pieces shared by the model zoo: normalisation choices, spectral norm, resampling.

All non-parameter state (BatchNorm statistics, spectral-norm `u` vectors and `sigma`) lives in the
`batch_stats` collection, so a module is always applied as
`module.apply(variables, x, train=train, mutable=['batch_stats'])` (or without `mutable` in eval).
"""

from __future__ import annotations

from typing import Any, Callable

import flax.linen as nn
import jax
import jax.numpy as jnp

# Discriminator normalisations, in the order they are listed in error messages.
NORMS = ('batch', 'layer', 'spectral', 'none')

# BatchNorm momentum of the running statistics (PyTorch's 0.1 in Flax's convention).
BN_MOMENTUM = 0.9


def check_norm(norm: str, model: str) -> None:
  """Raises ValueError unless `norm` is one of `NORMS`."""
  if norm not in NORMS:
    raise ValueError(
        f"{model} discriminator norm must be one of {', '.join(map(repr, NORMS))}; got {norm!r}")


def check_activation(activation: str, valid: tuple[str, ...], what: str) -> None:
  if activation not in valid:
    raise ValueError(f"{what} must be one of {', '.join(map(repr, valid))}; got {activation!r}")


def dcgan_bn_scale_init(key, shape, dtype=jnp.float32):
  """BatchNorm scale ~ N(1, 0.02), the DCGAN reference initialisation (Radford et al. 2015)."""
  return 1.0 + 0.02 * jax.random.normal(key, shape, dtype)


def batch_norm(train: bool, *, scale_init: Callable = nn.initializers.ones,
               dtype: Any = jnp.float32) -> nn.BatchNorm:
  """Flax BatchNorm over the last axis: batch statistics when training, running ones otherwise.

  `dtype` is the output (compute) dtype; Flax computes the statistics in float32 at least, and
  the scale, offset and running statistics stay float32.
  """
  return nn.BatchNorm(use_running_average=not train, momentum=BN_MOMENTUM, epsilon=1e-5, dtype=dtype,
                      scale_init=scale_init)


def layer_norm(x: jax.Array, dtype: Any = jnp.float32) -> jax.Array:
  """LayerNorm over every non-batch axis (H, W, C for images) with per-channel scale and offset.

  This is the critic normalisation of WGAN-GP (Gulrajani et al. 2017): it never mixes examples.
  """
  return nn.LayerNorm(reduction_axes=tuple(range(1, x.ndim)), feature_axes=-1, dtype=dtype)(x)


def normalize(x: jax.Array, norm: str, train: bool, dtype: Any = jnp.float32,
              **bn_kwargs) -> jax.Array:
  """Applies the activation normalisation named by `norm` ('spectral' and 'none' have none)."""
  if norm == 'batch':
    return batch_norm(train, dtype=dtype, **bn_kwargs)(x)
  if norm == 'layer':
    return layer_norm(x, dtype)
  return x


def apply_layer(layer: nn.Module, x: jax.Array, *, spectral: bool, train: bool,
                sn_steps: int = 1) -> jax.Array:
  """Calls `layer` on `x`, spectrally normalised when `spectral` (Miyato et al. 2018).

  Flax's `nn.SpectralNorm` divides every parameter with two or more axes (kernels, reshaped to
  `(-1, out_features)`) by its top singular value estimated with `sn_steps` power iterations from
  the stored `u`; the updated `u` and `sigma` are written to `batch_stats` only when `train`.
  The wrapped layer's parameters keep the name and place they would have without it.
  """
  if not spectral:
    return layer(x)
  return nn.SpectralNorm(layer, n_steps=sn_steps, collection_name='batch_stats')(
      x, update_stats=train)


def upsample_nearest(x: jax.Array, factor: int = 2) -> jax.Array:
  """Nearest-neighbour upsampling of NHWC images by an integer factor."""
  return jnp.repeat(jnp.repeat(x, factor, axis=1), factor, axis=2)


def avg_pool2(x: jax.Array) -> jax.Array:
  """2x2 average pooling with stride 2 (NHWC)."""
  return nn.avg_pool(x, (2, 2), strides=(2, 2))
