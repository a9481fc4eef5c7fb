"""Reading and verifying the raw source files: IDX (MNIST, Fashion-MNIST) and CIFAR-10.

Everything here is plain NumPy/Pillow and raises errors that name the offending file, so that
a truncated download or a wrong path is diagnosed without reading a traceback through TFDS.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import tarfile
import zlib
from collections.abc import Iterable, Mapping

import numpy as np

_IDX_DTYPES = {0x08: np.uint8}  # the only element type MNIST-style files use


class DataIntegrityError(ValueError):
    """A source file is corrupt, truncated or does not match its expected checksum."""


# --------------------------------------------------------------------------------------------
# Checksums
# --------------------------------------------------------------------------------------------


def sha256_bytes(data: bytes | memoryview) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def read_sha256sums(path: str | os.PathLike) -> dict[str, str]:
    """Parses a `sha256sum` manifest (``<hex>  <relative path>`` per line)."""
    sums = {}
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            parts = line.split(maxsplit=1)
            if len(parts) != 2 or len(parts[0]) != 64:
                raise DataIntegrityError(f"{path}:{lineno}: not a sha256sum line: {line!r}")
            sums[parts[1].lstrip("*").strip()] = parts[0].lower()
    return sums


def find_manifest_entry(path: str, search_roots: Iterable[str]) -> tuple[str, str] | None:
    """Returns ``(manifest_path, expected_sha256)`` for ``path`` from the first SHA256SUMS found.

    A manifest in any of ``search_roots`` (e.g. the source folder and its parent) that lists
    ``path`` by its path relative to that root is used.
    """
    path = os.path.abspath(path)
    for root in search_roots:
        manifest = os.path.join(root, "SHA256SUMS")
        if not os.path.isfile(manifest):
            continue
        rel = os.path.relpath(path, os.path.abspath(root)).replace(os.sep, "/")
        sums = read_sha256sums(manifest)
        if rel in sums:
            return manifest, sums[rel]
    return None


def check_sha256(path: str, actual: str, expected: str, what: str) -> None:
    if actual != expected:
        raise DataIntegrityError(
            f"Checksum mismatch for {path}: {what} sha256 is {actual}, expected {expected}. "
            "The file is corrupt or not the expected release; delete it and provide the "
            "original (or pass verify=False to skip checks for your own data)."
        )


# --------------------------------------------------------------------------------------------
# IDX
# --------------------------------------------------------------------------------------------


def read_gzip(path: str | os.PathLike) -> bytes:
    """Decompresses a whole .gz file (or returns the bytes of a plain file), naming it on error."""
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
        raise DataIntegrityError(f"Cannot decompress {path} (truncated or not gzip): {e}") from e


def parse_idx(data: bytes, *, name: str = "<bytes>", expected_ndim: int | None = None) -> np.ndarray:
    """Parses an IDX payload, checking the magic number and the dimensions against the size.

    Args:
      data: the decompressed file contents.
      name: the file name used in error messages.
      expected_ndim: if given, the number of dimensions the file must declare (3 for images,
        1 for labels).

    Returns:
      A read-only uint8 array of the declared shape (a view of ``data``).
    """
    if len(data) < 4:
        raise DataIntegrityError(f"IDX file {name} is truncated: {len(data)} bytes, no header.")
    zero0, zero1, dtype_code, ndim = data[0], data[1], data[2], data[3]
    if zero0 != 0 or zero1 != 0 or dtype_code not in _IDX_DTYPES or ndim == 0:
        raise DataIntegrityError(
            f"{name} is not an IDX file of uint8: magic number 0x{int.from_bytes(data[:4], 'big'):08x} "
            "(expected 0x00000801 for labels or 0x00000803 for images)."
        )
    if expected_ndim is not None and ndim != expected_ndim:
        raise DataIntegrityError(
            f"IDX file {name} has {ndim} dimensions (magic 0x{int.from_bytes(data[:4], 'big'):08x}), "
            f"expected {expected_ndim}."
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
    """Loads an images/labels pair of gzipped IDX files and checks they belong together.

    Args:
      images_path, labels_path: the .gz (or uncompressed) IDX files.
      expected_sha256: basename -> sha256 of the *decompressed* payload, checked when
        ``verify`` (payload checksums are independent of gzip headers).
      manifest_roots: folders whose ``SHA256SUMS`` manifest (checksums of the files as stored)
        is honoured when it lists these files and ``verify`` is set.
      verify: whether to check checksums at all. Structural checks (magic, sizes) always run.

    Returns:
      ``images`` uint8 [N, H, W, 1] and ``labels`` uint8 [N].
    """
    arrays = []
    for path, ndim in ((images_path, 3), (labels_path, 1)):
        if verify:
            entry = find_manifest_entry(path, manifest_roots)
            if entry is not None:
                check_sha256(path, sha256_file(path), entry[1], f"file (per {entry[0]})")
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
            f"{labels.shape[0]} labels."
        )
    return images[..., None], labels


# --------------------------------------------------------------------------------------------
# CIFAR-10
# --------------------------------------------------------------------------------------------


def load_jpeg_npz(path: str, *, expected_sha256: str | None = None, manifest_roots: Iterable[str] = (),
                  verify: bool = True) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Loads a ``{jpeg_bytes, offsets, labels}`` npz and validates its layout.

    Returns ``(jpeg_bytes, offsets, labels)``; decode image i with :func:`decode_jpeg`.
    """
    if verify:
        entry = find_manifest_entry(path, manifest_roots)
        if entry is not None or expected_sha256 is not None:
            actual = sha256_file(path)
            if entry is not None:
                check_sha256(path, actual, entry[1], f"file (per {entry[0]})")
            if expected_sha256 is not None:
                check_sha256(path, actual, expected_sha256, "file")
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
        raise DataIntegrityError(f"Cannot read {path} as an npz archive: {e}") from e
    n = len(labels)
    if (offsets.ndim != 1 or len(offsets) != n + 1 or offsets[0] != 0
            or offsets[-1] != len(jpeg) or np.any(np.diff(offsets) <= 0)):
        raise DataIntegrityError(
            f"{path}: inconsistent layout: {n} labels, {len(offsets)} offsets "
            f"(need {n + 1}, increasing from 0 to len(jpeg_bytes)={len(jpeg)})."
        )
    if labels.size and (labels.min() < 0 or labels.max() > 9):
        raise DataIntegrityError(f"{path}: labels outside 0..9.")
    return jpeg, offsets.astype(np.int64), labels


def decode_jpeg(data: bytes, *, name: str, shape: tuple[int, int, int] = (32, 32, 3)) -> np.ndarray:
    from PIL import Image  # pylint: disable=g-import-not-at-top

    try:
        with Image.open(io.BytesIO(data)) as im:
            arr = np.asarray(im.convert("RGB"), dtype=np.uint8)
    except Exception as e:
        raise DataIntegrityError(f"Cannot decode JPEG {name}: {e}") from e
    if arr.shape != shape:
        raise DataIntegrityError(f"JPEG {name} has shape {arr.shape}, expected {shape}.")
    return arr


CIFAR10_RECORD_BYTES = 1 + 32 * 32 * 3


def parse_cifar10_binary(data: bytes, *, name: str) -> tuple[np.ndarray, np.ndarray]:
    """``(images [N, 32, 32, 3] uint8, labels [N])`` from one ``*_batch*.bin`` of the binary release."""
    if len(data) == 0 or len(data) % CIFAR10_RECORD_BYTES:
        raise DataIntegrityError(
            f"{name} is truncated: {len(data)} bytes is not a positive multiple of the "
            f"{CIFAR10_RECORD_BYTES}-byte CIFAR-10 record."
        )
    records = np.frombuffer(data, np.uint8).reshape(-1, CIFAR10_RECORD_BYTES)
    labels = records[:, 0]
    if labels.max() > 9:
        raise DataIntegrityError(f"{name}: labels outside 0..9.")
    return records[:, 1:].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1), labels


def read_tar_members(path: str, names: Iterable[str]) -> dict[str, bytes]:
    """Reads the named members of a .tar.gz into memory (TFDS's extractor needs TensorFlow)."""
    wanted = set(names)
    out = {}
    try:
        with tarfile.open(path, "r:gz") as tar:
            for member in tar:
                if member.name in wanted and member.isfile():
                    out[member.name] = tar.extractfile(member).read()
    except (tarfile.TarError, EOFError, OSError, zlib.error) as e:
        raise DataIntegrityError(f"Cannot read {path} (truncated or not a .tar.gz): {e}") from e
    missing = sorted(wanted - set(out))
    if missing:
        raise DataIntegrityError(f"{path} lacks {missing}.")
    return out
