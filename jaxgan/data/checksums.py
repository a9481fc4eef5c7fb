"""SHA-256 checks of source files: pinned values and ``sha256sum`` manifests.

Every failed check raises :class:`DataIntegrityError` naming the file, the expected and the actual
digest, and what to do about it, so that a corrupt download is diagnosed without reading a
traceback through TFDS.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable

from jaxgan.errors import UserError


class DataIntegrityError(UserError, ValueError):
  """A source file is corrupt, truncated or does not match its expected checksum."""


def sha256_bytes(data: bytes | memoryview) -> str:
  """The SHA-256 of ``data``.

  Args:
    data: the bytes to hash.

  Returns:
    The digest as 64 lower-case hexadecimal characters.

  >>> sha256_bytes(b"")[:16]
  'e3b0c44298fc1c14'
  """
  return hashlib.sha256(data).hexdigest()


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
  """The SHA-256 of a file's contents, read in chunks so that large archives fit in memory.

  Args:
    path: the file.
    chunk: bytes read at a time.

  Returns:
    The digest as 64 lower-case hexadecimal characters.

  Raises:
    FileNotFoundError: when ``path`` does not exist.
  """
  h = hashlib.sha256()
  with open(path, "rb") as f:
    while block := f.read(chunk):
      h.update(block)
  return h.hexdigest()


def read_sha256sums(path: str | os.PathLike) -> dict[str, str]:
  """Parses a ``sha256sum`` manifest: one ``<hex>  <relative path>`` per line.

  Blank lines and lines starting with ``#`` are skipped; the binary-mode marker ``*`` before a
  path is accepted.

  Args:
    path: the manifest file (usually named ``SHA256SUMS``).

  Returns:
    Relative path (``/``-separated, as written) -> lower-case hexadecimal digest.

  Raises:
    DataIntegrityError: a line is not a digest followed by a path.
  """
  sums = {}
  with open(path, encoding="utf-8") as f:
    for lineno, line in enumerate(f, 1):
      line = line.strip()
      if not line or line.startswith("#"):
        continue
      parts = line.split(maxsplit=1)
      if len(parts) != 2 or len(parts[0]) != 64:
        raise DataIntegrityError(
          f"{path}:{lineno}: not a sha256sum line: {line!r}. Regenerate the manifest with "
          "`sha256sum <files> > SHA256SUMS`."
        )
      sums[parts[1].lstrip("*").strip()] = parts[0].lower()
  return sums


def find_manifest_entry(path: str, search_roots: Iterable[str]) -> tuple[str, str] | None:
  """The expected SHA-256 of ``path`` from the first ``SHA256SUMS`` manifest that lists it.

  A manifest in one of ``search_roots`` (for example the source folder and its parent) lists a
  file by its path relative to that root.

  Args:
    path: the file to look up.
    search_roots: folders that may hold a ``SHA256SUMS`` file, searched in order.

  Returns:
    ``(manifest_path, expected_sha256)``, or None when no manifest lists ``path``.

  Raises:
    DataIntegrityError: a manifest that exists is malformed.
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
  """Raises unless two digests agree.

  Args:
    path: the file the digest belongs to (named in the error).
    actual: the digest computed from the file.
    expected: the pinned or manifest digest.
    what: what was hashed, for the message (``"file"``, ``"decompressed payload"``...).

  Raises:
    DataIntegrityError: the digests differ; the message names the file, both digests and the fix.
  """
  if actual != expected:
    raise DataIntegrityError(
      f"Checksum mismatch for {path}: {what} sha256 is {actual}, expected {expected}. "
      "The file is corrupt or not the expected release; delete it and provide the "
      "original (or pass verify=False to skip checks for your own data)."
    )


def verify_file(
  path: str, *, manifest_roots: Iterable[str] = (), expected: str | None = None
) -> None:
  """Checks a file against a ``SHA256SUMS`` manifest that lists it and against a pinned digest.

  The file is hashed once, and only when there is something to compare with.

  Args:
    path: the file as stored (for example a ``.gz`` or ``.npz``).
    manifest_roots: folders whose ``SHA256SUMS`` is honoured when it lists ``path``.
    expected: a pinned digest of the whole file, or None.

  Raises:
    DataIntegrityError: a digest differs or a manifest is malformed.
  """
  entry = find_manifest_entry(path, manifest_roots)
  if entry is None and expected is None:
    return
  actual = sha256_file(path)
  if entry is not None:
    check_sha256(path, actual, entry[1], f"file (per {entry[0]})")
  if expected is not None:
    check_sha256(path, actual, expected, "file")
