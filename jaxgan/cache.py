"""jaxgan's cache folder: the one root of its disk caches.

The oneDNN library built for the CPU backend, the FID Inception weights, the classifiers and
Stacked MNIST floors of the metrics, the reference statistics and JAX's compilation cache each
keep a sub-folder of it. It needs only the standard library, so any layer may ask.
"""

import os
import pathlib


def cache_dir() -> pathlib.Path:
  """The folder: `$JAXGAN_CACHE_DIR`, else `$XDG_CACHE_HOME/jaxgan`, else `~/.cache/jaxgan`.

  Returns:
    An absolute path; the folder may not exist yet.
  """
  if os.environ.get("JAXGAN_CACHE_DIR"):
    return pathlib.Path(os.environ["JAXGAN_CACHE_DIR"]).expanduser().absolute()
  base = os.environ.get("XDG_CACHE_HOME") or pathlib.Path.home() / ".cache"
  return (pathlib.Path(base) / "jaxgan").expanduser().absolute()
