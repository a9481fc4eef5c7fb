"""Class-conditional metrics: the classifier's accuracy per requested class, intra-class FCD/FID.

A class-conditional generator is asked for samples of given classes; two questions follow.

- `class_acc`: does it draw the class it is asked for? The fraction of the samples generated
  with label c that jaxgan's classifier (`ClassifierExtractor`) assigns to c, over all evaluated
  classes (`class_acc`) and per class (`class_acc_<c>`): the "classification accuracy" of ACGAN's
  evaluation (Odena et al. 2017), with jaxgan's classifier. On Stacked MNIST (1000 classes) the
  MNIST classifier reads each channel and the class read is `100 d1 + 10 d2 + d3`.
- `intra_fcd` (`intra_fid` with the Inception extractor): is each class's distribution right?
  The Frechet distance (Heusel et al. 2017) between the features of the samples of class c and
  those of the reference images of class c, per class (`intra_fcd_<c>`) and their mean over the
  classes (`intra_fcd`): the intra-class FID of Miyato & Koyama (2018).

Both metrics share one set of samples: `n // k` of each of the k evaluated classes (all classes,
or the subset asked for), the labels in a fixed shuffled order so that every generator batch
mixes classes. The Frechet distance of few vectors is biased upwards (by about the trace of the
covariances over the count), so intra-class values are comparable only at equal per-class
counts, which the protocol prints, and they sit above the unconditional distance of the same
total count. Intra-class distances are refused for more than `MAX_CLASSES` classes (Stacked
MNIST's 1000: choose a subset) and for fewer than `MIN_PER_CLASS` samples or reference images of
a class. Per-class keys are written for at most `MAX_CLASSES` classes.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from jaxgan.metrics.batching import draw, extract, spread
from jaxgan.metrics.fid import FeatureStats, frechet_name, stats_distance
from jaxgan.metrics.registry import REGISTRY, register

log = logging.getLogger(__name__)

MAX_CLASSES = 20  # at most this many classes: per-class keys, intra-class statistics
MIN_PER_CLASS = 50  # samples and reference images of a class an intra-class distance needs
_STACKED_CLASSES, _DIGITS = 1000, 10  # Stacked MNIST, read by an MNIST classifier per channel
_LABEL_SEED = 0  # of the shuffled order of the evaluation labels
_SUBSET = "choose a subset with eval.classes (e.g. '0,1,2,3,4,5,6,7,8,9')"

# Both computed by `ConditionalMetrics` from one set of samples of the requested classes.
register("class_acc", reads=(), reference=False, conditional=True)(None)
register(
  "intra",
  aliases=("intra_fcd", "intra_fid"),
  reads=(),
  conditional=True,
  primary="intra_{fd}",
  rank=3,
)(None)


def _conditional(metrics: Sequence[str]) -> tuple[str, ...]:
  """The conditional metrics among parsed names."""
  return tuple(m for m in metrics if REGISTRY[m].conditional)


def parse_classes(classes: str | Sequence[int] | None, num_classes: int) -> tuple[int, ...]:
  """The classes the conditional metrics evaluate, checked.

  Args:
    classes: class indices, as a sequence or a comma-separated string; None or `''`: all.
    num_classes: the model's class count (> 0).

  Returns:
    The classes, sorted and deduplicated.

  Raises:
    ValueError: `num_classes` is not positive, or a class is not an integer in
      [0, num_classes).

  >>> parse_classes("3, 1,3", 10), len(parse_classes(None, 10))
  ((1, 3), 10)
  """
  if not isinstance(num_classes, int | np.integer) or num_classes < 1:
    raise ValueError(
      f"Conditional metrics need a conditional model (model.num_classes > 0); got "
      f"num_classes={num_classes!r}. Train one with --config.model.num_classes, or drop "
      "class_acc and intra_fcd/intra_fid from eval.metrics."
    )
  if classes is None or (isinstance(classes, str) and not classes.strip()):
    return tuple(range(num_classes))
  if isinstance(classes, str):
    classes = [c.strip() for c in classes.split(",") if c.strip()]
  try:
    parsed = sorted({int(c) for c in classes})
  except (TypeError, ValueError):
    parsed = None
  if not parsed or parsed[0] < 0 or parsed[-1] >= num_classes:
    raise ValueError(
      f"eval.classes must be class indices in [0, {num_classes}), e.g. '0,1,2'; got {classes!r}."
    )
  return tuple(parsed)


def check_request(
  metrics: Sequence[str], num_classes: int, classes, num_samples: int, fd_name: str = "fcd"
) -> tuple[int, ...] | None:
  """Refuses, before anything is computed, a conditional request that cannot be met.

  Args:
    metrics: parsed metric names (the conditional ones are checked).
    num_classes: the model's class count (0: unconditional).
    classes: the classes to evaluate (see `parse_classes`); None: all.
    num_samples: samples per evaluation, shared out evenly over the classes.
    fd_name: `'fcd'` or `'fid'`, for the messages.

  Returns:
    The evaluated classes; None when `metrics` holds no conditional metric (nothing checked).

  Raises:
    ValueError: an unconditional model, bad classes; with `intra`, more than `MAX_CLASSES`
      classes or under `MIN_PER_CLASS` samples per class; under 1 sample per class.
  """
  if not _conditional(metrics):
    return None
  classes = parse_classes(classes, num_classes)
  k = len(classes)
  if "intra" in metrics and k > MAX_CLASSES:
    raise ValueError(
      f"intra_{fd_name} for {k} classes: too few samples per class for a Frechet distance and "
      f"too much memory for per-class statistics (at most {MAX_CLASSES}); {_SUBSET}."
    )
  least = MIN_PER_CLASS if "intra" in metrics else 1
  if num_samples // k < least:
    names = "/".join(m if m != "intra" else f"intra_{fd_name}" for m in _conditional(metrics))
    raise ValueError(
      f"{num_samples} samples over {k} classes are {num_samples // k} per class; {names} "
      f"need at least {least}: raise eval.num_samples to {least * k}"
      + (
        f", or evaluate at most {num_samples // least} classes (eval.classes, e.g. "
        f"'{','.join(map(str, classes[: num_samples // least]))}')."
        if num_samples >= least
        else "."
      )
    )
  return classes


def balanced_labels(classes: Sequence[int], per_class: int) -> np.ndarray:
  """`per_class` labels of each class, in a fixed shuffled order.

  Args:
    classes: the classes.
    per_class: labels of each.

  Returns:
    int32 `(len(classes) * per_class,)`, each class `per_class` times, shuffled with a fixed
    seed (so that batches mix classes, and two evaluations ask for the same labels).

  >>> np.bincount(balanced_labels([0, 2], 3)).tolist()
  [3, 0, 3]
  """
  labels = np.repeat(np.asarray(classes, np.int32), per_class)
  return labels[np.random.default_rng(_LABEL_SEED).permutation(len(labels))]


def class_accuracy(
  predicted, labels, classes: Sequence[int] | None = None
) -> tuple[float, dict[int, float]]:
  """The fraction of samples of each requested class that are classified as that class.

  Args:
    predicted: int `(n,)`, the class the classifier reads in each sample.
    labels: int `(n,)`, the class each sample was generated for.
    classes: the classes to report; None: those in `labels`.

  Returns:
    `(overall, per_class)`: the fraction of all n samples with `predicted == labels`, and
    `{c: that fraction among the samples of class c}`, Python floats in [0, 1].

  Raises:
    ValueError: `predicted` and `labels` differ in shape, or a class has no samples.

  >>> class_accuracy([0, 1, 1, 2], [0, 1, 2, 2])
  (0.75, {0: 1.0, 1: 1.0, 2: 0.5})
  """
  predicted, labels = np.asarray(predicted).reshape(-1), np.asarray(labels)
  if predicted.shape != labels.shape:
    raise ValueError(f"predicted {predicted.shape} and labels {labels.shape} must have one shape.")
  classes = np.unique(labels).tolist() if classes is None else list(classes)
  right = predicted == labels
  per_class = {}
  for c in classes:
    mine = labels == c
    if not mine.any():
      raise ValueError(f"No samples of class {c}: its accuracy is undefined.")
    per_class[int(c)] = float(right[mine].mean())
  return float(right.mean()), per_class


def check_class_count(classifier: Any, num_classes: int) -> bool:
  """Whether `classifier` can read the classes of a model of `num_classes` classes.

  Args:
    classifier: a `ClassifierExtractor` (`logits` and a `meta` dict with `num_classes`).
    num_classes: the model's class count.

  Returns:
    False when the classifier reads the classes directly (same class count), True when it is a
    10-class single-channel classifier of a 1000-class model (Stacked MNIST: read per channel).

  Raises:
    ValueError: the class counts do not match; the message names the fix.
  """
  k = int(getattr(classifier, "meta", {}).get("num_classes", -1))
  shape = tuple(getattr(classifier, "image_shape", ()))
  if k == num_classes:
    return False
  if (k, num_classes) == (_DIGITS, _STACKED_CLASSES) and shape[-1:] == (1,):
    return True
  raise ValueError(
    f"Metric 'class_acc' needs a classifier of the model's {num_classes} classes; "
    f"{getattr(classifier, 'name', classifier)!r} has {k}. Set eval.classifier_path to a "
    "classifier trained on the run's data set (python -m jaxgan.metrics.classifier)."
  )


def predict_classes(classifier: Any, images, *, per_channel: bool = False) -> np.ndarray:
  """The class `classifier` reads in each image.

  Args:
    classifier: anything with `logits(images) -> (n, classes)`.
    images: float32 `(n, h, w, c)` in [-1, 1].
    per_channel: read the digit of each of 3 channels with an MNIST classifier and return the
      Stacked MNIST class `100 d1 + 10 d2 + d3` (see `check_class_count`).

  Returns:
    int64 `(n,)`: the argmax classes.
  """
  if per_channel:
    from jaxgan.metrics import stacked_mnist  # pylint: disable=g-import-not-at-top

    digits, _ = stacked_mnist.classify_channels(classifier, images)
    return digits @ np.array([100, 10, 1])
  return np.asarray(classifier.logits(images)).argmax(-1).astype(np.int64)


def class_statistics(feats, labels, classes: Sequence[int]) -> dict[int, FeatureStats]:
  """The mean and covariance of the features of each class.

  Args:
    feats: float `(n, d)` feature vectors.
    labels: int `(n,)`, the class of each vector.
    classes: the classes to keep (vectors of other classes are ignored).

  Returns:
    `{c: FeatureStats of the vectors of class c}` (float64; empty for a class without vectors).
  """
  feats, labels = np.asarray(feats), np.asarray(labels)
  return {int(c): FeatureStats(feats.shape[1]).update(feats[labels == c]) for c in classes}


class ConditionalMetrics:
  """The conditional half of an `Evaluator`: samples of requested classes, and their metrics.

  Attributes:
    metrics: the conditional metrics computed ('class_acc', 'intra').
    classes: the evaluated classes.
    per_class: samples of each class per evaluation of `num_samples`.
    description: the protocol in words.
  """

  def __init__(
    self,
    metrics: Sequence[str],
    *,
    num_classes: int,
    num_samples: int,
    classes: str | Sequence[int] | None = None,
    classifier: Any = None,
    extractor: Any = None,
    reference_stats: dict[int, FeatureStats] | None = None,
  ):
    """Checks the request against the model, the networks and the reference.

    Args:
      metrics: parsed names (the conditional ones are kept).
      num_classes: the model's class count (0: unconditional, refused).
      num_samples: samples per evaluation, shared out evenly over the classes.
      classes: the classes to evaluate (see `parse_classes`); None: all.
      classifier: the `ClassifierExtractor` of `class_acc`.
      extractor: the `FeatureExtractor` of `intra`.
      reference_stats: `{c: FeatureStats}` of the reference images of every evaluated class,
        for `intra` (`Reference.class_stats`).

    Raises:
      ValueError: an unconditional model, bad classes, a classifier of other classes, or for
        `intra`: more than `MAX_CLASSES` classes, fewer than `MIN_PER_CLASS` samples or
        reference images of a class, or missing networks or statistics.
    """
    self.metrics = _conditional(metrics)
    fd_name = frechet_name(extractor)  # the key says intra_fid with the Inception network
    self.classes = check_request(self.metrics, num_classes, classes, num_samples, fd_name)
    k = len(self.classes)
    self.per_class = num_samples // k
    self._num_classes, self._fd_name = num_classes, fd_name
    parts = []
    if "class_acc" in self.metrics:
      if classifier is None:
        raise ValueError("Metric 'class_acc' needs classifier= (a ClassifierExtractor).")
      self._stacked = check_class_count(classifier, num_classes)
      self.classifier = classifier
      describe = getattr(classifier, "describe", lambda: classifier.name)
      # The run's feature network is often the classifier itself: described once, above.
      same = classifier is getattr(extractor, "inner", extractor)
      by = "the feature network" if same else describe()
      parts.append(f"class_acc: read by {by}" + (", per channel" if self._stacked else ""))
    if "intra" in self.metrics:
      missing = [c for c in self.classes if c not in (reference_stats or {})]
      if extractor is None or missing:
        raise ValueError(f"intra_{fd_name} needs extractor= and reference statistics of {missing}.")
      few = {c: reference_stats[c].n for c in self.classes if reference_stats[c].n < MIN_PER_CLASS}
      if few:
        raise ValueError(
          f"intra_{fd_name}: the reference has under {MIN_PER_CLASS} images of classes {few} "
          f"(class: count); {_SUBSET} that the reference covers, or use a larger split."
        )
      self.extractor, self.reference_stats = extractor, reference_stats
      least = min(reference_stats[c].n for c in self.classes)
      parts.append(f"intra_{fd_name}: vs >= {least} reference images per class")
    which = f"classes {self._class_list()}" if k < num_classes else f"all {k} classes"
    self.description = f"{self.per_class} samples per class of {which}; " + "; ".join(parts)

  def _class_list(self) -> str:
    c = self.classes
    return ",".join(map(str, c)) if len(c) <= MAX_CLASSES else f"{len(c)} ({c[0]}..{c[-1]})"

  def evaluate(
    self, sample_fn: Callable, key, n: int, prefix: str, batch_size: int
  ) -> dict[str, float]:
    """Draws `n // k` samples of each class and returns the conditional metrics.

    Args:
      sample_fn: `sample_fn(key, batch, labels) -> images`, labels int32 `(batch,)`, images
        float32 `(batch, h, w, c)` in [-1, 1].
      key: a JAX PRNG key; batch i is drawn with `jax.random.fold_in(key, i)`.
      n: the number of samples (rounded down to a multiple of the class count).
      prefix: the start of the keys, `<extractor>-<samples>-<reference>`.
      batch_size: samples per `sample_fn` call.

    Returns:
      `{'<prefix>/class_acc': fraction, '<prefix>/intra_fcd': mean distance}` and, for at most
      `MAX_CLASSES` classes, `class_acc_<c>` and `intra_fcd_<c>` (squared feature units).

    Raises:
      ValueError: `n` leaves too few samples per class.
    """
    check_request(self.metrics, self._num_classes, self.classes, n, self._fd_name)
    labels = balanced_labels(self.classes, n // len(self.classes))

    def measure(images, lab):
      predicted = feats = None
      if "class_acc" in self.metrics:
        predicted = predict_classes(self.classifier, images, per_channel=self._stacked)
      if "intra" in self.metrics:
        feats = extract(self.extractor, images)[0]
      return lab, predicted, feats

    # Each host measures its share of the batches on several hosts (see `spread`).
    measured = spread(draw(sample_fn, key, len(labels), batch_size, labels=labels), measure)
    drawn = [lab for lab, _, _ in measured]
    predicted = [p for _, p, _ in measured if p is not None]
    feats = [f for _, _, f in measured if f is not None]
    labels, out = np.concatenate(drawn), {}
    each = len(self.classes) <= MAX_CLASSES
    if predicted:
      acc, per = class_accuracy(np.concatenate(predicted), labels, self.classes)
      out[f"{prefix}/class_acc"] = acc
      out.update({f"{prefix}/class_acc_{c}": a for c, a in per.items() if each})
    if feats:
      fake = class_statistics(np.concatenate(feats), labels, self.classes)
      ref = self.reference_stats
      dist = {c: stats_distance(fake[c], ref[c]) for c in self.classes}
      out[f"{prefix}/intra_{self._fd_name}"] = float(np.mean(list(dist.values())))
      out.update({f"{prefix}/intra_{self._fd_name}_{c}": d for c, d in dist.items()})
    return out
