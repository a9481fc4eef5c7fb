"""Finds oneDNN's wheels, builds the custom-call library on first use, and registers its targets.

Nothing here runs at import: `available()` and `require()` build and load the library the first
time they are called, once per process.
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import importlib.metadata
import os
import pathlib
import platform
import subprocess
import sys
import tempfile

import jax

from jaxgan.cache import cache_dir

INSTALL_HINT = "pip install 'jaxgan[cpu]'"

_SOURCE = pathlib.Path(__file__).with_name('onednn_conv.cc')
# The FFI targets that onednn_conv.cc defines.
TARGETS = (
  'JaxganConvForward',
  'JaxganConvInputGradient',
  'JaxganConvKernelGradient',
  'JaxganConvKernelGradientAsForward',
)
# The wheels of the `cpu` extra: the GNU OpenMP build of the library, and its headers.
_DISTRIBUTIONS = ('onednn-cpu-gomp', 'onednn-devel-cpu-gomp')


def _missing() -> str | None:
  """Why the `cpu` extra is absent on this machine, or None when it is installed."""
  machine = platform.machine()
  if sys.platform != 'linux' or machine != 'x86_64':
    return (
      f"the `cpu` extra ({INSTALL_HINT}) installs oneDNN's wheels on Linux x86-64 only "
      f"(this is {sys.platform} {machine}); use conv='xla' here"
    )
  absent = _absent(_DISTRIBUTIONS)
  if absent:
    return f'{absent} is not installed: install the `cpu` extra ({INSTALL_HINT})'
  return None


@functools.cache
def _absent(distributions: tuple[str, ...]) -> str | None:
  """The first of `distributions` that is not installed (cached: metadata look-ups are slow)."""
  for name in distributions:
    try:
      importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
      return name
  return None


def installed() -> bool:
  """Whether the `cpu` extra (oneDNN's wheels) is installed for this platform.

  Cheap: reads package metadata only, and builds nothing.

  Returns:
    True on Linux x86-64 with `onednn-cpu-gomp` and `onednn-devel-cpu-gomp` installed.
  """
  return _missing() is None


def _wheel_paths() -> tuple[pathlib.Path, pathlib.Path, str]:
  """(include dir, lib dir, version) of the installed oneDNN wheels."""
  missing = _missing()
  if missing:
    raise RuntimeError(missing)
  version = importlib.metadata.version(_DISTRIBUTIONS[0])
  files = [f for name in _DISTRIBUTIONS for f in importlib.metadata.files(name) or ()]
  lib = [f.locate() for f in files if f.name == 'libdnnl.so']
  header = [f.locate() for f in files if str(f).replace('\\', '/').endswith('oneapi/dnnl/dnnl.hpp')]
  if not lib or not header:
    raise RuntimeError(
      f'the oneDNN wheels lack libdnnl.so or dnnl.hpp; reinstall them with {INSTALL_HINT}'
    )
  return (
    pathlib.Path(os.path.normpath(header[0])).parents[2],
    pathlib.Path(os.path.normpath(lib[0])).parent,
    version,
  )


def build() -> pathlib.Path:
  """Compiles `onednn_conv.cc` into the cache, unless a library of the same inputs is there.

  The file name hashes the source and the versions of oneDNN and jaxlib (whose FFI headers it
  includes), so a change to any of them builds a new library. The compiler is `$CXX` (default
  `g++`).

  Returns:
    The path of the shared library.

  Raises:
    RuntimeError: the wheels are missing, the cache directory cannot be created, there is no
      compiler, or the compilation failed (the message holds the command and its errors).
  """
  include, lib, version = _wheel_paths()
  jaxlib_version = importlib.metadata.version('jaxlib')
  digest = hashlib.sha256(_SOURCE.read_bytes() + f'{version} {jaxlib_version}'.encode())
  target = cache_dir() / f'jaxgan_onednn_{digest.hexdigest()[:16]}.so'
  if target.exists():
    return target
  try:
    target.parent.mkdir(parents=True, exist_ok=True)
  except OSError as e:
    raise RuntimeError(
      f'cannot create the cache directory for the oneDNN convolutions ({e}); '
      'set JAXGAN_CACHE_DIR to a writable directory'
    ) from None
  compiler = os.environ.get('CXX', 'g++')
  # Built beside the target and renamed into place, so concurrent builds never see half a file.
  fd, partial = tempfile.mkstemp(suffix='.so', dir=target.parent)
  os.close(fd)
  command = [
    compiler,
    '-O2',
    '-std=c++17',
    '-shared',
    '-fPIC',
    '-fopenmp',
    '-w',
    f'-I{jax.ffi.include_dir()}',
    f'-I{include}',
    str(_SOURCE),
    f'-L{lib}',
    '-ldnnl',
    f'-Wl,-rpath,{lib}',
    '-o',
    partial,
  ]
  try:
    result = subprocess.run(command, capture_output=True, text=True, check=False)
  except FileNotFoundError:
    os.unlink(partial)
    raise RuntimeError(
      f'no C++ compiler {compiler!r} to build the oneDNN convolutions; install one (g++) or set CXX'
    ) from None
  if result.returncode != 0:
    os.unlink(partial)
    raise RuntimeError(
      f"building the oneDNN convolutions failed ({' '.join(command)}):\n{result.stderr[-4000:]}"
    )
  os.replace(partial, target)
  return target


def _open() -> ctypes.CDLL:
  path = build()
  try:
    return ctypes.cdll.LoadLibrary(str(path))
  except OSError:
    # A cached library that does not load (truncated by a full disk, say) is built again.
    path.unlink(missing_ok=True)
    return ctypes.cdll.LoadLibrary(str(build()))


@functools.cache
def _load() -> str | None:
  """Builds, loads and registers the FFI targets once; the reason on failure, else None."""
  try:
    library = _open()
  except (RuntimeError, OSError) as e:
    return str(e)
  for name in TARGETS:
    jax.ffi.register_ffi_target(name, jax.ffi.pycapsule(getattr(library, name)), platform='cpu')
  return None


def _backend_reason() -> str | None:
  if jax.default_backend() != 'cpu':
    return f'the oneDNN convolutions run on the CPU backend only (this is {jax.default_backend()})'
  return None


def available() -> bool:
  """Whether the oneDNN convolutions can run here; builds and loads the library on first call.

  Returns:
    True when the `cpu` extra is installed, JAX's default backend is the CPU and the library
    built and loaded (from the cache after the first build).
  """
  return installed() and _backend_reason() is None and _load() is None


def unavailable_reason() -> str:
  """Why `available()` is False (building the library if it was not tried yet).

  Returns:
    The reason, naming the fix; the empty string when the convolutions are available.
  """
  return _missing() or _backend_reason() or _load() or ''


def require() -> None:
  """Makes the oneDNN convolutions ready to call, or says why they cannot run.

  Raises:
    ImportError: the `cpu` extra is not installed (the message names `pip install 'jaxgan[cpu]'`).
    RuntimeError: JAX's backend is not the CPU, or the library could not be built or loaded.
  """
  missing = _missing()
  if missing:
    raise ImportError(f"oneDNN's convolutions cannot run: {missing}")
  reason = _backend_reason() or _load()
  if reason:
    raise RuntimeError(f"oneDNN's convolutions cannot run: {reason}")
