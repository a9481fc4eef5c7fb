"""Reformulated convolutions that XLA's CPU backend runs faster, numerically equivalent to Flax's.

`SubPixelConvTranspose` is a drop-in for `flax.linen.ConvTranspose(features, (4, 4),
strides=(2, 2), padding='SAME')` (the DCGAN upsampling layer): same parameters (`kernel` of shape
(4, 4, in, out), `bias`), same outputs and derivatives, computed as ONE stride-1 3x3 convolution to
`4 * out` channels followed by depth-to-space (a "sub-pixel" convolution, Shi et al. 2016).

Why it is the same function. With lax's SAME padding for k=4, s=2 (2 on each side of the dilated
input), one spatial axis of the transposed convolution is
    y[2m]     = x[m-1] K[0] + x[m]   K[2]
    y[2m + 1] = x[m]   K[1] + x[m+1] K[3]
(x zero outside the image). So each output phase p in {0, 1} is a 3-tap convolution of x at
offsets (-1, 0, +1) with taps (K0, K2, 0) for p = 0 and (0, K1, K3) for p = 1; in 2-D the four
phases (pr, pc) stack on the output-channel axis of one 3x3 kernel gathered from K, and
depth-to-space interleaves them. Gradients reach `kernel` through the gather.

Why it is faster on CPU: XLA's CPU backend computes the kernel gradient of a stride-2 transposed
convolution (an lhs-dilated convolution) very slowly; a plain stride-1 convolution and a reshape
have fast derivatives (GUIDE.md section 4). The 3x3 kernel is 5/9 zeros, so it spends 2.25x the
multiply-adds of the transposed convolution; it still wins on CPU. On GPU/TPU keep
`nn.ConvTranspose`.
`DCGANGenerator(upsample=...)` chooses between the two ('auto': sub-pixel on CPU only).
"""

from __future__ import annotations

from typing import Any, Callable

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

# For one spatial axis: index into the zero-padded 4-tap kernel (index 4 is the zero tap) used by
# output phase p at input offset a - 1, a in {0, 1, 2}.
_TAPS = np.array([[0, 2, 4],   # even outputs: x[m-1] K0 + x[m] K2
                  [4, 1, 3]])  # odd outputs:  x[m] K1 + x[m+1] K3


def subpixel_kernel(kernel: jax.Array) -> jax.Array:
  """(4, 4, I, O) transposed-conv kernel -> (3, 3, I, 4 * O) stride-1 kernel, phases (pr, pc, O)."""
  kh, kw, i, o = kernel.shape
  if (kh, kw) != (4, 4):
    raise ValueError(f'subpixel_kernel needs a 4x4 kernel; got {kernel.shape}')
  padded = jnp.pad(kernel, ((0, 1), (0, 1), (0, 0), (0, 0)))
  rows = _TAPS[:, None, :, None]  # (pr, 1, a_r, 1)
  cols = _TAPS[None, :, None, :]  # (1, pc, 1, a_c)
  w = padded[rows, cols]  # (pr, pc, a_r, a_c, I, O)
  return jnp.transpose(w, (2, 3, 4, 0, 1, 5)).reshape(3, 3, i, 4 * o)


def depth_to_space(y: jax.Array, out_features: int) -> jax.Array:
  """(N, H, W, 4 * O) with channels ordered (pr, pc, O) -> (N, 2H, 2W, O)."""
  n, h, w, _ = y.shape
  y = y.reshape(n, h, w, 2, 2, out_features)
  return jnp.transpose(y, (0, 1, 3, 2, 4, 5)).reshape(n, 2 * h, 2 * w, out_features)


def subpixel_conv_transpose(x: jax.Array, kernel: jax.Array) -> jax.Array:
  """`lax.conv_transpose(x, kernel, (2, 2), 'SAME')` for a 4x4 kernel, NHWC / HWIO."""
  y = jax.lax.conv_general_dilated(
      x, subpixel_kernel(kernel).astype(x.dtype), window_strides=(1, 1),
      padding=((1, 1), (1, 1)), dimension_numbers=('NHWC', 'HWIO', 'NHWC'))
  return depth_to_space(y, kernel.shape[-1])


class SubPixelConvTranspose(nn.Module):
  """`nn.ConvTranspose(features, (4, 4), strides=(2, 2), padding='SAME')`, computed sub-pixel.

  Same parameter names, shapes and initialisers as Flax's module, so the two are interchangeable
  on the same parameters. Only the 4x4 / stride 2 / SAME case (DCGAN's) is supported.
  """

  features: int
  kernel_size: tuple[int, int] = (4, 4)
  strides: tuple[int, int] = (2, 2)
  padding: str = 'SAME'
  use_bias: bool = True
  kernel_init: Callable[..., Any] = nn.initializers.lecun_normal()
  bias_init: Callable[..., Any] = nn.initializers.zeros_init()
  dtype: Any = None  # compute dtype (None: the input's); parameters stay float32

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    if self.dtype is not None:
      x = x.astype(self.dtype)
    if (tuple(self.kernel_size), tuple(self.strides), self.padding) != ((4, 4), (2, 2), 'SAME'):
      raise ValueError('SubPixelConvTranspose supports kernel_size (4, 4), strides (2, 2) and '
                       f"padding 'SAME' only; got {self.kernel_size}, {self.strides}, "
                       f'{self.padding!r}')
    kernel = self.param('kernel', self.kernel_init, (4, 4, x.shape[-1], self.features),
                        jnp.float32)
    y = subpixel_conv_transpose(x, kernel)
    if self.use_bias:
      y = y + self.param('bias', self.bias_init, (self.features,), jnp.float32).astype(y.dtype)
    return y
