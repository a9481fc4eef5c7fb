"""oneDNN's convolutions inside jitted JAX programs on the CPU: the optional CPU backend.

Installed with the `cpu` extra (`pip install 'jaxgan[cpu]'`: oneDNN's wheels `onednn-cpu-gomp`
and `onednn-devel-cpu-gomp`, Linux x86-64 only), plus a C++ compiler. `onednn_conv.cc` wraps
oneDNN's forward, backward-data and backward-weights convolutions as XLA FFI custom calls: the
three first-order ops of the convolution family in `jaxgan.models.fast_conv`, which builds every
derivative of every order from them. Each call cuts the batch into one slice per thread of XLA's
CPU thread pool and runs oneDNN single-threaded on each slice, so the convolutions share the cores
with XLA's own work instead of competing with it.

The library is compiled on first use (`available()` or `require()`, or the first call of an op;
importing this package builds nothing) against XLA's FFI headers (shipped with jaxlib) and the
wheels, and cached in `cache_dir()` under a name that hashes the source and both versions. The
models use it through `conv='auto'` (the default: this backend where `available()`, XLA's
convolutions otherwise) or `conv='onednn'` (this backend or an error naming the fix). The story,
the measurements behind it and how to opt out are in docs/cpu_backend.md.

Only float32 on the CPU backend; `accepts` says which operands the callers give to oneDNN.

  >>> import jax, jax.numpy as jnp
  >>> from jaxgan import onednn
  >>> x, k = jnp.ones((2, 8, 8, 3)), jnp.ones((4, 4, 3, 5))
  >>> padding = ((1, 1), (1, 1))
  >>> if onednn.available():
  ...   y = onednn.conv(x, k, strides=(2, 2), padding=padding)
  ... else:  # without the `cpu` extra: the same convolution by XLA
  ...   y = jax.lax.conv_general_dilated(x, k, (2, 2), padding,
  ...                                    dimension_numbers=('NHWC', 'HWIO', 'NHWC'))
  >>> y.shape, float(y[0, 1, 1, 0])  # an interior pixel sums 4 * 4 * 3 ones
  ((2, 4, 4, 5), 48.0)
"""

from jaxgan.onednn._library import (
  INSTALL_HINT,
  available,
  build,
  cache_dir,
  installed,
  require,
  unavailable_reason,
)
from jaxgan.onednn._ops import OPS, accepts, conv, input_transpose, kernel_transpose

__all__ = [
  'INSTALL_HINT',
  'OPS',
  'accepts',
  'available',
  'build',
  'cache_dir',
  'conv',
  'input_transpose',
  'installed',
  'kernel_transpose',
  'require',
  'unavailable_reason',
]
