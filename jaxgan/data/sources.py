"""Random-access image sources with a batched read.

Both classes behave like a TFDS data source (``len(src)``, ``src[i]`` -> dict,
``src.__getitems__(keys)`` -> list of dicts) and add ``get_batch(keys)`` -> dict of stacked arrays,
which :func:`jaxgan.data.make_loader` uses. Reading records one at a time through TFDS pays its
generic decoding and an array_record read-ahead per record; ``get_batch`` does one parallel
array_record read per batch and parses the ``tf.train.Example`` protos directly.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

# Records per read when copying a split into memory: large reads, bounded temporary memory.
_CHUNK = 4096


class ArraySource:
  """An in-memory source over equal-length arrays.

  Args:
    arrays: name -> array with the examples on the first axis; must hold ``'image'`` (uint8
      ``(n, h, w, c)`` for :func:`jaxgan.data.make_loader`) and may hold ``'label'``,
      ``'index'`` (``(n,)``). The arrays are kept as read-only views, not copied.
    identity: a digest of the data behind the arrays (a folder's manifest), which
      :func:`jaxgan.data.make_loader` puts in its saved stream so that a run resumed on changed
      data is refused; None: none.

  Raises:
    ValueError: no ``'image'`` array, or arrays of different lengths.

  >>> src = ArraySource({"image": np.zeros((3, 2, 2, 1), np.uint8), "label": np.arange(3)})
  >>> len(src), src[1]["label"], src.get_batch([2, 0])["label"].tolist()
  (3, 1, [2, 0])
  """

  def __init__(self, arrays: Mapping[str, np.ndarray], identity: str | None = None):
    self.identity = identity
    lengths = {k: len(v) for k, v in arrays.items()}
    if "image" not in arrays or len(set(lengths.values())) != 1:
      raise ValueError(f"Need an 'image' array and equal lengths, got {lengths}.")
    self.arrays = {}
    for k, v in arrays.items():
      view = np.asarray(v).view()
      view.flags.writeable = False  # records handed out are views: keep the arrays intact
      self.arrays[k] = view
    self._len = next(iter(lengths.values()))

  def __len__(self) -> int:
    return self._len

  def __getitem__(self, i: int) -> dict[str, Any]:
    """Record ``i``: arrays for per-example arrays, Python scalars for scalar ones.

    Raises:
      IndexError: ``i`` is out of range.
    """
    if not -self._len <= i < self._len:
      raise IndexError(f"Index {i} out of range for a source of {self._len}.")
    return {k: (v[i] if v.ndim > 1 else v[i].item()) for k, v in self.arrays.items()}

  def __getitems__(self, keys: Sequence[int]) -> list[dict[str, Any]]:
    return [self[int(k)] for k in keys]

  def get_batch(self, keys: Sequence[int]) -> dict[str, np.ndarray]:
    """The records at ``keys`` stacked: name -> array ``(len(keys), ...)``, dtypes kept."""
    keys = np.asarray(keys, dtype=np.int64)
    return {k: v[keys] for k, v in self.arrays.items()}

  def __repr__(self):
    shapes = {k: v.shape for k, v in self.arrays.items()}
    return f"ArraySource({shapes})"


class TfdsImageSource:
  """Wraps a TFDS ``ArrayRecordDataSource`` of a :mod:`jaxgan.data.builders` data set.

  Args:
    tfds_source: what ``builder.as_data_source(split)`` returns; records are
      ``{'image': uint8 (h, w, c), 'label': int, 'index': int}``.
    identity: see :class:`ArraySource`.
  """

  def __init__(self, tfds_source, identity: str | None = None):
    self.tfds_source = tfds_source
    self.identity = identity
    self._spec = _fast_spec(tfds_source)

  @property
  def dataset_info(self):
    """TFDS's ``DatasetInfo`` of the data set (features, splits, citation)."""
    return self.tfds_source.dataset_info

  def __len__(self) -> int:
    return len(self.tfds_source)

  def __getitem__(self, i: int) -> dict[str, Any]:
    return self.tfds_source[i]

  def __getitems__(self, keys: Sequence[int]) -> list[dict[str, Any]]:
    return self.tfds_source.__getitems__([int(k) for k in keys])

  def get_batch(self, keys: Sequence[int]) -> dict[str, np.ndarray]:
    """The records at ``keys`` stacked: ``image`` uint8 ``(len(keys), h, w, c)``, ``label`` and
    ``index`` int64 ``(len(keys),)``."""
    keys = [int(k) for k in keys]
    if self._spec is None:
      records = self.tfds_source.__getitems__(keys)
      return {k: np.stack([np.asarray(r[k]) for r in records]) for k in records[0]}
    raw = self.tfds_source.data_source.__getitems__(keys)
    return _parse_batch(raw, self._spec)

  def to_memory(self) -> ArraySource:
    """Reads the whole split into an :class:`ArraySource` in one sequential pass."""
    return read_all(self)

  def __repr__(self):
    return f"TfdsImageSource({self.tfds_source!r}, {len(self)} records)"


def _fast_spec(tfds_source) -> dict[str, tuple[tuple[int, ...], np.dtype, bool]] | None:
  """name -> (shape, dtype, stored_as_bytes) when every feature is a plain Tensor, else None."""
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top

  try:
    features = tfds_source.dataset_info.features
    raw = tfds_source.data_source
  except AttributeError:
    return None
  if raw is None or not hasattr(raw, "__getitems__"):
    return None
  spec = {}
  for name, feature in features.items():
    if type(feature) is not tfds.features.Tensor:  # pylint: disable=unidiomatic-typecheck
      return None
    info = feature.get_serialized_info()
    as_bytes = np.dtype(feature.np_dtype) != np.dtype(info.np_dtype)
    if not as_bytes and feature.shape != ():
      return None  # the direct parser reads only scalars unencoded
    if as_bytes and any(d is None for d in feature.shape):
      return None
    spec[name] = (tuple(feature.shape), np.dtype(feature.np_dtype), as_bytes)
  return spec


def _parse_batch(raw: Sequence[bytes], spec) -> dict[str, np.ndarray]:
  from tensorflow_datasets.proto import tf_example_pb2  # pylint: disable=g-import-not-at-top

  n = len(raw)
  out = {name: np.empty((n, *shape), dtype) for name, (shape, dtype, _) in spec.items()}
  for i, record in enumerate(raw):
    feature = tf_example_pb2.Example.FromString(record).features.feature
    for name, (shape, dtype, as_bytes) in spec.items():
      if as_bytes:
        out[name][i] = np.frombuffer(feature[name].bytes_list.value[0], dtype).reshape(shape)
      elif np.issubdtype(dtype, np.integer):
        out[name][i] = feature[name].int64_list.value[0]
      else:
        out[name][i] = feature[name].float_list.value[0]
  return out


class FittedSource:
  """A source whose images are brought to a square by a crop policy as they are read.

  Args:
    source: a random-access source of ``{'image': uint8 (h, w, c), ...}`` (sizes may differ).
    resolution: the side of the square.
    crop: one of :data:`jaxgan.data.images.CROPS`.
  """

  def __init__(self, source, resolution: int, crop: str):
    self.source, self.resolution, self.crop = source, resolution, crop
    self.identity = getattr(source, "identity", None)

  def __len__(self) -> int:
    return len(self.source)

  def _fit(self, record: dict[str, Any]) -> dict[str, Any]:
    from jaxgan.data.images import fit_square  # pylint: disable=g-import-not-at-top

    image = np.asarray(record["image"])
    image = image[..., None] if image.ndim == 2 else image
    return {**record, "image": fit_square(image, self.resolution, self.crop)}

  def __getitem__(self, i: int) -> dict[str, Any]:
    return self._fit(self.source[i])

  def __getitems__(self, keys: Sequence[int]) -> list[dict[str, Any]]:
    return [self._fit(r) for r in self.source.__getitems__(keys)]

  def get_batch(self, keys: Sequence[int]) -> dict[str, np.ndarray]:
    """The records at ``keys``, fitted and stacked: ``image`` uint8 ``(len(keys), r, r, c)``."""
    records = self.__getitems__([int(k) for k in keys])
    return {k: np.stack([np.asarray(r[k]) for r in records]) for k in records[0]}

  def to_memory(self) -> ArraySource:
    """Reads and fits every record into an :class:`ArraySource`, a chunk at a time."""
    return read_all(self)


def read_all(source) -> ArraySource:
  """Every record of a source with ``get_batch`` as an :class:`ArraySource`, a chunk per read."""
  n = len(source)
  chunks = [source.get_batch(range(s, min(s + _CHUNK, n))) for s in range(0, n, _CHUNK)]
  arrays = {k: np.concatenate([c[k] for c in chunks]) for k in chunks[0]}
  return ArraySource(arrays, identity=getattr(source, "identity", None))


def image_sizes(source) -> set[tuple[int, ...]]:
  """The image shapes of a source: exact for an :class:`ArraySource`, else those declared."""
  arrays = getattr(source, "arrays", None)
  if arrays is not None:
    return {tuple(arrays["image"].shape[1:])}
  declared = getattr(source, "image_shape", None)
  if declared is not None:
    return {tuple(declared)}
  return {tuple(np.asarray(source[0]["image"]).shape)}
