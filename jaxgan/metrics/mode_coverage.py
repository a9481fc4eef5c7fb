"""Mode coverage of samples from a 2-D mixture, with the PacGAN/VEEGAN protocol.

A sample is high quality when it lies within `n_std` standard deviations (3 in the protocol) of
its nearest mode; a mode is captured when it is the nearest mode of at least one high-quality
sample. The protocol draws 2,500 samples (Lin et al. 2018; Srivastava et al. 2017).
"""

from __future__ import annotations

import numpy as np


def mode_coverage(samples, modes, std: float, *, n_std: float = 3.0) -> dict[str, float]:
  """Returns `modes_captured`, `high_quality` (fraction of samples) and `mean_distance`.

  `mean_distance` is the mean Euclidean distance of a sample to its nearest mode: unlike the two
  counts it keeps improving while samples are still outside the 3-sigma discs.
  """
  samples = np.asarray(samples, np.float64)
  modes = np.asarray(modes, np.float64)
  if samples.ndim != 2 or samples.shape[1] != modes.shape[1]:
    raise ValueError(f"samples must have shape (n, {modes.shape[1]}); got {samples.shape}.")
  dist = np.linalg.norm(samples[:, None, :] - modes[None, :, :], axis=-1)
  nearest = dist.argmin(axis=1)
  nearest_dist = dist[np.arange(len(samples)), nearest]
  good = nearest_dist <= n_std * std
  return {
      "modes_captured": float(len(np.unique(nearest[good]))),
      "high_quality": float(good.mean()),
      "mean_distance": float(nearest_dist.mean()),
  }
