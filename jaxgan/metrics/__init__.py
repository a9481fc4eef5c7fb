"""Evaluation metrics: FID/FCD, KID, precision/recall, IS, mode coverage, Stacked MNIST modes.

The statistics (NumPy, float64 on the host) are imported eagerly; the feature networks (Flax)
and the `Evaluator` lazily, on first attribute access. The functions take feature vectors,
float32 `(n, d)`; feature extractors map images, float32 `(n, h, w, c)` in [-1, 1], to them:

  >>> import numpy as np
  >>> from jaxgan import metrics
  >>> x = np.random.default_rng(0).normal(size=(500, 4))
  >>> s = metrics.FeatureStats().update(x)
  >>> round(metrics.frechet_distance(*s.mean_cov(), s.mean + 1.0, s.cov), 6)
  4.0

An `Evaluator` (`metrics.Evaluator.create(...)` or `.from_config(run_config, read=...)`) ties a
feature network, a reference set and sample counts into one protocol; see
`jaxgan.metrics.evaluator`. It finds its metrics by name in `jaxgan.metrics.registry`, where each
metric's module registers it.
"""

from __future__ import annotations

import importlib

# These modules define the metrics and register them (`jaxgan.metrics.registry`; NumPy only), so
# the registry is whole once `jaxgan.metrics` is imported: a metric in a new module is one more
# import here.
from jaxgan.metrics import conditional as conditional  # class_acc, intra_fcd/intra_fid
from jaxgan.metrics.fid import FeatureStats, frechet_distance, inception_score
from jaxgan.metrics.kid import kernel_inception_distance
from jaxgan.metrics.mode_coverage import kl_to_uniform, mode_coverage
from jaxgan.metrics.precision_recall import precision_recall
from jaxgan.metrics.stacked_mnist import mode_statistics

_LAZY = {
  "FeatureExtractor": "jaxgan.metrics.extractors",
  "Evaluator": "jaxgan.metrics.evaluator",
  "load_extractor": "jaxgan.metrics.extractors",
  "Reference": "jaxgan.metrics.reference",
  "ConvClassifier": "jaxgan.metrics.classifier",
  "ClassifierExtractor": "jaxgan.metrics.classifier",
  "train_classifier": "jaxgan.metrics.classifier",
  "save_classifier": "jaxgan.metrics.classifier",
  "load_classifier": "jaxgan.metrics.classifier",
  "cached_classifier": "jaxgan.metrics.classifier_cache",
  "ModesMetric": "jaxgan.metrics.stacked_mnist",
  "InceptionV3": "jaxgan.metrics.inception_net",
  "InceptionExtractor": "jaxgan.metrics.inception",
  "load_inception": "jaxgan.metrics.inception",
  "FID_WEIGHTS_URL": "jaxgan.metrics.inception_weights",  # no Flax import for a constant
}

__all__ = [
  "ClassifierExtractor",
  "ConvClassifier",
  "Evaluator",
  "FID_WEIGHTS_URL",
  "FeatureExtractor",
  "FeatureStats",
  "InceptionExtractor",
  "InceptionV3",
  "ModesMetric",
  "Reference",
  "cached_classifier",
  "frechet_distance",
  "inception_score",
  "kernel_inception_distance",
  "kl_to_uniform",
  "load_classifier",
  "load_extractor",
  "load_inception",
  "mode_coverage",
  "mode_statistics",
  "precision_recall",
  "save_classifier",
  "train_classifier",
]


def __getattr__(name: str):
  module = _LAZY.get(name)
  if module is None:
    raise AttributeError(f"module 'jaxgan.metrics' has no attribute {name!r}")
  value = getattr(importlib.import_module(module), name)
  globals()[name] = value
  return value


def __dir__():
  return sorted(set(globals()) | set(_LAZY))
