"""Improved precision and recall (Kynkaanniemi et al. 2019) from k-NN radii in feature space.

The support of each set is estimated as the union of balls around its vectors, each of radius
the distance to its k-th nearest neighbour in the same set (k=3 in the paper). Precision: the
fraction of fake vectors inside the real support; recall: the fraction of real vectors inside
the fake support. The paper uses 50k samples per set and VGG-16 fc2 features; here any
extractor's features, so numbers are comparable only within one protocol. The `Evaluator`'s
metric `precision_recall` is registered at the end.
"""

from __future__ import annotations

import numpy as np

from jaxgan.metrics.registry import register


def _sq_dists(a: np.ndarray, b: np.ndarray) -> np.ndarray:
  """Squared Euclidean distances, float64, clipped at 0 (float32 Gram, float64 assembly)."""
  g = (a @ b.T).astype(np.float64)
  na = (a.astype(np.float64) ** 2).sum(axis=1)
  nb = (b.astype(np.float64) ** 2).sum(axis=1)
  return np.clip(na[:, None] + nb[None, :] - 2.0 * g, 0.0, None)


def knn_radii(feats, k: int = 3, *, block: int = 2048) -> np.ndarray:
  """Distance from each vector to its k-th nearest neighbour in the same set (self excluded).

  Args:
    feats: `(n, d)` feature vectors, n > k.
    k: which neighbour.
    block: rows per distance block, bounding memory at `block * n` float64s.

  Returns:
    float64 `(n,)` radii, in feature units.

  Raises:
    ValueError: when n <= k.

  >>> knn_radii(np.array([[0.0], [1.0], [3.0]]), k=1).tolist()
  [1.0, 1.0, 2.0]
  """
  x = np.asarray(feats, np.float32)
  if len(x) <= k:
    raise ValueError(f"need more than k={k} vectors; got {len(x)}")
  out = np.empty(len(x), np.float64)
  for s in range(0, len(x), block):
    d = _sq_dists(x[s : s + block], x)
    # The k+1-th smallest includes the vector itself at distance 0.
    out[s : s + block] = np.sqrt(np.partition(d, k, axis=1)[:, k])
  return out


def _coverage(points: np.ndarray, centres: np.ndarray, radii: np.ndarray, block: int) -> float:
  inside = np.zeros(len(points), bool)
  r2 = radii**2
  for s in range(0, len(points), block):
    d = _sq_dists(points[s : s + block], centres)
    inside[s : s + block] = (d <= r2[None, :]).any(axis=1)
  return float(inside.mean())


def precision_recall(real_feats, fake_feats, *, k: int = 3, block: int = 2048) -> dict[str, float]:
  """Improved precision and recall of Kynkaanniemi et al. 2019.

  Args:
    real_feats: `(n_real, d)` feature vectors of real images, n_real > k.
    fake_feats: `(n_fake, d)` feature vectors of generated images, n_fake > k.
    k: the neighbour whose distance is each ball's radius (3 in the paper).
    block: rows per distance block, bounding memory.

  Returns:
    `{'precision': fraction of fake vectors in the real support, 'recall': fraction of real
    vectors in the fake support}`, Python floats in [0, 1].

  Raises:
    ValueError: when the features are not `(n, d)` with one d, or a set has k or fewer vectors.

  >>> real = np.array([[0.0], [1.0], [2.0], [3.0]])
  >>> precision_recall(real, np.array([[0.5], [1.5], [9.0], [10.0]]), k=1)
  {'precision': 0.5, 'recall': 0.75}
  """
  real = np.asarray(real_feats, np.float32)
  fake = np.asarray(fake_feats, np.float32)
  if real.ndim != 2 or fake.ndim != 2 or real.shape[1] != fake.shape[1]:
    raise ValueError(f"features must be (n, d) with the same d; got {real.shape}, {fake.shape}")
  real_r, fake_r = knn_radii(real, k, block=block), knn_radii(fake, k, block=block)
  return {
    "precision": _coverage(fake, real, real_r, block),
    "recall": _coverage(real, fake, fake_r, block),
  }


@register(
  "precision_recall",
  settings={"pr_k": 3, "pr_samples": 10_000},
  describe=lambda s: f"P&R: k={s['pr_k']}, <= {s['pr_samples']} per side",
)
def _precision_recall(ev, samples) -> dict[str, float]:
  """Precision and recall of at most `pr_samples` vectors per side (the cost is quadratic)."""
  m = ev.settings["pr_samples"]
  pr = precision_recall(ev.reference.feats[:m], samples.feats[:m], k=ev.settings["pr_k"])
  return {"precision": pr["precision"], "recall": pr["recall"]}
