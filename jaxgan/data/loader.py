"""A seeded, resumable, per-process-sharded batch loader over a random-access source (grain).

The grain pipeline runs over *batch numbers*::

  MapDataset.range(start, num_batches)   # global batch k; this process reads its block of it
    .map(BatchReader)                    # k -> example indices -> one batched read -> floats
    .to_iter_dataset(read_options)       # optional prefetch threads
    [.mp_prefetch(workers)]              # optional worker processes

Global batch k holds positions ``k*G .. k*G+G-1`` of the endless stream ``epoch 0, epoch 1, ...``
of the whole source, each epoch a fresh permutation drawn from ``(seed, epoch)``; process s of S
reads the s-th block of ``G / S`` of them. So batch k depends only on (seed, G, k): the position
is one integer, the next batch number, resuming starts the range there, and it matters neither
how many threads or worker processes read the batches nor how many processes share them.

Why not ``MapDataset.source(src).shuffle(seed).batch(B)``: grain then shuffles and reads one
element at a time through several Python layers, which dominates the cost of small images even
from memory; permuting a whole epoch with NumPy and reading a batch at a time is several times
faster (``benchmarks/loader_throughput.py`` measures both).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import numpy as np

from jaxgan.data.batches import BatchReader, centred_padding

# Format of Loader.get_state(); states of other versions are refused, never misread. Version 2
# described one process's shard; its one-process states describe the same stream as version 3.
_STATE_VERSION = 3


class Loader(Iterator[dict[str, np.ndarray]]):
  """An iterator of batches whose position is one batch number, saved as plain JSON.

  ``get_state()`` returns the position with the configuration that defines the batch stream
  (seed, global batch size, source length, padding, epochs), so that restoring it into a
  differently configured loader fails loudly instead of silently yielding other batches. How the
  batches are read (``worker_count``, ``read_threads``) and by how many processes
  (``shard_count``) is not part of it: a run may resume with other workers or on other hosts.

  Args:
    build: start batch number -> an iterator of batches from there (grain's iterator).
    config: the stream's configuration, JSON types only.
    num_batches: batches in all, or None when repeating forever.
  """

  def __init__(
    self,
    build: Callable[[int], Iterator[dict[str, np.ndarray]]],
    config: Mapping[str, Any],
    num_batches: int | None,
  ):
    self._build = build
    self._config = dict(config)
    self.num_batches = num_batches
    self._next = 0
    self._iter = build(0)

  @property
  def config(self) -> dict[str, Any]:
    """A copy of the stream's configuration (what :meth:`set_state` compares)."""
    return dict(self._config)

  def __iter__(self):
    return self

  def __next__(self) -> dict[str, np.ndarray]:
    batch = next(self._iter)
    self._next += 1
    return batch

  def get_state(self) -> dict[str, Any]:
    """The position after the last returned batch.

    Returns:
      ``{'version': int, 'config': dict, 'next_batch': int}``, plain JSON types only.
    """
    state = {"version": _STATE_VERSION, "config": self.config, "next_batch": self._next}
    return json.loads(json.dumps(state))  # a deep copy, and a check that it serialises

  def set_state(self, state: Mapping[str, Any]) -> None:
    """Moves to a position from :meth:`get_state` of a loader built with the same stream.

    Args:
      state: what :meth:`get_state` returned (possibly through a JSON round trip).

    Raises:
      ValueError: the state has another format version, or was saved by a loader with another
        configuration (the message lists the differing entries, saved and now).
    """
    state = _upgrade(state)
    if state.get("version") != _STATE_VERSION:
      raise ValueError(
        f"Unsupported loader state version {state.get('version')!r} (this jaxgan writes "
        f"{_STATE_VERSION}); the checkpoint was written by another jaxgan version: start a new "
        "run or resume with that version."
      )
    saved = dict(state["config"])
    if saved != self._config:
      keys = sorted(set(saved) | set(self._config))
      diff = {
        k: (saved.get(k), self._config.get(k)) for k in keys if saved.get(k) != self._config.get(k)
      }
      from jaxgan.errors import ConfigError  # pylint: disable=g-import-not-at-top

      if "source_identity" in diff:
        raise ConfigError(
          "The image folder changed since this run started (its manifest digest differs: "
          f"{diff['source_identity']}), so the run cannot resume on the same data. Restore the "
          "folder, or start a new run (another workdir) on the changed folder."
        )
      raise ConfigError(
        f"Loader state was saved with a different configuration (saved, now): {diff}. Resume with "
        "the data settings the run started with."
      )
    self.close()
    self._next = int(state["next_batch"])
    self._iter = self._build(self._next)

  def close(self) -> None:
    """Stops grain's worker processes and threads, if any."""
    close = getattr(self._iter, "close", None)
    if close is not None:
      close()


def _upgrade(state: Mapping[str, Any]) -> Mapping[str, Any]:
  """A version-2 state of one process in version 3's terms (the same stream); others unchanged."""
  config = state.get("config") or {}
  if state.get("version") != 2 or config.get("shard_count") != 1:
    return state
  config = {k: v for k, v in config.items() if k not in ("shard_index", "shard_count")}
  config["global_batch_size"] = config.pop("batch_size", None)
  return {**state, "version": _STATE_VERSION, "config": config}


def make_loader(
  source,
  *,
  batch_size: int,
  seed: int,
  num_epochs: int | None = None,
  pad_to: int | None = None,
  shard_index: int = 0,
  shard_count: int = 1,
  worker_count: int = 0,
  read_threads: int = 0,
) -> Loader:
  """Shuffled batches of a random-access source, seeded, sharded per process and resumable.

  Incomplete batches are dropped; batches may span an epoch boundary. For example::

    it = make_loader(load_source("mnist"), batch_size=64, seed=0, pad_to=32)
    batch = next(it)            # batch["image"]: float32 (64, 32, 32, 1) in [-1, 1]
    state = it.get_state()      # JSON; it.set_state(state) resumes exactly

  Args:
    source: a random-access source of dicts with a uint8 ``'image'`` ``(h, w, c)`` or ``(h, w)``,
      such as :func:`jaxgan.data.load_source` returns; anything with ``len`` and ``[]`` works,
      and a ``get_batch(indices)`` method is used when present.
    batch_size: examples per batch *on this process* (the per-host batch); the global batch
      has ``batch_size * shard_count``.
    seed: shuffling seed, a non-negative int. Epoch e is permuted by
      ``np.random.default_rng(SeedSequence([seed, e]))``, so every epoch is reshuffled
      deterministically (pin NumPy to resume across upgrades: its permutation algorithm is not
      guaranteed stable across major versions).
    num_epochs: passes over this process's shard; None repeats forever.
    pad_to: pad images centrally to ``pad_to x pad_to`` with -1 (e.g. 32 for MNIST's 28).
    shard_index: this process's block of each global batch (its devices' rows of the mesh).
    shard_count: the number of blocks, ``jax.process_count()`` in multi-host training. The
      processes read disjoint blocks of one global stream, so the global batches are the same
      for any ``shard_count`` (one seed everywhere keeps the run reproducible from one number).
    worker_count: grain worker processes (``mp_prefetch``); 0 reads in this process.
    read_threads: grain prefetch threads in this process; 0 reads on demand.

  Returns:
    A :class:`Loader` of ``{'image': float32 (batch_size, h', w', c) in [-1, 1], 'label': int32
    (batch_size,), 'index': int32 (batch_size,)}`` (``h', w'`` after padding; ``image`` is
    ``x / 127.5 - 1`` of the uint8 pixels; ``label`` and ``index``, the position in the original
    release, when the source has them).

  Raises:
    ValueError: a negative seed, a non-positive batch size or epoch count, a shard index outside
      ``[0, shard_count)``, a source smaller than a global batch, or ``pad_to`` smaller than
      the images.
  """
  import grain  # pylint: disable=g-import-not-at-top

  if int(seed) < 0:
    raise ValueError(f"seed must be non-negative, got {seed}.")
  if batch_size <= 0:
    raise ValueError(f"batch_size must be positive, got {batch_size}.")
  if not 0 <= shard_index < shard_count:
    raise ValueError(f"Need 0 <= shard_index < shard_count, got {shard_index}, {shard_count}.")
  if num_epochs is not None and num_epochs <= 0:
    raise ValueError(f"num_epochs must be positive or None, got {num_epochs}.")
  n = len(source)
  global_batch_size = batch_size * shard_count
  if n < global_batch_size:
    raise ValueError(f"A source of {n} examples cannot fill a batch of {global_batch_size}.")
  shape = np.asarray(source[0]["image"]).shape
  read = BatchReader(
    source,
    batch_size=batch_size,
    seed=int(seed),
    shard_index=shard_index,
    shard_count=shard_count,
    num_examples=n,
    pad=centred_padding(shape, pad_to),
  )
  num_batches = None if num_epochs is None else (n * num_epochs) // global_batch_size
  stop = sys.maxsize if num_batches is None else num_batches
  read_options = grain.ReadOptions(
    num_threads=read_threads, prefetch_buffer_size=max(read_threads * 2, 1)
  )
  if worker_count > 0:
    from absl import flags  # pylint: disable=g-import-not-at-top

    if not flags.FLAGS.is_parsed():
      # grain's worker processes read absl flags; outside absl.app.run (notebooks, pytest)
      # nothing has parsed them, so accept the defaults.
      flags.FLAGS.mark_as_parsed()

  def build(start: int):
    # Batch k depends only on (seed, k), so a position is resumed by starting the range there.
    ds = grain.MapDataset.range(start, max(start, stop)).map(read).to_iter_dataset(read_options)
    if worker_count > 0:
      ds = ds.mp_prefetch(grain.MultiprocessingOptions(num_workers=worker_count))
    return iter(ds)

  config = {
    "source_len": n,
    "image_shape": list(shape),
    "global_batch_size": global_batch_size,
    "seed": int(seed),
    "num_epochs": num_epochs,
    "pad_to": pad_to,
  }
  identity = getattr(source, "identity", None)
  if identity is not None:  # a folder's manifest digest: a run resumed on changed data is refused
    config["source_identity"] = identity
  return Loader(build, config, num_batches)
