"""Checkpoints of a GAN run: the whole `GANState`, the data loader's position and the config.

This package is the only part of jaxgan that imports orbax. `Checkpointer` saves asynchronously,
one step directory per checkpoint, and adds what a long GAN run needs on top of orbax, each in a
module with one job:

* `store`: orbax's `CheckpointManager`, laid out as the items `state`, `config` and `extra`;
* `manifest`: the size and SHA-256 of every file of a committed step; `verify` returns a
  `Verification` ('verified', 'unverified' or 'corrupt', and why);
* `compat`: a checkpoint belongs to the run only if its config (outside the resumable sections)
  and its tree of paths, shapes and dtypes match, else `CheckpointMismatchError`;
* `retention`: orbax's preservation policies applied to verified steps only, so garbage
  collection never deletes the last good checkpoint;
* `restore`: resuming from the newest good step, falling back past corrupt or unloadable ones
  without deleting anything (`CheckpointCorruptError` when none is left);
* `manager`: `Checkpointer`, which composes them and never overwrites a saved step;
* `multihost`: the verdicts of process 0, shared with every process.

Typical use (the training loop does this)::

    ckpt = Checkpointer(workdir / "checkpoints", config=config.to_dict(), save_every=1000)
    restored = ckpt.restore_latest(state)  # state: a template, concrete or abstract
    if restored is not None:
      state, loader_state, step = restored
    ...
    if ckpt.should_save(step):
      ckpt.save(step, state, loader_state=loader.get_state(), metrics={"fid": fid})  # async
    ckpt.close()  # waits for the last save and writes its manifest
"""

from jaxgan.run.checkpoint.compat import CheckpointMismatchError, config_diff, is_flat_layout
from jaxgan.run.checkpoint.manager import Checkpointer
from jaxgan.run.checkpoint.manifest import (
  CORRUPT_DIR,
  MANIFEST_NAME,
  CheckpointCorruptError,
  Verification,
)
from jaxgan.run.checkpoint.store import to_abstract

__all__ = [
  "CORRUPT_DIR",
  "MANIFEST_NAME",
  "CheckpointCorruptError",
  "CheckpointMismatchError",
  "Checkpointer",
  "Verification",
  "config_diff",
  "is_flat_layout",
  "to_abstract",
]
