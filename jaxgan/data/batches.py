"""Batch k of a loader: which examples it holds, reading them, and scaling them to [-1, 1].

The indices of batch k depend only on the seed and k, which is what makes the loader's position a
single integer (:mod:`jaxgan.data.loader`).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

import numpy as np

# Permutations kept per reader: prefetch threads may straddle an epoch boundary.
_CACHED_EPOCHS = 4


def centred_padding(shape: Sequence[int], pad_to: int | None):
  """The padding that centres an image in a ``pad_to x pad_to`` square.

  Args:
    shape: the image's shape, ``(h, w)`` or ``(h, w, c)``.
    pad_to: the side of the square, or None for no padding.

  Returns:
    ``((top, bottom), (left, right))`` for :func:`numpy.pad`, or None when ``pad_to`` is None.

  Raises:
    ValueError: ``pad_to`` is smaller than the image.

  >>> centred_padding((28, 28, 1), 32)
  ((2, 2), (2, 2))
  >>> centred_padding((5, 6), 8)
  ((1, 2), (1, 1))
  """
  if pad_to is None:
    return None
  h, w = shape[0], shape[1]
  if pad_to < h or pad_to < w:
    raise ValueError(f"pad_to={pad_to} is smaller than the images ({h}x{w}).")
  ph, pw = pad_to - h, pad_to - w
  return ((ph // 2, ph - ph // 2), (pw // 2, pw - pw // 2))


class BatchReader:
  """Batch number k -> ``{'image': float32 (B, h', w', c) in [-1, 1], 'label', 'index': int32 (B,)}``.

  Global batch k holds positions ``k*G .. k*G+G-1`` of the endless stream ``epoch 0, epoch 1, ...``
  of the whole source, ``G = batch_size * shard_count``, each epoch a permutation drawn from
  ``(seed, epoch)`` only, so any batch can be rebuilt without history. Shard s reads the s-th
  block of ``batch_size`` positions of every global batch: the global batches do not depend on
  how many processes read them, so a run gives the same batches on one host or several, and can
  resume on another number of hosts. A top-level class (not a closure) so that grain can pickle
  it into worker processes.

  Args:
    source: a random-access source with a uint8 ``'image'`` ``(h, w, c)`` or ``(h, w)``; its
      ``get_batch(indices)`` is used when present, else ``__getitems__`` or ``[]``.
    batch_size: examples per batch, B.
    seed: the shuffling seed.
    shard_index: this process's block of each global batch.
    shard_count: the number of blocks (processes) in a global batch.
    num_examples: examples in an epoch, ``len(source)``.
    pad: ``((top, bottom), (left, right))`` padding (see :func:`centred_padding`), or None.

  >>> from jaxgan.data.sources import ArraySource
  >>> src = ArraySource({"image": np.full((6, 2, 2), 255, np.uint8), "index": np.arange(6)})
  >>> read = BatchReader(src, batch_size=4, seed=0, shard_index=0, shard_count=1, num_examples=6,
  ...                    pad=None)
  >>> batch = read(1)  # stream positions 4..7: the end of epoch 0, the start of epoch 1
  >>> batch["image"].shape, batch["image"].dtype, float(batch["image"].max())
  ((4, 2, 2, 1), dtype('float32'), 1.0)
  >>> sorted(np.concatenate([read(0)["index"], batch["index"][:2]]).tolist())
  [0, 1, 2, 3, 4, 5]
  """

  def __init__(
    self,
    source,
    *,
    batch_size: int,
    seed: int,
    shard_index: int,
    shard_count: int,
    num_examples: int,
    pad,
  ):
    self.source = source
    self.batch_size = batch_size
    self.seed = seed
    self.shard_index = shard_index
    self.shard_count = shard_count
    self.num_examples = num_examples
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
        perm = rng.permutation(self.num_examples)
        if len(self._perms) >= _CACHED_EPOCHS:
          self._perms.pop(min(self._perms))
        self._perms[epoch] = perm
      return perm

  def indices(self, k: int) -> np.ndarray:
    """The source indices of this process's block of global batch ``k``, int64 ``(batch_size,)``."""
    start = (k * self.shard_count + self.shard_index) * self.batch_size
    pos = np.arange(start, start + self.batch_size, dtype=np.int64)
    epochs, within = np.divmod(pos, self.num_examples)
    out = np.empty_like(pos)
    for e in np.unique(epochs):
      sel = epochs == e
      out[sel] = self._permutation(int(e))[within[sel]]
    return out

  def __call__(self, k) -> dict[str, np.ndarray]:
    """Reads batch ``k``.

    Args:
      k: the batch number (a non-negative int).

    Returns:
      ``{'image': float32 (B, h', w', c) in [-1, 1]}`` (``x / 127.5 - 1`` of the uint8 pixels,
      padded with -1), plus ``'label'`` and ``'index'`` int32 ``(B,)`` when the source has them.

    Raises:
      TypeError: the source's images are not uint8.
    """
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
