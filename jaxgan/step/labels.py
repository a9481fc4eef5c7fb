"""Class labels of a conditional GAN: checking them, drawing them for fakes, laying out grids.

A class-conditional GAN (Mirza and Osindero 2014) gives G and D the label of each example, an
int32 `[n]` array in `[0, num_classes)`. Real examples carry the data set's labels; generated ones
carry labels drawn here, uniformly or with the data set's class frequencies.

  >>> import jax
  >>> sample_labels(jax.random.key(0), 6, 3).shape
  (6,)
  >>> grid_labels(10, rows=5).tolist()  # one row per class, evenly spaced over the classes
  [0, 2, 4, 6, 8]
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np


def check_labels(labels, num_classes: int, *, batch: int | None = None) -> None:
  """Checks labels for a model of `num_classes` classes, before they are traced.

  Shapes are checked always; values only when `labels` is concrete (a NumPy or committed JAX
  array, not a tracer inside `jax.jit`), so the check costs nothing in a compiled step.

  Args:
    labels: int `[n]`, or None.
    num_classes: the model's class count; 0 for an unconditional model.
    batch: the expected n, or None.

  Raises:
    ValueError: labels for an unconditional model, none for a conditional one, a shape other
      than `[batch]`, a non-integer dtype, or a value outside `[0, num_classes)`.
  """
  if num_classes == 0:
    if labels is not None:
      raise ValueError(
        "labels were given to an unconditional GAN (num_classes=0); drop them, or build a "
        "class-conditional model (config.model.num_classes)."
      )
    return
  if labels is None:
    raise ValueError(
      f"This GAN is class-conditional (num_classes={num_classes}): pass labels, int [n] in "
      f"[0, {num_classes})."
    )
  if not hasattr(labels, "dtype"):
    labels = np.asarray(labels)
  shape, dtype = tuple(labels.shape), labels.dtype
  if len(shape) != 1 or (batch is not None and shape[0] != batch):
    want = f"[{batch}]" if batch is not None else "[n]"
    raise ValueError(f"labels must have shape {want} (one class per example); got {shape}.")
  if not jnp.issubdtype(dtype, jnp.integer):
    raise ValueError(f"labels must be integers in [0, {num_classes}); got dtype {dtype}.")
  if isinstance(labels, jax.core.Tracer) or not shape[0]:
    return
  values = np.asarray(labels)
  low, high = int(values.min()), int(values.max())
  if low < 0 or high >= num_classes:
    raise ValueError(
      f"labels must lie in [0, {num_classes}) (num_classes={num_classes}); got values from "
      f"{low} to {high}. Check config.model.num_classes against the data set."
    )


def sample_labels(
  key: jax.Array, n: int, num_classes: int, probs: Sequence[float] | None = None
) -> jax.Array:
  """Draws `n` labels, uniformly or from class probabilities.

  Args:
    key: a PRNG key.
    n: the number of labels.
    num_classes: the class count, >= 1.
    probs: None for uniform, or float `[num_classes]` class probabilities (e.g. the data set's
      class frequencies), non-negative, summing to 1.

  Returns:
    int32 `[n]` in `[0, num_classes)`.

  Raises:
    ValueError: `num_classes` < 1, or (concrete) `probs` of another length, negative or not
      summing to 1.
  """
  if num_classes < 1:
    raise ValueError(f"sample_labels needs num_classes >= 1; got {num_classes}.")
  if probs is None:
    return jax.random.randint(key, (n,), 0, num_classes, jnp.int32)
  if not isinstance(probs, jax.core.Tracer):
    _check_probs(probs, num_classes)
  logits = jnp.log(jnp.asarray(probs, jnp.float32))
  return jax.random.categorical(key, logits, shape=(n,)).astype(jnp.int32)


def class_frequencies(labels: np.ndarray, num_classes: int) -> np.ndarray:
  """The data set's class frequencies, for drawing fake labels like the real ones.

  Args:
    labels: int `[n]`, the data set's labels.
    num_classes: the class count.

  Returns:
    float64 `[num_classes]`, summing to 1.

  Raises:
    ValueError: labels outside `[0, num_classes)`, or no labels.

  >>> class_frequencies(np.array([0, 0, 1, 2]), 3).tolist()
  [0.5, 0.25, 0.25]
  """
  labels = np.asarray(labels)
  if not labels.size:
    raise ValueError("class_frequencies needs at least one label.")
  check_labels(labels.astype(np.int64), num_classes)
  return np.bincount(labels, minlength=num_classes) / labels.size


def grid_labels(num_classes: int, rows: int) -> np.ndarray:
  """The class of each row of a sample grid: every class, or `rows` of them evenly spaced.

  Args:
    num_classes: the class count, >= 1.
    rows: the most rows the grid may have.

  Returns:
    int32 `[min(rows, num_classes)]`, increasing.
  """
  k = min(rows, num_classes)
  return (np.arange(k) * num_classes // k).astype(np.int32)


def split_batch(batch, num_classes: int):
  """A train batch's images and, for a class-conditional GAN, its checked labels.

  Args:
    batch: images `[n, ...]`, or `{'image': [n, ...], 'label': int [n]}`.
    num_classes: the GAN's class count; 0 for an unconditional GAN (labels are then ignored).

  Returns:
    `(images, labels)`, labels None for an unconditional GAN.

  Raises:
    ValueError: a conditional GAN given no labels, or labels that `check_labels` refuses.
  """
  if isinstance(batch, Mapping):
    images, labels = batch["image"], batch.get("label")
  else:
    images, labels = batch, None
  if not num_classes:
    return images, None
  if labels is None:
    raise ValueError(
      f"The GAN is class-conditional (num_classes={num_classes}): pass batches "
      "{'image': images, 'label': labels}."
    )
  check_labels(labels, num_classes, batch=images.shape[0])
  return images, labels


def check_conditioning(num_classes: int, pack: int, probs: Sequence[float] | None) -> None:
  """Checks a conditional train step's options: no packing, valid fake label probabilities.

  Args:
    num_classes: the GAN's class count (0: unconditional, nothing to check).
    pack: the GAN's PacGAN pack size.
    probs: None (uniform), or float `[num_classes]`, the fakes' class probabilities.

  Raises:
    ValueError: packs of a conditional GAN (a pack's examples have different labels), or
      probabilities of another length, negative, or not summing to 1.
  """
  if num_classes and pack > 1:
    raise ValueError(
      f"A class-conditional GAN cannot judge packs (pack={pack}): a pack's examples have "
      "different labels. Use pack=1."
    )
  if probs is not None:
    _check_probs(probs, num_classes)


def _check_probs(probs, num_classes: int) -> None:
  p = np.asarray(probs, np.float64)
  if p.shape != (num_classes,) or (p < 0).any() or abs(p.sum() - 1.0) > 1e-4:
    raise ValueError(
      f"Fake label probabilities must be {num_classes} numbers >= 0 summing to 1 (one per "
      f"class); got shape {p.shape}, sum {p.sum():.6g}."
    )
