"""`Checkpointer`: saves and restores a GAN run with orbax, verified, checked and never clobbered.

It composes the other modules, one job each: `store` (orbax: async saves, one step directory per
checkpoint), `manifest` (integrity), `compat` (config and tree), `retention` (GC), `restore`
(fallback on resume) and `multihost`. On top of them it guarantees:

* **No clobbering.** `save` refuses (returns False with a warning) a step that orbax lists or whose
  directory exists on disk, so a restarted or misconfigured run never overwrites a saved step; a
  new run whose config differs from the directory's newest checkpoint refuses to save into it at
  all (`CheckpointMismatchError`). Unfinished tmp directories of a crashed save are left alone.
* **Cost.** `restore_latest` re-reads and hashes every file of the step it restores (and of each
  newer one it rejects); saving hashes each committed step once, on process 0, in the main thread
  during the next `save`/`wait` call (which would otherwise just wait for orbax).

The save decision is ours, not orbax's `should_save`: that one refuses any step at or below the
newest listed step, so it would never re-save a step that was left in place as unloadable.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from etils import epath

from jaxgan.config import RESUMABLE_SECTIONS
from jaxgan.run.checkpoint import compat, manifest, multihost, restore, retention, store

log = logging.getLogger(__name__)


class Checkpointer(restore.RestoreMixin):
  """Saves and restores a GAN run: its `GANState`, data-loader position and resolved config.

  Args:
    directory: where the step directories live (created if needed).
    config: the resolved run config (a nested dict or ConfigDict, or None); stored as JSON with
      every checkpoint and compared on restore (see `jaxgan.run.checkpoint.compat`).
    save_every: `should_save(step)` is true every `save_every` steps (0 disables periodic saves).
    keep: number of newest verified checkpoints retained (>= 1).
    keep_best: name of a metric in `save(..., metrics=...)`; when set, the `keep` best verified
      checkpoints by that metric are retained as well as the `keep` newest. May be set later.
    best_mode: 'min' or 'max' for `keep_best`.
    async_save: write checkpoints in a background thread (orbax async checkpointing).
    resumable_sections: top-level config sections that may differ when resuming.

  Raises:
    ValueError: `keep` < 1 or `best_mode` not 'min' or 'max'.

  See the example in `jaxgan.run.checkpoint`.
  """

  def __init__(
    self,
    directory,
    *,
    config: Mapping | None,
    save_every: int,
    keep: int = 3,
    keep_best: str | None = None,
    best_mode: str = "min",
    async_save: bool = True,
    resumable_sections: Sequence[str] = RESUMABLE_SECTIONS,
  ):
    retention.retained({}, keep=keep, best_mode=best_mode)  # validates keep and best_mode
    self.directory = epath.Path(directory).absolute()
    self.config = compat.to_json(config) or {}
    self.save_every, self.keep = int(save_every), int(keep)
    self.keep_best, self.best_mode = keep_best, best_mode
    self.async_save = async_save
    self.resumable_sections = tuple(resumable_sections)
    self._store = store.Store(self.directory, async_save=async_save)
    self._verified: dict[int, Any] = {}  # step -> metrics, for steps with a manifest
    for step in self._store.steps():
      m = manifest.read_manifest(self._store.step_dir(step))
      if m is not None:
        self._verified[step] = m.get("metrics")
    self._pending: dict[int, Any] = {}  # saves started, manifest not yet written
    self._unloadable: dict[int, str] = {}  # step -> reason, skipped by restore_latest, in place
    self._dir_config_checked = False

  @property
  def latest_step(self) -> int | None:
    """Newest step orbax lists (committed, or being saved by this process); None if none."""
    steps = self._store.steps()
    return steps[-1] if steps else None

  def all_steps(self) -> list[int]:
    """Returns the steps orbax lists, ascending (committed, or being saved by this process)."""
    return self._store.steps()

  def should_save(self, step: int) -> bool:
    """Whether `step` is due for a periodic save.

    Args:
      step: the train step just completed.

    Returns:
      True every `save_every` steps (step > 0) unless that step is saved or being saved; a step
      left in place because it failed to load does not count as saved (`save` replaces it).
    """
    saved = step in self._store.steps() and step not in self._unloadable
    periodic = self.save_every > 0 and step > 0 and step % self.save_every == 0
    return periodic and not saved and step not in self._pending

  def save(
    self,
    step: int,
    state,
    *,
    loader_state: Mapping | None = None,
    metrics: Mapping | None = None,
    force: bool = False,
  ) -> bool:
    """Starts an (async) save; returns once the arrays are off the devices (may be donated).

    Args:
      step: the train step.
      state: the `GANState` (any pytree of arrays).
      loader_state: the data loader's JSON-able position, returned by `restore_latest`.
      metrics: JSON-able metrics of this step; `keep_best` reads them.
      force: save even when `should_save(step)` is false.

    Returns:
      Whether a save was started: False when not due, or (with a warning) when the step exists,
      which is never overwritten.

    Raises:
      CheckpointMismatchError: the directory's newest checkpoint belongs to another config.
    """
    step = int(step)
    if not force and not self.should_save(step):
      return False
    self._finalize_pending()
    if not self._dir_config_checked:
      self._check_directory_config()
    if step in self._unloadable:
      # Moved aside rather than refused, which would leave e.g. the final step of a run unsaved
      # on every relaunch.
      reason = "replaced by a new save of the same step; it had failed to load: "
      self._move_aside(step, reason + self._unloadable.pop(step))
    extra = {
      "format_version": manifest.FORMAT_VERSION,
      "step": step,
      "loader_state": compat.to_json(loader_state),
      "metrics": compat.to_json(metrics),
    }
    if not self._store.save(step, state, self.config, extra):
      log.warning(
        "Checkpoint for step %d already exists in %s; not overwriting it.", step, self.directory
      )
      return False
    self._pending[step] = extra["metrics"]
    if not self.async_save:
      self._finalize_pending()
    return True

  def wait(self) -> None:
    """Blocks until every started save is committed and has its integrity manifest."""
    self._finalize_pending()

  def close(self) -> None:
    """Waits for the last save (see `wait`) and releases orbax's resources."""
    self._finalize_pending()
    self._store.close()

  def __enter__(self):
    return self

  def __exit__(self, *exc):
    self.close()

  def _finalize_pending(self) -> None:
    """Waits for in-flight saves, writes their manifests (process 0), then collects garbage."""
    if not self._pending:
      return
    pending, self._pending = self._pending, {}
    try:
      self._store.wait()
    except Exception:
      log.exception("Asynchronous checkpoint save of step(s) %s failed.", sorted(pending))
      raise
    committed = set(self._store.steps())
    written = {}
    for step, metrics in sorted(pending.items()):
      if step not in committed or not self._store.step_dir(step).exists():
        log.warning("Checkpoint save of step %d did not commit; no manifest written.", step)
        continue
      if multihost.is_primary():
        manifest.write_manifest(self._store.step_dir(step), step, metrics)
      written[step] = metrics
    multihost.barrier("jaxgan_checkpoint_manifests")
    self._verified.update(written)
    if written:  # the newest verified step was just hashed from disk: see retention
      retention.collect_garbage(
        self._store,
        self._verified,
        keep=self.keep,
        keep_best=self.keep_best,
        best_mode=self.best_mode,
      )

  def _check_directory_config(self) -> None:
    """Refuses to mix checkpoints of two different runs in one directory (checked once)."""
    self._dir_config_checked = True
    existing = [s for s in self._store.steps() if s not in self._pending]
    if not existing:
      return
    try:
      stored = self._store.read_config(existing[-1])
    except Exception:  # noqa: BLE001 - unreadable: restore_latest reports it
      return
    compat.check_config(
      stored,
      self.config,
      where=restore.where(self.directory, existing[-1]),
      resumable=self.resumable_sections,
    )

  def _move_aside(self, step: int, reason: str) -> None:
    if multihost.is_primary():
      manifest.quarantine(self.directory, step, reason)
    multihost.barrier("jaxgan_checkpoint_move_aside")
    self._verified.pop(step, None)
    self._store.reload()
