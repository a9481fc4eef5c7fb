"""Preparing a data set by name and opening it as a random-access source.

Prepared data sets live in ``data_dir`` (default ``$JAXGAN_DATA_DIR``, then TFDS's default
``$TFDS_DATA_DIR`` or ``~/tensorflow_datasets``); the original files are read from ``source_dir``
(default ``$JAXGAN_SOURCE_DIR``), or downloaded when there is none.
"""

from __future__ import annotations

import logging
import os

import tensorflow_datasets as tfds

from jaxgan.data.base_builder import JaxganBuilder
from jaxgan.data.builders import BUILDERS
from jaxgan.data.checksums import DataIntegrityError
from jaxgan.data.sources import ArraySource, TfdsImageSource
from jaxgan.errors import ConfigError, UserError

log = logging.getLogger(__name__)

# The names load_source accepts.
DATASETS = tuple(sorted(BUILDERS))


class MissingDataError(UserError, FileNotFoundError):
  """A data set that is neither prepared nor preparable from what was given (files, network)."""


def _resolve_dir(value: str | os.PathLike | None, env: str) -> str | None:
  if value is not None:
    return os.fspath(value)
  return os.environ.get(env) or None


def get_builder(
  name: str, *, data_dir: str | os.PathLike | None = None, verify: bool = True
) -> JaxganBuilder:
  """The TFDS builder behind a data set name.

  Args:
    name: one of :data:`DATASETS`.
    data_dir: the TFDS data dir; defaults to ``$JAXGAN_DATA_DIR``, then TFDS's default.
    verify: check the source files' digests when preparing.

  Returns:
    The builder (not yet prepared; see :func:`prepare`).

  Raises:
    ValueError: an unknown name; the message lists the valid ones.
  """
  if name not in BUILDERS:
    raise ValueError(f"Unknown dataset {name!r}; valid names: {sorted(BUILDERS)}.")
  return BUILDERS[name](data_dir=_resolve_dir(data_dir, "JAXGAN_DATA_DIR"), verify=verify)


def prepare(
  name: str,
  *,
  data_dir: str | os.PathLike | None = None,
  source_dir: str | os.PathLike | None = None,
  download: bool = True,
  verify: bool = True,
  max_examples_per_split: int | None = None,
) -> JaxganBuilder:
  """Prepares a data set into ``data_dir`` unless it already is there.

  Args:
    name: one of :data:`DATASETS`.
    data_dir: the TFDS data dir holding prepared data sets. Defaults to ``$JAXGAN_DATA_DIR``,
      then TFDS's default (``$TFDS_DATA_DIR`` or ``~/tensorflow_datasets``).
    source_dir: a folder holding the original files, or a data root with one sub-folder per data
      set (``mnist/``, ``fashion_mnist/``, ``cifar10/``, ``cifar10_jpeg/``; ``stacked_mnist``
      is made from ``mnist/``). Defaults to
      ``$JAXGAN_SOURCE_DIR``. When unset, the originals are downloaded (when ``download``).
    download: allow downloading when there is no local source.
    verify: check the source files' digests (structural checks always run).
    max_examples_per_split: prepare only the first examples of each split, for tests. Do not use
      it with a shared ``data_dir``: the partial data set would be cached as if complete.

  Returns:
    The prepared builder; ``builder.as_data_source(split)`` reads it.

  Raises:
    ValueError: an unknown name.
    MissingDataError: (a FileNotFoundError and a `jaxgan.errors.UserError`) ``source_dir`` is
      missing or lacks files, or there is no source and
      downloading is not allowed or not possible; the message names the paths and the fix.
    DataIntegrityError: a source file is corrupt, truncated or has the wrong digest.
    MissingDataError: also when downloading failed; the message says how to work offline.
  """
  builder = get_builder(name, data_dir=data_dir, verify=verify)
  source_dir = _resolve_dir(source_dir, "JAXGAN_SOURCE_DIR")
  if builder.is_prepared():
    if source_dir is not None and not os.path.isdir(source_dir):
      log.warning(
        "Source directory %s does not exist; %r is already prepared in %s, which is used.",
        source_dir,
        name,
        builder.data_dir,
      )
    return builder
  cls = type(builder)
  if source_dir is not None:
    if not os.path.isdir(source_dir):
      raise MissingDataError(
        f"Source directory {source_dir} for {name!r} does not exist. "
        + cls.MANUAL_DOWNLOAD_INSTRUCTIONS
      )
    if cls.locate_source(source_dir) is None:
      raise MissingDataError(
        f"Source files {cls.missing_files(source_dir)} for {name!r} not found in "
        f"{' or '.join(cls.source_candidates(source_dir))}. " + cls.MANUAL_DOWNLOAD_INSTRUCTIONS
      )
  elif not download or not cls.CAN_DOWNLOAD:
    raise MissingDataError(
      f"Dataset {name!r} is not prepared in {builder.data_dir} and no source files were given"
      + ("" if cls.CAN_DOWNLOAD else f" ({name!r} cannot be downloaded)")
      + ". Set data_dir=/JAXGAN_DATA_DIR to a TFDS data dir where it is prepared, or pass "
      "source_dir=/set JAXGAN_SOURCE_DIR. " + cls.MANUAL_DOWNLOAD_INSTRUCTIONS
    )
  # With manual_dir=None TFDS looks in <data_dir>/downloads/manual, then downloads.
  config = tfds.download.DownloadConfig(
    manual_dir=os.path.abspath(source_dir) if source_dir is not None else None,
    max_examples_per_split=max_examples_per_split,
  )
  log.info("Preparing %s into %s (source: %s)", name, builder.data_dir, source_dir or "download")
  if source_dir is None:
    # TFDS retries for minutes before it fails offline: say at once what it is doing.
    log.warning(
      "No local source files for %r: downloading the originals through TFDS (needs internet). "
      "For local files set JAXGAN_SOURCE_DIR or source_dir (--config.run.source_dir).",
      name,
    )
  try:
    builder.download_and_prepare(download_config=config)
  except (DataIntegrityError, FileNotFoundError):
    raise
  except Exception as e:
    if source_dir is None:
      raise MissingDataError(
        f"Could not prepare {name!r} into {builder.data_dir}: no local source was given and "
        f"downloading failed ({type(e).__name__}: {e}). On an offline machine pass "
        "source_dir=/set JAXGAN_SOURCE_DIR. " + cls.MANUAL_DOWNLOAD_INSTRUCTIONS
      ) from e
    raise
  return builder


def load_source(
  name: str,
  *,
  split: str = "train",
  data_dir: str | os.PathLike | None = None,
  source_dir: str | os.PathLike | None = None,
  download: bool = True,
  verify: bool = True,
  in_memory: bool = True,
) -> TfdsImageSource | ArraySource:
  """A random-access source of one split of a data set, prepared on first use.

  Records are ``{'image': uint8 (h, w, c), 'label': int, 'index': int}`` (``index``: the position
  in the original release). Reading goes through TFDS's ``ArrayRecordDataSource`` (what
  ``tfds.data_source`` returns; no TensorFlow needed), wrapped to add a batched read
  ``get_batch(indices)``. ``len(src)``, ``src[i]`` and ``src.__getitems__(indices)`` work as on
  any TFDS data source. Feed it to :func:`jaxgan.data.make_loader`. For example::

    src = load_source("mnist", source_dir="/path/to/data")  # prepared once, then cached
    src.get_batch([0, 1])["image"].shape                    # (2, 28, 28, 1), uint8

  Args:
    name: one of :data:`DATASETS` (``'mnist'``, ``'fashion_mnist'``, ``'stacked_mnist'``,
      ``'cifar10'``, ``'cifar10_jpeg'``).
    split: a TFDS split spec (``'train'``, ``'test'``, ``'train[:90%]'``...).
    data_dir: see :func:`prepare`.
    source_dir: see :func:`prepare`.
    download: see :func:`prepare`.
    verify: see :func:`prepare`.
    in_memory: read the whole split into NumPy arrays once (MNIST's train split: 47 MB;
      CIFAR-10's: 150 MB) and serve batches from memory, several times faster than from disk.
      Pass False for a :class:`TfdsImageSource` that reads from disk.

  Returns:
    An :class:`ArraySource` (``in_memory``) or a :class:`TfdsImageSource`.

  Raises:
    ValueError: an unknown name.
    FileNotFoundError: missing source files or no way to get them (see :func:`prepare`).
    DataIntegrityError: a corrupt or wrong source file.
    jaxgan.errors.ConfigError: a split spec TFDS cannot read (naming the splits).
  """
  builder = prepare(
    name, data_dir=data_dir, source_dir=source_dir, download=download, verify=verify
  )
  try:
    data_source = builder.as_data_source(split=split)
  except (ValueError, KeyError, AssertionError) as e:  # TFDS's refusals of a split spec
    splits = ", ".join(sorted(builder.info.splits.keys()))
    raise ConfigError(
      f"split {split!r} of {name!r} (config.data.split) cannot be read ({type(e).__name__}: {str(e).splitlines()[0][:200]}). Its "
      f"splits: {splits}; slices read like 'train[:10%]' or 'test[1000:2000]'."
    ) from None
  source = TfdsImageSource(data_source)
  return source.to_memory() if in_memory else source
