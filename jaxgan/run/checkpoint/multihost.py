"""The few collective decisions a multi-host checkpoint needs.

Every process calls `Checkpointer.save`, `wait`, `restore_latest` and `close`; orbax coordinates
the array writes. Only process 0 writes manifests, verifies hashes and moves corrupt steps aside;
its verdict is broadcast so that every process takes the same branch, and a step is restored only
if it loaded on every process. Retention depends only on state that is identical on every process
(the steps orbax lists and the metrics passed to `save`), so it needs no communication.

With one process every function here is a no-op that returns its argument.

  >>> is_primary(), broadcast_int(2), all_true(True), any_true(False)
  (True, 2, True, False)
"""

from __future__ import annotations

import jax
import numpy as np


def is_primary() -> bool:
  """Whether this is process 0, the one that writes manifests and moves steps aside.

  Returns:
    True on process 0 (and in every single-process run).
  """
  return jax.process_index() == 0


def broadcast_int(value: int) -> int:
  """Process 0's `value`, on every process.

  Args:
    value: a Python int that fits in int32; only process 0's is used.

  Returns:
    Process 0's `value`.
  """
  if jax.process_count() == 1:
    return int(value)
  from jax.experimental import multihost_utils  # pylint: disable=g-import-not-at-top

  return int(multihost_utils.broadcast_one_to_all(np.int32(value)))


def all_true(flag: bool) -> bool:
  """Whether `flag` is true on every process.

  Args:
    flag: this process's answer.

  Returns:
    The logical AND over all processes.
  """
  if jax.process_count() == 1:
    return bool(flag)
  from jax.experimental import multihost_utils  # pylint: disable=g-import-not-at-top

  return bool(np.min(multihost_utils.process_allgather(np.int32(flag))))


def any_true(flag: bool) -> bool:
  """Whether `flag` is true on some process.

  Args:
    flag: this process's answer.

  Returns:
    The logical OR over all processes.
  """
  return not all_true(not flag)


def barrier(name: str) -> None:
  """Waits until every process has reached the barrier `name`.

  Args:
    name: a name unique to this synchronisation point.
  """
  if jax.process_count() > 1:
    from jax.experimental import multihost_utils  # pylint: disable=g-import-not-at-top

    multihost_utils.sync_global_devices(name)
