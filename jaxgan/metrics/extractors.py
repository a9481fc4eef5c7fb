"""Feature extractors: the protocol an `Evaluator` needs, and jaxgan's two networks by name."""

from __future__ import annotations

import os
from typing import Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class FeatureExtractor(Protocol):
  """What an `Evaluator` needs from a feature network.

  Required: `name` (a short string, the first part of every metric key) and
  `features(images) -> float32 (n, d)` for images float32 `(n, h, w, c)` in [-1, 1]. Optional:
  `logits(images) -> float32 (n, classes)` (for the Inception Score), `features_and_logits`
  (both in one pass), `describe() -> str` (for the protocol string) and `id` (a string naming
  the weights; without it reference statistics are not cached).
  """

  name: str

  def features(self, images) -> np.ndarray: ...


# What `load_extractor` says when a network's weights path is missing.
_MISSING_WEIGHTS = {
  "classifier": "classifier_path (train one with "
  "`python -m jaxgan.metrics.classifier --dataset=... --out=...`).",
  "inception": "inception_weights: the pytorch-fid file "
  "pt_inception-2015-12-05-6726825d.pth (see jaxgan.metrics.inception).",
}


def load_extractor(
  name: str, *, classifier_path: str | None = None, inception_weights: str | None = None
) -> FeatureExtractor:
  """One of jaxgan's feature networks, with its weights loaded.

  Args:
    name: `'classifier'` (jaxgan's own convnet, `jaxgan.metrics.classifier`) or `'inception'`
      (the FID InceptionV3, `jaxgan.metrics.inception`).
    classifier_path: the .npz written by `save_classifier`; needed for `'classifier'`.
    inception_weights: pytorch-fid's `pt_inception-2015-12-05-6726825d.pth` or its .npz
      conversion; needed for `'inception'`.

  Returns:
    The extractor.

  Raises:
    ValueError: for an unknown name, a missing weights path, or a file that fails its checks.
  """
  paths = {"classifier": classifier_path, "inception": inception_weights}
  if name not in paths:
    raise ValueError(f"Unknown extractor {name!r}; use 'classifier', 'inception' or an object.")
  path = paths[name]
  if not path:
    raise ValueError(f"extractor={name!r} needs {_MISSING_WEIGHTS[name]}")
  # pylint: disable=g-import-not-at-top  (each loads Flax; only the chosen one is needed)
  if name == "classifier":
    from jaxgan.metrics.classifier import load_classifier as load
  else:
    from jaxgan.metrics.inception import load_inception as load
  return load(os.path.expanduser(path))
