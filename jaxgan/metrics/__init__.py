"""Evaluation metrics: FID/FCD, KID, precision/recall, Inception Score, mode coverage.

The statistics (NumPy, float64 on the host) are imported eagerly; the feature networks (Flax)
and the `Evaluator` lazily, on first attribute access::

    from jaxgan import metrics
    fd = metrics.frechet_distance(mu1, s1, mu2, s2)
    clf = metrics.load_classifier("mnist_classifier.npz")      # jaxgan's own MNIST convnet
    ev = metrics.Evaluator.from_config({"metrics": ["fcd", "kid"], "extractor": "classifier",
                                        "classifier_path": ..., "dataset": "mnist"})

Feature extractors follow one small protocol (`FeatureExtractor`): `features(images) -> (n, d)`
and optionally `logits(images) -> (n, classes)`, with images NHWC float32 in [-1, 1].
"""

from __future__ import annotations

import importlib

from jaxgan.metrics.fid import FeatureStats, frechet_distance, inception_score
from jaxgan.metrics.kid import kernel_inception_distance
from jaxgan.metrics.mode_coverage import mode_coverage
from jaxgan.metrics.precision_recall import precision_recall

_LAZY = {
    "FeatureExtractor": "jaxgan.metrics.evaluator",
    "Evaluator": "jaxgan.metrics.evaluator",
    "ConvClassifier": "jaxgan.metrics.classifier",
    "ClassifierExtractor": "jaxgan.metrics.classifier",
    "train_classifier": "jaxgan.metrics.classifier",
    "save_classifier": "jaxgan.metrics.classifier",
    "load_classifier": "jaxgan.metrics.classifier",
    "InceptionV3": "jaxgan.metrics.inception",
    "InceptionExtractor": "jaxgan.metrics.inception",
    "load_inception": "jaxgan.metrics.inception",
    "FID_WEIGHTS_URL": "jaxgan.metrics.inception",
}

__all__ = sorted(["FeatureStats", "frechet_distance", "inception_score",
                  "kernel_inception_distance", "mode_coverage", "precision_recall", *_LAZY])


def __getattr__(name: str):
  module = _LAZY.get(name)
  if module is None:
    raise AttributeError(f"module 'jaxgan.metrics' has no attribute {name!r}")
  value = getattr(importlib.import_module(module), name)
  globals()[name] = value
  return value


def __dir__():
  return sorted(set(globals()) | set(_LAZY))
