"""Orbax, laid out for a GAN run: one step directory per checkpoint, holding three items.

* `state`: the `GANState` pytree (orbax's standard handler: OCDBT + zarr, sharded writes);
* `config`: the resolved run config as JSON (compared on resume by `compat`);
* `extra`: JSON with the format version, the step, the data loader's position and the metrics.

Orbax writes each step into a tmp directory and renames it on commit, so it only ever lists
committed steps. Its own retention is switched off (`LatestN(n=None)` keeps every step; see
`retention`), tmp directories of crashed saves are never cleaned up (they may be evidence), and
saves are forced (orbax's save decision is bypassed: `Checkpointer.should_save` decides).
`to_abstract` turns a state into the restore target orbax needs: shapes, dtypes and shardings.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import threading
from collections.abc import Mapping
from typing import Any

import jax
import numpy as np
import orbax.checkpoint as ocp
from etils import epath

from jaxgan.run.checkpoint import multihost

log = logging.getLogger(__name__)

# Where orbax renames a step it deletes, inside the checkpoint directory, before it is removed.
_DELETED = ".deleted"

# After a failed save, how long `close` waits for orbax to shut down (seconds).
CLOSE_AFTER_FAILURE_S = 10.0


class Store:
  """An orbax `CheckpointManager` with the items `state`, `config` and `extra`.

  Args:
    directory: where the step directories live (created if needed).
    async_save: write in a background thread (`save` returns once arrays are off the devices).
  """

  def __init__(self, directory: epath.Path, *, async_save: bool):
    self.directory = directory
    if multihost.is_primary():
      directory.mkdir(parents=True, exist_ok=True)
      # Steps a killed run was deleting: already renamed out of the listing, never restorable.
      shutil.rmtree(directory / _DELETED, ignore_errors=True)
    multihost.barrier("jaxgan_checkpoint_mkdir")
    options = ocp.CheckpointManagerOptions(
      preservation_policy=ocp.checkpoint_managers.LatestN(n=None),  # keep all: see retention
      create=True,
      cleanup_tmp_directories=False,  # a crashed save's files may be evidence
      enable_async_checkpointing=async_save,
      # A deleted step is first renamed away (atomic), so a run killed while deleting it never
      # leaves a half-deleted step directory in the listing.
      todelete_subdir=_DELETED,
    )
    handlers = {
      "state": ocp.StandardCheckpointHandler(),
      "config": ocp.JsonCheckpointHandler(),
      "extra": ocp.JsonCheckpointHandler(),
    }
    self._mngr = ocp.CheckpointManager(directory, options=options, item_handlers=handlers)
    self._failed = False  # a save raised: see close

  def step_dir(self, step: int) -> epath.Path:
    """Returns the directory of a committed `step`."""
    return self.directory / str(step)

  def steps(self) -> list[int]:
    """Returns the committed steps (and those being saved by this process), ascending."""
    return sorted(self._mngr.all_steps())

  def exists(self, step: int) -> bool:
    """Whether orbax lists `step` or its directory exists on disk."""
    return step in self._mngr.all_steps() or self.step_dir(step).exists()

  def save(self, step: int, state, config: Mapping, extra: Mapping) -> bool:
    """Starts writing a step that does not exist yet.

    Args:
      step: the train step.
      state: the pytree of arrays.
      config: JSON-able config.
      extra: JSON-able extra record.

    Returns:
      False, writing nothing, when the step exists (see `exists`); True once the save started.
    """
    if self.exists(step):
      return False
    args = ocp.args.Composite(
      state=ocp.args.StandardSave(state),
      config=ocp.args.JsonSave(config),
      extra=ocp.args.JsonSave(extra),
    )
    try:
      self._mngr.save(step, args=args, force=True)
    except ocp.checkpoint_manager.StepAlreadyExistsError:
      return False
    except BaseException:
      self._failed = True
      raise
    return True

  def wait(self) -> None:
    """Blocks until every started save is committed (re-raises a failed async save)."""
    try:
      self._mngr.wait_until_finished()
    except BaseException:
      self._failed = True
      raise

  def read_config(self, step: int) -> Any:
    """Returns the config stored at `step`, as JSON gives it back."""
    return self._mngr.restore(step, args=ocp.args.Composite(config=ocp.args.JsonRestore()))[
      "config"
    ]

  def read_extra(self, step: int) -> dict:
    """Returns the extra record stored at `step` (loader position, metrics), without the state."""
    args = ocp.args.Composite(extra=ocp.args.JsonRestore())
    return self._mngr.restore(step, args=args)["extra"] or {}

  def read_tree_metadata(self, step: int):
    """Returns the stored state's tree of leaf metadata (`.shape`, `.dtype`), without the data.

    Raises:
      RuntimeError: the step has no state metadata.
    """
    meta = self._mngr.item_metadata(step)["state"]
    meta = getattr(meta, "tree", meta)
    if meta is None:
      raise RuntimeError(f"no state metadata found for step {step}")
    return meta

  def read_state(self, step: int, abstract) -> tuple[Any, dict]:
    """Reads the state onto `abstract`'s shapes, dtypes and shardings, and the extra record.

    Args:
      step: a committed step.
      abstract: a pytree of `jax.ShapeDtypeStruct`s, each with a sharding.

    Returns:
      `(state, extra)`.
    """
    args = ocp.args.Composite(
      state=ocp.args.StandardRestore(abstract), extra=ocp.args.JsonRestore()
    )
    out = self._mngr.restore(step, args=args)
    return out["state"], out["extra"] or {}

  def delete(self, step: int) -> None:
    """Deletes a step (retention only; corrupt steps are moved aside, never deleted)."""
    self._mngr.delete(step)
    if multihost.is_primary():
      shutil.rmtree(self.directory / _DELETED / str(step), ignore_errors=True)
      with contextlib.suppress(OSError):  # leave no empty folder behind; another may be in use
        os.rmdir(self.directory / _DELETED)

  def reload(self) -> None:
    """Re-lists the steps from disk (after steps were moved aside, or to see other writers)."""
    self._mngr.reload()

  def close(self) -> None:
    """Waits for saves and releases orbax's threads; after a failed save, for a bounded time.

    A save that failed part-way can leave orbax's threads waiting minutes for signals of the
    aborted save, and orbax's close with them; nothing is left to commit by then, so after a
    failure it gets `CLOSE_AFTER_FAILURE_S` seconds (in a daemon thread) and the run's error
    goes on up instead of waiting behind it.
    """
    if not self._failed:
      self._mngr.close()
      return

    def close():
      try:
        self._mngr.close()
      except Exception:  # noqa: BLE001 - the failed save's error is the one that matters
        log.warning("Closing orbax after a failed save raised too.", exc_info=True)

    closer = threading.Thread(target=close, name="jaxgan-orbax-close", daemon=True)
    closer.start()
    closer.join(CLOSE_AFTER_FAILURE_S)
    if closer.is_alive():
      log.warning(
        "orbax did not shut down within %g s after the failed save; going on without it.",
        CLOSE_AFTER_FAILURE_S,
      )


def to_abstract(tree):
  """Maps a concrete or abstract state to `jax.ShapeDtypeStruct`s that all carry a sharding.

  Args:
    tree: a pytree of jax.Arrays, NumPy arrays, scalars or `jax.ShapeDtypeStruct`s.

  Returns:
    The same tree of `jax.ShapeDtypeStruct`s. Leaves that have a sharding keep it; the others
    are replicated over all devices.
  """
  default = None

  def one(x):
    nonlocal default
    sharding = getattr(x, "sharding", None)
    if sharding is None:
      if default is None:
        mesh = jax.sharding.Mesh(np.array(jax.devices()), ("_all",))
        default = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec())
      sharding = default
    dtype = x.dtype if hasattr(x, "dtype") else np.asarray(x).dtype
    return jax.ShapeDtypeStruct(tuple(np.shape(x)), dtype, sharding=sharding)

  return jax.tree.map(one, tree)
