"""Any TFDS image data set by name (``data.name='tfds:NAME[/CONFIG][:VERSION]'``), read without TensorFlow.

TFDS reads array_record files at random without TensorFlow (``builder.as_data_source``) and
decodes ``Image`` features with PIL, so any image data set prepared in that format trains as
jaxgan's own do. Preparing one (``download_and_prepare``) runs the data set's own TFDS code, which
for most image data sets needs TensorFlow; on a machine without it, prepare the data set elsewhere
with ``tfds build NAME --file_format=array_record`` and point ``data_dir`` at the result.

Records become ``{'image': uint8 (h, w, c), 'label': int (with a label key), 'index': int}``
(`RecordSource`); `jaxgan.data.sources.fit_source` then brings images to ``data.resolution``.
"""

from __future__ import annotations

import difflib
import logging
from collections.abc import Sequence
from typing import Any

import numpy as np

from jaxgan.data import registry
from jaxgan.errors import ConfigError, UserError

log = logging.getLogger(__name__)


class TfdsDataError(UserError, FileNotFoundError):
  """A TFDS data set that is not prepared (in a format jaxgan reads) and cannot be prepared here."""


def _builder(spec: str, data_dir: str | None):
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top

  name = spec[len(registry.TFDS_PREFIX) :]
  try:
    return tfds.builder(name, data_dir=data_dir, file_format="array_record")
  except tfds.core.registered.DatasetNotFoundError:
    known = tfds.list_builders(with_community_datasets=False)
    close = difflib.get_close_matches(name.split("/")[0].split(":")[0], known, n=5, cutoff=0.6)
    raise ConfigError(
      f"TFDS has no data set {name!r} (config.data.name={spec!r}); "
      + (f"close names: {', '.join(close)}. " if close else "")
      + "The catalogue: https://www.tensorflow.org/datasets/catalog/overview."
    ) from None
  except ValueError as e:  # an unknown builder config or version
    raise ConfigError(f"config.data.name={spec!r}: {str(e).splitlines()[0][:300]}") from None


def _describe(features) -> str:
  return ", ".join(f"{k} ({type(v).__name__})" for k, v in features.items())


def check_features(builder, spec: str, image_key: str, label_key: str | None) -> int | None:
  """Checks the image and label keys against the data set's features.

  Args:
    builder: the TFDS builder.
    spec: ``config.data.name``, for messages.
    image_key: the image feature's name.
    label_key: the label feature's name, or None when no labels are read.

  Returns:
    The label feature's class count when it is a ``ClassLabel``, else None.

  Raises:
    jaxgan.errors.ConfigError: a key that is not a feature (listing the features), an image key
      that is not an image, a label key that is not an integer scalar.
  """
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top

  features = builder.info.features
  if image_key not in features:
    raise ConfigError(
      f"{spec} has no feature {image_key!r} (config.data.image_key); its features: "
      f"{_describe(features)}."
    )
  image = features[image_key]
  if not (
    isinstance(image, (tfds.features.Image, tfds.features.Tensor))
    and np.dtype(image.np_dtype) == np.uint8
    and len(image.shape) in (2, 3)
  ):
    raise ConfigError(
      f"{spec}'s feature {image_key!r} (config.data.image_key) is {image!r}, not a uint8 image; "
      f"its features: {_describe(features)}."
    )
  if label_key is None:
    return None
  if label_key not in features:
    raise ConfigError(
      f"{spec} has no feature {label_key!r} to read class labels from (config.data.label_key; "
      f"needed by config.model.num_classes > 0); its features: {_describe(features)}. Set "
      "config.data.label_key to its class feature, or config.model.num_classes=0."
    )
  label = features[label_key]
  if isinstance(label, tfds.features.ClassLabel):
    return label.num_classes
  if getattr(label, "shape", None) != () or not np.issubdtype(np.dtype(label.np_dtype), np.integer):
    raise ConfigError(
      f"{spec}'s feature {label_key!r} (config.data.label_key) is {label!r}, not an integer "
      "class label."
    )
  return None


def open_split(
  spec: str,
  split: str,
  *,
  data_dir: str | None,
  download: bool,
  image_key: str,
  label_key: str | None,
):
  """A `RecordSource` over one split of a TFDS data set, prepared when it can be.

  Args:
    spec: ``'tfds:NAME[/CONFIG][:VERSION]'``.
    split: a TFDS split spec.
    data_dir: the TFDS data dir (None: TFDS's default).
    download: prepare the data set (download and convert) when it is not prepared.
    image_key: the image feature.
    label_key: the label feature, or None.

  Returns:
    The `RecordSource`.

  Raises:
    jaxgan.errors.ConfigError: an unknown name (listing close names) or key, a bad split.
    TfdsDataError: not prepared as array_record, and preparing is off or failed.
  """
  builder = _builder(spec, data_dir)
  check_features(builder, spec, image_key, label_key)
  name = spec[len(registry.TFDS_PREFIX) :]
  how = (
    f"Prepare it where TensorFlow is installed with `tfds build {name} "
    f"--file_format=array_record --data_dir=DIR` and set config.run.data_dir (or "
    "$JAXGAN_DATA_DIR) to DIR."
  )
  if not builder.is_prepared():
    if not download:
      raise TfdsDataError(f"{spec} is not prepared in {builder.data_dir_root}. {how}")
    log.info("Preparing %s into %s (array_record)", spec, builder.data_dir_root)
    try:
      builder.download_and_prepare(file_format="array_record")
    except Exception as e:  # the data set's own code: no network, no TensorFlow, ...
      raise TfdsDataError(
        f"Could not prepare {spec} into {builder.data_dir_root} ({type(e).__name__}: "
        f"{str(e).strip().splitlines()[0][:200]}). {how}"
      ) from e
  try:
    data_source = builder.as_data_source(split=split)
  except NotImplementedError as e:  # prepared, but as tfrecord: no random access
    raise TfdsDataError(
      f"{spec} in {builder.data_dir} cannot be read at random: {e} {how}"
    ) from None
  except (ValueError, KeyError, AssertionError) as e:
    raise ConfigError(
      f"split {split!r} of {spec!r} (config.data.split) cannot be read "
      f"({type(e).__name__}: {str(e).splitlines()[0][:200]}); its splits: "
      f"{', '.join(sorted(builder.info.splits.keys()))}."
    ) from None
  return RecordSource(data_source, image_key=image_key, label_key=label_key)


class RecordSource:
  """A TFDS data source whose records are mapped to ``{'image', 'label'?, 'index'}``.

  Images keep their own sizes (``get_batch`` needs them equal; `jaxgan.data.sources.fit_source`
  makes them so), grey images get a channel axis.

  Args:
    data_source: a TFDS data source (``builder.as_data_source(split)``).
    image_key: the image feature.
    label_key: the label feature, or None for no labels.
  """

  def __init__(self, data_source, *, image_key: str, label_key: str | None):
    self.data_source, self.image_key, self.label_key = data_source, image_key, label_key
    feature = data_source.dataset_info.features[image_key]
    self.image_shape = tuple(feature.shape) if len(feature.shape) == 3 else (*feature.shape, 1)

  def __len__(self) -> int:
    return len(self.data_source)

  def _convert(self, record: dict[str, Any], i: int) -> dict[str, Any]:
    image = np.asarray(record[self.image_key], np.uint8)
    out = {"image": image[..., None] if image.ndim == 2 else image, "index": int(i)}
    if self.label_key is not None:
      out["label"] = int(record[self.label_key])
    return out

  def __getitem__(self, i: int) -> dict[str, Any]:
    return self._convert(self.data_source[int(i)], int(i))

  def __getitems__(self, keys: Sequence[int]) -> list[dict[str, Any]]:
    # Record by record: decoding (JPEG, PNG) dominates a read of these records.
    return [self[int(k)] for k in keys]

  def get_batch(self, keys: Sequence[int]) -> dict[str, np.ndarray]:
    """The records at ``keys`` stacked (their images must share one shape)."""
    records = self.__getitems__(keys)
    return {k: np.stack([np.asarray(r[k]) for r in records]) for k in records[0]}

  def to_memory(self):
    """Reads every record into a `jaxgan.data.ArraySource` (the images must share one shape)."""
    from jaxgan.data.sources import read_all  # pylint: disable=g-import-not-at-top

    return read_all(self)
