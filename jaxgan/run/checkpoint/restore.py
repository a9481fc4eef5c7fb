"""Resuming a run: the newest checkpoint that is intact and loads, falling back step by step.

`RestoreMixin.restore_latest` (a method of `Checkpointer`) tries the committed steps newest first,
and never destroys one:

* a step whose integrity verification says **corrupt** is moved to `<dir>/corrupt/` (never
  deleted) with a warning naming the step and the reason, and the previous step is tried;
* an **unverified** step (no manifest) is used, with a warning, if it loads;
* a step that fails to load (unverified, or read wrongly by orbax) is skipped with a warning and
  left in place. Only if the run later saves that same step again is the old one moved aside
  (`Checkpointer.save`), so that a resumed run can replace it;
* unfinished saves (orbax tmp directories) are never listed by orbax, so they are ignored and left
  in place;
* a config or tree mismatch is not corruption: `CheckpointMismatchError` propagates at once and
  nothing is moved;
* if no step can be restored, `CheckpointCorruptError` lists every step tried and why.

Process 0 verifies and broadcasts its verdict; a step counts as loaded only if it loaded on every
process, so all processes restore the same step.
"""

from __future__ import annotations

import logging
from typing import Any

from etils import epath

from jaxgan.run.checkpoint import compat, manifest, multihost, store

log = logging.getLogger(__name__)


def where(directory: epath.Path, step: int) -> str:
  """Names a checkpoint at the start of an error message."""
  return f"The checkpoint at step {step} in {directory}"


class RestoreMixin:
  """The restoring half of `jaxgan.run.checkpoint.Checkpointer` (which defines the attributes used).

  It reads `directory`, `config`, `resumable_sections`, `_store` and `_unloadable`, sets
  `_dir_config_checked`, and calls `_finalize_pending` and `_move_aside`.
  """

  def verify(self, step: int) -> manifest.Verification:
    """Reads every file of `step` back against its integrity manifest.

    Args:
      step: a step in `all_steps()`.

    Returns:
      The `Verification` (status 'verified', 'unverified' or 'corrupt', and why).
    """
    return manifest.verify(self._store.step_dir(step), step)

  def loader_state(self, step: int) -> dict | None:
    """The data loader's position saved at `step` (None for a run without a host loader).

    Its `config` holds the stream's `image_shape` and `pad_to`, so a run's example shape is
    known without its data (`jaxgan.load`).
    """
    return self._store.read_extra(step).get("loader_state")

  def restore(self, step: int, abstract_state) -> tuple[Any, dict | None, int]:
    """Restores one given step after the resume checks (no verification, no fallback).

    Args:
      step: a step in `all_steps()`.
      abstract_state: the target: a pytree of `jax.ShapeDtypeStruct` (with `.sharding`) or a
        concrete `GANState` used as a template (leaves without a sharding are replicated).

    Returns:
      `(state, loader_state, step)`: the state on `abstract_state`'s shardings.

    Raises:
      CheckpointMismatchError: the step was written with another config or state structure.
    """
    abstract = store.to_abstract(abstract_state)
    name = where(self.directory, step)
    compat.check_config(
      self._store.read_config(step), self.config, where=name, resumable=self.resumable_sections
    )
    compat.check_tree(self._store.read_tree_metadata(step), abstract, where=name)
    state, extra = self._store.read_state(step, abstract)
    return state, extra.get("loader_state"), step

  def _verdict_everywhere(self, step: int) -> tuple[str, str]:
    """Process 0's verdict on `step`, (status, reason), on every process."""
    verdict = self.verify(step) if multihost.is_primary() else None
    index = manifest.STATUSES.index(verdict.status) if verdict else 0
    status = manifest.STATUSES[multihost.broadcast_int(index)]
    return status, (verdict.reason if verdict else f"{status} on process 0")

  def restore_latest(self, abstract_state) -> tuple[Any, dict | None, int] | None:
    """Restores the newest good checkpoint, falling back to older steps (see this module).

    Args:
      abstract_state: the target: a pytree of `jax.ShapeDtypeStruct` (with `.sharding`) or a
        concrete `GANState` used as a template (leaves without a sharding are replicated).

    Returns:
      `(state, loader_state, step)`, or None when the directory holds no checkpoint.

    Raises:
      CheckpointMismatchError: the newest readable checkpoint was written with another config
        (or the flat config layout of jaxgan 0.1) or another state structure.
      CheckpointCorruptError: checkpoints exist but none is intact and loadable.
    """
    self._finalize_pending()
    self._store.reload()
    tried = []
    for step in reversed(self._store.steps()):
      status, reason = self._verdict_everywhere(step)
      if status == "corrupt":
        log.warning("Skipping checkpoint step %d: %s.", step, reason)
        tried.append((step, reason))
        self._move_aside(step, reason)
        continue
      if status == "unverified":
        log.warning(
          "Checkpoint step %d is unverified (%s); using it since orbax committed it.", step, reason
        )
      try:
        restored, err = self.restore(step, abstract_state), None
      except compat.CheckpointMismatchError:
        raise
      except Exception as e:  # noqa: BLE001 - any load failure: fall back to the previous step
        restored, err = None, f"failed to load: {type(e).__name__}: {str(e)[:300]}"
      if not multihost.all_true(err is None):
        err = err or "failed to load on another process"
        log.warning("Skipping checkpoint step %d: %s. Left in place.", step, err)
        tried.append((step, err))
        self._unloadable[step] = err
        continue
      if tried:
        log.warning("Restored checkpoint step %d after skipping %s.", step, [s for s, _ in tried])
      self._dir_config_checked = True  # the directory's newest good step has this config
      return restored
    if not tried:
      return None
    raise manifest.CheckpointCorruptError(
      f"No usable checkpoint in {self.directory}. Tried (newest first):\n  "
      + "\n  ".join(f"step {s}: {r}" for s, r in tried)
      + f"\nCorrupt steps were moved to {self.directory / manifest.CORRUPT_DIR}; nothing was "
      "deleted. Inspect them, or start from scratch in a new workdir."
    )
