"""Which checkpoints to keep: garbage collection that cannot eat the last good checkpoint.

The decision is orbax's own preservation policies (`LatestN`, and `BestN` for `keep_best`); what
they are applied to, and when, is ours. Orbax's `CheckpointManager` applies its policy to every
step it lists, including the step still being written and steps that never got a manifest, and
it decides when a save starts and deletes when it commits; it knows nothing of our manifests. A
run whose newest steps are unfinished, unverified or corrupt could then delete an older good
step. So orbax's own GC is off (it keeps every step, see `store`), and `Checkpointer` applies
the policies itself, with two rules:

1. only **verified** steps (those with a manifest) are given to the policies, so only they count
   towards `keep` and only they can be deleted; unverified steps are never deleted (at most one
   per crash; remove them by hand);
2. garbage is collected only right after a new manifest was written, i.e. when the newest verified
   step has just been hashed from disk; that step is always retained (`LatestN`).

So the retained set always contains a checkpoint that was read back from disk and found complete
after every older one it replaces was written; a bad newer checkpoint (unfinished, unverified, or
corrupted later and moved aside) can never cause the deletion of an older good one. Retained:
the `keep` newest verified steps, plus, with `keep_best`, the `keep` best verified steps by that
metric (so up to `2 * keep`, plus one save in flight). Steps whose metric is missing or not
finite never count as best; among equal metrics the newer step wins.

  >>> fids = {1: {"fid": 5.0}, 2: {"fid": 1.0}, 3: {"fid": 4.0}, 4: None}
  >>> sorted(retained(fids, keep=1))
  [4]
  >>> sorted(retained(fids, keep=1, keep_best="fid", best_mode="min"))
  [2, 4]
"""

from __future__ import annotations

import dataclasses
import datetime
import logging
import math
from collections.abc import Mapping
from typing import Any

from orbax.checkpoint import checkpoint_managers as policies

from jaxgan.run.checkpoint import multihost

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class _Info:  # what orbax's preservation policies read of a checkpoint (PolicyCheckpointInfo)
  step: int
  metrics: dict[str, Any] | None
  time: datetime.datetime


def retained(
  verified: Mapping[int, Mapping[str, Any] | None],
  *,
  keep: int,
  keep_best: str | None = None,
  best_mode: str = "min",
) -> set[int]:
  """The verified steps to keep; every other verified step may be deleted.

  Args:
    verified: step -> the metrics saved with it (or None), for verified steps only.
    keep: how many of the newest verified steps to keep (>= 1), and with `keep_best` how many
      of the best.
    keep_best: name of a metric in `verified`'s values; None keeps only the newest.
    best_mode: 'min' or 'max': which end of `keep_best` is best.

  Returns:
    The steps of `verified` to retain.

  Raises:
    ValueError: `keep` < 1 or `best_mode` not 'min' or 'max'.
  """
  if keep < 1:
    raise ValueError(f"keep must be >= 1, got {keep}")
  if best_mode not in ("min", "max"):
    raise ValueError(f"best_mode must be 'min' or 'max', got {best_mode!r}")
  now = datetime.datetime.now(datetime.UTC)

  def metrics(m):
    value = (m or {}).get(keep_best) if keep_best else None
    ok = isinstance(value, (int, float)) and math.isfinite(value)
    return {keep_best: float(value)} if ok else None  # None: never among the best

  infos = [_Info(s, metrics(verified[s]), now) for s in sorted(verified)]
  rules = [policies.LatestN(n=keep)]
  if keep_best:
    # BestN keeps the last n after a stable sort: for 'min' sort descending. Equal values keep
    # step order, so the newer of two equal steps is kept.
    rules.append(
      policies.BestN(
        get_metric_fn=lambda m: m[keep_best],
        reverse=best_mode == "min",
        n=keep,
        keep_checkpoints_without_metrics=False,
      )
    )
  policy = policies.AnyPreservationPolicy(rules)
  keep_flags = policy.should_preserve(infos, context=policies.PreservationContext())
  return {info.step for info, k in zip(infos, keep_flags, strict=True) if k}


def collect_garbage(
  store, verified: dict[int, Any], *, keep: int, keep_best: str | None, best_mode: str
) -> None:
  """Deletes the verified steps that `retained` does not keep, and forgets them.

  Call only right after a manifest was written (rule 2 of this module).

  Args:
    store: the `jaxgan.run.checkpoint.store.Store` holding the steps.
    verified: step -> metrics of the verified steps; the deleted ones are removed from it.
    keep: see `retained`.
    keep_best: see `retained`.
    best_mode: see `retained`.
  """
  kept = retained(verified, keep=keep, keep_best=keep_best, best_mode=best_mode)
  listed = set(store.steps())
  for step in sorted(set(verified) - kept):
    if step in listed:
      if multihost.is_primary():  # every process deletes (orbax coordinates); one reports it
        log.info("Deleting checkpoint step %d (keep=%d, keep_best=%s).", step, keep, keep_best)
      store.delete(step)
    del verified[step]
