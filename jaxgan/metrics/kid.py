"""Kernel Inception Distance (Binkowski et al. 2018): unbiased MMD^2, cubic polynomial kernel.

Unlike the Frechet distance, KID has an unbiased estimator, so values from few samples are not
pushed upwards; it is averaged over random subsets, whose spread is reported beside it. The
`Evaluator`'s metric `kid` is registered at the end.
"""

from __future__ import annotations

import numpy as np

from jaxgan.metrics.registry import register


def polynomial_kernel(x, y) -> np.ndarray:
  """The kernel matrix k(x, y) = (x.y / d + 1)^3.

  Args:
    x: `(m, d)` feature vectors.
    y: `(n, d)` feature vectors.

  Returns:
    float64 `(m, n)`. The Gram matrix is formed in float32 (the cost), the cube in float64.

  >>> polynomial_kernel(np.ones((1, 2)), np.ones((3, 2))).tolist()
  [[8.0, 8.0, 8.0]]
  """
  d = x.shape[1]
  g = np.asarray(x, np.float32) @ np.asarray(y, np.float32).T
  return (g.astype(np.float64) / d + 1.0) ** 3


def mmd2_unbiased(x, y) -> float:
  """The unbiased estimate of MMD^2 between two sets under the cubic kernel.

  Args:
    x: `(m, d)` feature vectors, m >= 2.
    y: `(n, d)` feature vectors, n >= 2; m and n may differ.

  Returns:
    MMD^2 in squared kernel units; may be slightly negative for equal distributions.
  """
  m, n = len(x), len(y)
  kxx, kyy, kxy = polynomial_kernel(x, x), polynomial_kernel(y, y), polynomial_kernel(x, y)
  return float(
    (kxx.sum() - np.trace(kxx)) / (m * (m - 1))
    + (kyy.sum() - np.trace(kyy)) / (n * (n - 1))
    - 2.0 * kxy.mean()
  )


def subset_indices(n1: int, n2: int, num_subsets: int, subset_size: int, seed: int):
  """The index pairs KID draws: without replacement within a subset, fresh for each subset.

  Args:
    n1: size of the first set.
    n2: size of the second set.
    num_subsets: how many pairs to draw.
    subset_size: indices per subset, at most `min(n1, n2)`.
    seed: seed of the NumPy generator.

  Yields:
    `(idx1, idx2)`, int64 arrays of shape `(subset_size,)`.
  """
  rng = np.random.default_rng(seed)
  for _ in range(num_subsets):
    yield rng.choice(n1, subset_size, replace=False), rng.choice(n2, subset_size, replace=False)


def kernel_inception_distance(
  feats1, feats2, *, num_subsets: int = 100, subset_size: int = 1000, seed: int = 0
) -> tuple[float, float]:
  """KID: mean and std of the unbiased MMD^2 over random subsets.

  The protocol of Binkowski et al. 2018 and torch-fidelity/clean-fid: each subset draws
  `subset_size` vectors without replacement from each set, kernel k(x, y) = (x.y/d + 1)^3.
  Often reported multiplied by 1e3; this function does not scale.

  Args:
    feats1: float32 `(n1, d)` feature vectors, e.g. of generated images.
    feats2: float32 `(n2, d)` feature vectors, e.g. of real images.
    num_subsets: the number of subsets averaged.
    subset_size: vectors per subset and set, capped at `min(n1, n2)`.
    seed: seed of the subset draws.

  Returns:
    `(mean, std)` over subsets, Python floats.

  Raises:
    ValueError: when the features are not `(n, d)` with one d, or a set has fewer than 2.

  >>> x = np.random.default_rng(0).normal(size=(200, 8))
  >>> same, _ = kernel_inception_distance(x[:100], x[100:], num_subsets=5, subset_size=50)
  >>> far, _ = kernel_inception_distance(x[:100], x[100:] + 1, num_subsets=5, subset_size=50)
  >>> bool(abs(same) < 0.1 < far)
  True
  """
  f1, f2 = np.asarray(feats1, np.float32), np.asarray(feats2, np.float32)
  if f1.ndim != 2 or f2.ndim != 2 or f1.shape[1] != f2.shape[1]:
    raise ValueError(f"features must be (n, d) with the same d; got {f1.shape}, {f2.shape}")
  size = min(subset_size, len(f1), len(f2))
  if size < 2:
    raise ValueError("KID needs at least 2 vectors per set")
  values = [
    mmd2_unbiased(f1[i], f2[j])
    for i, j in subset_indices(len(f1), len(f2), num_subsets, size, seed)
  ]
  return float(np.mean(values)), float(np.std(values))


@register(
  "kid",
  settings={"kid_subsets": 100, "kid_subset_size": 1000},
  describe=lambda s: f"KID: {s['kid_subsets']} subsets of {s['kid_subset_size']}",
  primary="kid",
  rank=1,
)
def _kid(ev, samples) -> dict[str, float]:
  """KID of the samples' features against the reference's kept vectors, and its std."""
  mean, std = kernel_inception_distance(
    samples.feats,
    ev.reference.feats,
    num_subsets=ev.settings["kid_subsets"],
    subset_size=ev.settings["kid_subset_size"],
  )
  return {"kid": mean, "kid_std": std}
