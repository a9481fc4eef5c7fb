"""What an `Evaluator` computes: metric names, feature extractor, classifier, digit reader."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from jaxgan.metrics import classifier_cache, stacked_mnist
from jaxgan.metrics.extractors import load_extractor

# The metric names an Evaluator accepts (see `jaxgan.metrics.evaluator`).
METRICS = (
  "fcd", "fid", "kid", "precision_recall", "is", "modes", "class_acc", "intra_fcd", "intra_fid"
)  # fmt: skip


def frechet_name(extractor: Any) -> str:
  """The Frechet distance's name in metric keys: `'fid'` with the Inception network, else `'fcd'`.

  Args:
    extractor: a `FeatureExtractor`, or its name as `Evaluator.create` takes it.

  Returns:
    `'fid'` or `'fcd'`.

  >>> frechet_name("inception"), frechet_name("classifier")
  ('fid', 'fcd')
  """
  if isinstance(extractor, str):
    return "fid" if extractor == "inception" else "fcd"
  return "fid" if getattr(extractor, "name", None) == "inception_fid" else "fcd"


def parse_metrics(metrics: str | Sequence[str]) -> tuple[str, ...]:
  """Metric names, checked and deduplicated: `fcd` and `fid` as `'frechet'`, `intra_*` as `'intra'`.

  Args:
    metrics: names from `METRICS`, as a sequence or a comma-separated string.

  Returns:
    The names in order of first appearance.

  Raises:
    ValueError: an unknown name, or none; the message lists the valid ones.

  >>> parse_metrics("fcd, kid,fid,modes,intra_fcd")
  ('frechet', 'kid', 'modes', 'intra')
  """
  if isinstance(metrics, str):
    metrics = [m.strip() for m in metrics.split(",") if m.strip()]
  bad = [m for m in metrics if m not in METRICS]
  if bad or not metrics:
    raise ValueError(f"Unknown metrics {bad or list(metrics)}; valid: {', '.join(METRICS)}.")
  alias = {"fcd": "frechet", "fid": "frechet", "intra_fcd": "intra", "intra_fid": "intra"}
  return tuple(dict.fromkeys(alias.get(m, m) for m in metrics))


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
) -> tuple[Any, stacked_mnist.ModesMetric | None, Any]:
  """An `Evaluator`'s feature extractor, the `ModesMetric` of `modes`, the `class_acc` classifier.

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
    `(extractor, modes, classifier)`: modes is None unless `'modes' in metrics`, classifier (a
    `ClassifierExtractor`, see `load_classifier`) None unless `'class_acc' in metrics`.

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
    return load_classifier(dataset, classifier_path, classifier_cache_dir, **where)

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
  clf = None
  if "class_acc" in metrics:
    clf = load_classifier(
      dataset, classifier_path, classifier_cache_dir, extractor=extractor, **where
    )
  return extractor, modes, clf


def load_classifier(
  dataset: str | None,
  classifier_path: str | None = None,
  classifier_cache_dir: str | os.PathLike | None = None,
  *,
  data_dir=None,
  source_dir=None,
  extractor: Any = None,
) -> Any:
  """jaxgan's classifier of a run: `extractor` itself when it is one, else loaded or cached.

  Args:
    dataset: the run's data set; None for in-memory reference images.
    classifier_path: a classifier file (`save_classifier`); None: the data set's cached one.
    classifier_cache_dir: the cache of classifiers; None: `$JAXGAN_CACHE_DIR`, else
      `~/.cache/jaxgan`.
    data_dir: prepared data sets (TFDS `data_dir`).
    source_dir: the original files, to prepare without downloading.
    extractor: the run's resolved feature extractor, reused when it is a `ClassifierExtractor`
      (also inside a `stacked_mnist.ChannelwiseExtractor`).

  Returns:
    A `ClassifierExtractor`.

  Raises:
    ValueError: no `classifier_path` and no data set, or as `cached_classifier`.
  """
  from jaxgan.metrics.classifier import ClassifierExtractor  # pylint: disable=g-import-not-at-top

  inner = getattr(extractor, "inner", extractor)
  if isinstance(inner, ClassifierExtractor):
    return inner
  if classifier_path or dataset is None:  # load_extractor names the missing path
    return load_extractor("classifier", classifier_path=classifier_path)
  return classifier_cache.cached_classifier(
    dataset, cache_dir=classifier_cache_dir, data_dir=data_dir, source_dir=source_dir
  )


# Keyword arguments of `create` that the run config does not hold; `from_config` passes them on.
_ADVANCED = (
  "num_reference", "batch_size", "kid_subsets", "kid_subset_size", "pr_k", "pr_samples", "is_splits"
)  # fmt: skip


def create_kwargs(config, *, cache_dir=None, extractor: Any = None, **settings) -> dict[str, Any]:
  """The keyword arguments of `Evaluator.create` that a run config asks for.

  Args:
    config: a run config; reads `config.eval`, `config.data`, `config.model.num_classes` and
      `config.run` (see `Evaluator.from_config`).
    cache_dir: folder for cached reference statistics; None: `config.eval.cache_dir`.
    extractor: a `FeatureExtractor` to use instead of the one `config.eval.extractor` names.
    **settings: keywords of `create` that the run config does not hold (`_ADVANCED`).

  Returns:
    The keyword arguments.

  Raises:
    ValueError: for a toy data set or empty `config.eval.metrics`.
    TypeError: for a keyword the run config holds.
  """
  from jaxgan.config import TOY_DATASETS, read_options  # pylint: disable=g-import-not-at-top

  e = config.eval
  if config.data.name in TOY_DATASETS:
    raise ValueError(
      f"config.data.name={config.data.name!r} is a 2-D mixture: its metric is "
      "mode coverage, not an image Evaluator."
    )
  if not e.metrics:
    raise ValueError("config.eval.metrics is empty; set it, e.g. to 'fcd,kid'.")
  bad = sorted(set(settings) - set(_ADVANCED))
  if bad:
    raise TypeError(
      f"from_config() takes {bad} from the run config (config.eval, config.data, "
      f"config.run); only {', '.join(_ADVANCED)} may be passed here."
    )
  return dict(
    metrics=e.metrics,
    extractor=e.extractor if extractor is None else extractor,
    classifier_path=e.classifier_path,
    inception_weights=e.inception_weights,
    dataset=config.data.name,
    read=read_options(config),
    reference_split=e.reference_split,
    pad_to=config.data.pad_to,
    data_dir=config.run.data_dir,
    source_dir=config.run.source_dir,
    cache_dir=e.cache_dir if cache_dir is None else cache_dir,
    # Classifiers depend on the data set only: shared by all runs unless the config says where.
    classifier_cache_dir=e.cache_dir,
    num_samples=e.num_samples,
    # Absent from older configs: unconditional, all classes.
    num_classes=config.model.get("num_classes", 0) or 0,
    classes=e.get("classes", None),
    **settings,
  )
