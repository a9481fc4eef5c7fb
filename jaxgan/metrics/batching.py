"""Feeding images to a feature network: fixed-size batches, the extractor protocol's calls, and
the split of an evaluation's batches over the processes of a multi-host run."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import numpy as np


class ImageRangeWarning(UserWarning):
  """Images outside [-1, 1], or that look like [0, 1] images."""


def check_range(images) -> None:
  """Checks that images are float in [-1, 1], the range every extractor expects.

  Args:
    images: `(n, h, w, c)`.

  Raises:
    ValueError: non-negative values above 3: uint8-range images (the message gives the mapping).

  Warns:
    ImageRangeWarning: values outside [-1.05, 1.05] (a linear-output generator can overshoot a
      little; the extractors' quantisation clips them), or all values in [0, 1] over a batch of
      more than 1,000 pixels (images scaled to [0, 1] instead of [-1, 1]).
  """
  x = np.asarray(images)
  if not x.size:
    return
  lo, hi = float(x.min()), float(x.max())
  if lo >= 0 and hi > 3:
    raise ValueError(
      f"images span [{lo:.4g}, {hi:.4g}]: that is uint8's range; the metrics take float images "
      "in [-1, 1]. Map them with x / 127.5 - 1."
    )
  if lo < -1.05 or hi > 1.05:
    msg = f"images span [{lo:.4g}, {hi:.4g}], outside [-1, 1]: the extractor clips them"
  elif lo >= 0 and x.size > 1000:
    msg = f"images span [{lo:.4g}, {hi:.4g}]: [0, 1] images? The metrics take [-1, 1]: 2 * x - 1"
  else:
    return
  warnings.warn(msg, ImageRangeWarning, stacklevel=3)


def apply_in_batches(
  apply: Callable, variables, x: np.ndarray, batch_size: int
) -> tuple[np.ndarray, np.ndarray]:
  """Runs `apply(variables, batch) -> (features, logits)` over `x` in batches.

  When `x` spans several batches, a short last batch is zero-padded to `batch_size` (and the
  padding dropped from the outputs), so a jitted `apply` compiles for one shape only; an `x`
  smaller than one batch runs at its own size rather than paying for a full padded batch.

  Args:
    apply: `apply(variables, batch)` returning `(features (b, d), logits (b, classes))`.
    variables: passed through to `apply` unchanged.
    x: inputs, shape `(n, ...)`.
    batch_size: rows per call of `apply`.

  Returns:
    `(features (n, d), logits (n, classes))` as NumPy arrays, in the dtypes `apply` returns.

  >>> x = np.arange(10.0).reshape(5, 2)
  >>> f, l = apply_in_batches(lambda w, b: (b * w, b.sum(1, keepdims=True)), 2.0, x, 2)
  >>> f.shape, l[:, 0].tolist()
  ((5, 2), [1.0, 5.0, 9.0, 13.0, 17.0])
  """
  feats, logits = [], []
  for s in range(0, len(x), batch_size):
    chunk = x[s : s + batch_size]
    n = len(chunk)
    if n < batch_size and len(x) > batch_size:
      chunk = np.concatenate([chunk, np.zeros((batch_size - n, *chunk.shape[1:]), chunk.dtype)])
    f, lg = apply(variables, chunk)
    feats.append(np.asarray(f)[:n])
    logits.append(np.asarray(lg)[:n])
  return np.concatenate(feats), np.concatenate(logits)


def extract(
  extractor: Any, images, *, logits: bool = False
) -> tuple[np.ndarray, np.ndarray | None]:
  """Features (and optionally logits) of `images` from any `FeatureExtractor`.

  Uses `features_and_logits` when the extractor has it, so a network that computes both in one
  pass is run once.

  Args:
    extractor: an object with `features(images)`; with `logits=True` also `logits(images)` or
      `features_and_logits(images)`.
    images: float32 `(n, h, w, c)` in [-1, 1] (`check_range` refuses uint8's range and warns
      about others).
    logits: whether to return the classification logits too.

  Returns:
    `(features float32 (n, d), logits float32 (n, classes) or None)`.

  >>> class Flat:
  ...   name = "flat"
  ...   def features(self, images):
  ...     return images.reshape(len(images), -1)
  >>> f, l = extract(Flat(), np.zeros((3, 2, 2, 1)))
  >>> f.shape, f.dtype, l
  ((3, 4), dtype('float32'), None)
  """
  check_range(images)
  if logits and hasattr(extractor, "features_and_logits"):
    f, lg = extractor.features_and_logits(images)
  else:
    f = extractor.features(images)
    lg = extractor.logits(images) if logits else None
  return np.asarray(f, np.float32), (None if lg is None else np.asarray(lg, np.float32))


def draw(
  sample_fn: Callable, key, n: int, batch_size: int, *, labels: np.ndarray | None = None
) -> Iterator[tuple[np.ndarray, np.ndarray | None]]:
  """Calls a sampler batch by batch until it has given `n` images.

  Args:
    sample_fn: `sample_fn(key, batch) -> images`, or with `labels`
      `sample_fn(key, batch, labels_of_the_batch)`; images float32 `(batch, h, w, c)` (JAX or
      NumPy), extra rows dropped.
    key: a JAX PRNG key; batch i is drawn with `jax.random.fold_in(key, i)`.
    n: the number of images.
    batch_size: at most this many images per call.
    labels: None, or int32 `(n,)`, the class of each image, passed on in slices.

  Yields:
    `(images float32 (b, h, w, c), labels int32 (b,) or None)`, b <= `batch_size`; a call that
    returns fewer images than asked for is followed by another.

  Raises:
    ValueError: `sample_fn` returned no images (it would never finish).
  """
  import jax  # pylint: disable=g-import-not-at-top  (the rest of this module needs no JAX)

  done, i = 0, 0
  while done < n:
    b = min(batch_size, n - done)
    k = jax.random.fold_in(key, i)
    lab = None if labels is None else labels[done : done + b]
    out = sample_fn(k, b) if labels is None else sample_fn(k, b, lab)
    images = np.asarray(jax.device_get(out), np.float32)[:b]
    if not len(images):
      raise ValueError(f"sample_fn(key, {b}, ...) returned no images; it must return {b}.")
    yield images, None if lab is None else lab[: len(images)]
    done, i = done + len(images), i + 1


def spread(batches: Iterable[tuple], fn: Callable[..., Any]) -> list[Any]:
  """`fn(*batch)` for every batch, each process computing its share; every result, everywhere.

  On several processes batch i is computed by process `i % jax.process_count()`, and the results
  are gathered (`multihost_utils.process_allgather`) into batch order on every process, so a
  metric computed from them equals the one-process value while each host runs the feature
  network on only its share. Every process must iterate the same batches: drawing them calls the
  sampler, one program over every device.

  Args:
    batches: tuples of arrays, e.g. `draw`'s `(images, labels)`.
    fn: `fn(*batch)` -> a pytree of NumPy arrays (None leaves allowed) whose leading axis is
      the batch's rows, of the same structure and dtypes for every batch.

  Returns:
    `[fn(*batch) for batch in batches]`, in order (computed locally on a single process).

  >>> spread([(np.ones(2),), (np.zeros(3),)], lambda x: (x * 2, None))
  [(array([2., 2.]), None), (array([0., 0., 0.]), None)]
  """
  import jax  # pylint: disable=g-import-not-at-top  (the rest of this module needs no JAX)

  count, index = jax.process_count(), jax.process_index()
  if count == 1:
    return [fn(*batch) for batch in batches]
  mine, rows, first = [], [], None
  for i, batch in enumerate(batches):
    rows.append(len(batch[0]))
    first = batch if first is None else first
    if i % count == index:
      mine.append(fn(*batch))
  if not rows:
    return []
  slots, most = -(-len(rows) // count), max(rows)
  template = mine[0] if mine else fn(*first)  # a process with no batch still sends a slot

  def pad(tree):
    return jax.tree.map(lambda a: np.pad(a, [(0, most - len(a))] + [(0, 0)] * (a.ndim - 1)), tree)

  filled = [pad(t) for t in mine] + [pad(template)] * (slots - len(mine))
  stacked = jax.tree.map(lambda *a: np.stack(a), *filled)
  from jax.experimental import multihost_utils  # pylint: disable=g-import-not-at-top

  gathered = multihost_utils.process_allgather(stacked)  # (count, slots, most, ...) per leaf
  return [
    jax.tree.map(lambda a, i=i, n=n: np.asarray(a[i % count, i // count, :n]), gathered)
    for i, n in enumerate(rows)
  ]
