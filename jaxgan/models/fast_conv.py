"""Convolutions whose derivatives of every order are first-order convolutions; lax's maths.

A 2-D convolution y = conv(x, k) is bilinear, and so are its two transposes:

    conv(x, k)              -> y          (lax.conv_general_dilated, NHWC / HWIO)
    input_transpose(dy, k)  -> dx         (the input gradient: a transposed convolution)
    kernel_transpose(x, dy) -> dk         (the kernel gradient)

The derivative of each of the three is again made of the three: for example
<input_transpose(dy, k), c> = <dy, conv(c, k)> = <k, kernel_transpose(c, dy)>, so the cotangent c of
a transposed convolution reaches dy through `conv` and k through `kernel_transpose`. `jax.grad`
applied to lax's convolution does not close the family this way: differentiating the input
gradient of a strided convolution (an lhs-dilated convolution) w.r.t. the kernel gives a
convolution that XLA's CPU backend computes an order of magnitude slower than the equivalent
kernel gradient. That term is in every double backward of a strided-convolution critic (WGAN-GP,
R1, DRAGAN) and in the kernel gradient of every transposed convolution (the DCGAN generator).

Here each member is a `jax.custom_vjp` whose primal is a first-order op and whose VJP calls the
other two members, so every derivative, to any order of reverse mode, is one of the three
first-order ops. The primals are computed by one of two backends (`ConvSpec.backend`):
- 'xla': lax's own ops (the convolution, or its transpose taken with `jax.linear_transpose`);
- 'onednn': oneDNN's convolutions as XLA custom calls (`jaxgan.onednn`, the `cpu` extra), for the
  operands it accepts (`jaxgan.onednn.accepts`: float32 and a few more conditions); lax's ops for
  the others.
The values and FLOPs are those of lax's ops either way. Not supported: forward mode
(`jax.jvp`/`jax.jacfwd`) through these functions, which `jax.custom_vjp` does not allow; use the
plain Flax layers for that (`conv='lax'` in the models).

`Conv` and `ConvTranspose` are drop-in replacements for `flax.linen.Conv` / `ConvTranspose` (same
parameter names, shapes and initialisers) built on this family; `jaxgan.models.conv_impl` picks
them or Flax's for a model.

  >>> import jax, jax.numpy as jnp
  >>> x, k = jnp.ones((2, 8, 8, 3)), jnp.ones((4, 4, 3, 5))
  >>> conv2d(x, k, strides=(2, 2)).shape
  (2, 4, 4, 5)
  >>> f = lambda k: jnp.sum(jax.grad(lambda x: jnp.sum(conv2d(x, k, (2, 2)) ** 2))(x) ** 2)
  >>> jax.eval_shape(jax.grad(f), k).shape  # a gradient penalty's kernel gradient
  (4, 4, 3, 5)
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax import lax

from jaxgan import onednn

BACKENDS = ('xla', 'onednn')
_DIMENSION_NUMBERS = ('NHWC', 'HWIO', 'NHWC')


class ConvSpec(NamedTuple):
  """Static description of one convolution: enough to recover every operand's shape.

  Attributes:
    strides: `(sh, sw)`.
    padding: `((top, bottom), (left, right))` in pixels (negative crops, as in lax).
    in_spatial: `(h, w)` of the convolution's input.
    kernel_spatial: `(kh, kw)`.
    backend: who computes the three ops, one of `BACKENDS`: 'xla' (lax's) or 'onednn'.
  """

  strides: tuple[int, int]
  padding: tuple[tuple[int, int], tuple[int, int]]
  in_spatial: tuple[int, int]
  kernel_spatial: tuple[int, int]
  backend: str = 'xla'


def _lax_conv(x, k, spec: ConvSpec):
  return lax.conv_general_dilated(
    x, k, spec.strides, spec.padding, dimension_numbers=_DIMENSION_NUMBERS
  )


def _lax_input_transpose(dy, k, spec: ConvSpec):
  x = jax.ShapeDtypeStruct((dy.shape[0], *spec.in_spatial, k.shape[2]), dy.dtype)
  return jax.linear_transpose(lambda x: _lax_conv(x, k, spec), x)(dy)[0]


# Rows (examples x output pixels) per batch chunk of a kernel gradient: XLA:CPU's convolution
# slows down when it contracts over many more rows than this, so long sums are cut into batch
# chunks whose partial gradients are added.
_KERNEL_T_ROWS = 8192


def _lax_kernel_transpose(x, dy, spec: ConvSpec):
  k = jax.ShapeDtypeStruct((*spec.kernel_spatial, x.shape[-1], dy.shape[-1]), x.dtype)
  n, rows = dy.shape[0], dy.shape[0] * dy.shape[1] * dy.shape[2]
  chunks = 1
  while n % (2 * chunks) == 0 and rows // (2 * chunks) >= _KERNEL_T_ROWS:
    chunks *= 2
  return sum(
    jax.linear_transpose(lambda k, xs=xs: _lax_conv(xs, k, spec), k)(d)[0]
    for xs, d in zip(jnp.split(x, chunks), jnp.split(dy, chunks), strict=True)
  )


def _onednn(op: str, spec: ConvSpec, a, b):
  """The `jaxgan.onednn` module when it computes this op, else None (lax computes it)."""
  if spec.backend != 'onednn':
    return None
  return onednn if onednn.accepts(op, a, b, spec.padding) else None


@functools.partial(jax.custom_vjp, nondiff_argnums=(2,))
def conv(x: jax.Array, k: jax.Array, spec: ConvSpec) -> jax.Array:
  """`lax.conv_general_dilated(x, k, spec.strides, spec.padding)`, NHWC / HWIO.

  Args:
    x: images `[n, *spec.in_spatial, c]`.
    k: kernel `[*spec.kernel_spatial, c, o]`, of x's dtype.
    spec: the convolution (static).

  Returns:
    y `[n, out_h, out_w, o]`, of x's dtype.
  """
  backend = _onednn('conv', spec, x, k)
  if backend:
    return backend.conv(x, k, strides=spec.strides, padding=spec.padding)
  return _lax_conv(x, k, spec)


@functools.partial(jax.custom_vjp, nondiff_argnums=(2,))
def input_transpose(dy: jax.Array, k: jax.Array, spec: ConvSpec) -> jax.Array:
  """The transpose of `conv(., k, spec)` applied to `dy`: the input gradient of the convolution.

  Args:
    dy: cotangent of the convolution's output `[n, out_h, out_w, o]`.
    k: kernel `[*spec.kernel_spatial, c, o]`, of dy's dtype.
    spec: the convolution (static).

  Returns:
    dx `[n, *spec.in_spatial, c]`, of dy's dtype.
  """
  backend = _onednn('input_transpose', spec, dy, k)
  if backend:
    return backend.input_transpose(
      dy, k, strides=spec.strides, padding=spec.padding, in_spatial=spec.in_spatial
    )
  return _lax_input_transpose(dy, k, spec)


@functools.partial(jax.custom_vjp, nondiff_argnums=(2,))
def kernel_transpose(x: jax.Array, dy: jax.Array, spec: ConvSpec) -> jax.Array:
  """The transpose of `conv(x, ., spec)` applied to `dy`: the kernel gradient of the convolution.

  Args:
    x: the convolution's input `[n, *spec.in_spatial, c]`.
    dy: cotangent of its output `[n, out_h, out_w, o]`, of x's dtype.
    spec: the convolution (static).

  Returns:
    dk `[*spec.kernel_spatial, c, o]`, of x's dtype.
  """
  backend = _onednn('kernel_transpose', spec, x, dy)
  if backend:
    return backend.kernel_transpose(
      x, dy, strides=spec.strides, padding=spec.padding, kernel_spatial=spec.kernel_spatial
    )
  return _lax_kernel_transpose(x, dy, spec)


# The forward rules call the functions themselves, not their bodies: a derivative taken outside
# this one (the outer grad of a gradient penalty) differentiates the forward rule, and must find
# the family there too (oneDNN's custom calls have no derivative of their own).
conv.defvjp(
  lambda x, k, spec: (conv(x, k, spec), (x, k)),
  lambda spec, res, ct: (input_transpose(ct, res[1], spec), kernel_transpose(res[0], ct, spec)),
)
input_transpose.defvjp(
  lambda dy, k, spec: (input_transpose(dy, k, spec), (dy, k)),
  lambda spec, res, ct: (conv(ct, res[1], spec), kernel_transpose(ct, res[0], spec)),
)
kernel_transpose.defvjp(
  lambda x, dy, spec: (kernel_transpose(x, dy, spec), (x, dy)),
  lambda spec, res, ct: (input_transpose(res[1], ct, spec), conv(res[0], ct, spec)),
)


def _spec(in_spatial, kernel_spatial, strides, padding, backend) -> ConvSpec:
  if backend not in BACKENDS:
    raise ValueError(f"backend must be one of {', '.join(map(repr, BACKENDS))}; got {backend!r}")
  if isinstance(padding, str):
    padding = lax.padtype_to_pads(in_spatial, kernel_spatial, strides, padding)
  return ConvSpec(
    tuple(strides),
    tuple(tuple(int(p) for p in pair) for pair in padding),
    tuple(in_spatial),
    tuple(kernel_spatial),
    backend,
  )


def conv2d(
  x: jax.Array,
  kernel: jax.Array,
  strides: Sequence[int] = (1, 1),
  padding: str | Sequence[tuple[int, int]] = 'SAME',
  backend: str = 'xla',
) -> jax.Array:
  """`lax.conv_general_dilated(x, kernel, strides, padding)` for NHWC `x` and HWIO `kernel`.

  Args:
    x: images `[n, h, w, c]`.
    kernel: `[kh, kw, c, o]`, of x's dtype.
    strides: `(sh, sw)`.
    padding: 'SAME', 'VALID' or `((top, bottom), (left, right))`.
    backend: one of `BACKENDS` ('xla' or 'onednn').

  Returns:
    `[n, out_h, out_w, o]` of x's dtype ('SAME': `out_h = ceil(h / sh)`).

  Raises:
    ValueError: an unknown backend.
  """
  return conv(x, kernel, _spec(x.shape[1:3], kernel.shape[:2], strides, padding, backend))


def conv2d_transpose(
  x: jax.Array,
  kernel: jax.Array,
  strides: Sequence[int] = (1, 1),
  padding: str = 'SAME',
  backend: str = 'xla',
) -> jax.Array:
  """`lax.conv_transpose(x, kernel, strides, padding)` (Flax's ConvTranspose), NHWC / HWIO.

  A transposed convolution with kernel K is the input gradient of the convolution whose kernel is
  K flipped in space with its channel axes swapped, and whose input has this function's output
  size. Explicit padding means something else for the two functions, so only the two named
  paddings are accepted.

  Args:
    x: `[n, h, w, c]`.
    kernel: `[kh, kw, c, o]`, of x's dtype.
    strides: `(sh, sw)`.
    padding: 'SAME' or 'VALID'.
    backend: one of `BACKENDS` ('xla' or 'onednn').

  Returns:
    `[n, out_h, out_w, o]` of x's dtype: `out_h = h * sh` for 'SAME', `(h - 1) * sh + kh` for
    'VALID'.

  Raises:
    ValueError: explicit padding, or an unknown backend.
  """
  if padding not in ('SAME', 'VALID'):
    raise ValueError(f"conv2d_transpose supports padding 'SAME' or 'VALID'; got {padding!r}")
  ks = kernel.shape[:2]
  if padding == 'SAME':
    out = tuple(n * s for n, s in zip(x.shape[1:3], strides, strict=True))
  else:
    out = tuple((n - 1) * s + k for n, s, k in zip(x.shape[1:3], strides, ks, strict=True))
  forward_kernel = jnp.flip(kernel, (0, 1)).swapaxes(2, 3)
  return input_transpose(x, forward_kernel, _spec(out, ks, strides, padding, backend))


class _ConvBase(nn.Module):
  features: int
  kernel_size: Sequence[int] = (3, 3)
  strides: Sequence[int] = (1, 1)
  padding: Any = 'SAME'
  use_bias: bool = True
  kernel_init: Callable[..., Any] = nn.initializers.lecun_normal()
  bias_init: Callable[..., Any] = nn.initializers.zeros_init()
  dtype: Any = None
  backend: str = 'xla'

  def _apply(self, x, op):
    if self.dtype is not None:
      x = x.astype(self.dtype)
    kernel = self.param(
      'kernel', self.kernel_init, (*self.kernel_size, x.shape[-1], self.features), jnp.float32
    )
    y = op(x, kernel.astype(x.dtype), tuple(self.strides), self.padding, self.backend)
    if self.use_bias:
      y = y + self.param('bias', self.bias_init, (self.features,), jnp.float32).astype(y.dtype)
    return y


class Conv(_ConvBase):
  """`flax.linen.Conv` (2-D, NHWC) with derivatives through the `conv` family.

  Attributes:
    features: output channels o.
    kernel_size: `(kh, kw)`.
    strides: `(sh, sw)`.
    padding: 'SAME', 'VALID' or `((top, bottom), (left, right))`.
    use_bias: whether to add a bias `[o]`.
    kernel_init: initialiser of the kernel `[kh, kw, c, o]` (float32).
    bias_init: initialiser of the bias (float32).
    dtype: compute dtype (None: the input's); the parameters stay float32 and are cast to it.
    backend: one of `BACKENDS`: who computes the convolutions ('xla' or 'onednn').
  """

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    """Convolves `x`.

    Args:
      x: `[n, h, w, c]`.

    Returns:
      `[n, out_h, out_w, features]` in the compute dtype.
    """
    return self._apply(x, conv2d)


class ConvTranspose(_ConvBase):
  """`flax.linen.ConvTranspose` (2-D, NHWC) built on `input_transpose`.

  Attributes:
    features: output channels o.
    kernel_size: `(kh, kw)`.
    strides: `(sh, sw)`.
    padding: 'SAME' or 'VALID'.
    use_bias: whether to add a bias `[o]`.
    kernel_init: initialiser of the kernel `[kh, kw, c, o]` (float32).
    bias_init: initialiser of the bias (float32).
    dtype: compute dtype (None: the input's); the parameters stay float32 and are cast to it.
    backend: one of `BACKENDS`: who computes the convolutions ('xla' or 'onednn').
  """

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    """Applies the transposed convolution to `x`.

    Args:
      x: `[n, h, w, c]`.

    Returns:
      `[n, h * sh, w * sw, features]` ('SAME') in the compute dtype.

    Raises:
      ValueError: explicit padding.
    """
    return self._apply(x, conv2d_transpose)
