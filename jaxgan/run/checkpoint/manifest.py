"""Integrity manifests: the size and SHA-256 of every file of a committed checkpoint step.

Orbax only guarantees that a checkpoint is complete at commit time (on a local filesystem: the tmp
directory was renamed). It cannot see a file truncated or altered later. So, once orbax has
*committed* a step, process 0 writes `jaxgan_manifest.json` into the step directory: the size and
SHA-256 of every file in it. Saves are asynchronous, so the manifest of step N is written at the
first `save`/`wait`/`close`/`restore_latest` call after N was started: that call first waits for
orbax to finish N (the next orbax save would wait for it anyway), then hashes it.

`verify` reads a step back against its manifest and returns a `Verification`:

* manifest present and every file matches: **verified**;
* manifest present and a file is missing, has another size or hash (truncation, bit flip, deleted
  commit marker), or the manifest itself is unreadable: **corrupt**. The checkpointer warns, moves
  the step directory (never deletes it) to `<dir>/corrupt/` with `quarantine`, and tries the
  previous step;
* no manifest: the process stopped between orbax's commit and the manifest (a window of at most one
  save interval). Orbax lists only committed steps, so the files were complete when committed: the
  step is **unverified but usable**, restored with a warning if it loads.

  >>> import tempfile
  >>> from etils import epath
  >>> step_dir = epath.Path(tempfile.mkdtemp()) / "7"
  >>> step_dir.mkdir()
  >>> _ = (step_dir / "weights").write_bytes(b"0123456789")
  >>> verify(step_dir, 7).status
  'unverified'
  >>> write_manifest(step_dir, 7, metrics={"fid": 3.5})
  >>> verify(step_dir, 7)
  Verification(step=7, status='verified', reason='every file matches its manifest')
  >>> _ = (step_dir / "weights").write_bytes(b"0123456788")  # one byte altered, same size
  >>> verify(step_dir, 7).reason
  'file weights does not match its SHA-256 (altered or bit flip)'
"""

from __future__ import annotations

import dataclasses
import datetime
import hashlib
import json
import logging
from collections.abc import Mapping
from typing import Any, Literal

from etils import epath

log = logging.getLogger(__name__)

MANIFEST_NAME = "jaxgan_manifest.json"
CORRUPT_DIR = "corrupt"
FORMAT_VERSION = 1
STATUSES = ("verified", "unverified", "corrupt")


class CheckpointCorruptError(RuntimeError):
  """No checkpoint in the directory could be verified and loaded."""


@dataclasses.dataclass(frozen=True)
class Verification:
  """The verdict on one checkpoint step, read back against its integrity manifest.

  Attributes:
    step: the train step of the checkpoint.
    status: 'verified' (every file matches its manifest), 'unverified' (no manifest: committed by
      orbax but not hashed; usable) or 'corrupt' (a file or the manifest is missing, truncated or
      altered; not usable).
    reason: one human-readable sentence saying why.
  """

  step: int
  status: Literal["verified", "unverified", "corrupt"]
  reason: str

  @property
  def usable(self) -> bool:
    """True unless the step is corrupt (an unverified step may still be restored)."""
    return self.status != "corrupt"


def _sha256(path: epath.Path) -> str:
  h = hashlib.sha256()
  with path.open("rb") as f:
    while chunk := f.read(1 << 20):
      h.update(chunk)
  return h.hexdigest()


def _list_files(root: epath.Path) -> list[str]:
  """Relative paths of every file under `root` but the manifest (epath has no recursive glob)."""
  out, todo = [], [root]
  while todo:
    d = todo.pop()
    for p in d.iterdir():
      if p.is_dir():
        todo.append(p)
      else:
        rel = str(p.relative_to(root))
        if rel not in (MANIFEST_NAME, MANIFEST_NAME + ".tmp"):
          out.append(rel)
  return sorted(out)


def write_manifest(step_dir: epath.Path, step: int, metrics: Mapping[str, Any] | None) -> None:
  """Hashes every file of a committed step and writes the manifest atomically (tmp + rename).

  Args:
    step_dir: the step's directory, as committed by orbax.
    step: the train step, recorded in the manifest.
    metrics: JSON-able metrics of that step (retention by `keep_best` reads them back), or None.
  """
  files = {}
  for rel in _list_files(step_dir):
    p = step_dir / rel
    files[rel] = {"size": p.stat().length, "sha256": _sha256(p)}
  manifest = {
    "format_version": FORMAT_VERSION,
    "step": int(step),
    "written": datetime.datetime.now(datetime.UTC).isoformat(),
    "metrics": metrics,
    "files": files,
  }
  tmp = step_dir / (MANIFEST_NAME + ".tmp")
  tmp.write_text(json.dumps(manifest, indent=1, sort_keys=True))
  tmp.rename(step_dir / MANIFEST_NAME)


def read_manifest(step_dir: epath.Path) -> dict[str, Any] | None:
  """The step's manifest as a dict; None without one; `{'unreadable': True}` if unparsable.

  Args:
    step_dir: the step's directory.

  Returns:
    The parsed manifest, None when there is none, or `{'unreadable': True}`.
  """
  path = step_dir / MANIFEST_NAME
  if not path.exists():
    return None
  try:
    return json.loads(path.read_text())
  except Exception:  # noqa: BLE001 - an unreadable manifest still means "had a manifest"
    return {"unreadable": True}


def verify(step_dir: epath.Path, step: int) -> Verification:
  """Reads every file of a step back and checks its size and SHA-256 against the manifest.

  Args:
    step_dir: the step's directory.
    step: the train step, copied into the result.

  Returns:
    A `Verification` with status 'verified', 'unverified' or 'corrupt' and the reason.
  """
  manifest = read_manifest(step_dir)
  if manifest is None:
    return Verification(
      step, "unverified", "no integrity manifest (the run stopped between commit and manifest)"
    )
  if manifest.get("unreadable") or "files" not in manifest:
    return Verification(
      step, "corrupt", f"integrity manifest {step_dir / MANIFEST_NAME} is unreadable"
    )
  for rel, rec in sorted(manifest["files"].items()):
    p = step_dir / rel
    if not p.exists():
      return Verification(step, "corrupt", f"file {rel} is missing")
    size = p.stat().length
    if size != rec["size"]:
      return Verification(
        step, "corrupt", f"file {rel} has {size} bytes, {rec['size']} were written (truncated?)"
      )
    if _sha256(p) != rec["sha256"]:
      return Verification(
        step, "corrupt", f"file {rel} does not match its SHA-256 (altered or bit flip)"
      )
  return Verification(step, "verified", "every file matches its manifest")


def quarantine(directory: epath.Path, step: int, reason: str) -> epath.Path | None:
  """Moves a step directory (never deletes it) to `<directory>/corrupt/`, with the reason beside.

  Call on process 0 only; the caller synchronises the other processes.

  Args:
    directory: the checkpoint directory holding the step directories.
    step: the step to move aside.
    reason: why; written to `corrupt/<step>.<UTC stamp>.reason.txt`.

  Returns:
    Where the step now lies, or None if its directory did not exist.
  """
  src = directory / str(step)
  if not src.exists():
    return None
  dst_dir = directory / CORRUPT_DIR
  dst_dir.mkdir(parents=True, exist_ok=True)
  stamp = datetime.datetime.now(datetime.UTC).strftime("%Y%m%dT%H%M%S%f")
  dst = dst_dir / f"{step}.{stamp}"
  src.rename(dst)
  (dst_dir / f"{step}.{stamp}.reason.txt").write_text(reason + "\n")
  log.warning("Moved corrupt checkpoint step %d to %s (not deleted).", step, dst)
  return dst
