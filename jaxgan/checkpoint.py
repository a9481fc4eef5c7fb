"""Checkpoints of a GAN run: the whole `GANState`, the data loader's position and the config.

This is the only jaxgan module that imports orbax. It wraps an orbax `CheckpointManager` (async
saves, one step directory per checkpoint) and adds what a long GAN run needs on top of it:

* **Resume checks.** The resolved config is stored with every checkpoint. On restore, the stored
  config is compared with the current one, and the stored tree (paths, shapes, dtypes) with the
  abstract state; any difference raises `CheckpointMismatchError` naming the fields or parameter
  paths, instead of a stack trace from deep inside orbax. Keys that may legitimately change when a
  run is resumed (total steps, logging/eval/save frequencies, workdir, ...) are ignored; see
  `DEFAULT_RESUME_IGNORE`.

* **Integrity.** Orbax only guarantees that a checkpoint is complete at commit time (on a local
  filesystem: the tmp directory was renamed). It cannot see a file truncated or altered later. So,
  once orbax has *committed* a step, process 0 writes `jaxgan_manifest.json` into the step
  directory: the size and SHA-256 of every file in it. Saves are asynchronous, so the manifest of
  step N is written at the first `save`/`wait`/`close`/`restore_latest` call after N was started:
  that call first waits for orbax to finish N (the next orbax save would wait for it anyway), then
  hashes it. The rule on restore, newest step first:

    - manifest present and every file matches: **verified**, restored;
    - manifest present and a file is missing, has another size or hash (truncation, bit flip,
      deleted commit marker), or the manifest itself is unreadable: **corrupt**. A warning names the
      step and the reason, the step directory is *moved* (never deleted) to `<dir>/corrupt/`, and
      the previous step is tried;
    - no manifest: the process stopped between orbax's commit and our manifest (a window of at most
      one save interval). Orbax lists only committed steps, so the files were complete when they were
      committed: the step is **unverified but usable**; it is restored with a warning if it loads.
      If it fails to load it is skipped with a warning and left in place (so is any step that
      fails to load); only if this `Checkpointer` later saves that same step again is the old
      one moved to `<dir>/corrupt/`, so that a resumed run can replace it;
    - unfinished saves (orbax tmp directories) are never listed by orbax, so they are ignored and
      left in place.

  If no step can be restored, `CheckpointCorruptError` lists every step tried and why.

* **Garbage collection that cannot eat the last good checkpoint.** Orbax's own keep-last-K decides
  what to delete when a save *starts*, counting the step still being written, and deletes when it
  commits; it knows nothing of our manifests. So orbax's GC is switched off (`max_to_keep=None`)
  and this module collects garbage itself, with two rules:

    1. only **verified** steps (those with a manifest) count towards `keep` and only they can be
       deleted; unverified steps are never deleted (at most one per crash; remove them by hand);
    2. GC runs only right after a new manifest was written, i.e. when the newest verified step has
       just been hashed from disk; that step is always retained.

  So the retained set always contains a checkpoint that was read back from disk and found complete
  after every older one it replaces was written; a bad newer checkpoint (unfinished, unverified, or
  corrupted later and moved aside) can never cause the deletion of an older good one. Retained:
  the `keep` newest verified steps, plus, with `keep_best`, the `keep` best verified steps by that
  metric (so up to `2 * keep`, plus one save in flight).

* **No clobbering.** `save` refuses (returns False with a warning) a step that orbax lists or whose
  directory exists on disk, so a restarted or misconfigured run never overwrites a saved step; a
  new run whose config differs from the directory's newest checkpoint refuses to save into it at
  all (`CheckpointMismatchError`). Unfinished tmp directories of a crashed save are left alone.

* **Cost.** `restore_latest` re-reads and hashes every file of the step it restores (and of each
  newer one it rejects); saving hashes each committed step once, on process 0, in the main thread
  during the next `save`/`wait` call (which would otherwise just wait for orbax).

* **Multi-host.** Every process calls `save`, `wait`, `restore_latest` and `close`; orbax
  coordinates the array writes. Only process 0 writes manifests, verifies hashes and moves corrupt
  steps aside; the verdict is broadcast so that every process takes the same branch. GC decisions
  depend only on state that is identical on every process.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import logging
import math
from typing import Any, Mapping, Sequence

import jax
import numpy as np
import orbax.checkpoint as ocp
from etils import epath

from jaxgan.state import GANState

log = logging.getLogger(__name__)

MANIFEST_NAME = "jaxgan_manifest.json"
CORRUPT_DIR = "corrupt"
FORMAT_VERSION = 1

# Config keys that may differ between the run that wrote a checkpoint and the run resuming it.
# A key is ignored when its full dotted path (e.g. "eval.every") or its last component (e.g.
# "every") is in `resume_ignore`. Everything else (model, loss, optimizer, batch size, seed, data)
# must match, because it changes the structure or the meaning of the saved state.
DEFAULT_RESUME_IGNORE: tuple[str, ...] = (
    "steps", "num_steps", "total_steps", "train_steps", "num_train_steps", "max_steps",
    "workdir", "work_dir", "checkpoint_dir", "log_dir",
    "log_every", "log_every_steps", "log_interval",
    "eval_every", "eval_every_steps", "eval_interval", "num_eval_samples",
    "sample_every", "sample_every_steps", "num_samples_to_log",
    "save_every", "save_every_steps", "checkpoint_every", "checkpoint_every_steps",
    "keep", "keep_checkpoints", "keep_best", "async_save",
    "profile", "debug", "use_wandb", "wandb", "tensorboard",
    "eval_metrics", "eval_extractor", "eval_classifier_path", "eval_inception_weights",
    "eval_reference_split", "eval_cache_dir", "eval_samples", "num_samples",
    "max_consecutive_skipped", "loader_workers", "data_dir", "source_dir",
)


class CheckpointMismatchError(ValueError):
  """The checkpoint was written by a run with another config or another state structure."""


class CheckpointCorruptError(RuntimeError):
  """No checkpoint in the directory could be verified and loaded."""


# ------------------------------------------------------------------------------------------------
# helpers

def _json_default(x):
  if isinstance(x, np.generic):
    return x.item()
  if isinstance(x, np.ndarray):
    return x.tolist()
  if isinstance(x, (set, frozenset)):
    return sorted(x, key=repr)
  if hasattr(x, "to_dict"):  # ml_collections.ConfigDict
    return x.to_dict()
  return str(x)


def _to_json(obj):
  """Normalises `obj` to what a JSON roundtrip gives back (tuples -> lists, keys -> str)."""
  if obj is None:
    return None
  if hasattr(obj, "to_dict"):
    obj = obj.to_dict()
  return json.loads(json.dumps(obj, default=_json_default, sort_keys=True))


def _flatten_config(cfg, prefix=""):
  out = {}
  if isinstance(cfg, Mapping):
    for k, v in cfg.items():
      key = f"{prefix}.{k}" if prefix else str(k)
      if isinstance(v, Mapping) and v:
        out.update(_flatten_config(v, key))
      else:
        out[key] = v
  else:
    out[prefix] = cfg
  return out


def config_diff(stored: Mapping, current: Mapping, ignore: Sequence[str]) -> list[str]:
  """Human-readable differences between two configs, skipping ignored keys."""
  a, b = _flatten_config(_to_json(stored) or {}), _flatten_config(_to_json(current) or {})
  ignore = set(ignore)
  lines = []
  for key in sorted(set(a) | set(b)):
    if key in ignore or key.rsplit(".", 1)[-1] in ignore:
      continue
    if key not in b:
      lines.append(f"{key}: stored {a[key]!r}, absent from the current config")
    elif key not in a:
      lines.append(f"{key}: absent from the stored config, current {b[key]!r}")
    elif a[key] != b[key]:
      lines.append(f"{key}: stored {a[key]!r} != current {b[key]!r}")
  return lines


def _key_str(k) -> str:
  for attr in ("name", "key", "idx"):
    if hasattr(k, attr):
      return str(getattr(k, attr))
  return str(k)


def _path_str(path) -> str:
  return "/".join(_key_str(k) for k in path)


def _flatten_abstract(tree) -> dict[str, Any]:
  return {_path_str(p): leaf for p, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]}


def _flatten_metadata(tree) -> dict[str, Any]:
  is_leaf = lambda x: hasattr(x, "shape") and hasattr(x, "dtype")  # noqa: E731
  return {_path_str(p): leaf
          for p, leaf in jax.tree_util.tree_flatten_with_path(tree, is_leaf=is_leaf)[0]}


def _default_sharding():
  mesh = jax.sharding.Mesh(np.array(jax.devices()), ("_all",))
  return jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec())


def to_abstract(tree):
  """Maps a concrete or abstract state to `jax.ShapeDtypeStruct`s that all carry a sharding.

  Leaves that already have a sharding (jax.Arrays, ShapeDtypeStructs with `sharding`) keep it;
  other leaves (numpy arrays, scalars, ShapeDtypeStructs without one) are replicated over all
  devices.
  """
  default = None

  def one(x):
    nonlocal default
    sharding = getattr(x, "sharding", None)
    if sharding is None:
      default = default or _default_sharding()
      sharding = default
    x_shape = np.shape(x) if not hasattr(x, "shape") else x.shape
    x_dtype = x.dtype if hasattr(x, "dtype") else np.asarray(x).dtype
    return jax.ShapeDtypeStruct(tuple(x_shape), x_dtype, sharding=sharding)

  return jax.tree.map(one, tree)


def _sha256(path: epath.Path) -> str:
  h = hashlib.sha256()
  with path.open("rb") as f:
    while chunk := f.read(1 << 20):
      h.update(chunk)
  return h.hexdigest()


def _list_files(root: epath.Path) -> list[str]:
  """Relative paths of every file under `root` (epath has no recursive glob)."""
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


def _is_primary() -> bool:
  return jax.process_index() == 0


def _broadcast_int(value: int) -> int:
  """Process 0's `value` on every process (no-op with one process)."""
  if jax.process_count() == 1:
    return value
  from jax.experimental import multihost_utils
  return int(multihost_utils.broadcast_one_to_all(np.int32(value)))


def _all_true(flag: bool) -> bool:
  if jax.process_count() == 1:
    return flag
  from jax.experimental import multihost_utils
  return bool(np.min(multihost_utils.process_allgather(np.int32(flag))))


def _barrier(name: str):
  if jax.process_count() > 1:
    from jax.experimental import multihost_utils
    multihost_utils.sync_global_devices(name)


# verification verdicts
_OK, _UNVERIFIED, _CORRUPT = 0, 1, 2


# ------------------------------------------------------------------------------------------------

class Checkpointer:
  """Saves and restores a GAN run: `GANState`, data-loader position and resolved config.

  Args:
    directory: where the step directories live (created if needed).
    config: the resolved run config (a dict or ConfigDict; stored as JSON with every checkpoint and
      compared on restore).
    save_every: `should_save(step)` is true every `save_every` steps (0 disables periodic saves).
    keep: number of newest verified checkpoints retained (>= 1).
    keep_best: name of a metric in `save(..., metrics=...)`; when set, the `keep` best verified
      checkpoints by that metric are retained as well as the `keep` newest.
    best_mode: 'min' or 'max' for `keep_best`.
    async_save: write checkpoints in a background thread (orbax async checkpointing).
    resume_ignore: config keys that may differ when resuming (see `DEFAULT_RESUME_IGNORE`).

  Usage::

      ckpt = Checkpointer(workdir / "checkpoints", config=cfg, save_every=1000)
      restored = ckpt.restore_latest(state)          # state: template (concrete or abstract)
      if restored is not None:
        state, loader_state, step = restored
      ...
      ckpt.save(step, state, loader_state=loader.state(), metrics={"fid": fid})  # async
      ...
      ckpt.close()                                   # waits for the last save
  """

  def __init__(self, directory, *, config: Mapping | None, save_every: int, keep: int = 3,
               keep_best: str | None = None, best_mode: str = "min", async_save: bool = True,
               resume_ignore: Sequence[str] = DEFAULT_RESUME_IGNORE):
    if keep < 1:
      raise ValueError(f"keep must be >= 1, got {keep}")
    if best_mode not in ("min", "max"):
      raise ValueError(f"best_mode must be 'min' or 'max', got {best_mode!r}")
    self.directory = epath.Path(directory).absolute()
    self.config = _to_json(config) or {}
    self.save_every = int(save_every)
    self.keep = int(keep)
    self.keep_best = keep_best
    self.best_mode = best_mode
    self.async_save = async_save
    self.resume_ignore = tuple(resume_ignore)
    if _is_primary():
      self.directory.mkdir(parents=True, exist_ok=True)
    _barrier("jaxgan_checkpoint_mkdir")
    options = ocp.CheckpointManagerOptions(
        max_to_keep=None,                # GC is ours, see the module docstring
        create=True,
        cleanup_tmp_directories=False,   # never delete anything that might be evidence
        enable_async_checkpointing=async_save,
    )
    handlers = {"state": ocp.StandardCheckpointHandler(),
                "config": ocp.JsonCheckpointHandler(),
                "extra": ocp.JsonCheckpointHandler()}
    self._mngr = ocp.CheckpointManager(self.directory, options=options, item_handlers=handlers)
    # step -> metrics, for steps with a manifest (verified at write time).
    self._verified: dict[int, dict | None] = {}
    for step in self._mngr.all_steps():
      manifest = self._read_manifest(step)
      if manifest is not None:
        self._verified[step] = manifest.get("metrics")
    self._pending: dict[int, dict | None] = {}  # saves started, manifest not yet written
    # step -> reason, for steps restore_latest skipped as unloadable and left in place
    self._unloadable: dict[int, str] = {}
    self._dir_config_checked = False

  # ---------------------------------------------------------------------------------------------
  # saving

  def _step_dir(self, step: int) -> epath.Path:
    return self.directory / str(step)

  @property
  def latest_step(self) -> int | None:
    """Newest step orbax lists (committed, or being saved by this process)."""
    steps = self.all_steps()
    return steps[-1] if steps else None

  def all_steps(self) -> list[int]:
    return sorted(self._mngr.all_steps())

  def should_save(self, step: int) -> bool:
    """True every `save_every` steps (step > 0), unless that step is already saved (a step that
    failed to load does not count as saved: `save` moves it aside)."""
    saved = step in self._mngr.all_steps() and step not in self._unloadable
    return (self.save_every > 0 and step > 0 and step % self.save_every == 0
            and not saved and step not in self._pending)

  def save(self, step: int, state: GANState, *, loader_state: dict | None = None,
           metrics: dict | None = None, force: bool = False) -> bool:
    """Starts an (async) save of `state` at `step`; returns whether a save was started.

    With `force`, saves even when `should_save(step)` is false. An existing step is never
    overwritten: the call logs a warning and returns False. Returns after the arrays have been
    copied off the devices, so the caller may donate `state` right away.
    """
    step = int(step)
    if not force and not self.should_save(step):
      return False
    self._finalize_pending()
    if not self._dir_config_checked:
      self._check_directory_config()
    if step in self._unloadable:
      # restore_latest left this step in place because it failed to load, and the run has now
      # reached the step again: move the old one aside (never deleted) rather than refuse to
      # save, which would leave e.g. the final step of a run unsaved on every relaunch.
      self._move_aside(step, "replaced by a new save of the same step; it had failed to load: "
                       + self._unloadable.pop(step))
    if step in self._mngr.all_steps() or self._step_dir(step).exists():
      log.warning("Checkpoint for step %d already exists in %s; not overwriting it.",
                  step, self.directory)
      return False
    metrics = _to_json(metrics)
    extra = {"format_version": FORMAT_VERSION, "step": step, "loader_state": _to_json(loader_state),
             "metrics": metrics}
    args = ocp.args.Composite(
        state=ocp.args.StandardSave(state),
        config=ocp.args.JsonSave(self.config),
        extra=ocp.args.JsonSave(extra),
    )
    try:
      self._mngr.save(step, args=args, force=True)  # force: bypass orbax's own interval logic
    except ocp.checkpoint_manager.StepAlreadyExistsError:
      log.warning("Checkpoint for step %d already exists in %s; not overwriting it.",
                  step, self.directory)
      return False
    self._pending[step] = metrics
    if not self.async_save:
      self._finalize_pending()
    return True

  def wait(self):
    """Blocks until every started save is committed and has its integrity manifest."""
    self._finalize_pending()

  def close(self):
    self._finalize_pending()
    self._mngr.close()

  def __enter__(self):
    return self

  def __exit__(self, *exc):
    self.close()

  def _check_directory_config(self):
    """Refuses to mix checkpoints of two different runs in one directory (checked once)."""
    self._dir_config_checked = True
    existing = [s for s in self.all_steps() if s not in self._pending]
    if not existing:
      return
    step = existing[-1]
    try:
      stored = self._restore_items(step, config=ocp.args.JsonRestore())["config"]
    except Exception:  # unreadable: restore_latest will report it
      return
    diff = config_diff(stored, self.config, self.resume_ignore)
    if diff:
      raise CheckpointMismatchError(self._config_message(step, diff))

  def _finalize_pending(self):
    """Waits for in-flight saves, writes their manifests (process 0), then collects garbage."""
    if not self._pending:
      return
    pending, self._pending = self._pending, {}
    try:
      self._mngr.wait_until_finished()
    except Exception:
      log.exception("Asynchronous checkpoint save of step(s) %s failed.", sorted(pending))
      raise
    committed = set(self._mngr.all_steps())
    written = {}
    for step, metrics in sorted(pending.items()):
      if step not in committed or not self._step_dir(step).exists():
        log.warning("Checkpoint save of step %d did not commit; no manifest written.", step)
        continue
      if _is_primary():
        self._write_manifest(step, metrics)
      written[step] = metrics
    _barrier("jaxgan_checkpoint_manifests")
    self._verified.update(written)
    if written:
      self._collect_garbage()

  def _write_manifest(self, step: int, metrics):
    root = self._step_dir(step)
    files = {}
    for rel in _list_files(root):
      p = root / rel
      files[rel] = {"size": p.stat().length, "sha256": _sha256(p)}
    manifest = {
        "format_version": FORMAT_VERSION,
        "step": step,
        "written": datetime.datetime.now(datetime.timezone.utc).isoformat(),
        "metrics": metrics,
        "files": files,
    }
    tmp = root / (MANIFEST_NAME + ".tmp")
    tmp.write_text(json.dumps(manifest, indent=1, sort_keys=True))
    tmp.rename(root / MANIFEST_NAME)

  def _read_manifest(self, step: int) -> dict | None:
    path = self._step_dir(step) / MANIFEST_NAME
    if not path.exists():
      return None
    try:
      return json.loads(path.read_text())
    except Exception:  # noqa: BLE001 - unreadable manifest: still "has a manifest"
      return {"unreadable": True}

  def _retained(self) -> set[int]:
    steps = sorted(self._verified)
    keep = set(steps[-self.keep:])
    if self.keep_best:
      scored = []
      for s in steps:
        value = (self._verified.get(s) or {}).get(self.keep_best)
        if isinstance(value, (int, float)) and math.isfinite(value):
          scored.append((value, s))
      # best first; ties go to the newer step
      scored.sort(key=lambda vs: (vs[0] if self.best_mode == "min" else -vs[0], -vs[1]))
      keep |= {s for _, s in scored[:self.keep]}
    return keep

  def _collect_garbage(self):
    retained = self._retained()
    for step in sorted(self._verified):
      if step in retained:
        continue
      if step in self._mngr.all_steps():
        log.info("Deleting checkpoint step %d (keep=%d, keep_best=%s).", step, self.keep,
                 self.keep_best)
        self._mngr.delete(step)
      del self._verified[step]

  # ---------------------------------------------------------------------------------------------
  # restoring

  def verify(self, step: int) -> tuple[int, str]:
    """Checks step `step` against its manifest: (verdict, reason). Reads every file (process 0)."""
    root = self._step_dir(step)
    manifest = self._read_manifest(step)
    if manifest is None:
      return _UNVERIFIED, "no integrity manifest (the run stopped between commit and manifest)"
    if manifest.get("unreadable") or "files" not in manifest:
      return _CORRUPT, f"integrity manifest {root / MANIFEST_NAME} is unreadable"
    for rel, rec in sorted(manifest["files"].items()):
      p = root / rel
      if not p.exists():
        return _CORRUPT, f"file {rel} is missing"
      size = p.stat().length
      if size != rec["size"]:
        return _CORRUPT, f"file {rel} has {size} bytes, {rec['size']} were written (truncated?)"
      if _sha256(p) != rec["sha256"]:
        return _CORRUPT, f"file {rel} does not match its SHA-256 (altered or bit flip)"
    return _OK, "verified"

  def _restore_items(self, step: int, **item_args):
    return self._mngr.restore(step, args=ocp.args.Composite(**item_args))

  def _config_message(self, step: int, diff: list[str]) -> str:
    return (
        f"The checkpoint at step {step} in {self.directory} was written with a different config:\n  "
        + "\n  ".join(diff)
        + "\nResume with the config that wrote it, or start the new config in a new workdir. "
        f"(Keys allowed to differ when resuming: resume_ignore={self.resume_ignore}.)")

  def _check_structure(self, step: int, abstract) -> None:
    meta = self._mngr.item_metadata(step)["state"]
    meta = getattr(meta, "tree", meta)
    if meta is None:
      raise RuntimeError(f"no state metadata found for step {step}")
    stored = _flatten_metadata(meta)
    wanted = _flatten_abstract(abstract)
    lines = []
    for path in sorted(set(stored) | set(wanted)):
      if path not in wanted:
        s = stored[path]
        lines.append(f"{path}: in the checkpoint {tuple(s.shape)} {np.dtype(s.dtype)}, "
                     "not in the current state")
      elif path not in stored:
        w = wanted[path]
        lines.append(f"{path}: missing from the checkpoint, current state has "
                     f"{tuple(w.shape)} {np.dtype(w.dtype)}")
      else:
        s, w = stored[path], wanted[path]
        if tuple(s.shape) != tuple(w.shape) or np.dtype(s.dtype) != np.dtype(w.dtype):
          lines.append(f"{path}: checkpoint {tuple(s.shape)} {np.dtype(s.dtype)} != current "
                       f"{tuple(w.shape)} {np.dtype(w.dtype)}")
    if lines:
      shown = lines[:25] + ([f"... and {len(lines) - 25} more"] if len(lines) > 25 else [])
      raise CheckpointMismatchError(
          f"The state stored at step {step} in {self.directory} does not match the current "
          f"model/optimizer ({len(lines)} mismatching parameter paths):\n  " + "\n  ".join(shown)
          + "\nResume with the config that wrote it, or start the new config in a new workdir.")

  def _move_aside(self, step: int, reason: str):
    if _is_primary():
      src = self._step_dir(step)
      dst_dir = self.directory / CORRUPT_DIR
      dst_dir.mkdir(parents=True, exist_ok=True)
      stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%S%f")
      dst = dst_dir / f"{step}.{stamp}"
      if src.exists():
        src.rename(dst)
        (dst_dir / f"{step}.{stamp}.reason.txt").write_text(reason + "\n")
        log.warning("Moved corrupt checkpoint step %d to %s (not deleted).", step, dst)
    _barrier("jaxgan_checkpoint_move_aside")
    self._verified.pop(step, None)
    self._mngr.reload()

  def restore_latest(self, abstract_state) -> tuple[GANState, dict | None, int] | None:
    """Restores the newest good checkpoint onto `abstract_state`'s shardings.

    Args:
      abstract_state: the target: a pytree of `jax.ShapeDtypeStruct` (with `.sharding`) or a
        concrete `GANState` used as a template (its arrays' shardings are used; leaves without a
        sharding are replicated over all devices).

    Returns:
      `(state, loader_state, step)`, or None when the directory holds no checkpoint.

    Raises:
      CheckpointMismatchError: the newest readable checkpoint was written with another config or
        another state structure.
      CheckpointCorruptError: checkpoints exist but none is intact and loadable.
    """
    self._finalize_pending()
    self._mngr.reload()
    steps = sorted(self._mngr.all_steps(), reverse=True)
    if not steps:
      return None
    abstract = to_abstract(abstract_state)
    tried = []
    for step in steps:
      verdict, reason = self.verify(step) if _is_primary() else (_OK, "")
      verdict = _broadcast_int(verdict)
      if verdict == _CORRUPT:
        if not _is_primary():
          reason = "failed integrity verification on process 0"
        log.warning("Skipping checkpoint step %d: %s.", step, reason)
        tried.append((step, reason))
        self._move_aside(step, reason)
        continue
      if verdict == _UNVERIFIED:
        log.warning("Checkpoint step %d is unverified (%s); using it since orbax committed it.",
                    step, reason)
      try:
        stored_config = self._restore_items(step, config=ocp.args.JsonRestore())["config"]
        diff = config_diff(stored_config, self.config, self.resume_ignore)
        if diff:
          raise CheckpointMismatchError(self._config_message(step, diff))
        self._check_structure(step, abstract)
        restored = self._restore_items(step, state=ocp.args.StandardRestore(abstract),
                                       extra=ocp.args.JsonRestore())
        state, extra = restored["state"], restored["extra"] or {}
        ok, err = True, None
      except CheckpointMismatchError:
        raise
      except Exception as e:  # noqa: BLE001 - any load failure: fall back to the previous step
        ok, err = False, f"failed to load: {type(e).__name__}: {str(e)[:300]}"
      if not _all_true(ok):
        err = err or "failed to load on another process"
        log.warning("Skipping checkpoint step %d: %s. Left in place.", step, err)
        tried.append((step, err))
        self._unloadable[step] = err
        continue
      if tried:
        log.warning("Restored checkpoint step %d after skipping %s.", step,
                    [s for s, _ in tried])
      self._dir_config_checked = True
      return state, extra.get("loader_state"), step
    raise CheckpointCorruptError(
        f"No usable checkpoint in {self.directory}. Tried (newest first):\n  "
        + "\n  ".join(f"step {s}: {r}" for s, r in tried)
        + f"\nCorrupt steps were moved to {self.directory / CORRUPT_DIR}; nothing was deleted. "
        "Inspect them, or start from scratch in a new workdir.")
