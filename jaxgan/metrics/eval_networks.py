"""What an `Evaluator` computes: its metric names, feature extractor and Stacked MNIST reader."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from jaxgan.metrics import classifier_cache, stacked_mnist
from jaxgan.metrics.extractors import load_extractor

# The metric names an Evaluator accepts (see `jaxgan.metrics.evaluator`).
METRICS = ("fcd", "fid", "kid", "precision_recall", "is", "modes")


def parse_metrics(metrics: str | Sequence[str]) -> tuple[str, ...]:
  """Metric names, checked and deduplicated, `fcd` and `fid` both as `'frechet'`.

  Args:
    metrics: names from `METRICS`, as a sequence or a comma-separated string.

  Returns:
    The names in order of first appearance.

  Raises:
    ValueError: an unknown name, or none; the message lists the valid ones.

  >>> parse_metrics("fcd, kid,fid,modes")
  ('frechet', 'kid', 'modes')
  """
  if isinstance(metrics, str):
    metrics = [m.strip() for m in metrics.split(",") if m.strip()]
  bad = [m for m in metrics if m not in METRICS]
  if bad or not metrics:
    raise ValueError(f"Unknown metrics {bad or list(metrics)}; valid: {', '.join(METRICS)}.")
  return tuple(dict.fromkeys("frechet" if m in ("fcd", "fid") else m for m in metrics))


def resolve_networks(
  extractor: Any,
  metrics: Sequence[str],
  *,
  dataset: str | None,
  classifier_path: str | None = None,
  inception_weights: str | None = None,
  split: str = "train",
  classifier_cache_dir: str | os.PathLike | None = None,
  data_dir=None,
  source_dir=None,
) -> tuple[Any, stacked_mnist.ModesMetric | None]:
  """The feature extractor of an `Evaluator` and, for metric `modes`, its `ModesMetric`.

  `extractor='classifier'` without `classifier_path` is the data set's cached classifier
  (`classifier_cache.cached_classifier`, trained on first use). On Stacked MNIST a single-channel
  (MNIST) extractor is wrapped in `stacked_mnist.ChannelwiseExtractor`; `modes` reads digits
  with the extractor when it is jaxgan's classifier, else with `classifier_path`'s or the cached
  one.

  Args:
    extractor: `'classifier'`, `'inception'` or a `FeatureExtractor` object.
    metrics: the metric names, parsed (`modes` among them or not).
    dataset: the run's data set; None for in-memory reference images.
    classifier_path: a classifier file (`save_classifier`); None: the cached one.
    inception_weights: the Inception weights of `extractor='inception'`.
    split: the split `modes`' real floor is drawn from.
    classifier_cache_dir: the cache of classifiers and floors; None: `$JAXGAN_CACHE_DIR`, else
      `~/.cache/jaxgan`.
    data_dir: prepared data sets (TFDS `data_dir`).
    source_dir: the original files, to prepare without downloading.

  Returns:
    `(extractor, modes)`: modes is None unless `'modes' in metrics`.

  Raises:
    ValueError: `modes` on another data set than `stacked_mnist`; a classifier that
      `stacked_mnist.check_classifier` refuses; as `load_extractor` and `cached_classifier`.
  """
  if "modes" in metrics and dataset != "stacked_mnist":
    raise ValueError(
      f"Metric 'modes' counts Stacked MNIST's 1000 modes; the data set is {dataset!r}. Use "
      "data.name='stacked_mnist', or other metrics (e.g. eval.metrics='fcd,kid')."
    )
  where = dict(data_dir=data_dir, source_dir=source_dir)

  def classifier():
    if classifier_path or dataset is None:  # load_extractor names the missing path
      return load_extractor("classifier", classifier_path=classifier_path)
    return classifier_cache.cached_classifier(dataset, cache_dir=classifier_cache_dir, **where)

  if extractor == "classifier":
    extractor = classifier()
  elif isinstance(extractor, str):
    extractor = load_extractor(extractor, inception_weights=inception_weights)
  modes = None
  if "modes" in metrics:
    from jaxgan.metrics.classifier import ClassifierExtractor  # pylint: disable=g-import-not-at-top

    clf = extractor if isinstance(extractor, ClassifierExtractor) else classifier()
    floors = classifier_cache_dir or classifier_cache.default_cache_dir()
    modes = stacked_mnist.ModesMetric(clf, split=split, cache_dir=floors, **where)
  if dataset == "stacked_mnist" and getattr(extractor, "image_shape", (3,))[-1] == 1:
    extractor = stacked_mnist.ChannelwiseExtractor(extractor)  # an MNIST network, per channel
  return extractor, modes
