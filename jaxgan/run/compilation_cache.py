"""JAX's persistent compilation cache for jaxgan runs: a relaunch loads its programs from disk.

A run's first step traces and compiles the train step (seconds on a CPU, more for the ResNets);
with the cache on, a second launch of the same config on the same machine and JAX version
deserialises the compiled program instead. The cache is JAX's own
(`jax_compilation_cache_dir`): keyed by the program, the devices, the compile options and the
JAX/XLA versions, so a stale entry is never used for a different program.

`enable` must run before the first compilation in the process: JAX opens the cache directory at
its first compilation after the directory is set and keeps it for the life of the process.
`python -m jaxgan.main` calls it with `config.run.compilation_cache_dir` before training.

In a multi-process run every process may name the same directory: all of them read it and only
process 0 writes, which JAX arranges itself (its persistent-cache guide); put it on a file system
every host sees, or the other hosts compile again on every launch. Call `enable` after
`jax.distributed.initialize`, as `main` does: JAX's write gate reads the process index.

The cache is trusted code: do not point it at a directory others can write to.
"""

from __future__ import annotations

import logging
import os

import jax

log = logging.getLogger(__name__)

# Programs that compile faster than this are not written. A run compiles dozens of tiny jits
# (key splits, reductions, casts: 5-50 ms each on a CPU), whose cache reads would cost about as
# much as compiling them and add a file each; the ones worth keeping take 0.2 s and more (the
# sampler, the sample-grid generator) up to seconds (the initialiser, the train step). JAX's own
# default of 1 s would leave the sub-second ones out.
MIN_COMPILE_TIME_SECS = 0.1


def default_directory() -> str:
  """The cache directory when the config leaves it unset.

  Returns:
    `$JAXGAN_CACHE_DIR/xla` when that variable is set (the directory jaxgan's other caches use),
    else `~/.cache/jaxgan/xla`, as an absolute path.

  >>> os.path.basename(default_directory())
  'xla'
  """
  root = os.environ.get("JAXGAN_CACHE_DIR") or os.path.join("~", ".cache", "jaxgan")
  return os.path.abspath(os.path.join(os.path.expanduser(root), "xla"))


def enable(directory: str | None = None) -> str | None:
  """Turns on JAX's persistent compilation cache in `directory`.

  Call it before the first compilation in the process (before any jitted function runs): JAX
  opens the cache at its first compilation after the directory is set, and a directory set
  later than that is not used by this process.

  Args:
    directory: where compiled programs are stored (created when missing; `~` is expanded).
      None: `default_directory()`, unless the JAX flag `jax_compilation_cache_dir` is already
      set (e.g. by the environment variable JAX_COMPILATION_CACHE_DIR), which is then kept.
      '': leave the cache off.

  Returns:
    The absolute path of the cache directory in use, or None when the cache is off.

  Raises:
    ValueError: `directory` exists and is not a directory, or cannot be created; the message
      names the config field to change.

  >>> enable("")  # off: nothing is set
  """
  if directory == "":
    return None
  if directory is None:
    directory = jax.config.jax_compilation_cache_dir or default_directory()
  path = os.path.abspath(os.path.expanduser(directory))
  try:
    os.makedirs(path, exist_ok=True)
  except OSError as e:
    raise ValueError(
      f"Cannot use {path!r} as the compilation cache directory ({e}); set "
      "--config.run.compilation_cache_dir to a writable directory, or '' to turn the cache off."
    ) from None
  jax.config.update("jax_compilation_cache_dir", path)
  jax.config.update("jax_persistent_cache_min_compile_time_secs", MIN_COMPILE_TIME_SECS)
  # -1: no size threshold (and no filesystem-specific override): the time threshold decides.
  jax.config.update("jax_persistent_cache_min_entry_size_bytes", -1)
  log.info("Persistent compilation cache: %s", path)
  return path


def release_compiler_memory() -> float | None:
  """Returns the heap that compiling freed to the operating system (glibc's `malloc_trim`).

  XLA's CPU compiler (LLVM) allocates a few hundred MB while it compiles a train step and frees
  it afterwards, but glibc keeps freed heap pages mapped: the process stays that much larger for
  its whole life (the DCGAN of benchmark W2: 715 MB resident after its first step, 474 MB after
  this call). The loop calls it once, after the first step has compiled.

  Returns:
    The resident set in MB after the call (from /proc), or None where there is no glibc or no
    /proc (then it does nothing).
  """
  import ctypes  # pylint: disable=g-import-not-at-top

  try:
    ctypes.CDLL("libc.so.6").malloc_trim(0)
    with open("/proc/self/statm") as f:
      return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
  except (OSError, AttributeError, ValueError):
    return None
