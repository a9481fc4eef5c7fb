"""Running a feature network over many images in fixed-size batches."""

from __future__ import annotations

from typing import Callable

import numpy as np


def apply_in_batches(apply: Callable, variables, x: np.ndarray,
                     batch_size: int) -> tuple[np.ndarray, np.ndarray]:
  """`apply(variables, batch) -> (features, logits)` over `x`, concatenated as NumPy arrays.

  When `x` spans several batches, a short last batch is zero-padded to `batch_size` (and the
  padding dropped from the outputs), so a jitted `apply` compiles for one shape only; an `x`
  smaller than one batch runs at its own size rather than paying for a full padded batch.
  """
  feats, logits = [], []
  for s in range(0, len(x), batch_size):
    chunk = x[s:s + batch_size]
    n = len(chunk)
    if n < batch_size and len(x) > batch_size:
      chunk = np.concatenate([chunk, np.zeros((batch_size - n, *chunk.shape[1:]), chunk.dtype)])
    f, l = apply(variables, chunk)
    feats.append(np.asarray(f)[:n])
    logits.append(np.asarray(l)[:n])
  return np.concatenate(feats), np.concatenate(logits)
