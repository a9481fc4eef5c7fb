"""R3GAN's resampling filters and grouped convolutions (official `Resamplers.py`, `Networks.py`).

Huang, Gokaslan, Kuleshov and Tompkin, NeurIPS 2024; used by `jaxgan.models.r3gan`, which
re-exports `upsample`, `downsample` and `conv2d`.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxgan.models import conv_impl, fast_conv

# The interpolative [1, 2, 1] filter (official CreateLowpassKernel): [1, 2, 1] * [1, 1] / 8.
_FILTER = (0.125, 0.375, 0.375, 0.125)
_NHWC = ('NHWC', 'HWIO', 'NHWC')


def _taps(x: jax.Array, axis: int, count: int, stride: int) -> list[jax.Array]:
  # x zero-padded by one on both sides of `axis`, then `count` windows of it, one per filter tap.
  p = jnp.pad(x, [(1, 1) if a == axis else (0, 0) for a in range(x.ndim)])
  n = (x.shape[axis] - 1) // stride + 1
  return [jax.lax.slice_in_dim(p, t, t + stride * (n - 1) + 1, stride, axis) for t in range(count)]


def upsample(x: jax.Array) -> jax.Array:
  """Upsamples x2 with the [1, 2, 1] interpolative filter (official `Resamplers.py`).

  StyleGAN2's `upsample2d` with [1, 3, 3, 1], polyphase: per axis output 2i is
  (x[i-1] + 3 x[i]) / 4 and output 2i+1 is (3 x[i] + x[i+1]) / 4, x zero outside.

  Args:
    x: `[n, h, w, c]`.

  Returns:
    `[n, 2h, 2w, c]` of x's dtype.
  """
  for axis in (1, 2):
    prev, mid, nxt = _taps(x, axis, 3, 1)
    x = jnp.stack([0.25 * prev + 0.75 * mid, 0.75 * mid + 0.25 * nxt], axis=axis + 1)
    x = x.reshape(*x.shape[:axis], -1, *x.shape[axis + 2 :])
  return x


def downsample(x: jax.Array) -> jax.Array:
  """Downsamples x2 with the [1, 2, 1] interpolative filter (official `Resamplers.py`).

  [1, 3, 3, 1] / 8 per axis, zero-padded by one, every second sample (StyleGAN2's
  `downsample2d`): output i is (x[2i-1] + 3 x[2i] + 3 x[2i+1] + x[2i+2]) / 8.

  Args:
    x: `[n, h, w, c]`, h and w even.

  Returns:
    `[n, h / 2, w / 2, c]` of x's dtype.
  """
  for axis in (1, 2):
    x = sum(w * tap for w, tap in zip(_FILTER, _taps(x, axis, 4, 2), strict=True))
  return x


def _block_diagonal(kernel: jax.Array, groups: int) -> jax.Array:
  # The dense kernel [kh, kw, c, o] equal to a grouped one [kh, kw, c / groups, o]: the groups'
  # kernels on the block diagonal. CPU libraries run it faster than the grouped form, zeros and all.
  kh, kw, i, o = kernel.shape
  k = kernel.reshape(kh, kw, i, groups, o // groups)
  dense = jnp.einsum('hwigo,Gg->hwGigo', k, jnp.eye(groups, dtype=kernel.dtype))
  return dense.reshape(kh, kw, groups * i, o)


def conv2d(x: jax.Array, kernel: jax.Array, groups: int = 1, conv: str = 'auto') -> jax.Array:
  """A 'SAME', stride-1 convolution in `groups` groups (`lax`'s `feature_group_count`).

  Args:
    x: `[n, h, w, c]`, c a multiple of `groups`.
    kernel: `[kh, kw, c / groups, o]` of x's dtype; output channel j is in group j // (o / groups).
    groups: channels split into this many groups, each convolved on its own.
    conv: 'auto', 'onednn', 'xla' or 'lax' (`conv_impl`); 'lax' convolves grouped, the others
      with the equal dense (block-diagonal) kernel.

  Returns:
    `[n, h, w, o]` of x's dtype.
  """
  backend = conv_impl.resolve(conv)
  if backend == 'lax':
    return jax.lax.conv_general_dilated(x, kernel, (1, 1), 'SAME', None, None, _NHWC, groups)
  if groups > 1:
    kernel = _block_diagonal(kernel, groups)
  return fast_conv.conv2d(x, kernel, padding='SAME', backend=backend)
