"""Stacked MNIST's metric: modes captured and the reverse KL to the uniform mode distribution.

The protocol of Metz et al. (2017) as PacGAN (Lin et al. 2018) runs it: an MNIST classifier
reads each colour channel of N generated samples (N = 26,000), the three digits give one of
1000 modes (`100 * d1 + 10 * d2 + d3`), and two numbers summarise the histogram `p` of modes:

- `modes`: how many of the 1000 modes occur at least once;
- `kl`: `KL(p || uniform) = sum_k p_k log(1000 p_k)` (natural log; empty modes add 0). This is
  the direction of PacGAN's code (`KLD(p, q)` with `p` the generated histogram and `q` uniform),
  the one its paper calls "reverse KL". It is 0 for a uniform histogram and `log 1000 = 6.91`
  for a single mode.

Even the real data does not score 0: N samples of 1000 modes leave an expected `999 / (2 N)`
(0.019 at N = 26,000), MNIST's classes are not quite balanced, and the classifier errs. So every
number comes with the real-data floor: the same statistics for N real images drawn with
replacement from the Stacked MNIST data set the generator learns from (a generator that samples
that data set exactly sits on the floor, not at 0). `real_floor` computes it once per
(classifier, N, split) and caches it.

The classifier must be an MNIST classifier of 10 classes with at least 97% recorded test
accuracy (`check_classifier`): a weaker one smears digits across modes and the count means
nothing. Images of another size than the classifier's are centre-cropped to it, as
`ClassifierExtractor` does (e.g. the 32x32 images of `data.pad_to=32`). `ModesMetric` is the
`Evaluator`'s metric `modes`, registered at its end.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from jaxgan.metrics.mode_coverage import kl_to_uniform
from jaxgan.metrics.registry import register

log = logging.getLogger(__name__)

NUM_MODES = 1000
NUM_SAMPLES = 26_000  # PacGAN's sample count
MIN_ACCURACY = 0.97
# A channel read with a top softmax probability under this counts as "low confidence".
LOW_CONFIDENCE = 0.5
_FLOOR_SEED = 0  # of the real floor's draw


def check_classifier(clf: Any) -> None:
  """Refuses a classifier whose mode counts would mean nothing.

  Args:
    clf: a `ClassifierExtractor` (anything with `logits` and a `meta` dict holding `dataset`,
      `num_classes` and `test_accuracy`).

  Raises:
    ValueError: not a classifier, trained on another data set than MNIST or with another class
      count than 10, or with a recorded test accuracy missing or under `MIN_ACCURACY`; the
      message says how to get a good one.
  """
  fix = (
    "Leave eval.classifier_path unset for jaxgan's cached MNIST classifier, or train "
    "one: `python -m jaxgan.metrics.classifier --dataset=mnist --out=...`."
  )
  meta = getattr(clf, "meta", None)
  if not hasattr(clf, "logits") or not isinstance(meta, dict):
    raise ValueError(
      f"The modes metric needs jaxgan's MNIST ClassifierExtractor; got {clf!r}. {fix}"
    )
  if meta.get("dataset") != "mnist" or meta.get("num_classes") != 10:
    raise ValueError(
      f"The modes metric reads digits with an MNIST classifier of 10 classes; this one was "
      f"trained on {meta.get('dataset')!r} with {meta.get('num_classes')} classes. {fix}"
    )
  acc = meta.get("test_accuracy")
  if acc is None or acc < MIN_ACCURACY:
    shown = "unknown" if acc is None else f"{100 * acc:.2f}%"
    raise ValueError(
      f"The classifier's MNIST test accuracy is {shown}, under the {100 * MIN_ACCURACY:.0f}% "
      f"that the modes metric needs (a weaker one scatters digits across modes). {fix}"
    )


def mode_statistics(digits: np.ndarray) -> dict[str, float]:
  """Modes captured and KL to uniform of triples of predicted digits.

  Args:
    digits: int `(n, 3)` predicted digits in 0..9, one column per channel (red, green, blue).

  Returns:
    `{'modes': distinct triples (of 1000), 'kl': KL(p || uniform) in nats}` as floats.

  >>> d = np.array([[1, 2, 3], [1, 2, 3], [0, 0, 7]])
  >>> s = mode_statistics(d)
  >>> s['modes'], round(s['kl'], 4)
  (2.0, 6.2712)
  """
  from jaxgan.data.stacked import stacked_labels  # pylint: disable=g-import-not-at-top

  counts = np.bincount(stacked_labels(digits), minlength=NUM_MODES)
  return {"modes": float(np.count_nonzero(counts)), "kl": kl_to_uniform(counts)}


def classify_channels(clf: Any, images) -> tuple[np.ndarray, np.ndarray]:
  """The digit the classifier reads in each channel, and its softmax probability.

  Args:
    clf: an MNIST `ClassifierExtractor` (single-channel input).
    images: float32 `(n, h, w, 3)` in [-1, 1]; centre-cropped or padded to the classifier's size.

  Returns:
    `(digits int64 (n, 3), confidence float32 (n, 3))`: argmax class and max softmax
    probability per channel.

  Raises:
    ValueError: `images` does not have 3 channels.
  """
  images = np.asarray(images, np.float32)
  if images.ndim != 4 or images.shape[-1] != 3:
    raise ValueError(f"Stacked MNIST images are (n, h, w, 3); got shape {images.shape}.")
  n, h, w, _ = images.shape
  per_channel = np.moveaxis(images, -1, 1).reshape(n * 3, h, w, 1)
  logits = np.asarray(clf.logits(per_channel), np.float64).reshape(n, 3, -1)
  z = np.exp(logits - logits.max(-1, keepdims=True))
  return logits.argmax(-1), (z.max(-1) / z.sum(-1)).astype(np.float32)


def summarise(digits: np.ndarray, confidence: np.ndarray) -> dict[str, float]:
  """`mode_statistics` plus the classifier's confidence.

  Args:
    digits: int `(n, 3)` predicted digits.
    confidence: float `(n, 3)` max softmax probability of each read.

  Returns:
    `modes`, `kl`, `confidence` (mean max-softmax over all `3 n` reads), `confidence_0..2` (per
    channel) and `low_confidence` (fraction of reads under `LOW_CONFIDENCE`), as floats.
  """
  out = mode_statistics(digits)
  confidence = np.asarray(confidence, np.float64)
  out["confidence"] = float(confidence.mean())
  for c in range(3):
    out[f"confidence_{c}"] = float(confidence[:, c].mean())
  out["low_confidence"] = float((confidence < LOW_CONFIDENCE).mean())
  return out


def _floor_path(cache_dir, clf, key: list) -> str | None:
  ident = getattr(clf, "id", None)
  if not cache_dir or ident is None:
    return None
  digest = hashlib.sha256(json.dumps([*key, str(ident)]).encode()).hexdigest()[:16]
  return os.path.join(os.path.expanduser(cache_dir), "stacked_mnist", f"floor_{digest}.json")


def real_floor(
  clf: Any,
  num_samples: int = NUM_SAMPLES,
  *,
  split: str = "train",
  data_dir=None,
  source_dir=None,
  cache_dir: str | None = None,
  batch_size: int = 2000,
) -> dict[str, float]:
  """`summarise` of `num_samples` real Stacked MNIST images: what a perfect generator scores.

  The images are drawn uniformly with replacement (seed 0) from the data set's `split`, as a
  generator's samples are independent draws from what it learned.

  Args:
    clf: an MNIST `ClassifierExtractor`; cached only when it has an `id`.
    num_samples: N.
    split: the data set's split, e.g. `'train'`.
    data_dir: prepared data sets (TFDS `data_dir`).
    source_dir: the original files, to prepare without downloading.
    cache_dir: folder of the cached result; None: no cache.
    batch_size: images read and classified at a time.

  Returns:
    The dict of `summarise`.
  """
  from jaxgan import data  # pylint: disable=g-import-not-at-top  (TFDS is a heavy import)
  from jaxgan.data.stacked import SIZES  # pylint: disable=g-import-not-at-top

  path = _floor_path(cache_dir, clf, ["stacked_mnist", split, num_samples, _FLOOR_SEED, SIZES])
  if path and os.path.exists(path):
    try:
      with open(path) as f:
        return {k: float(v) for k, v in json.load(f).items()}
    except (OSError, ValueError) as e:
      log.warning("Ignoring unreadable Stacked MNIST floor %s: %s", path, e)
  src = data.load_source(
    "stacked_mnist", split=split, data_dir=data_dir, source_dir=source_dir, in_memory=False
  )
  idx = np.random.default_rng(_FLOOR_SEED).integers(0, len(src), num_samples)
  digits, conf = [], []
  for s in range(0, num_samples, batch_size):
    images = src.get_batch(np.sort(idx[s : s + batch_size]))["image"]
    d, c = classify_channels(clf, images.astype(np.float32) * np.float32(2 / 255) - 1)
    digits.append(d)
    conf.append(c)
  out = summarise(np.concatenate(digits), np.concatenate(conf))
  if path:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = f"{path}.{os.getpid()}.tmp"  # written whole, then renamed
    with open(tmp, "w") as f:
      json.dump(out, f)
    os.replace(tmp, path)
  return out


class ModesMetric:
  """Stacked MNIST's metric inside an `Evaluator`: counts over batches, then the numbers.

  Attributes:
    classifier: the MNIST `ClassifierExtractor` (checked by `check_classifier`).
    split: the real floor's split.
    description: the protocol in words.
  """

  def __init__(
    self, classifier: Any, *, split: str = "train", data_dir=None, source_dir=None, cache_dir=None
  ):
    """Checks the classifier; the real floor is computed on first use for each sample count.

    Args:
      classifier: an MNIST `ClassifierExtractor`.
      split: the data set's split the real floor is drawn from.
      data_dir: prepared data sets (TFDS `data_dir`).
      source_dir: the original files, to prepare without downloading.
      cache_dir: folder of cached floors; None: no cache.

    Raises:
      ValueError: as `check_classifier`.
    """
    check_classifier(classifier)
    self.classifier, self.split = classifier, split
    self._where = dict(data_dir=data_dir, source_dir=source_dir, cache_dir=cache_dir)
    self._floors: dict[int, dict[str, float]] = {}
    describe = getattr(classifier, "describe", lambda: classifier.name)
    self.description = (
      f"modes: each channel read by {describe()}; real floor: as many stacked_mnist "
      f"'{split}' images drawn with replacement (seed {_FLOOR_SEED})"
    )

  def floor(self, n: int) -> dict[str, float]:
    """The real-data `summarise` at `n` samples (computed once, then kept and cached).

    Args:
      n: the sample count, as many as the generated samples it stands beside.

    Returns:
      The dict of `real_floor`.
    """
    if n not in self._floors:
      self._floors[n] = real_floor(self.classifier, n, split=self.split, **self._where)
    return self._floors[n]

  def read(self, images) -> tuple[np.ndarray, np.ndarray]:
    """The digits in one batch of generated images, kept until `result`.

    Args:
      images: float32 `(n, h, w, 3)` in [-1, 1].

    Returns:
      `classify_channels`' `(digits int64 (n, 3), confidence float32 (n, 3))`.

    Raises:
      ValueError: as `classify_channels`.
    """
    return classify_channels(self.classifier, images)

  def result(self, reads: Sequence[tuple[np.ndarray, np.ndarray]]) -> dict[str, float]:
    """The metric's values for the reads of `n` generated samples, with the floor at the same `n`.

    Args:
      reads: `read`'s `(digits int (b, 3), confidence float (b, 3))` of each batch.

    Returns:
      `modes`, `kl`, `confidence`, `low_confidence`, and `modes_real`, `kl_real`,
      `confidence_real` for the real data.
    """
    digits = np.concatenate([d for d, _ in reads])
    got = summarise(digits, np.concatenate([c for _, c in reads]))
    real = self.floor(len(digits))
    out = {k: got[k] for k in ("modes", "kl", "confidence", "low_confidence")}
    out.update({f"{k}_real": real[k] for k in ("modes", "kl", "confidence")})
    return out


# The Evaluator builds the `ModesMetric` (its digit reader) and holds it as `Evaluator.modes`.
@register(
  "modes",
  reads=(),
  measure=lambda ev, images: ev.modes.read(images),
  reference=False,
  dataset="stacked_mnist",
  primary="kl",
  rank=2,
)
def _modes(ev, samples) -> dict[str, float]:
  """Stacked MNIST's modes and KL of the samples, beside the real-data floor."""
  return ev.modes.result(samples.own)


class ChannelwiseExtractor:
  """A single-channel feature network over 3-channel images: per-channel features, concatenated.

  For Frechet distances and the like on Stacked MNIST with the MNIST classifier.

  Attributes:
    inner: the single-channel extractor.
    name: the inner extractor's name.
    id: the inner `id` with a `':channelwise'` suffix (None without one).
  """

  def __init__(self, inner: Any):
    """Wraps a single-channel extractor.

    Args:
      inner: a `FeatureExtractor` whose `features` take float32 `(m, h, w, 1)` images.
    """
    self.inner = inner
    self.name = inner.name
    ident = getattr(inner, "id", None)
    self.id = None if ident is None else f"{ident}:channelwise"

  def describe(self) -> str:
    """The inner network's description, per channel."""
    inner = getattr(self.inner, "describe", lambda: self.inner.name)()
    return f"{inner}, per channel, features concatenated"

  def features(self, images) -> np.ndarray:
    """The inner features of each channel, concatenated in channel order.

    Args:
      images: float32 `(n, h, w, 3)` in [-1, 1].

    Returns:
      float32 `(n, 3 d)` for the inner extractor's `d`.
    """
    images = np.asarray(images, np.float32)
    n, h, w, c = images.shape
    f = np.asarray(self.inner.features(np.moveaxis(images, -1, 1).reshape(n * c, h, w, 1)))
    return f.reshape(n, -1)
