"""Preparing a data set by name and opening it as a random-access source.

Prepared data sets live in ``data_dir`` (default ``$JAXGAN_DATA_DIR``, then TFDS's default
``$TFDS_DATA_DIR`` or ``~/tensorflow_datasets``); the original files are read from ``source_dir``
(default ``$JAXGAN_SOURCE_DIR``), or downloaded when there is none.
"""

from __future__ import annotations

import logging
import os

import tensorflow_datasets as tfds

from jaxgan.data import folder as folder_lib
from jaxgan.data import images as images_lib
from jaxgan.data import registry, tfds_named
from jaxgan.data.base_builder import JaxganBuilder
from jaxgan.data.checksums import DataIntegrityError
from jaxgan.data.sources import ArraySource, FittedSource, TfdsImageSource, image_sizes
from jaxgan.errors import ConfigError, UserError

log = logging.getLogger(__name__)

# The names of jaxgan's own image data sets (jaxgan.data.registry), which load_source accepts
# besides 'tfds:NAME' and 'folder:PATH', and the TFDS builder class of each.
DATASETS = registry.names("image")
BUILDERS: dict[str, type[JaxganBuilder]] = {name: registry.get(name).load() for name in DATASETS}


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
    jaxgan.errors.ConfigError: (a ValueError) an unknown name; the message lists the valid ones.
  """
  data_set = registry.get(name, kinds=("image",))
  return data_set.make(data_dir=_resolve_dir(data_dir, "JAXGAN_DATA_DIR"), verify=verify)


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


# Images read into memory when the split's fitted uint8 pixels take at most this many bytes;
# larger splits are read from disk (and decoded) batch by batch.
MEMORY_BUDGET = 2 << 30


def load_source(
  name: str,
  *,
  split: str = "train",
  data_dir: str | os.PathLike | None = None,
  source_dir: str | os.PathLike | None = None,
  download: bool = True,
  verify: bool = True,
  in_memory: bool = True,
  resolution: int | None = None,
  crop: str = "resize_crop",
  image_key: str = "image",
  label_key: str | None = "label",
) -> TfdsImageSource | ArraySource | FittedSource:
  """A random-access source of one split of a data set, prepared on first use.

  Records are ``{'image': uint8 (h, w, c), 'label': int, 'index': int}`` (``index``: the position
  in the original release, or in a folder's sorted file list). Reading goes through TFDS's
  ``ArrayRecordDataSource`` (what ``tfds.data_source`` returns; no TensorFlow needed), wrapped to
  add a batched read ``get_batch(indices)``. ``len(src)``, ``src[i]`` and
  ``src.__getitems__(indices)`` work as on any TFDS data source. Feed it to
  :func:`jaxgan.data.make_loader`. For example::

    src = load_source("mnist", source_dir="/path/to/data")  # prepared once, then cached
    src.get_batch([0, 1])["image"].shape                    # (2, 28, 28, 1), uint8
    src = load_source("folder:/photos", resolution=64)      # every image, 64x64, prepared once
    src = load_source("tfds:celeb_a", resolution=64, label_key=None)

  Args:
    name: one of :data:`DATASETS` (``'mnist'``, ``'fashion_mnist'``, ``'stacked_mnist'``,
      ``'cifar10'``, ``'cifar10_jpeg'``), ``'tfds:NAME[/CONFIG][:VERSION]'`` (any TFDS image data
      set prepared as array_record; :mod:`jaxgan.data.tfds_named`) or ``'folder:PATH'`` (a
      folder of image files, labels from its first-level subfolders; :mod:`jaxgan.data.folder`).
    split: a TFDS split spec (``'train'``, ``'test'``, ``'train[:90%]'``...); a folder has
      ``'train'`` only.
    data_dir: see :func:`prepare`.
    source_dir: see :func:`prepare` (jaxgan's own data sets only).
    download: see :func:`prepare`; for ``tfds:`` names, whether TFDS may prepare the data set.
    verify: see :func:`prepare`.
    in_memory: read the whole split into NumPy arrays once (MNIST's train split: 47 MB;
      CIFAR-10's: 150 MB) and serve batches from memory, several times faster than from disk;
      a split over :data:`MEMORY_BUDGET` bytes stays on disk. False: read from disk.
    resolution: bring every image to a ``resolution`` square by ``crop`` (None: keep the data
      set's size, which must then be one square size).
    crop: ``'resize_crop'``, ``'center_crop'`` or ``'pad'`` (:mod:`jaxgan.data.images`).
    image_key: the image feature (``tfds:`` names; the others have ``'image'`` only).
    label_key: the class feature, or None to read no labels (the records have no ``'label'``).

  Returns:
    An :class:`ArraySource` (in memory), or a :class:`TfdsImageSource` or
    :class:`FittedSource` (on disk).

  Raises:
    jaxgan.errors.ConfigError: an unknown name (listing the valid or close ones), key, resolution
      or crop policy, a split spec TFDS cannot read (naming the splits), images of several sizes
      without ``resolution``, labels asked of a folder without class subfolders.
    MissingDataError, FolderError, TfdsDataError: (`jaxgan.errors.UserError`) data that is not
      there and cannot be prepared; the message says what to do.
    DataIntegrityError: a corrupt or wrong source file.
  """
  registry.check_name(name, kinds=("image",))
  registry.check_keys(name, image_key, label_key)
  images_lib.check_resolution(resolution)
  images_lib.check_crop(crop)
  if name.startswith(registry.FOLDER_PREFIX):
    builder = folder_lib.prepare_folder(
      name,
      resolution=resolution,
      crop=crop,
      data_dir=_resolve_dir(data_dir, "JAXGAN_DATA_DIR"),
      labels=label_key is not None,
    )
    source = TfdsImageSource(_split(builder, split, name), identity=builder.plan.digest)
    resolution = None  # fitted when prepared
  elif name.startswith(registry.TFDS_PREFIX):
    source = tfds_named.open_split(
      name,
      split,
      data_dir=_resolve_dir(data_dir, "JAXGAN_DATA_DIR"),
      download=download,
      image_key=image_key,
      label_key=label_key,
    )
  else:
    builder = prepare(
      name, data_dir=data_dir, source_dir=source_dir, download=download, verify=verify
    )
    source = TfdsImageSource(_split(builder, split, name))
  source = _fit(source, name, resolution, crop)
  if in_memory and hasattr(source, "to_memory"):
    ((h, w, c),) = image_sizes(source)
    if len(source) * h * w * c <= MEMORY_BUDGET:
      source = source.to_memory()
    else:
      log.info(
        "%s '%s': %d images stay on disk (over %d bytes)", name, split, len(source), MEMORY_BUDGET
      )
  if label_key is None and isinstance(source, ArraySource) and "label" in source.arrays:
    source = ArraySource(
      {k: v for k, v in source.arrays.items() if k != "label"}, identity=source.identity
    )
  return source


def _split(builder, split: str, name: str):
  """The builder's data source of a split; a split spec TFDS refuses is a ConfigError."""
  try:
    return builder.as_data_source(split=split)
  except (ValueError, KeyError, AssertionError) as e:  # TFDS's refusals of a split spec
    splits = ", ".join(sorted(builder.info.splits.keys()))
    raise ConfigError(
      f"split {split!r} of {name!r} (config.data.split) cannot be read ({type(e).__name__}: "
      f"{str(e).splitlines()[0][:200]}). Its splits: {splits}; slices read like 'train[:10%]' "
      "or 'test[1000:2000]'."
    ) from None


def _fit(source, name: str, resolution: int | None, crop: str):
  """The source with its images brought to ``resolution`` squares by ``crop``, when needed."""
  sizes = image_sizes(source)
  if resolution is None:
    ((h, w, _),) = sizes
    if h is None or w is None or h != w:
      raise ConfigError(
        f"The images of {name!r} are {'of several sizes' if None in (h, w) else f'{w}x{h}'}, not "
        "one square size: set config.data.resolution (e.g. 64) and config.data.crop "
        f"({', '.join(images_lib.CROPS)}) to bring them to squares."
      )
    return source
  if sizes == {(resolution, resolution, c) for (_, _, c) in sizes}:
    return source
  ((h, w, _),) = sizes
  log.info(
    "%s: images of %s brought to %dx%d squares by crop %r (config.data.crop)",
    name,
    "several sizes" if None in (h, w) else f"{w}x{h}",
    resolution,
    resolution,
    crop,
  )
  return FittedSource(source, resolution, crop)
