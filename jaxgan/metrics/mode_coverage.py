"""Mode coverage of samples from a 2-D mixture, with the PacGAN/VEEGAN protocol.

A sample is high quality when it lies within `n_std` standard deviations (3 in the protocol) of
its nearest mode; a mode is captured when it is the nearest mode of at least one high-quality
sample. The protocol draws 2,500 samples (Lin et al. 2018, PacGAN; Srivastava et al. 2017,
VEEGAN). PacGAN's reverse KL (`kl_to_uniform`) compares the histogram of the high-quality
samples' nearest modes with the mixture's uniform weights: 0 for a generator that spreads its
good samples evenly over all K modes, log(K / j) for one that covers j modes evenly. Stacked
MNIST's metric (`jaxgan.metrics.stacked_mnist`) uses the same divergence over its 1000 modes.
"""

from __future__ import annotations

import numpy as np


def kl_to_uniform(counts) -> float:
  """`KL(p || uniform) = sum_k p_k log(K p_k)` for the histogram `p = counts / counts.sum()`.

  PacGAN's "reverse KL" (Lin et al. 2018): the generated mode distribution `p` comes first, so
  empty modes add 0 and a generator that covers j of K modes evenly scores `log(K / j)`.

  Args:
    counts: int or float `(K,)` non-negative counts, not all 0.

  Returns:
    The divergence in nats, in `[0, log K]`.

  Raises:
    ValueError: `counts` is not one-dimensional, has a negative entry or sums to 0.

  >>> kl_to_uniform(np.array([5, 5, 5, 5]))
  0.0
  >>> round(kl_to_uniform(np.array([1, 0, 0, 0])), 6) == round(float(np.log(4)), 6)
  True
  """
  counts = np.asarray(counts, np.float64)
  if counts.ndim != 1 or (counts < 0).any() or not counts.sum() > 0:
    raise ValueError(f"counts must be a (K,) histogram, non-negative, not all 0; got {counts}.")
  p = counts[counts > 0] / counts.sum()
  # Clipped at 0: rounding can leave a uniform histogram a hair below it.
  return max(float(np.sum(p * np.log(p * len(counts)))), 0.0)


def mode_coverage(samples, modes, std: float, *, n_std: float = 3.0) -> dict[str, float]:
  """Modes captured, the high-quality fraction, the reverse KL and the mean distance to a mode.

  Args:
    samples: `(n, 2)` generated points (any float dtype; computed in float64).
    modes: `(k, 2)` the mixture's centres.
    std: the standard deviation of each mixture component, in the samples' units.
    n_std: the radius of "high quality", in standard deviations.

  Returns:
    `{'modes_captured': count (as a float), 'high_quality': fraction of samples in [0, 1],
    'reverse_kl': KL(p || uniform) in nats of the high-quality samples' mode histogram p (inf
    when no sample is high quality), 'mean_distance': mean Euclidean distance to the nearest
    mode}`. The last keeps improving while samples are still outside the `n_std` discs, where
    the counts do not move.

  Raises:
    ValueError: when `samples` is not `(n, d)` with the modes' d.

  >>> modes = np.array([[0.0, 0.0], [10.0, 0.0]])
  >>> out = mode_coverage(np.array([[0.1, 0.0], [0.0, 0.2], [9.0, 0.0]]), modes, std=0.1)
  >>> {k: round(v, 3) for k, v in out.items()}
  {'modes_captured': 1.0, 'high_quality': 0.667, 'reverse_kl': 0.693, 'mean_distance': 0.433}
  """
  samples = np.asarray(samples, np.float64)
  modes = np.asarray(modes, np.float64)
  if samples.ndim != 2 or samples.shape[1] != modes.shape[1]:
    raise ValueError(f"samples must have shape (n, {modes.shape[1]}); got {samples.shape}.")
  dist = np.linalg.norm(samples[:, None, :] - modes[None, :, :], axis=-1)
  nearest = dist.argmin(axis=1)
  nearest_dist = dist[np.arange(len(samples)), nearest]
  good = nearest_dist <= n_std * std
  counts = np.bincount(nearest[good], minlength=len(modes))
  return {
    "modes_captured": float(len(np.unique(nearest[good]))),
    "high_quality": float(good.mean()),
    "reverse_kl": kl_to_uniform(counts) if good.any() else float("inf"),
    "mean_distance": float(nearest_dist.mean()),
  }
