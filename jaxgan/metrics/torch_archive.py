"""Reads the tensors of a PyTorch zip archive (`torch.save`, `torch.jit.save`) without PyTorch.

Since PyTorch 1.6 both `torch.save` and TorchScript's `torch.jit.save` write a zip file: a
folder `<root>/` holding `data.pkl`, a pickle of the saved object (a state dict, or for
TorchScript the module tree), and `data/<key>`, the raw little-endian bytes of every storage.
Inside the pickle a tensor is `torch._utils._rebuild_tensor_v2(storage, offset, size, stride,
...)` whose storage is a persistent id `('storage', torch.FloatStorage, key, device, numel)`.

`read_tensors` replays that pickle with an unpickler that knows only those few globals, plain
containers and placeholder objects for TorchScript's `__torch__.*` module classes: any other
global is refused, so a crafted file cannot run code, and every tensor view is bounds-checked
against its storage before NumPy reads it. The result is flat: `{dotted name: np.ndarray}`,
module attributes and dictionary keys joined with dots, e.g.
`net.layers.mixed_9.tower.mixed.conv.weight`.

  >>> import io, zipfile, pickle
  >>> buf = io.BytesIO()
  >>> with zipfile.ZipFile(buf, "w") as z:
  ...   z.writestr("a/data.pkl", pickle.dumps({"step": 7}))
  >>> read_tensors(buf)  # no tensors in it
  {}

The older, non-zip format of `torch.save` (before PyTorch 1.6) is not read here.
"""

from __future__ import annotations

import collections
import os
import pickle
import zipfile
from typing import IO, Any

import numpy as np

from jaxgan.errors import UserError

__all__ = ["ArchiveError", "read_tensors", "root_class"]

# PyTorch's storage classes by name, as pickled, and the NumPy dtype of their bytes.
_STORAGE_DTYPES = {
  "DoubleStorage": np.float64,
  "FloatStorage": np.float32,
  "HalfStorage": np.float16,
  "LongStorage": np.int64,
  "IntStorage": np.int32,
  "ShortStorage": np.int16,
  "CharStorage": np.int8,
  "ByteStorage": np.uint8,
  "BoolStorage": np.bool_,
}
# TorchScript pickles typed lists (e.g. a conv's padding `[3, 0]`) through these builders.
_JIT_LISTS = ("build_intlist", "build_doublelist", "build_boollist", "build_tensorlist")


class ArchiveError(UserError, ValueError):
  """The file is not a PyTorch zip archive this reader can read, or it is damaged."""


class _Module:
  """A TorchScript module's attributes, standing in for its `__torch__.*` class."""

  torch_class = "?"

  def __setstate__(self, state):
    self.state = state


class _StorageType:
  def __init__(self, name):
    self.name = name


def _rebuild_tensor_v2(storage, offset, size, stride, *unused):
  # `unused`: requires_grad, backward hooks and (newer files) metadata, none of which matter
  # for reading values.
  del unused
  return _view(storage, offset, tuple(size), tuple(stride))


def _rebuild_parameter(data, *unused):
  del unused
  return data


def _as_list(items):
  return list(items)


def _view(storage: np.ndarray, offset: int, size: tuple, stride: tuple) -> np.ndarray:
  if len(size) != len(stride) or any(s < 0 for s in size) or any(s < 0 for s in stride):
    raise ArchiveError(f"bad tensor view: size {size}, stride {stride}")
  if 0 in size:
    return np.zeros(size, storage.dtype)
  last = offset + sum((n - 1) * s for n, s in zip(size, stride, strict=True))
  if offset < 0 or last >= storage.size:
    raise ArchiveError(
      f"tensor view (offset {offset}, size {size}, stride {stride}) reads past its storage of "
      f"{storage.size} elements: the file is damaged."
    )
  item = storage.itemsize
  view = np.lib.stride_tricks.as_strided(
    storage[offset:], size, tuple(s * item for s in stride), writeable=False
  )
  return np.array(view)  # a copy: independent of the storage buffer


class _Unpickler(pickle.Unpickler):
  """Rebuilds tensors and module state; refuses every other global."""

  def __init__(self, file, zf: zipfile.ZipFile, root: str):
    super().__init__(file)
    self._zf, self._root, self._storages = zf, root, {}
    self._module_classes: dict[str, type] = {}

  def find_class(self, module, name):
    if module == "collections" and name == "OrderedDict":
      return collections.OrderedDict
    if module == "torch._utils" and name == "_rebuild_tensor_v2":
      return _rebuild_tensor_v2
    if module == "torch._utils" and name == "_rebuild_parameter":
      return _rebuild_parameter
    if module == "torch.jit._pickle" and name in _JIT_LISTS:
      return _as_list
    if module == "torch" and name in _STORAGE_DTYPES:
      return _StorageType(name)
    if module == "__torch__" or module.startswith("__torch__."):
      qual = f"{module}.{name}"
      if qual not in self._module_classes:
        self._module_classes[qual] = type(name, (_Module,), {"torch_class": qual})
      return self._module_classes[qual]
    raise ArchiveError(
      f"{module}.{name} in {self._root}/data.pkl is not a tensor or module state; refusing to "
      "load it (only tensors, containers and TorchScript module attributes are read)."
    )

  def persistent_load(self, pid):
    if not (isinstance(pid, tuple) and len(pid) >= 5 and pid[0] == "storage"):
      raise ArchiveError(f"unknown persistent id {pid!r:.80} in {self._root}/data.pkl")
    _, storage_type, key, _, numel = pid[:5]
    if not isinstance(storage_type, _StorageType):
      raise ArchiveError(f"unknown storage type {storage_type!r:.80}")
    if key not in self._storages:
      dtype = np.dtype(_STORAGE_DTYPES[storage_type.name]).newbyteorder("<")
      try:
        raw = self._zf.read(f"{self._root}/data/{key}")
      except KeyError as e:
        raise ArchiveError(f"storage {self._root}/data/{key} is missing: damaged file") from e
      if len(raw) < numel * dtype.itemsize:
        raise ArchiveError(
          f"storage {key} has {len(raw)} bytes, fewer than its {numel} elements: damaged file"
        )
      self._storages[key] = np.frombuffer(raw, dtype, count=numel).astype(dtype.newbyteorder("="))
    return self._storages[key]


def _flatten(obj, prefix: str, out: dict[str, np.ndarray]) -> None:
  if isinstance(obj, np.ndarray):
    out[prefix] = obj
  elif isinstance(obj, _Module):
    _flatten(getattr(obj, "state", {}), prefix, out)
  elif isinstance(obj, dict):
    for k, v in obj.items():
      _flatten(v, f"{prefix}.{k}" if prefix else str(k), out)
  elif isinstance(obj, (list, tuple)):
    for i, v in enumerate(obj):
      _flatten(v, f"{prefix}.{i}" if prefix else str(i), out)
  # Anything else (flags, ints, strings) is module configuration, not a tensor.


def _open(file: str | os.PathLike | IO[bytes]) -> tuple[zipfile.ZipFile, str]:
  try:
    zf = zipfile.ZipFile(file if hasattr(file, "read") else os.fspath(file))
  except (zipfile.BadZipFile, OSError) as e:
    raise ArchiveError(
      f"{file} is not a PyTorch zip archive ({e}); files from torch.save before PyTorch 1.6 "
      "need PyTorch to read."
    ) from e
  roots = sorted(
    {n.split("/", 1)[0] for n in zf.namelist() if n.count("/") == 1 and n.endswith("/data.pkl")}
  )
  if len(roots) != 1:
    zf.close()
    raise ArchiveError(f"{file} is a zip file but not a PyTorch archive (no <root>/data.pkl).")
  root = roots[0]
  byteorder = f"{root}/byteorder"
  if byteorder in zf.namelist() and zf.read(byteorder).strip() != b"little":
    zf.close()
    raise ArchiveError(f"{file} stores big-endian tensors, which this reader does not handle.")
  return zf, root


def _unpickle(zf: zipfile.ZipFile, root: str) -> Any:
  with zf.open(f"{root}/data.pkl") as f:
    try:
      return _Unpickler(f, zf, root).load()
    except ArchiveError:
      raise
    except Exception as e:  # a damaged pickle raises many kinds of error
      raise ArchiveError(f"{root}/data.pkl cannot be read: {type(e).__name__}: {e}") from e


def read_tensors(file: str | os.PathLike | IO[bytes]) -> dict[str, np.ndarray]:
  """Every tensor in a PyTorch zip archive, by dotted name, without importing PyTorch.

  Args:
    file: a path or a binary file object: a `torch.save` file (e.g. a state dict) or a
      TorchScript `torch.jit.save` file.

  Returns:
    `{name: array}`: NumPy arrays in PyTorch's layout and dtype (float32 for `FloatStorage`),
    in the pickle's order; names join module attributes and dictionary keys with dots.

  Raises:
    ArchiveError (a ValueError): for a file that is not a zip archive with one `data.pkl`, a
      pickle naming any global other than tensor rebuilders, storages, `OrderedDict` and
      TorchScript module classes, or storages missing, short or overrun by a tensor view.
  """
  zf, root = _open(file)
  with zf:
    obj = _unpickle(zf, root)
  out: dict[str, np.ndarray] = {}
  _flatten(obj, "", out)
  return out


def root_class(file: str | os.PathLike | IO[bytes]) -> str | None:
  """The TorchScript class of an archive's top object, read without loading any tensor.

  Args:
    file: a path or a binary file object.

  Returns:
    The class's qualified name, e.g. `'__torch__.wrap_net.WrapNet'`; None for an archive of a
    plain object (a state dict) or a file that is not a PyTorch zip archive.
  """
  try:
    zf, root = _open(file)
  except ArchiveError:
    return None
  with zf, zf.open(f"{root}/data.pkl") as f:
    # The first opcodes of a TorchScript data.pkl: PROTO, then GLOBAL '__torch__.<m> <Class>'.
    head = f.read(256)
  for op, arg, _ in _safe_ops(head):
    if op.name == "GLOBAL":
      module, name = arg.split(" ", 1)
      return f"{module}.{name}" if module.startswith("__torch__") else None
  return None


def _safe_ops(head: bytes):
  import pickletools  # pylint: disable=g-import-not-at-top  (only for this peek)

  try:
    yield from pickletools.genops(head)
  except Exception:  # the 256 bytes end mid-opcode: the ops before it were yielded
    return
