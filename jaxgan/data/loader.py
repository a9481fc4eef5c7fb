"""A seeded, resumable, per-process-sharded batch loader over a random-access source (grain).

The grain pipeline runs over *batch numbers*::

    MapDataset.range(num_batches)        # batch k of this process
      .map(_ReadBatch)                   # k -> example indices -> one batched read -> floats
      .to_iter_dataset(read_options)     # grain's checkpointable iterator (+ optional threads,
      [.mp_prefetch(workers)]            #   worker processes)

Batch k holds positions ``k*B .. k*B+B-1`` of the endless stream ``epoch 0, epoch 1, ...`` of
this process's shard, each epoch a fresh permutation drawn from ``(seed, epoch)``. So batch k
depends only on (seed, k): the iterator position is one integer (grain's ``{'next_index': k}``)
and resuming is O(1).

Why not ``MapDataset.source(src).shuffle(seed).batch(B)``: grain then shuffles and reads one
element at a time through several Python layers (~50 us per example here, index_shuffle alone
~11 us), which capped MNIST at ~340 batches/s even from memory; permuting a whole epoch with
NumPy and reading a batch at a time is several times faster (benchmarks/loader_throughput.py).
"""

from __future__ import annotations

import json
import sys
import threading
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np

_STATE_VERSION = 1


class _ReadBatch:
    """Batch number -> {'image': float32 [B, H', W', C] in [-1, 1], 'label': int32, 'index': int32}.

    A top-level class (not a closure) so the pipeline pickles for ``worker_count > 0``.
    """

    def __init__(self, source, *, batch_size: int, seed: int, shard_index: int, shard_count: int,
                 per_shard: int, pad):
        self.source = source
        self.batch_size = batch_size
        self.seed = seed
        self.shard_index = shard_index
        self.shard_count = shard_count
        self.per_shard = per_shard
        self.pad = pad
        self._perms: dict[int, np.ndarray] = {}
        self._lock = threading.Lock()

    def __getstate__(self):
        state = dict(self.__dict__)
        del state["_lock"]
        state["_perms"] = {}
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._lock = threading.Lock()

    def _permutation(self, epoch: int) -> np.ndarray:
        with self._lock:
            perm = self._perms.get(epoch)
            if perm is None:
                # Depends on (seed, epoch) only: any batch can be rebuilt without history.
                rng = np.random.default_rng(np.random.SeedSequence([self.seed, epoch]))
                perm = rng.permutation(self.per_shard)
                if len(self._perms) >= 4:  # threads may straddle an epoch boundary
                    self._perms.pop(min(self._perms))
                self._perms[epoch] = perm
            return perm

    def indices(self, k: int) -> np.ndarray:
        """The source indices of batch ``k`` on this process."""
        pos = np.arange(k * self.batch_size, (k + 1) * self.batch_size, dtype=np.int64)
        epochs, within = np.divmod(pos, self.per_shard)
        local = np.empty_like(pos)
        for e in np.unique(epochs):
            sel = epochs == e
            local[sel] = self._permutation(int(e))[within[sel]]
        return local * self.shard_count + self.shard_index

    def __call__(self, k) -> dict[str, np.ndarray]:
        keys = self.indices(int(k))
        get_batch = getattr(self.source, "get_batch", None)
        if get_batch is not None:
            batch = get_batch(keys)
        else:
            getitems = getattr(self.source, "__getitems__", None)
            keys = [int(i) for i in keys]
            records = getitems(keys) if getitems is not None else [self.source[i] for i in keys]
            batch = {name: np.stack([np.asarray(r[name]) for r in records]) for name in records[0]}
        images = np.asarray(batch["image"])
        if images.dtype != np.uint8:
            raise TypeError(f"Source images must be uint8, got {images.dtype}.")
        if images.ndim == 3:  # HW sources: add the channel axis
            images = images[..., None]
        if self.pad is not None:
            # Pixel 0 maps to -1, so padding the uint8 image with 0 gives a -1 border.
            images = np.pad(images, ((0, 0), *self.pad, (0, 0)))
        out = {"image": images.astype(np.float32) * np.float32(2.0 / 255.0) - np.float32(1.0)}
        for name in ("label", "index"):
            if name in batch:
                out[name] = np.asarray(batch[name], dtype=np.int32)
        return out


class Loader(Iterator[dict[str, np.ndarray]]):
    """Iterator of batches with a JSON-serialisable position: ``get_state()`` / ``set_state()``.

    The state also records the pipeline's configuration (seed, batch size, shard, source length,
    padding) so that restoring a position into a differently configured loader fails loudly
    instead of silently yielding other batches.
    """

    def __init__(self, dataset, config: Mapping[str, Any], num_batches: int | None):
        self._dataset = dataset
        self._iter = iter(dataset)
        self._config = dict(config)
        self.num_batches = num_batches  # None when repeating forever

    @property
    def config(self) -> dict[str, Any]:
        return dict(self._config)

    def __iter__(self):
        return self

    def __next__(self) -> dict[str, np.ndarray]:
        return next(self._iter)

    def get_state(self) -> dict[str, Any]:
        """The position after the last returned batch; plain JSON types only."""
        state = {"version": _STATE_VERSION, "config": self.config, "iterator": self._iter.get_state()}
        return json.loads(json.dumps(state))  # a deep copy, and a check that it serialises

    def set_state(self, state: Mapping[str, Any]) -> None:
        """Moves to a position from :meth:`get_state` (of this or an identically built loader)."""
        if state.get("version") != _STATE_VERSION:
            raise ValueError(f"Unsupported loader state version {state.get('version')!r}.")
        if dict(state["config"]) != self._config:
            diff = {k: (state["config"].get(k), v) for k, v in self._config.items()
                    if state["config"].get(k) != v}
            raise ValueError(f"Loader state was saved with a different configuration (saved, now): {diff}.")
        self._iter.set_state(state["iterator"])

    def close(self) -> None:
        close = getattr(self._iter, "close", None)
        if close is not None:
            close()


def centred_padding(shape: Sequence[int], pad_to: int | None):
    """``((top, bottom), (left, right))`` that centres an HxW image in pad_to x pad_to, or None."""
    if pad_to is None:
        return None
    h, w = shape[0], shape[1]
    if pad_to < h or pad_to < w:
        raise ValueError(f"pad_to={pad_to} is smaller than the images ({h}x{w}).")
    ph, pw = pad_to - h, pad_to - w
    return ((ph // 2, ph - ph // 2), (pw // 2, pw - pw // 2))


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
    """Shuffled float32 batches ``{'image': [B, H, W, C] in [-1, 1], 'label': [B], 'index': [B]}``.

    ``image`` is NHWC float32 scaled as ``x / 127.5 - 1``; ``label`` and ``index`` (position in
    the original release) are int32 when the source has them. Incomplete batches are dropped
    (``drop_remainder=True``); batches may span an epoch boundary.

    Args:
      source: a random-access source of dicts with a uint8 ``'image'`` (HWC or HW), such as
        :func:`jaxgan.data.load_source` returns; anything with ``len`` and ``[]`` works.
      batch_size: examples per batch *on this process* (the per-host batch).
      seed: shuffling seed (a non-negative int); epoch e is permuted by
        ``np.random.default_rng(SeedSequence([seed, e]))``, so every epoch is reshuffled
        deterministically (pin NumPy to resume across upgrades: its permutation algorithm is
        not guaranteed stable across major versions).
      num_epochs: passes over this process's shard; ``None`` repeats forever.
      pad_to: pad images centrally to ``pad_to x pad_to`` with -1 (e.g. 32 for MNIST's 28).
      shard_index, shard_count: this process's slice for multi-host training
        (``jax.process_index()``, ``jax.process_count()``). Shards are disjoint and of equal
        size (the last ``len(source) % shard_count`` examples are left out), so every process
        yields the same number of batches. Disjointness holds whatever the seeds; using one
        seed everywhere keeps the run reproducible from a single number.
      worker_count: grain worker processes (``mp_prefetch``); 0 reads in this process.
      read_threads: grain prefetch threads in this process (0: read on demand).

    Returns:
      A :class:`Loader`: an iterator with ``get_state()``/``set_state(state)``.
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
    per_shard = n // shard_count
    if per_shard < batch_size:
        raise ValueError(f"A shard of {per_shard} examples cannot fill a batch of {batch_size}.")
    shape = np.asarray(source[0]["image"]).shape
    pad = centred_padding(shape, pad_to)

    read = _ReadBatch(source, batch_size=batch_size, seed=int(seed), shard_index=shard_index,
                      shard_count=shard_count, per_shard=per_shard, pad=pad)
    num_batches = None if num_epochs is None else (per_shard * num_epochs) // batch_size
    ds = grain.MapDataset.range(sys.maxsize if num_batches is None else num_batches).map(read)
    read_options = grain.ReadOptions(num_threads=read_threads, prefetch_buffer_size=max(read_threads * 2, 1))
    it_ds = ds.to_iter_dataset(read_options)
    if worker_count > 0:
        from absl import flags  # pylint: disable=g-import-not-at-top

        if not flags.FLAGS.is_parsed():
            # grain's worker processes read absl flags; outside absl.app.run (notebooks, pytest)
            # nothing has parsed them, so accept the defaults.
            flags.FLAGS.mark_as_parsed()
        it_ds = it_ds.mp_prefetch(grain.MultiprocessingOptions(num_workers=worker_count))
    config = {
        "source_len": n, "image_shape": list(shape), "batch_size": batch_size, "seed": int(seed),
        "num_epochs": num_epochs, "pad_to": pad_to, "shard_index": shard_index,
        "shard_count": shard_count, "worker_count": worker_count,
    }
    return Loader(it_ds, config, num_batches)
