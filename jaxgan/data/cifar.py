"""Reading CIFAR-10's source files: the binary release and the JPEG-recompressed npz copies.

CIFAR-10 (Krizhevsky 2009): 60,000 32x32 RGB images in 10 classes. The binary release
``cifar-10-binary.tar.gz`` holds six ``*.bin`` files of 3,073-byte records (a label byte, then the
image as channel-major planes). The JPEG copies are npz files of three plain arrays (no pickle):
``jpeg_bytes`` (every image's JPEG concatenated), ``offsets`` (``n + 1`` int64 boundaries) and
``labels``. Errors name the offending file.
"""

from __future__ import annotations

import io
import tarfile
import zlib
from collections.abc import Iterable

import numpy as np

from jaxgan.data.checksums import DataIntegrityError, verify_file

# One label byte, then 32 * 32 pixels of each of the three channels.
CIFAR10_RECORD_BYTES = 1 + 32 * 32 * 3


def parse_cifar10_binary(data: bytes, *, name: str) -> tuple[np.ndarray, np.ndarray]:
  """Parses one ``*_batch*.bin`` of the binary release.

  Args:
    data: the file's bytes.
    name: the file name used in error messages.

  Returns:
    ``(images, labels)``: images uint8 ``(n, 32, 32, 3)`` (channels last) and labels uint8
    ``(n,)`` in 0..9.

  Raises:
    DataIntegrityError: the size is not a positive multiple of a record, or a label is over 9.

  >>> record = bytes([3]) + bytes(range(256)) * 12
  >>> images, labels = parse_cifar10_binary(record, name="x.bin")
  >>> images.shape, labels.tolist(), images[0, 0, 1].tolist()
  ((1, 32, 32, 3), [3], [1, 1, 1])
  """
  if len(data) == 0 or len(data) % CIFAR10_RECORD_BYTES:
    raise DataIntegrityError(
      f"{name} is truncated: {len(data)} bytes is not a positive multiple of the "
      f"{CIFAR10_RECORD_BYTES}-byte CIFAR-10 record. Provide the original archive again."
    )
  records = np.frombuffer(data, np.uint8).reshape(-1, CIFAR10_RECORD_BYTES)
  labels = records[:, 0]
  if labels.max() > 9:
    raise DataIntegrityError(f"{name}: labels outside 0..9; this is not a CIFAR-10 file.")
  return records[:, 1:].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1), labels


def read_tar_members(path: str, names: Iterable[str]) -> dict[str, bytes]:
  """Reads the named members of a ``.tar.gz`` into memory.

  :mod:`tarfile` rather than TFDS's extractor, which needs TensorFlow.

  Args:
    path: the archive.
    names: member paths inside the archive.

  Returns:
    Member path -> its bytes.

  Raises:
    DataIntegrityError: the archive is truncated or not a ``.tar.gz``, or lacks a member.
  """
  wanted = set(names)
  out = {}
  try:
    with tarfile.open(path, "r:gz") as tar:
      for member in tar:
        if member.name in wanted and member.isfile():
          out[member.name] = tar.extractfile(member).read()
  except (tarfile.TarError, EOFError, OSError, zlib.error) as e:
    raise DataIntegrityError(
      f"Cannot read {path} (truncated or not a .tar.gz): {e}. Delete it and provide the "
      "original archive again."
    ) from e
  missing = sorted(wanted - set(out))
  if missing:
    raise DataIntegrityError(f"{path} lacks {missing}; it is not the expected release.")
  return out


def load_jpeg_npz(
  path: str,
  *,
  expected_sha256: str | None = None,
  manifest_roots: Iterable[str] = (),
  verify: bool = True,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """Loads a ``{jpeg_bytes, offsets, labels}`` npz and validates its layout.

  Args:
    path: the npz file.
    expected_sha256: a pinned digest of the whole file, checked when ``verify``.
    manifest_roots: folders whose ``SHA256SUMS`` is honoured when it lists ``path``.
    verify: whether to check digests. The layout checks always run.

  Returns:
    ``(jpeg_bytes, offsets, labels)``: uint8 ``(total_bytes,)``, int64 ``(n + 1,)`` and labels
    ``(n,)`` in 0..9. Image i is ``jpeg_bytes[offsets[i]:offsets[i + 1]]``; decode it with
    :func:`decode_jpeg`.

  Raises:
    FileNotFoundError: ``path`` does not exist.
    DataIntegrityError: a digest differs, the file is not an npz, lacks an array, or its
      offsets or labels are inconsistent.
  """
  if verify:
    verify_file(path, manifest_roots=manifest_roots, expected=expected_sha256)
  try:
    with np.load(path, allow_pickle=False) as z:
      missing = {"jpeg_bytes", "offsets", "labels"} - set(z.files)
      if missing:
        raise DataIntegrityError(f"{path} lacks arrays {sorted(missing)} (has {z.files}).")
      jpeg, offsets, labels = z["jpeg_bytes"], z["offsets"], z["labels"]
  except FileNotFoundError:
    raise FileNotFoundError(f"Source file not found: {path}") from None
  except DataIntegrityError:
    raise
  except Exception as e:  # zipfile.BadZipFile, ValueError, EOFError, ...
    raise DataIntegrityError(
      f"Cannot read {path} as an npz archive: {e}. Delete it and provide the original again."
    ) from e
  n = len(labels)
  if (
    offsets.ndim != 1
    or len(offsets) != n + 1
    or offsets[0] != 0
    or offsets[-1] != len(jpeg)
    or np.any(np.diff(offsets) <= 0)
  ):
    raise DataIntegrityError(
      f"{path}: inconsistent layout: {n} labels, {len(offsets)} offsets "
      f"(need {n + 1}, increasing from 0 to len(jpeg_bytes)={len(jpeg)})."
    )
  if labels.size and (labels.min() < 0 or labels.max() > 9):
    raise DataIntegrityError(f"{path}: labels outside 0..9.")
  return jpeg, offsets.astype(np.int64), labels


def decode_jpeg(data: bytes, *, name: str, shape: tuple[int, int, int] = (32, 32, 3)) -> np.ndarray:
  """Decodes one JPEG with Pillow into an RGB array of a known shape.

  Args:
    data: the JPEG bytes.
    name: what to call the image in error messages (e.g. ``"file.npz[17]"``).
    shape: the ``(h, w, 3)`` the image must have.

  Returns:
    uint8 ``shape``.

  Raises:
    DataIntegrityError: the bytes are not a decodable image, or it has another shape.
  """
  from PIL import Image  # pylint: disable=g-import-not-at-top

  try:
    with Image.open(io.BytesIO(data)) as im:
      arr = np.asarray(im.convert("RGB"), dtype=np.uint8)
  except Exception as e:
    raise DataIntegrityError(f"Cannot decode JPEG {name}: {e}") from e
  if arr.shape != shape:
    raise DataIntegrityError(f"JPEG {name} has shape {arr.shape}, expected {shape}.")
  return arr
