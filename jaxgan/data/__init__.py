"""jaxgan's data layer: TFDS builders (array_record, no TensorFlow) and a resumable grain loader.

Typical use::

    from jaxgan import data
    src = data.load_source("mnist", source_dir="../shared/data")   # prepared once, then cached
    it = data.make_loader(src, batch_size=64, seed=0, pad_to=32)
    batch = next(it)            # {'image': float32 [64, 32, 32, 1] in [-1, 1], 'label', 'index'}
    state = it.get_state()      # JSON-serialisable; it.set_state(state) resumes exactly

Where things live: prepared datasets in ``data_dir`` (default ``$JAXGAN_DATA_DIR``, then TFDS's
default), original files in ``source_dir`` (default ``$JAXGAN_SOURCE_DIR``; when unset, the
originals are downloaded). Toy 2-D mixtures are in :mod:`jaxgan.data.toy`.

The heavy imports (tensorflow_datasets, grain) happen on first use, so ``import jaxgan.data.toy``
stays light.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from jaxgan.data.builders import BUILDERS, get_builder, load_source, prepare
    from jaxgan.data.idx import DataIntegrityError, parse_idx
    from jaxgan.data.loader import Loader, make_loader
    from jaxgan.data.sources import ArraySource, TfdsImageSource

_LAZY = {
    "BUILDERS": "jaxgan.data.builders",
    "DATASETS": "jaxgan.data.builders",
    "get_builder": "jaxgan.data.builders",
    "load_source": "jaxgan.data.builders",
    "prepare": "jaxgan.data.builders",
    "ArraySource": "jaxgan.data.sources",
    "TfdsImageSource": "jaxgan.data.sources",
    "DataIntegrityError": "jaxgan.data.idx",
    "parse_idx": "jaxgan.data.idx",
    "Loader": "jaxgan.data.loader",
    "make_loader": "jaxgan.data.loader",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'jaxgan.data' has no attribute {name!r}")
    mod = importlib.import_module(module)
    value = tuple(sorted(mod.BUILDERS)) if name == "DATASETS" else getattr(mod, name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_LAZY))
