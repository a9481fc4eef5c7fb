"""What an `Evaluator` needs before it computes: the request checked, the networks resolved (the
feature extractor, `modes`' digit reader, `class_acc`'s classifier), a run config's keywords."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from jaxgan.metrics import classifier_cache, conditional, registry, stacked_mnist
from jaxgan.metrics.extractors import load_extractor
from jaxgan.metrics.fid import frechet_name


def check_request(
  metrics: str | Sequence[str],
  *,
  dataset: str | None,
  extractor: Any,
  num_samples: int,
  num_classes: int = 0,
  classes=None,
  classifier_path: str | None = None,
) -> tuple[tuple[str, ...], tuple[int, ...] | None]:
  """Refuses, before anything is loaded or computed, a request the metrics cannot meet.

  Checks the metric names (`registry.parse`), the data set a metric is restricted to, the
  conditional request (`conditional.check_request`), and that `class_acc` has a classifier when
  it is the data set's cached one (`extractor` named, no `classifier_path`).

  Args:
    metrics: names from `registry.names()`, as a sequence or a comma-separated string.
    dataset: the data set; None for in-memory reference images.
    extractor: `'classifier'`, `'inception'` or a `FeatureExtractor` object.
    num_samples: samples per evaluation.
    num_classes: the model's class count (0: unconditional).
    classes: the classes the conditional metrics evaluate; None: all.
    classifier_path: a classifier file; None: the data set's cached classifier.

  Returns:
    `(names, classes)`: the parsed names, and the evaluated classes (None without a
    conditional metric).

  Raises:
    ValueError: as `registry.parse`, `registry.check_dataset`, `conditional.check_request` and
      `classifier_cache.classifier_dataset`.
  """
  names = registry.parse(metrics)
  registry.check_dataset(names, dataset)
  fd = frechet_name(extractor)
  classes = conditional.check_request(names, num_classes, classes, num_samples, fd)
  if "class_acc" in names and isinstance(extractor, str) and not classifier_path and dataset:
    classifier_cache.classifier_dataset(dataset)
  return names, classes


def check_critic_network(extractor: Any, critic_backbone: str | None) -> None:
  """Refuses to score a run in the features of the network its critic was built on.

  A GAN trained against heads on a frozen network's features learns to match the statistics of
  those features; a Frechet distance in the same features then rewards that match rather than
  image quality. Kynkaanniemi et al. 2023 ("The Role of ImageNet Classes in Frechet Inception
  Distance") show FID can be lowered without better images by matching ImageNet-class
  information in Inception's features, and Projected GANs gain FID this way. So a critic on the
  Inception backbone is judged by another network (jaxgan's own classifier), and the classifier
  backbone is another architecture and seed than the classifier that scores the run.

  Args:
    extractor: the evaluation's features: `'classifier'`, `'inception'` or an object.
    critic_backbone: the frozen network of the run's critic (`'inception'`, `'classifier'`), or
      None for a critic on pixels.

  Raises:
    ValueError: the Inception backbone with Inception features, naming the way out.
  """
  if critic_backbone == "inception" and extractor == "inception":
    raise ValueError(
      "this run's critic reads the FID Inception network's features, so Inception FID, KID and "
      "precision/recall would score how well G matches those features, not its images "
      "(Kynkaanniemi et al. 2023; docs/feature_critic.md). Evaluate it with "
      "eval.extractor='classifier' (jaxgan.evaluate: --extractor=classifier), a network jaxgan "
      "trains on the data set."
    )


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
    ValueError: a classifier that `stacked_mnist.check_classifier` refuses; as `load_extractor`
      and `cached_classifier`.
  """
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


def create_kwargs(
  config, *, read: dict, cache_dir=None, extractor: Any = None, **settings
) -> dict[str, Any]:
  """The keyword arguments of `Evaluator.create` that a run config asks for.

  Args:
    config: a run config of an image data set; reads `config.eval`, `config.data`,
      `config.model.num_classes` and `config.run` (see `Evaluator.from_config`).
    read: how the run reads its data set: `jaxgan.data.load_source`'s options.
    cache_dir: folder for cached reference statistics; None: `config.eval.cache_dir`.
    extractor: a `FeatureExtractor` to use instead of the one `config.eval.extractor` names.
    **settings: keywords of `create` that the run config does not hold: `num_reference`,
      `batch_size` and the metrics' settings (`registry.settings()`).

  Returns:
    The keyword arguments.

  Raises:
    ValueError: for empty `config.eval.metrics`.
    TypeError: for a keyword the run config holds.
  """
  e = config.eval
  if not e.metrics:
    raise ValueError("config.eval.metrics is empty; set it, e.g. to 'fcd,kid'.")
  advanced = ("num_reference", "batch_size", *registry.settings())
  bad = sorted(set(settings) - set(advanced))
  if bad:
    raise TypeError(
      f"from_config() takes {bad} from the run config (config.eval, config.data, "
      f"config.run); only {', '.join(advanced)} may be passed here."
    )
  return dict(
    metrics=e.metrics,
    extractor=e.extractor if extractor is None else extractor,
    classifier_path=e.classifier_path,
    inception_weights=e.inception_weights,
    dataset=config.data.name,
    read=read,
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
