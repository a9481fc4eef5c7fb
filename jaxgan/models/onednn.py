"""oneDNN's convolutions inside jitted JAX programs on the CPU (XLA FFI custom calls).

XLA:CPU's convolutions and their gradients run at 55-95% of its own matmul speed on this project's
shapes; oneDNN's (Intel's library, the one PyTorch uses on CPUs) run at 100-130% of it with AVX-512
and at 50-150% with AVX2 (66-185 GFLOP/s per op against a 117-139 matmul on a 2-core AMD EPYC;
the kernel gradient is its weakest op). `onednn_conv.cc` wraps oneDNN's
forward, backward-data and backward-weights convolutions as three FFI targets: exactly the three
first-order ops of the convolution family in `fast_conv`, which supplies every derivative from
them (a kernel gradient with a large kernel and a short sum runs as a forward convolution on
transposed operands instead, see `kernel_transpose`). Each call cuts the batch into one slice per
thread of XLA's CPU thread pool and runs oneDNN single-threaded on each slice, so the convolutions
share the cores with XLA's own work.

The library is compiled with the system C++ compiler on first use, against XLA's FFI headers
(shipped with jaxlib) and the oneDNN wheel (`onednn-cpu-gomp`, `onednn-devel-cpu-gomp`), and
cached in `cache_dir()` (`$JAXGAN_CACHE_DIR`, default `~/.cache/jaxgan`) under a name that hashes
the source and both versions. A failed build leaves the XLA path in place (`available()` is False and
`unavailable_reason()` says why).

Only float32 and the CPU backend; the callers in `fast_conv` keep XLA's ops for anything else.
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import importlib.metadata
import os
import pathlib
import subprocess
import sys
import tempfile

import jax
import numpy as np

_SOURCE = pathlib.Path(__file__).with_name('onednn_conv.cc')
_TARGETS = ('JaxganConvForward', 'JaxganConvInputGradient', 'JaxganConvKernelGradient',
            'JaxganConvKernelGradientAsForward')
_DISTRIBUTION = 'onednn-cpu-gomp'
_INSTALL_HINT = ("install oneDNN's wheels (pip install "
                 'onednn-cpu-gomp onednn-devel-cpu-gomp) and a C++ compiler (g++)')


def cache_dir() -> pathlib.Path:
  """`$JAXGAN_CACHE_DIR`, else `$XDG_CACHE_HOME/jaxgan` (default `~/.cache/jaxgan`)."""
  if 'JAXGAN_CACHE_DIR' in os.environ:
    return pathlib.Path(os.environ['JAXGAN_CACHE_DIR'])
  base = os.environ.get('XDG_CACHE_HOME') or pathlib.Path.home() / '.cache'
  return pathlib.Path(base) / 'jaxgan'


def _onednn_paths() -> tuple[pathlib.Path, pathlib.Path, str]:
  """(include dir, lib dir, version) of the installed oneDNN wheels."""
  try:
    version = importlib.metadata.version(_DISTRIBUTION)
    files = importlib.metadata.files(_DISTRIBUTION) + importlib.metadata.files(
        'onednn-devel-cpu-gomp')
  except importlib.metadata.PackageNotFoundError as e:
    raise RuntimeError(f'oneDNN is not installed ({e}); {_INSTALL_HINT}') from None
  lib = [f.locate() for f in files if f.name == 'libdnnl.so']
  header = [f.locate() for f in files if str(f).replace('\\', '/').endswith('oneapi/dnnl/dnnl.hpp')]
  if not lib or not header:
    raise RuntimeError(f'the oneDNN wheels lack libdnnl.so or dnnl.hpp; {_INSTALL_HINT}')
  return (pathlib.Path(os.path.normpath(header[0])).parents[2],
          pathlib.Path(os.path.normpath(lib[0])).parent, version)


def _build() -> pathlib.Path:
  include, lib, version = _onednn_paths()
  jaxlib_version = importlib.metadata.version('jaxlib')
  digest = hashlib.sha256(_SOURCE.read_bytes() + f'{version} {jaxlib_version}'.encode())
  target = cache_dir() / f'jaxgan_onednn_{digest.hexdigest()[:16]}.so'
  if target.exists():
    return target
  try:
    target.parent.mkdir(parents=True, exist_ok=True)
  except OSError as e:
    raise RuntimeError(f'cannot create the cache directory for the oneDNN convolutions ({e}); '
                       'set JAXGAN_CACHE_DIR to a writable directory') from None
  compiler = os.environ.get('CXX', 'g++')
  # Built beside the target and renamed into place, so concurrent builds never see half a file.
  fd, partial = tempfile.mkstemp(suffix='.so', dir=target.parent)
  os.close(fd)
  command = [compiler, '-O2', '-std=c++17', '-shared', '-fPIC', '-fopenmp', '-w',
             f'-I{jax.ffi.include_dir()}', f'-I{include}', str(_SOURCE), f'-L{lib}', '-ldnnl',
             f'-Wl,-rpath,{lib}', '-o', partial]
  try:
    result = subprocess.run(command, capture_output=True, text=True, check=False)
  except FileNotFoundError:
    os.unlink(partial)
    raise RuntimeError(f'no C++ compiler {compiler!r} to build the oneDNN convolutions; '
                       f'{_INSTALL_HINT}') from None
  if result.returncode != 0:
    os.unlink(partial)
    raise RuntimeError(f"building the oneDNN convolutions failed ({' '.join(command)}):\n"
                       f'{result.stderr[-4000:]}')
  os.replace(partial, target)
  return target


def _open() -> ctypes.CDLL:
  path = _build()
  try:
    return ctypes.cdll.LoadLibrary(str(path))
  except OSError:
    # A cached library that does not load (truncated by a full disk, say) is built again.
    path.unlink(missing_ok=True)
    return ctypes.cdll.LoadLibrary(str(_build()))


@functools.cache
def _load() -> str | None:
  """Builds, loads and registers the FFI targets once; the reason on failure, else None."""
  if sys.platform != 'linux':
    return f'the oneDNN convolutions are built for Linux only (this is {sys.platform})'
  try:
    library = _open()
  except (RuntimeError, OSError) as e:
    return str(e)
  for name in _TARGETS:
    jax.ffi.register_ffi_target(name, jax.ffi.pycapsule(getattr(library, name)), platform='cpu')
  return None


def available() -> bool:
  """Whether the oneDNN convolutions can run here (built or buildable, CPU backend)."""
  return jax.default_backend() == 'cpu' and _load() is None


def unavailable_reason() -> str:
  if jax.default_backend() != 'cpu':
    return f'the oneDNN convolutions run on the CPU backend only (this is {jax.default_backend()})'
  return _load() or ''


def require() -> None:
  if not available():
    raise RuntimeError(f"conv='onednn' cannot run: {unavailable_reason()}")


def _attributes(spec, dilation) -> dict:
  return dict(strides=np.asarray(spec.strides, np.int64), dilation=np.asarray(dilation, np.int64),
              padding=np.asarray([p for pair in spec.padding for p in pair], np.int64))


def _call(target: str, shape, a, b, spec, dilation=(1, 1)):
  require()
  out = jax.ShapeDtypeStruct(shape, a.dtype)
  return jax.ffi.ffi_call(target, out, vmap_method='sequential')(a, b,
                                                                 **_attributes(spec, dilation))


def conv(x, k, spec, dilation=(1, 1), target='JaxganConvForward'):
  """`lax.conv_general_dilated(x, k, spec.strides, spec.padding, rhs_dilation=dilation)`, NHWC /
  HWIO, float32. `target` names the custom call (the same handler under another name)."""
  (sh, sw), ((pt, pb), (pl, pr)), (dh, dw) = spec.strides, spec.padding, dilation
  h = (x.shape[1] + pt + pb - (k.shape[0] - 1) * dh - 1) // sh + 1
  w = (x.shape[2] + pl + pr - (k.shape[1] - 1) * dw - 1) // sw + 1
  return _call(target, (x.shape[0], h, w, k.shape[3]), x, k, spec, dilation)


def input_transpose(dy, k, spec):
  """The input gradient of `conv(., k, spec)` at cotangent `dy`."""
  return _call('JaxganConvInputGradient', (dy.shape[0], *spec.in_spatial, k.shape[2]), dy, k, spec)


# oneDNN's backward-weights kernels are its slowest (50-70% of its forward speed on DCGAN layers).
# But a kernel gradient is itself a forward convolution:
#   dk[a, b, i, o] = sum_{n, p, q} x[n, s p + a - pad, s q + b - pad, i] dy[n, p, q, o]
# is conv(x', dy') with x' = x's channels as the batch and its batch as channels (i, H, W, n),
# dy' = dy's pixels as a kernel dilated by the stride (p, q, n, o), stride 1 and the same padding
# (its output may have up to stride - 1 extra rows and columns, which are cut off). It pays when
# the sum is short and the kernel large. On a 2-core AMD EPYC, transposes included, for 4x4,
# stride-2 kernels: 1.6-2.1x faster when dy has 4x4 pixels (batch 8 to 128), a tie at 8x8 pixels
# and batch 64 (the whole DCGAN step: 4% faster with it), 9% slower at batch 128; 1.7-3x slower
# for 1x1 kernels or dy of 16x16 pixels.
_AS_FORWARD_MIN_TAPS = 16       # kernel taps (kh * kw)
_AS_FORWARD_MAX_ROWS = 64 * 64  # terms of the sum per kernel entry (dy's images x pixels)
_AS_FORWARD_MIN_CHANNELS = 16   # x's channels: the batch that the forward cuts into slices


def kernel_transpose(x, dy, spec):
  """The kernel gradient of `conv(x, ., spec)` at cotangent `dy`."""
  kh, kw = spec.kernel_spatial
  if (kh * kw >= _AS_FORWARD_MIN_TAPS and dy.shape[0] * dy.shape[1] * dy.shape[2]
      <= _AS_FORWARD_MAX_ROWS and x.shape[3] >= _AS_FORWARD_MIN_CHANNELS):
    dk = conv(x.transpose(3, 1, 2, 0), dy.transpose(1, 2, 0, 3), spec._replace(strides=(1, 1)),
              dilation=spec.strides, target='JaxganConvKernelGradientAsForward')
    return dk[:, :kh, :kw].transpose(1, 2, 0, 3)
  return _call('JaxganConvKernelGradient', (kh, kw, x.shape[3], dy.shape[3]), x, dy, spec)
