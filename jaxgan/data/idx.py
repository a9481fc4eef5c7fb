"""Reading the IDX files of MNIST and Fashion-MNIST, checking their structure and checksums.

IDX (LeCun et al. 1998) is a big-endian header, magic ``0x0000080N`` (uint8 elements, N dimensions),
then each dimension as a uint32, then the raw elements. The releases gzip each file. Everything here
is plain NumPy and raises errors that name the offending file.
"""

from __future__ import annotations

import gzip
import os
import zlib
from collections.abc import Iterable, Mapping

import numpy as np

from jaxgan.data.checksums import DataIntegrityError, check_sha256, sha256_bytes, verify_file

# The only element type MNIST-style files use.
_IDX_DTYPES = {0x08: np.uint8}


def read_gzip(path: str | os.PathLike) -> bytes:
  """The decompressed contents of a ``.gz`` file, or the bytes of any other file.

  Args:
    path: the file; decompressed when its name ends in ``.gz``.

  Returns:
    The file's (decompressed) bytes.

  Raises:
    FileNotFoundError: ``path`` does not exist (the message names it).
    DataIntegrityError: the gzip stream is truncated or not gzip.
  """
  path = os.fspath(path)
  try:
    with open(path, "rb") as f:
      raw = f.read()
  except FileNotFoundError:
    raise FileNotFoundError(f"Source file not found: {path}") from None
  if not path.endswith(".gz"):
    return raw
  try:
    return gzip.decompress(raw)
  except (EOFError, OSError, zlib.error) as e:
    raise DataIntegrityError(
      f"Cannot decompress {path} (truncated or not gzip): {e}. Delete it and provide the "
      "original file again."
    ) from e


def parse_idx(
  data: bytes, *, name: str = "<bytes>", expected_ndim: int | None = None
) -> np.ndarray:
  """Parses an IDX payload, checking the magic number and the dimensions against the size.

  Args:
    data: the decompressed file contents.
    name: the file name used in error messages.
    expected_ndim: if given, the number of dimensions the file must declare (3 for images,
      1 for labels).

  Returns:
    A read-only uint8 array of the declared shape, e.g. ``(n, 28, 28)`` for images or ``(n,)``
    for labels (a view of ``data``).

  Raises:
    DataIntegrityError: a wrong magic number or number of dimensions, or a size that does not
      match the header.

  >>> payload = bytes([0, 0, 0x08, 1]) + (3).to_bytes(4, "big") + bytes([7, 8, 9])
  >>> parse_idx(payload, expected_ndim=1)
  array([7, 8, 9], dtype=uint8)
  """
  if len(data) < 4:
    raise DataIntegrityError(f"IDX file {name} is truncated: {len(data)} bytes, no header.")
  zero0, zero1, dtype_code, ndim = data[0], data[1], data[2], data[3]
  magic = int.from_bytes(data[:4], "big")
  if zero0 != 0 or zero1 != 0 or dtype_code not in _IDX_DTYPES or ndim == 0:
    raise DataIntegrityError(
      f"{name} is not an IDX file of uint8: magic number 0x{magic:08x} "
      "(expected 0x00000801 for labels or 0x00000803 for images)."
    )
  if expected_ndim is not None and ndim != expected_ndim:
    raise DataIntegrityError(
      f"IDX file {name} has {ndim} dimensions (magic 0x{magic:08x}), expected {expected_ndim}."
    )
  header = 4 + 4 * ndim
  if len(data) < header:
    raise DataIntegrityError(f"IDX file {name} is truncated inside its header ({len(data)} bytes).")
  dims = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
  expected = header + int(np.prod(dims, dtype=np.int64))
  if len(data) != expected:
    kind = "truncated" if len(data) < expected else "longer than its header says"
    raise DataIntegrityError(
      f"IDX file {name} is {kind}: {len(data)} bytes, but its header declares dimensions "
      f"{dims}, i.e. {expected} bytes."
    )
  return np.frombuffer(data, dtype=_IDX_DTYPES[dtype_code], offset=header).reshape(dims)


def load_idx_pair(
  images_path: str,
  labels_path: str,
  *,
  expected_sha256: Mapping[str, str] | None = None,
  manifest_roots: Iterable[str] = (),
  verify: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
  """Loads an images/labels pair of (gzipped) IDX files and checks that they belong together.

  Args:
    images_path: the images file, 3 dimensions ``(n, h, w)``.
    labels_path: the labels file, 1 dimension ``(n,)``.
    expected_sha256: file basename -> SHA-256 of the *decompressed* payload, checked when
      ``verify``. Payload digests do not depend on gzip headers, so they hold for the original
      archives and for re-gzipped copies alike.
    manifest_roots: folders whose ``SHA256SUMS`` manifest (digests of the files as stored) is
      honoured when it lists these files and ``verify`` is set.
    verify: whether to check digests at all. Structural checks (magic, sizes) always run.

  Returns:
    ``(images, labels)``: images uint8 ``(n, h, w, 1)`` and labels uint8 ``(n,)``.

  Raises:
    FileNotFoundError: a file is missing.
    DataIntegrityError: a file is corrupt or truncated, a digest differs, or the two files hold
      different numbers of examples.
  """
  arrays = []
  for path, ndim in ((images_path, 3), (labels_path, 1)):
    if verify:
      verify_file(path, manifest_roots=manifest_roots)
    payload = read_gzip(path)
    if verify and expected_sha256 is not None:
      expected = expected_sha256.get(os.path.basename(path))
      if expected is not None:
        check_sha256(path, sha256_bytes(payload), expected, "decompressed payload")
    arrays.append(parse_idx(payload, name=path, expected_ndim=ndim))
  images, labels = arrays
  if images.shape[0] != labels.shape[0]:
    raise DataIntegrityError(
      f"{images_path} holds {images.shape[0]} images but {labels_path} holds "
      f"{labels.shape[0]} labels: the two files come from different releases or splits."
    )
  return images[..., None], labels
