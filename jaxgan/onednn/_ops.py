"""The three first-order convolution ops as calls of oneDNN's FFI targets (float32, NHWC / HWIO).

Padding is lax's explicit form `((top, bottom), (left, right))`, non-negative. These functions
have no derivatives of their own: `jaxgan.models.fast_conv` defines every derivative from them.
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from jaxgan.onednn import _library

Padding = Sequence[tuple[int, int]]

OPS = ('conv', 'input_transpose', 'kernel_transpose')

# oneDNN's backward-data convolution is slower than XLA's when the input has few channels (the
# image layer of a DCGAN critic); its other ops are not.
_MIN_INPUT_GRADIENT_CHANNELS = 16

# When a kernel gradient runs as a forward convolution (see `kernel_transpose`): it pays when the
# kernel is large and the sum over images and pixels short, and it needs enough of x's channels
# (the batch of that forward convolution) to cut into one slice per thread.
_AS_FORWARD_MIN_TAPS = 16  # kernel taps (kh * kw)
_AS_FORWARD_MAX_ROWS = 64 * 64  # terms of the sum per kernel entry (dy's images x pixels)
_AS_FORWARD_MIN_CHANNELS = 16  # x's channels


def accepts(op: str, a: jax.Array, b: jax.Array, padding: Padding) -> bool:
  """Whether oneDNN should compute `op` on these operands (else the caller uses XLA's op).

  Args:
    op: one of `OPS`: 'conv' (operands x, k), 'input_transpose' (dy, k) or 'kernel_transpose'
      (x, dy).
    a: the first operand, NHWC.
    b: the second operand: the HWIO kernel, or dy `[n, out_h, out_w, out_c]`.
    padding: `((top, bottom), (left, right))` in pixels.

  Returns:
    True when both operands are non-empty float32, the padding is non-negative (lax also allows
    negative padding, which crops; oneDNN does not), and for 'input_transpose' the convolution's
    input has at least 16 channels (oneDNN's backward-data is the slower one below that).

  Raises:
    ValueError: an unknown `op`.
  """
  if op not in OPS:
    raise ValueError(f"op must be one of {', '.join(map(repr, OPS))}; got {op!r}")
  if not all(o.dtype == jnp.float32 and o.size for o in (a, b)):
    return False
  if min(p for pair in padding for p in pair) < 0:
    return False
  return op != 'input_transpose' or b.shape[2] >= _MIN_INPUT_GRADIENT_CHANNELS


def _call(target: str, shape: tuple[int, ...], a, b, strides, padding, dilation=(1, 1)):
  _library.require()
  out = jax.ShapeDtypeStruct(shape, a.dtype)
  return jax.ffi.ffi_call(target, out, vmap_method='sequential')(
    a,
    b,
    strides=np.asarray(strides, np.int64),
    dilation=np.asarray(dilation, np.int64),
    padding=np.asarray([p for pair in padding for p in pair], np.int64),
  )


def _conv(x, k, strides, padding, dilation, target):
  (sh, sw), ((pt, pb), (pl, pr)), (dh, dw) = strides, padding, dilation
  h = (x.shape[1] + pt + pb - (k.shape[0] - 1) * dh - 1) // sh + 1
  w = (x.shape[2] + pl + pr - (k.shape[1] - 1) * dw - 1) // sw + 1
  return _call(target, (x.shape[0], h, w, k.shape[3]), x, k, strides, padding, dilation)


def conv(
  x: jax.Array,
  k: jax.Array,
  *,
  strides: Sequence[int],
  padding: Padding,
  dilation: Sequence[int] = (1, 1),
) -> jax.Array:
  """`lax.conv_general_dilated(x, k, strides, padding, rhs_dilation=dilation)`, by oneDNN.

  Args:
    x: images `[n, h, w, c]`, float32.
    k: kernel `[kh, kw, c, o]`, float32.
    strides: `(sh, sw)`.
    padding: `((top, bottom), (left, right))`, non-negative.
    dilation: kernel dilation `(dh, dw)`, as lax's (1: no gaps).

  Returns:
    `[n, out_h, out_w, o]` float32, `out_h = (h + top + bottom - (kh - 1) * dh - 1) // sh + 1`.

  Raises:
    ImportError: the `cpu` extra is not installed.
    RuntimeError: not the CPU backend, or the library cannot be built.
  """
  return _conv(x, k, tuple(strides), tuple(padding), tuple(dilation), 'JaxganConvForward')


def input_transpose(
  dy: jax.Array,
  k: jax.Array,
  *,
  strides: Sequence[int],
  padding: Padding,
  in_spatial: Sequence[int],
) -> jax.Array:
  """The input gradient of `conv(., k, strides=strides, padding=padding)` at cotangent `dy`.

  Args:
    dy: cotangent of the convolution's output `[n, out_h, out_w, o]`, float32.
    k: kernel `[kh, kw, c, o]`, float32.
    strides: `(sh, sw)` of the convolution.
    padding: `((top, bottom), (left, right))` of the convolution, non-negative.
    in_spatial: `(h, w)` of the convolution's input (a strided convolution maps several input
      sizes to one output size).

  Returns:
    dx `[n, h, w, c]`, float32.

  Raises:
    ImportError: the `cpu` extra is not installed.
    RuntimeError: not the CPU backend, or the library cannot be built.
  """
  return _call(
    'JaxganConvInputGradient',
    (dy.shape[0], *in_spatial, k.shape[2]),
    dy,
    k,
    tuple(strides),
    tuple(padding),
  )


def kernel_transpose(
  x: jax.Array,
  dy: jax.Array,
  *,
  strides: Sequence[int],
  padding: Padding,
  kernel_spatial: Sequence[int],
) -> jax.Array:
  """The kernel gradient of `conv(x, ., strides=strides, padding=padding)` at cotangent `dy`.

  oneDNN's backward-weights op is its slowest, but a kernel gradient is itself a forward
  convolution:

      dk[a, b, i, o] = sum_{n, p, q} x[n, s p + a - pad, s q + b - pad, i] dy[n, p, q, o]

  is `conv(x', dy')` with x' = x with channels and batch swapped `[c, h, w, n]`, dy' = dy's pixels
  as a kernel dilated by the stride `[out_h, out_w, n, o]`, stride 1 and the same padding; its
  output can have up to `stride - 1` extra rows and columns, which are cut off. That form is used
  for kernels of at least 16 taps whose sum is short (at most 64 x 64 images x pixels) and x of
  at least 16 channels, where it is the faster one; it runs under its own custom-call name so that
  profiles tell the two apart.

  Args:
    x: the convolution's input `[n, h, w, c]`, float32.
    dy: cotangent of its output `[n, out_h, out_w, o]`, float32.
    strides: `(sh, sw)` of the convolution.
    padding: `((top, bottom), (left, right))` of the convolution, non-negative.
    kernel_spatial: `(kh, kw)`.

  Returns:
    dk `[kh, kw, c, o]`, float32.

  Raises:
    ImportError: the `cpu` extra is not installed.
    RuntimeError: not the CPU backend, or the library cannot be built.
  """
  kh, kw = kernel_spatial
  strides, padding = tuple(strides), tuple(padding)
  if (
    kh * kw >= _AS_FORWARD_MIN_TAPS
    and dy.shape[0] * dy.shape[1] * dy.shape[2] <= _AS_FORWARD_MAX_ROWS
    and x.shape[3] >= _AS_FORWARD_MIN_CHANNELS
  ):
    dk = _conv(
      x.transpose(3, 1, 2, 0),
      dy.transpose(1, 2, 0, 3),
      (1, 1),
      padding,
      dilation=strides,
      target='JaxganConvKernelGradientAsForward',
    )
    return dk[:, :kh, :kw].transpose(1, 2, 0, 3)
  return _call(
    'JaxganConvKernelGradient', (kh, kw, x.shape[3], dy.shape[3]), x, dy, strides, padding
  )
