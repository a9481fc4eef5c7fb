"""A workdir belongs to one run: `acquire(workdir)` locks it for the run's life.

The lock is the file `<workdir>/.jaxgan.lock`, which names its owner (JSON: host, pid, start
time, command), and an exclusive `fcntl.flock` on it held as long as the run lives. The kernel
drops the flock when its owner dies however it dies (SIGKILL, OOM kill, power loss of a local
disk), so a lock file whose flock is free is stale: the next run takes it over, with a warning
naming the dead owner. Where the filesystem does not support flock (some network filesystems), a
lock file whose owner ran on this host under a pid that no longer exists is stale; any other is
refused, since the owner's liveness cannot be checked from here.

In a multi-process run only process 0 takes the lock; its verdict is broadcast so that every
process refuses together, with the same message.

  >>> import tempfile
  >>> workdir = tempfile.mkdtemp()
  >>> with acquire(workdir) as lock:
  ...   sorted(read_owner(workdir))
  ['command', 'host', 'pid', 'started']
  >>> read_owner(workdir) is None  # released: the lock file is gone
  True
"""

from __future__ import annotations

import datetime
import errno
import fcntl
import json
import logging
import os
import shlex
import socket
import sys
from typing import Any

import jax
import numpy as np

from jaxgan.errors import UserError

log = logging.getLogger(__name__)

LOCK_NAME = ".jaxgan.lock"
# flock errors that mean "not supported here" rather than "held by someone else".
_NO_FLOCK = {errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOTSUP, errno.ENOSYS, errno.EINVAL}
_MESSAGE_BYTES = 2048  # the busy message as broadcast to the other processes


class WorkdirBusyError(UserError, RuntimeError):
  """Another live run holds the workdir; the message names it and the fix."""


class WorkdirLock:
  """The held lock on a workdir (a context manager); `release()` gives it up.

  Not constructed directly: see `acquire`.

  Attributes:
    path: the lock file, `<workdir>/.jaxgan.lock`.
    owner: this run's record in it: `host`, `pid`, `started` (ISO 8601), `command`; None on
      processes other than 0 of a multi-process run, which hold nothing.
  """

  def __init__(self, path: str, fd: int | None, owner: dict[str, Any] | None):
    self.path, self.owner, self._fd = path, owner, fd

  @property
  def held(self) -> bool:
    """Whether this process holds the lock (until `release`)."""
    return self._fd is not None

  def release(self) -> None:
    """Deletes the lock file and drops the flock; a no-op when not held or already released."""
    if self._fd is None:
      return
    fd, self._fd = self._fd, None
    try:
      # Deleted before the flock is dropped: a run waiting on this file's flock then sees that
      # the path no longer names it, and retries on a fresh file (see `_acquire_flock`).
      if _same_file(fd, self.path):
        os.unlink(self.path)
    finally:
      os.close(fd)

  def __enter__(self) -> WorkdirLock:
    return self

  def __exit__(self, *exc) -> None:
    self.release()


def read_owner(workdir: str) -> dict[str, Any] | None:
  """The owner record of a workdir's lock file, without locking anything.

  Args:
    workdir: a run directory.

  Returns:
    The JSON record (`host`, `pid`, `started`, `command`); None when there is no lock file, or
    `{}` when it is unreadable (e.g. being written).
  """
  try:
    with open(os.path.join(workdir, LOCK_NAME)) as f:
      return _parse(f.read())
  except FileNotFoundError:
    return None


def acquire(workdir: str, *, command: str | None = None) -> WorkdirLock:
  """Creates `workdir` if needed and locks it for this run; refuses a workdir in use.

  A refused run writes nothing: it neither creates nor changes any file.

  Args:
    workdir: the run's directory.
    command: recorded as the owner's command line (default: this process's `sys.argv`).

  Returns:
    The held `WorkdirLock` (process 0), or one that holds nothing (other processes of a
    multi-process run). Release it when the run ends (`release()` or a `with` block).

  Raises:
    WorkdirBusyError: a live run holds the lock (on every process of a multi-process run); the
      message names its host, pid, start time and command, and the fix.
    OSError: the workdir or lock file cannot be created (other processes get a RuntimeError
      naming it, so that they stop too).
  """
  if command is None:
    argv = list(sys.argv)
    if argv and argv[0].endswith(os.path.join("jaxgan", "main.py")):
      argv[:1] = ["-m", "jaxgan.main"]  # how `python -m` was typed, not the file it ran
    command = shlex.join([os.path.basename(sys.executable), *argv])
  if jax.process_count() == 1:
    return _acquire_here(workdir, command)
  from jaxgan.run.checkpoint import multihost  # pylint: disable=g-import-not-at-top (orbax)

  lock, verdict, message, error = None, 0, "", None
  if jax.process_index() == 0:
    try:
      lock = _acquire_here(workdir, command)
    except Exception as e:  # noqa: BLE001 - every process must learn the verdict, then raise
      verdict, message, error = (1 if isinstance(e, WorkdirBusyError) else 2), str(e), e
  # Every process takes part in the same collectives: the verdict, then on a refusal the message.
  verdict = multihost.broadcast_int(verdict)
  if verdict == 0:
    os.makedirs(workdir, exist_ok=True)  # process 0 made it already; hosts may not share disks
    return lock or WorkdirLock(os.path.join(workdir, LOCK_NAME), None, None)
  message = _broadcast_text(message)
  if error is not None:
    raise error
  if verdict == 1:
    raise WorkdirBusyError(message)
  raise RuntimeError(f"Process 0 could not lock the workdir {workdir}: {message}")


def _acquire_here(workdir: str, command: str) -> WorkdirLock:
  """`acquire` on one process: creates the workdir and takes the lock, or raises."""
  os.makedirs(workdir, exist_ok=True)
  path = os.path.join(workdir, LOCK_NAME)
  owner = {
    "host": socket.gethostname(),
    "pid": os.getpid(),
    "started": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
    "command": command,
  }
  lock = _acquire_flock(path, owner)
  if lock is None:
    lock = _acquire_without_flock(path, owner)
  return lock


def _acquire_flock(path: str, owner: dict[str, Any]) -> WorkdirLock | None:
  """Takes the lock with flock; None when the filesystem does not support flock."""
  for _ in range(100):  # another try only when a releasing owner deleted the file under us
    # An existing file is opened as it is: a refused run changes nothing. O_CLOEXEC: processes
    # started by exec (grain's spawned workers) do not inherit the fd, so they never hold the flock.
    try:
      fd, created = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644), True
    except FileExistsError:
      try:
        fd, created = os.open(path, os.O_RDWR | os.O_CLOEXEC), False
      except FileNotFoundError:  # released meanwhile
        continue
    try:
      fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
      previous = _read_fd(fd)
      os.close(fd)
      raise WorkdirBusyError(_busy_message(path, previous)) from None
    except OSError as e:
      os.close(fd)
      if e.errno in _NO_FLOCK:
        if created:  # the fallback creates it exclusively
          os.unlink(path)
        log.info("flock is not supported for %s (%s); using the pid check instead.", path, e)
        return None
      raise
    if not _same_file(fd, path):
      os.close(fd)
      continue
    previous = _read_fd(fd)
    if previous is not None:
      log.warning(
        "Taking over the stale lock %s: its owner is gone (%s).", path, _describe(previous)
      )
    _write_fd(fd, owner)
    return WorkdirLock(path, fd, owner)
  raise RuntimeError(f"Could not take the lock {path}: it keeps being replaced.")


def _acquire_without_flock(path: str, owner: dict[str, Any]) -> WorkdirLock:
  """Takes the lock by creating the file exclusively; a dead owner on this host is stale."""
  for _ in range(3):
    try:
      fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
    except FileExistsError:
      previous = read_owner(os.path.dirname(path))
      if previous is None:  # released meanwhile
        continue
      if previous.get("host") == owner["host"] and not _pid_alive(previous.get("pid")):
        log.warning(
          "Taking over the stale lock %s: its owner is gone (%s).", path, _describe(previous)
        )
        # Two runs taking over at once could both succeed here; without flock this is the best
        # a shared filesystem allows.
        os.unlink(path)
        continue
      raise WorkdirBusyError(_busy_message(path, previous, flock=False)) from None
    _write_fd(fd, owner)
    return WorkdirLock(path, fd, owner)
  raise RuntimeError(f"Could not take the lock {path}: it keeps being replaced.")


def _busy_message(path: str, owner: dict[str, Any] | None, flock: bool = True) -> str:
  workdir = os.path.dirname(path)
  head = f"The workdir {workdir} is in use by another jaxgan run ({_describe(owner)})."
  if not flock and owner:
    head += " Its liveness cannot be checked from this host (no flock on this filesystem)."
  return (
    f"{head} Wait for that run to finish, stop it, or pass another --workdir. If no run uses "
    f"{workdir} any more, delete {path}."
  )


def _describe(owner: dict[str, Any] | None) -> str:
  if not owner:
    return "owner unknown: the lock file is empty or unreadable"
  return (
    f"host {owner.get('host', '?')}, pid {owner.get('pid', '?')}, started "
    f"{owner.get('started', '?')}, command: {owner.get('command', '?')}"
  )


def _parse(text: str) -> dict[str, Any]:
  try:
    owner = json.loads(text)
  except ValueError:
    return {}
  return owner if isinstance(owner, dict) else {}


def _read_fd(fd: int) -> dict[str, Any] | None:
  """The record in an open lock file; None when the file is empty (just created)."""
  data = os.pread(fd, 1 << 16, 0)
  return _parse(data.decode("utf-8", "replace")) if data else None


def _write_fd(fd: int, owner: dict[str, Any]) -> None:
  os.ftruncate(fd, 0)
  os.pwrite(fd, (json.dumps(owner) + "\n").encode(), 0)
  os.fsync(fd)


def _same_file(fd: int, path: str) -> bool:
  try:
    return os.path.samestat(os.fstat(fd), os.stat(path))
  except FileNotFoundError:
    return False


def _pid_alive(pid) -> bool:
  if not isinstance(pid, int) or pid <= 0:
    return True  # unknown: assume alive, refuse
  try:
    os.kill(pid, 0)
  except ProcessLookupError:
    return False
  except PermissionError:  # exists, owned by another user
    return True
  return True


def _broadcast_text(text: str) -> str:
  """Process 0's `text` (UTF-8, truncated to `_MESSAGE_BYTES`), on every process."""
  from jax.experimental import multihost_utils  # pylint: disable=g-import-not-at-top

  buf = np.zeros(_MESSAGE_BYTES, np.uint8)
  data = text.encode()[:_MESSAGE_BYTES]
  buf[: len(data)] = np.frombuffer(data, np.uint8)
  out = np.asarray(multihost_utils.broadcast_one_to_all(buf), np.uint8)
  return out.tobytes().rstrip(b"\0").decode("utf-8", "replace")
