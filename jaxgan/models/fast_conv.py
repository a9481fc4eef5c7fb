"""Convolutions whose derivatives of every order run at the CPU's best speed; same maths as lax's.

A 2-D convolution y = conv(x, k) is bilinear, and so are its two transposes:

    conv(x, k)              -> y          (lax.conv_general_dilated, NHWC / HWIO)
    input_transpose(dy, k)  -> dx         (the input gradient: a transposed convolution)
    kernel_transpose(x, dy) -> dk         (the kernel gradient)

The derivative of each of the three is again made of the three: for example
<input_transpose(dy, k), c> = <dy, conv(c, k)> = <k, kernel_transpose(c, dy)>, so the cotangent c of
a transposed convolution reaches dy through `conv` and k through `kernel_transpose`. `jax.grad`
applied to lax's convolution does not close the family this way: differentiating the input
gradient (a stride-2 convolution's input gradient is an lhs-dilated convolution) w.r.t. the kernel
gives a convolution that XLA's CPU backend computes 10-20x slower than the equivalent kernel
gradient (DCGAN critic, batch 64: 123-152 ms vs 6-10 ms per layer). That term is in every
double backward of a strided-convolution critic (WGAN-GP, R1, DRAGAN) and in the kernel gradient
of every transposed convolution (the DCGAN generator).

Here each member is a `jax.custom_vjp` whose primal is a first-order op and whose VJP calls the
other two members. So every derivative, to any order of reverse mode, is one of the three fast
first-order ops. The primals are computed by one of two backends (`ConvSpec.backend`):
- 'xla': lax's own ops (the convolution, or its transpose taken with `jax.linear_transpose`);
  derivatives agree with `jax.grad` of lax's to 1e-9 in float64 (tests/test_fast_conv.py, first
  to third order);
- 'onednn': oneDNN's forward, backward-data and backward-weights convolutions as XLA custom calls
  (`jaxgan.models.onednn`), for float32 on the CPU: 1.1-1.8x XLA:CPU's speed on DCGAN and ResNet
  layers. Other dtypes, and input gradients into fewer than 16 channels, stay on lax's ops.
The values and FLOPs are those of lax's ops either way. Not supported: forward mode
(`jax.jvp`/`jax.jacfwd`) through these functions, which `jax.custom_vjp` does not allow; use the
plain Flax layers for that (`conv='lax'` in the models).

`Conv` and `ConvTranspose` are drop-in replacements for `flax.linen.Conv` / `ConvTranspose` (same
parameter names, shapes and initialisers) built on this family. The slow derivative was measured
on XLA:CPU only; GPU/TPU backends have their own convolution libraries, so the models choose per
backend (`conv_modules`; 'auto': oneDNN's on CPU where it builds, else XLA's, Flax's elsewhere).
"""

from __future__ import annotations

import functools
import warnings
from typing import Any, Callable, NamedTuple, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax import lax

from jaxgan.models import onednn

_DIMENSION_NUMBERS = ('NHWC', 'HWIO', 'NHWC')


class ConvSpec(NamedTuple):
  """Static description of one convolution: enough to recover every operand's shape."""
  strides: tuple[int, int]
  padding: tuple[tuple[int, int], tuple[int, int]]
  in_spatial: tuple[int, int]      # (H, W) of the convolution's input
  kernel_spatial: tuple[int, int]  # (kh, kw)
  backend: str = 'xla'             # who computes the three ops: 'xla' (lax's) or 'onednn'


def _lax_conv(x, k, spec: ConvSpec):
  return lax.conv_general_dilated(x, k, spec.strides, spec.padding,
                                  dimension_numbers=_DIMENSION_NUMBERS)


def _lax_input_transpose(dy, k, spec: ConvSpec):
  x = jax.ShapeDtypeStruct((dy.shape[0], *spec.in_spatial, k.shape[2]), dy.dtype)
  return jax.linear_transpose(lambda x: _lax_conv(x, k, spec), x)(dy)[0]


# Rows (examples x output pixels) per batch chunk of a kernel gradient: XLA:CPU contracts over
# up to about this many rows at its conv speed, and drops to 40-60% of it beyond (a 3x3, 128 ->
# 128 channel kernel gradient on 64 images of 32x32: 54 GFLOP/s in one piece, 133 in 8 chunks).
_KERNEL_T_ROWS = 8192


def _lax_kernel_transpose(x, dy, spec: ConvSpec):
  k = jax.ShapeDtypeStruct((*spec.kernel_spatial, x.shape[-1], dy.shape[-1]), x.dtype)
  n, rows = dy.shape[0], dy.shape[0] * dy.shape[1] * dy.shape[2]
  chunks = 1
  while n % (2 * chunks) == 0 and rows // (2 * chunks) >= _KERNEL_T_ROWS:
    chunks *= 2
  return sum(jax.linear_transpose(lambda k, xs=xs: _lax_conv(xs, k, spec), k)(d)[0]
             for xs, d in zip(jnp.split(x, chunks), jnp.split(dy, chunks)))


# oneDNN's backward-data convolution is slow when the input has few channels (the image layer of
# a DCGAN critic, 1 channel, batch 64: 2.9 ms against lax's 0.8), its other ops are not.
_ONEDNN_MIN_INPUT_GRADIENT_CHANNELS = 16


def _onednn(spec: ConvSpec, *operands) -> bool:
  """Whether oneDNN computes this op: float32, non-empty, and padding oneDNN accepts (lax also
  allows negative padding, which crops)."""
  return (spec.backend == 'onednn' and all(o.dtype == jnp.float32 and o.size for o in operands)
          and min(p for pair in spec.padding for p in pair) >= 0)


@functools.partial(jax.custom_vjp, nondiff_argnums=(2,))
def conv(x: jax.Array, k: jax.Array, spec: ConvSpec) -> jax.Array:
  """`lax.conv_general_dilated(x, k, spec.strides, spec.padding)`, NHWC / HWIO."""
  return onednn.conv(x, k, spec) if _onednn(spec, x, k) else _lax_conv(x, k, spec)


@functools.partial(jax.custom_vjp, nondiff_argnums=(2,))
def input_transpose(dy: jax.Array, k: jax.Array, spec: ConvSpec) -> jax.Array:
  """The transpose of `conv(., k, spec)` applied to `dy`: the input gradient of the convolution."""
  if _onednn(spec, dy, k) and k.shape[2] >= _ONEDNN_MIN_INPUT_GRADIENT_CHANNELS:
    return onednn.input_transpose(dy, k, spec)
  return _lax_input_transpose(dy, k, spec)


@functools.partial(jax.custom_vjp, nondiff_argnums=(2,))
def kernel_transpose(x: jax.Array, dy: jax.Array, spec: ConvSpec) -> jax.Array:
  """The transpose of `conv(x, ., spec)` applied to `dy`: the kernel gradient of the convolution."""
  if _onednn(spec, x, dy):
    return onednn.kernel_transpose(x, dy, spec)
  return _lax_kernel_transpose(x, dy, spec)


# The forward rules call the functions themselves, not their bodies: a derivative taken outside
# this one (the outer grad of a gradient penalty) differentiates the forward rule, and must find
# the family there too (oneDNN's custom calls have no derivative of their own).
conv.defvjp(
    lambda x, k, spec: (conv(x, k, spec), (x, k)),
    lambda spec, res, ct: (input_transpose(ct, res[1], spec), kernel_transpose(res[0], ct, spec)))
input_transpose.defvjp(
    lambda dy, k, spec: (input_transpose(dy, k, spec), (dy, k)),
    lambda spec, res, ct: (conv(ct, res[1], spec), kernel_transpose(ct, res[0], spec)))
kernel_transpose.defvjp(
    lambda x, dy, spec: (kernel_transpose(x, dy, spec), (x, dy)),
    lambda spec, res, ct: (input_transpose(res[1], ct, spec), conv(res[0], ct, spec)))


def _spec(in_spatial, kernel_spatial, strides, padding, backend) -> ConvSpec:
  if isinstance(padding, str):
    padding = lax.padtype_to_pads(in_spatial, kernel_spatial, strides, padding)
  return ConvSpec(tuple(strides), tuple(tuple(int(p) for p in pair) for pair in padding),
                  tuple(in_spatial), tuple(kernel_spatial), backend)


def conv2d(x: jax.Array, kernel: jax.Array, strides: Sequence[int] = (1, 1),
           padding: str | Sequence[tuple[int, int]] = 'SAME', backend: str = 'xla') -> jax.Array:
  """`lax.conv_general_dilated(x, kernel, strides, padding)` for NHWC `x` and HWIO `kernel`."""
  return conv(x, kernel, _spec(x.shape[1:3], kernel.shape[:2], strides, padding, backend))


def conv2d_transpose(x: jax.Array, kernel: jax.Array, strides: Sequence[int] = (1, 1),
                     padding: str = 'SAME', backend: str = 'xla') -> jax.Array:
  """`lax.conv_transpose(x, kernel, strides, padding)` (Flax's ConvTranspose), NHWC / HWIO.

  A transposed convolution with kernel K is the input gradient of the convolution whose kernel is
  K flipped in space with its channel axes swapped, and whose input has this function's output
  size: `in * stride` for 'SAME', `(in - 1) * stride + k` for 'VALID' (checked against lax in
  the tests). Explicit padding means something else for the two functions, so only the two
  named paddings are accepted.
  """
  if padding not in ('SAME', 'VALID'):
    raise ValueError(f"conv2d_transpose supports padding 'SAME' or 'VALID'; got {padding!r}")
  ks = kernel.shape[:2]
  if padding == 'SAME':
    out = tuple(n * s for n, s in zip(x.shape[1:3], strides))
  else:
    out = tuple((n - 1) * s + k for n, s, k in zip(x.shape[1:3], strides, ks))
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
  dtype: Any = None  # compute dtype (None: the input's); parameters stay float32
  backend: str = 'xla'  # 'xla' or 'onednn': who computes the convolutions (ConvSpec.backend)

  def _apply(self, x, op):
    if self.dtype is not None:
      x = x.astype(self.dtype)
    kernel = self.param('kernel', self.kernel_init,
                        (*self.kernel_size, x.shape[-1], self.features), jnp.float32)
    y = op(x, kernel.astype(x.dtype), tuple(self.strides), self.padding, self.backend)
    if self.use_bias:
      y = y + self.param('bias', self.bias_init, (self.features,), jnp.float32).astype(y.dtype)
    return y


class Conv(_ConvBase):
  """`flax.linen.Conv` (2-D, NHWC) with derivatives through the `conv` family above."""

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    return self._apply(x, conv2d)


class ConvTranspose(_ConvBase):
  """`flax.linen.ConvTranspose` (2-D, NHWC, 'SAME' or 'VALID') built on `input_transpose`."""

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    return self._apply(x, conv2d_transpose)


IMPLEMENTATIONS = ('auto', 'onednn', 'xla', 'lax')


@functools.cache
def _auto_cpu_backend() -> str:
  if jax.device_count() > 1:
    # The custom calls have no partitioning rule: on a mesh of host devices XLA would gather
    # their operands and compute them whole on every device.
    return 'xla'
  if onednn.available():
    return 'onednn'
  warnings.warn("conv='auto' uses XLA's convolutions, 1.1-1.8x slower on the CPU than oneDNN's: "
                f'{onednn.unavailable_reason()}', stacklevel=3)
  return 'xla'


def conv_modules(implementation: str) -> tuple[Callable[..., nn.Module], Callable[..., nn.Module]]:
  """`(Conv, ConvTranspose)` module constructors for a model's `conv` attribute.

  'onednn': this module's with oneDNN's convolutions (CPU; raises if they cannot be built);
  'xla': this module's with lax's; 'lax': Flax's own; 'auto': on the CPU backend 'onednn' where it
  builds (else 'xla', with a warning saying why) and 'xla' with several host devices, 'lax' on
  other backends. All have the same parameters, so a checkpoint works with any.
  """
  if implementation not in IMPLEMENTATIONS:
    raise ValueError(f"conv must be one of {', '.join(map(repr, IMPLEMENTATIONS))}; "
                     f'got {implementation!r}')
  if implementation == 'auto':
    implementation = _auto_cpu_backend() if jax.default_backend() == 'cpu' else 'lax'
  if implementation == 'lax':
    return nn.Conv, nn.ConvTranspose
  if implementation == 'onednn':
    onednn.require()
  return (functools.partial(Conv, backend=implementation),
          functools.partial(ConvTranspose, backend=implementation))
