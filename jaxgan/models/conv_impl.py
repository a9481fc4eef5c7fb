"""Which convolution layers a model uses: the `conv` attribute of the DCGAN and ResNet modules.

- 'onednn': `fast_conv`'s layers with oneDNN's convolutions (`jaxgan.onednn`, the `cpu` extra);
- 'xla': `fast_conv`'s layers with lax's convolutions;
- 'lax': Flax's own `nn.Conv` / `nn.ConvTranspose`;
- 'auto' (the models' default): on the CPU backend 'onednn' where the `cpu` extra is installed and
  its library builds, else 'xla'; 'xla' with several host devices, since the custom calls have no
  partitioning rule (XLA would gather their operands and compute them whole on every device);
  'lax' on GPU and TPU, which have their own convolution libraries.

All four compute the same function with the same parameters, so a checkpoint works with any.
'auto' falls back quietly when the extra is absent (a debug log); when it is installed but its
library does not build, it logs a warning once, since the install asked for it.

  >>> conv_modules('lax')
  (<class 'flax.linen.linear.Conv'>, <class 'flax.linen.linear.ConvTranspose'>)
  >>> resolve('xla')
  'xla'
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable

import flax.linen as nn
import jax

from jaxgan import onednn
from jaxgan.models import fast_conv

IMPLEMENTATIONS = ('auto', 'onednn', 'xla', 'lax')

_log = logging.getLogger(__name__)


def check(implementation: str) -> None:
  """Checks a `conv` name without building anything.

  Args:
    implementation: one of `IMPLEMENTATIONS`.

  Raises:
    ValueError: an unknown name.
    ImportError: 'onednn' without the `cpu` extra (the message names
      `pip install 'jaxgan[cpu]'`).
  """
  if implementation not in IMPLEMENTATIONS:
    raise ValueError(
      f"conv must be one of {', '.join(map(repr, IMPLEMENTATIONS))}; got {implementation!r}"
    )
  if implementation == 'onednn' and not onednn.installed():
    onednn.require()  # raises the ImportError that names the fix


@functools.cache
def _warn_once(reason: str) -> None:
  _log.warning(
    "conv='auto' uses XLA's convolutions: the `cpu` extra is installed but oneDNN's "
    'cannot run (%s)',
    reason,
  )


def resolve(implementation: str) -> str:
  """The implementation that `implementation` stands for here; 'auto' is decided on this machine.

  Deciding 'auto' on the CPU builds the oneDNN library on the first call (then it is cached).

  Args:
    implementation: one of `IMPLEMENTATIONS`.

  Returns:
    'onednn', 'xla' or 'lax'.

  Raises:
    ValueError: an unknown name.
    ImportError: 'onednn' without the `cpu` extra.
  """
  check(implementation)
  if implementation != 'auto':
    return implementation
  if jax.default_backend() != 'cpu':
    return 'lax'
  if jax.device_count() > 1:
    return 'xla'
  if not onednn.installed():
    _log.debug("conv='auto' uses XLA's convolutions: %s", onednn.unavailable_reason())
    return 'xla'
  if onednn.available():
    return 'onednn'
  _warn_once(onednn.unavailable_reason())
  return 'xla'


def conv_modules(implementation: str) -> tuple[Callable[..., nn.Module], Callable[..., nn.Module]]:
  """`(Conv, ConvTranspose)` module constructors for a model's `conv` attribute.

  Args:
    implementation: one of `IMPLEMENTATIONS`.

  Returns:
    Two callables taking `flax.linen.Conv`'s and `ConvTranspose`'s arguments (features,
    kernel_size, strides, padding, use_bias, kernel_init, dtype, name).

  Raises:
    ValueError: an unknown name.
    ImportError: 'onednn' without the `cpu` extra.
    RuntimeError: 'onednn' where its library cannot be built, or not on the CPU backend.
  """
  implementation = resolve(implementation)
  if implementation == 'lax':
    return nn.Conv, nn.ConvTranspose
  if implementation == 'onednn':
    onednn.require()
  return (
    functools.partial(fast_conv.Conv, backend=implementation),
    functools.partial(fast_conv.ConvTranspose, backend=implementation),
  )
