"""What every jaxgan TFDS builder shares: where its source files are, verification, features.

Records are ``{'image': uint8 (h, w, c), 'label': int64, 'index': int64}``, the image stored as
``tfds.features.Tensor`` (plain bytes) rather than ``tfds.features.Image``: encoding and decoding
Image features needs TensorFlow, a plain tensor feature does not. The concrete data sets are in
:mod:`jaxgan.data.builders`.
"""

from __future__ import annotations

import os
from typing import Any, ClassVar

import numpy as np
import tensorflow_datasets as tfds
from tensorflow_datasets.core import utils as tfds_utils
from tensorflow_datasets.core.download import checksums as tfds_checksums

from jaxgan.data import registry, releases


def _features(shape: tuple[int, int, int]) -> tfds.features.FeaturesDict:
  # encoding="bytes" stores the image as one raw bytes value; the default stores a uint8 tensor
  # as an int64_list, eight times larger on disk and much slower to parse.
  return tfds.features.FeaturesDict(
    {
      "image": tfds.features.Tensor(shape=shape, dtype=np.uint8, encoding="bytes"),
      "label": tfds.features.Tensor(shape=(), dtype=np.int64),
      # Position in the original release: provenance, and a stable id for tests and debugging
      # (TFDS shuffles records by key when it writes them).
      "index": tfds.features.Tensor(shape=(), dtype=np.int64),
    }
  )


class JaxganBuilder(tfds.core.GeneratorBasedBuilder, skip_registration=True):
  """What every jaxgan builder shares: where its source files are, verification, features.

  Records are ``{'image': uint8 shape, 'label': int64 in [0, num_classes), 'index': int64}``, the
  shape and class count of the builder's row in `jaxgan.data.registry` (`data_set`). Subclasses
  set the class attributes below and ``MANUAL_DOWNLOAD_INSTRUCTIONS``.

  Args:
    verify: check the source files' digests; structural checks always run.
    **kwargs: passed to ``tfds.core.GeneratorBasedBuilder`` (``data_dir``...); ``file_format``
      defaults to ``"array_record"``, the random-access format the loader reads.
  """

  VERSION = tfds.core.Version("1.0.0")
  RELEASE_NOTES: ClassVar[dict[str, str]] = {
    "1.0.0": "Initial release (array_record, Tensor image)."
  }

  # Sub-folder of a data root (a folder with one sub-folder per data set) holding the files.
  SOURCE_SUBDIR: ClassVar[str]
  HOMEPAGE: ClassVar[str] = ""
  CITATION: ClassVar[str] = ""
  DESCRIPTION: ClassVar[str] = ""
  CAN_DOWNLOAD: ClassVar[bool] = True

  # TFDS looks for a checksums.tsv beside a builder's code through `code_path` (which needs the
  # importlib_resources backport for builders outside TFDS); the digests are pinned in code instead.
  @tfds_utils.classproperty
  @classmethod
  def code_path(cls):  # pylint: disable=invalid-overridden-method
    return None

  @tfds_utils.classproperty
  @classmethod
  def url_infos(cls):  # pylint: disable=invalid-overridden-method
    return {
      url: tfds_checksums.UrlInfo(size=size, checksum=sha, filename=url.rsplit("/", 1)[-1])
      for url, (size, sha) in releases.URL_CHECKSUMS.items()
    }

  def __init__(self, *, verify: bool = True, **kwargs: Any):
    kwargs.setdefault("file_format", "array_record")
    self.verify = verify
    super().__init__(**kwargs)

  @classmethod
  def data_set(cls) -> registry.DataSet:
    """The registry's row whose definition is this builder: its name, shape, classes, source."""
    definition = f"{cls.__module__}:{cls.__qualname__}"
    rows = [d for d in registry.DATA_SETS.values() if d.definition == definition]
    if len(rows) != 1:
      raise LookupError(f"{definition} defines {len(rows)} data sets of jaxgan.data.registry.")
    return rows[0]

  @classmethod
  def source_files(cls) -> dict[str, tuple[str, ...]]:
    """Split (or ``"all"``) -> the names of the files that must be present locally."""
    raise NotImplementedError

  @classmethod
  def all_source_files(cls) -> list[str]:
    """Every file name of :meth:`source_files`, in order."""
    return [f for files in cls.source_files().values() for f in files]

  @classmethod
  def source_candidates(cls, source_dir: str | os.PathLike) -> list[str]:
    """The folders searched for the files: ``source_dir/SOURCE_SUBDIR``, then ``source_dir``."""
    source_dir = os.fspath(source_dir)
    return [os.path.join(source_dir, cls.SOURCE_SUBDIR), source_dir]

  @classmethod
  def locate_source(cls, source_dir: str | os.PathLike) -> str | None:
    """The first of :meth:`source_candidates` holding every source file, or None."""
    for cand in cls.source_candidates(source_dir):
      if all(os.path.isfile(os.path.join(cand, f)) for f in cls.all_source_files()):
        return cand
    return None

  @classmethod
  def missing_files(cls, source_dir: str | os.PathLike) -> list[str]:
    """The source file names found in none of :meth:`source_candidates`."""
    cands = cls.source_candidates(source_dir)
    return [
      f
      for f in cls.all_source_files()
      if not any(os.path.isfile(os.path.join(c, f)) for c in cands)
    ]

  def _info(self) -> tfds.core.DatasetInfo:
    return tfds.core.DatasetInfo(
      builder=self,
      description=self.DESCRIPTION,
      features=_features(self.data_set().shape),
      supervised_keys=("image", "label"),
      homepage=self.HOMEPAGE,
      citation=self.CITATION,
    )

  def _local_dir(self, dl_manager: tfds.download.DownloadManager) -> str | None:
    """The manual dir if it holds this data set's files; None means download instead."""
    try:
      manual = dl_manager.manual_dir
    except (AssertionError, ValueError):  # not set, missing or empty
      return None
    found = self.locate_source(manual)
    if found is None:
      raise FileNotFoundError(
        f"{self.name}: the source folder {manual} does not hold {self.missing_files(manual)} "
        f"(also looked in {os.path.join(os.fspath(manual), self.SOURCE_SUBDIR)}). "
        + self.MANUAL_DOWNLOAD_INSTRUCTIONS
      )
    return found

  @staticmethod
  def _manifest_roots(folder: str) -> list[str]:
    # A SHA256SUMS beside the files, or one in the data root above them.
    return [folder, os.path.dirname(os.path.abspath(folder))]
