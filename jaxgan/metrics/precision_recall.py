"""Improved precision and recall (Kynkaanniemi et al. 2019) from k-NN radii in feature space.

The support of each set is estimated as the union of balls around its vectors, each of radius
the distance to its k-th nearest neighbour in the same set (k=3 in the paper). Precision: the
fraction of fake vectors inside the real support; recall: the fraction of real vectors inside
the fake support. The paper uses 50k samples per set and VGG-16 fc2 features; here any
extractor's features, so numbers are comparable only within one protocol.
"""

from __future__ import annotations

import numpy as np


def _sq_dists(a: np.ndarray, b: np.ndarray) -> np.ndarray:
  """Squared Euclidean distances, float64, clipped at 0 (float32 Gram, float64 assembly)."""
  g = (a @ b.T).astype(np.float64)
  na = (a.astype(np.float64) ** 2).sum(axis=1)
  nb = (b.astype(np.float64) ** 2).sum(axis=1)
  return np.clip(na[:, None] + nb[None, :] - 2.0 * g, 0.0, None)


def knn_radii(feats, k: int = 3, *, block: int = 2048) -> np.ndarray:
  """Distance from each vector to its k-th nearest neighbour in the same set (self excluded)."""
  x = np.asarray(feats, np.float32)
  if len(x) <= k:
    raise ValueError(f"need more than k={k} vectors; got {len(x)}")
  out = np.empty(len(x), np.float64)
  for s in range(0, len(x), block):
    d = _sq_dists(x[s:s + block], x)
    # The k+1-th smallest includes the vector itself at distance 0.
    out[s:s + block] = np.sqrt(np.partition(d, k, axis=1)[:, k])
  return out


def _coverage(points: np.ndarray, centres: np.ndarray, radii: np.ndarray, block: int) -> float:
  inside = np.zeros(len(points), bool)
  r2 = radii ** 2
  for s in range(0, len(points), block):
    d = _sq_dists(points[s:s + block], centres)
    inside[s:s + block] = (d <= r2[None, :]).any(axis=1)
  return float(inside.mean())


def precision_recall(real_feats, fake_feats, *, k: int = 3, block: int = 2048) -> dict[str, float]:
  """Returns `{'precision': ..., 'recall': ...}` in [0, 1]."""
  real = np.asarray(real_feats, np.float32)
  fake = np.asarray(fake_feats, np.float32)
  if real.ndim != 2 or fake.ndim != 2 or real.shape[1] != fake.shape[1]:
    raise ValueError(f"features must be (n, d) with the same d; got {real.shape}, {fake.shape}")
  real_r, fake_r = knn_radii(real, k, block=block), knn_radii(fake, k, block=block)
  return {"precision": _coverage(fake, real, real_r, block),
          "recall": _coverage(real, fake, fake_r, block)}
