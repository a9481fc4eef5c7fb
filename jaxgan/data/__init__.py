"""jaxgan's data: image data sets as TFDS array_record (no TensorFlow), a resumable loader, toys.

Typical use::

  from jaxgan import data
  src = data.load_source("mnist", source_dir="/path/to/data")  # prepared once, then cached
  it = data.make_loader(src, batch_size=64, seed=0, pad_to=32)
  batch = next(it)        # {'image': float32 (64, 32, 32, 1) in [-1, 1], 'label', 'index'}
  state = it.get_state()  # JSON-serialisable; it.set_state(state) resumes exactly

Sources give uint8 ``(h, w, c)`` images; the loader gives float32 batches in [-1, 1]. Prepared
data sets live in ``data_dir`` (default ``$JAXGAN_DATA_DIR``, then TFDS's default), the original
files in ``source_dir`` (default ``$JAXGAN_SOURCE_DIR``; when unset, the originals are
downloaded). The 2-D Gaussian mixtures are in :mod:`jaxgan.data.toy`.

Modules: ``registry`` (every data set by name, with its facts: kind, shape, classes, source),
``datasets`` (prepare and open by name), ``loader`` (batches), ``sources`` (in-memory and on-disk
sources), ``builders`` and ``base_builder`` (the TFDS builders), ``releases`` (the original files'
addresses and digests), ``idx``, ``cifar`` and ``checksums`` (reading and verifying the original
files), ``stacked`` (how Stacked MNIST is drawn from MNIST), ``toy`` (the mixtures).

Names load on first use: TFDS and grain are heavy imports, and ``import jaxgan.data.toy`` (what
the training loop needs for the mixtures) and ``import jaxgan.data.registry`` (what the run config
reads, without JAX) must not pay for them.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
  from jaxgan.data import registry as registry
  from jaxgan.data import toy as toy
  from jaxgan.data.checksums import DataIntegrityError as DataIntegrityError
  from jaxgan.data.datasets import BUILDERS as BUILDERS
  from jaxgan.data.datasets import DATASETS as DATASETS
  from jaxgan.data.datasets import get_builder as get_builder
  from jaxgan.data.datasets import load_source as load_source
  from jaxgan.data.datasets import prepare as prepare
  from jaxgan.data.loader import Loader as Loader
  from jaxgan.data.loader import make_loader as make_loader
  from jaxgan.data.sources import ArraySource as ArraySource
  from jaxgan.data.sources import TfdsImageSource as TfdsImageSource

# Public name -> the module defining it (None: the name is a submodule).
_LAZY = {
  "ArraySource": "jaxgan.data.sources",
  "BUILDERS": "jaxgan.data.datasets",
  "DATASETS": "jaxgan.data.datasets",
  "DataIntegrityError": "jaxgan.data.checksums",
  "Loader": "jaxgan.data.loader",
  "TfdsImageSource": "jaxgan.data.sources",
  "get_builder": "jaxgan.data.datasets",
  "load_source": "jaxgan.data.datasets",
  "make_loader": "jaxgan.data.loader",
  "prepare": "jaxgan.data.datasets",
  "registry": None,
  "toy": None,
}

__all__ = [
  "ArraySource",
  "BUILDERS",
  "DATASETS",
  "DataIntegrityError",
  "Loader",
  "TfdsImageSource",
  "get_builder",
  "load_source",
  "make_loader",
  "prepare",
  "registry",
  "toy",
]


def __getattr__(name: str):
  if name not in _LAZY:
    raise AttributeError(f"module 'jaxgan.data' has no attribute {name!r}")
  module = _LAZY[name]
  if module is None:
    value = importlib.import_module(f"{__name__}.{name}")
  else:
    value = getattr(importlib.import_module(module), name)
  globals()[name] = value
  return value


def __dir__():
  return sorted(set(globals()) | set(_LAZY))
