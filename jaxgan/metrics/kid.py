"""Kernel Inception Distance (Binkowski et al. 2018): unbiased MMD^2, cubic polynomial kernel."""

from __future__ import annotations

import numpy as np


def polynomial_kernel(x, y) -> np.ndarray:
  """k(x, y) = (x.y / d + 1)^3, returned in float64 (the Gram matrix is formed in float32)."""
  d = x.shape[1]
  g = np.asarray(x, np.float32) @ np.asarray(y, np.float32).T
  return (g.astype(np.float64) / d + 1.0) ** 3


def mmd2_unbiased(x, y) -> float:
  """Unbiased MMD^2 estimate between two equal- or unequal-size sets with the cubic kernel."""
  m, n = len(x), len(y)
  kxx, kyy, kxy = polynomial_kernel(x, x), polynomial_kernel(y, y), polynomial_kernel(x, y)
  return float((kxx.sum() - np.trace(kxx)) / (m * (m - 1))
               + (kyy.sum() - np.trace(kyy)) / (n * (n - 1))
               - 2.0 * kxy.mean())


def subset_indices(n1: int, n2: int, num_subsets: int, subset_size: int, seed: int):
  """The (idx1, idx2) pairs KID draws: without replacement within a subset, fresh per subset."""
  rng = np.random.default_rng(seed)
  for _ in range(num_subsets):
    yield rng.choice(n1, subset_size, replace=False), rng.choice(n2, subset_size, replace=False)


def kernel_inception_distance(feats1, feats2, *, num_subsets: int = 100, subset_size: int = 1000,
                              seed: int = 0) -> tuple[float, float]:
  """KID: mean and std over `num_subsets` random subsets of the unbiased MMD^2.

  The protocol of Binkowski et al. and torch-fidelity/clean-fid: each subset draws
  `subset_size` vectors without replacement from each set (`subset_size` is capped at the
  smaller set's size), kernel k(x, y) = (x.y/d + 1)^3. Unbiased, so it can be slightly
  negative for identical distributions. Commonly reported x1e3.
  """
  f1, f2 = np.asarray(feats1, np.float32), np.asarray(feats2, np.float32)
  if f1.ndim != 2 or f2.ndim != 2 or f1.shape[1] != f2.shape[1]:
    raise ValueError(f"features must be (n, d) with the same d; got {f1.shape}, {f2.shape}")
  size = min(subset_size, len(f1), len(f2))
  if size < 2:
    raise ValueError("KID needs at least 2 vectors per set")
  values = [mmd2_unbiased(f1[i], f2[j])
            for i, j in subset_indices(len(f1), len(f2), num_subsets, size, seed)]
  return float(np.mean(values)), float(np.std(values))
