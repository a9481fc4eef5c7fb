"""`Evaluator`: sample-based GAN metrics under one pinned, printed protocol.

Frechet distances and their kin are comparable only under one protocol: the feature network and
its weights, the preprocessing, the reference set and the sample counts. An `Evaluator` fixes
all of them when it is built, computes (or loads from its cache) the reference statistics once,
puts the protocol inside every metric key and spells it out in `protocol`, to print beside every
number. From research code, with any object that has `name` and `features` as the extractor:

  >>> import numpy as np
  >>> class Pixels:
  ...   name = "pixels"
  ...   def features(self, images):  # float32 (n, h, w, c) -> float32 (n, d)
  ...     return images.reshape(len(images), -1)
  >>> real = np.random.default_rng(0).uniform(-1, 1, (1000, 2, 2, 1))
  >>> ev = Evaluator.create(metrics="fcd,kid", extractor=Pixels(), reference_images=real,
  ...                       num_samples=500, kid_subsets=10, kid_subset_size=100)
  >>> ev.primary, ev.primary_mode
  ('pixels-500-train/fcd', 'min')
  >>> fake = lambda key, n: np.random.default_rng(1).uniform(-1, 1, (n, 2, 2, 1))
  >>> results = ev.evaluate(fake)
  >>> sorted(results)
  ['pixels-500-train/fcd', 'pixels-500-train/kid', 'pixels-500-train/kid_std']
  >>> bool(results['pixels-500-train/fcd'] < 0.05)
  True

In a training run, `jaxgan.run.loop` builds it from the run config (`Evaluator.from_config`), with
jaxgan's classifier (`extractor='classifier'`: `classifier_path`, else the data set's cached one,
`jaxgan.metrics.classifier_cache`) or the FID Inception network (`extractor='inception'`).

Metric names: `fcd` and `fid` both mean the Frechet distance of the extractor's features
(Heusel et al. 2017; the key says `fid` with the Inception extractor, `fcd` otherwise); `kid`
(`kid` and `kid_std`: unbiased MMD^2, Binkowski et al. 2018, not scaled by 1e3);
`precision_recall` (`precision` and `recall`, Kynkaanniemi et al. 2019); `is` (`is` and
`is_std`: the Inception Score of the extractor's classifier head, Salimans et al. 2016);
`modes`, Stacked MNIST only (`modes`, `kl` and the real-data `modes_real`, `kl_real`...: see
`jaxgan.metrics.stacked_mnist`). Conditional models (`num_classes > 0`) also have `class_acc`
and `intra_fcd`/`intra_fid` (and per class `class_acc_<c>`, `intra_fcd_<c>`: see
`jaxgan.metrics.conditional`), from samples of requested classes; the others see uniformly
drawn classes. Keys read `<extractor>-<samples>-<reference>/<metric>`, e.g.
`mnist_convnet-10k-train/fcd`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from jaxgan.metrics import conditional as conditional_lib
from jaxgan.metrics import eval_networks as networks
from jaxgan.metrics import reference as reference_lib
from jaxgan.metrics import stacked_mnist
from jaxgan.metrics.batching import draw, extract, spread
from jaxgan.metrics.eval_networks import METRICS as METRICS  # the names, public here too
from jaxgan.metrics.extractors import FeatureExtractor
from jaxgan.metrics.fid import FeatureStats, inception_score, stats_distance
from jaxgan.metrics.kid import kernel_inception_distance
from jaxgan.metrics.precision_recall import precision_recall

log = logging.getLogger(__name__)

_CONDITIONAL_STREAM = 2**31 - 1  # folded into the key of the conditional samples


def _count(n: int) -> str:
  return f"{n // 1000}k" if n >= 1000 and n % 1000 == 0 else str(n)


class Evaluator:
  """Reference statistics and the metrics of generated samples against them, under one protocol.

  Build one with `create` (plain keyword arguments) or `from_config` (a run config); the
  constructor takes reference statistics already computed.

  Attributes:
    extractor: the `FeatureExtractor`.
    reference: the `reference.Reference` (statistics of the real images); None when the metrics
      need none (`modes`, `class_acc`).
    modes: the `stacked_mnist.ModesMetric` of metric `modes`, else None.
    conditional: the `conditional.ConditionalMetrics` of `class_acc` and `intra_*`, else None.
    metrics: the metrics computed, `'frechet'` standing for `fcd`/`fid`, `'intra'` for
      `intra_fcd`/`intra_fid`.
    num_samples: generated images per evaluation.
    prefix: the start of every metric key, `<extractor>-<samples>-<reference>`.
    primary: the key of the metric that ranks checkpoints: the Frechet distance, else KID, else
      Stacked MNIST's `kl`, else the intra-class distance, else None.
    primary_mode: `'min'` (lower `primary` is better).
    protocol: the whole protocol in words.
  """

  def __init__(
    self,
    extractor: FeatureExtractor,
    reference: reference_lib.Reference | None,
    *,
    metrics: str | Sequence[str] = "fcd",
    modes: stacked_mnist.ModesMetric | None = None,
    num_samples: int = 10_000,
    batch_size: int = 500,
    kid_subsets: int = 100,
    kid_subset_size: int = 1000,
    pr_k: int = 3,
    pr_samples: int = 10_000,
    is_splits: int = 10,
    conditional: conditional_lib.ConditionalMetrics | None = None,
    reference_split: str = "train",
  ):
    """An Evaluator over reference statistics already computed.

    Args:
      extractor: a `FeatureExtractor`.
      reference: the real images' statistics (`reference.from_images` / `from_dataset`); None
        when `modes` is the only metric.
      metrics: names from `METRICS`, as a sequence or a comma-separated string.
      modes: the `stacked_mnist.ModesMetric` that metric `modes` needs.
      num_samples: generated images per `evaluate` call.
      batch_size: images per `sample_fn` call and per extractor call.
      kid_subsets: KID's number of random subsets.
      kid_subset_size: vectors per KID subset (capped at the smaller set).
      pr_k: the k of precision/recall's k-NN radii.
      pr_samples: at most this many vectors per side for precision/recall (its cost is
        quadratic in them).
      is_splits: splits of the Inception Score's mean and std.
      conditional: the `conditional.ConditionalMetrics` that `class_acc` and `intra_*` need.
      reference_split: the reference's token in the keys when there is no `reference`.

    Raises:
      ValueError: for unknown metrics, a non-positive sample count, `is` with an extractor
        that has no `logits`, `modes` or `class_acc`/`intra_*` without `modes=` or
        `conditional=` (or the other way round), or no reference for the other metrics.
    """
    self.extractor, self.reference, self.modes = extractor, reference, modes
    self.metrics, self.conditional = networks.parse_metrics(metrics), conditional
    cond = [m for m in self.metrics if m in conditional_lib.NAMES]
    self._feature_metrics = [m for m in self.metrics if m not in ("modes", *cond)]
    fix = "Evaluator.create builds what each metric needs."
    if cond != list(getattr(conditional, "metrics", [])):
      raise ValueError(f"conditional= goes with metrics {cond}; got {conditional!r}. {fix}")
    if "is" in self.metrics and not hasattr(extractor, "logits"):
      raise ValueError(f"Metric 'is' needs an extractor with logits(); {extractor!r} has none.")
    if ("modes" in self.metrics) != (modes is not None):
      raise ValueError(
        f"modes= goes with metric 'modes', and only with it; got both or neither. {fix}"
      )
    if self._feature_metrics and not reference:
      raise ValueError(f"Metrics {self._feature_metrics} need reference= (real statistics). {fix}")
    if not isinstance(num_samples, int) or num_samples < 2:
      raise ValueError(f"num_samples must be an integer >= 2; got {num_samples!r}.")
    self.num_samples = num_samples
    self.batch_size, self.is_splits = batch_size, is_splits
    self.kid_subsets, self.kid_subset_size = kid_subsets, kid_subset_size
    self.pr_k, self.pr_samples = pr_k, pr_samples
    self._name = getattr(extractor, "name", type(extractor).__name__)
    self._fd_name = networks.frechet_name(extractor)
    self._split = reference_split
    self.prefix = self._prefix(num_samples)
    intra = f"intra_{self._fd_name}"
    ranked = {"frechet": self._fd_name, "kid": "kid", "modes": "kl", "intra": intra}
    first = next((ranked[m] for m in ranked if m in self.metrics), None)
    self.primary = None if first is None else f"{self.prefix}/{first}"
    self.primary_mode = "min"
    describe = getattr(extractor, "describe", None)
    parts = [f"{num_samples} generated samples"]
    if reference is not None:
      parts[0] += f" vs {reference.description}"
      parts.insert(0, f"features: {self._name}" + (f" = {describe()}" if describe else ""))
    if modes is not None:
      parts.append(modes.description)
    if "kid" in self.metrics:
      parts.append(f"KID: {kid_subsets} subsets of {kid_subset_size}")
    if "precision_recall" in self.metrics:
      parts.append(f"P&R: k={pr_k}, <= {pr_samples} per side")
    if "is" in self.metrics:
      parts.append(f"IS: {is_splits} splits")
    if self.conditional is not None:
      parts.append(self.conditional.description)
    self.protocol = "; ".join(parts)

  def _prefix(self, n: int) -> str:
    ref = self.modes.split if self.modes is not None else self._split
    return f"{self._name}-{_count(n)}-{ref if self.reference is None else self.reference.name}"

  @classmethod
  def create(
    cls,
    *,
    metrics: str | Sequence[str] = "fcd",
    extractor: str | FeatureExtractor = "classifier",
    classifier_path: str | None = None,
    inception_weights: str | None = None,
    dataset: str | None = None,
    reference_split: str = "train",
    reference_images=None,
    num_reference: int | None = None,
    pad_to: int | None = None,
    data_dir: str | None = None,
    source_dir: str | None = None,
    cache_dir: str | None = None,
    classifier_cache_dir: str | None = None,
    num_samples: int = 10_000,
    batch_size: int = 500,
    kid_subset_size: int = 1000,
    num_classes: int = 0,
    classes: str | Sequence[int] | None = None,
    reference_labels=None,
    read: dict | None = None,
    **settings,
  ) -> Evaluator:
    """An Evaluator from plain keyword arguments, its reference statistics computed or cached.

    The reference: a data set's split (`dataset`, `reference_split`) or `reference_images`.

    Args:
      metrics: names from `METRICS`, as a sequence or a comma-separated string.
      extractor: `'classifier'`, `'inception'` (see `load_extractor`) or a `FeatureExtractor`.
      classifier_path: weights of `extractor='classifier'` (and of `modes`' digit reader); None:
        the data set's cached classifier (`classifier_cache.cached_classifier`).
      inception_weights: weights of `extractor='inception'`.
      dataset: a name in `jaxgan.data.BUILDERS`, e.g. `'mnist'`.
      reference_split: the split to compare against; with `reference_images`, only its name in
        the metric keys.
      reference_images: float32 `(n, h, w, c)` in [-1, 1], the real images.
      num_reference: use the first this many images of the split; None: all of them.
      pad_to: pad the split's images to `pad_to x pad_to`, as the training loader does.
      data_dir: prepared data sets (TFDS `data_dir`).
      source_dir: the original files, to prepare without downloading.
      cache_dir: folder for cached reference statistics; None: no cache.
      classifier_cache_dir: folder of the cached classifiers and Stacked MNIST floors; None:
        `$JAXGAN_CACHE_DIR`, else `~/.cache/jaxgan`.
      num_samples: generated images per evaluation (and reference vectors kept for KID, P&R).
      batch_size: images per `sample_fn` call and per extractor call.
      kid_subset_size: vectors per KID subset.
      num_classes: the model's class count, for `class_acc` and `intra_*` (0: unconditional).
      classes: the classes those evaluate, a sequence or a comma-separated string; None: all.
      reference_labels: int `(n,)`, the classes of `reference_images`, for `intra_*`.
      read: `load_source`'s options (`jaxgan.config.read_options`); None: defaults.
      **settings: the other keywords of `Evaluator` (`kid_subsets`, `pr_k`, `pr_samples`,
        `is_splits`).

    Returns:
      The Evaluator.

    Raises:
      ValueError: for both or neither of `dataset` and `reference_images`, unknown metrics or
        extractor, missing weights, `modes` on another data set than `stacked_mnist` or with
        a classifier `stacked_mnist.check_classifier` refuses (e.g. under 97% accuracy), and
        conditional requests `conditional.check_request` refuses.
    """
    if (dataset is None) == (reference_images is None):
      raise ValueError(
        "Give exactly one of dataset= (a data set's split as the reference) and reference_images="
        f"; got dataset={dataset!r} and reference_images={type(reference_images).__name__}."
      )
    names = networks.parse_metrics(metrics)  # before the expensive part
    fd = networks.frechet_name(extractor)
    classes = conditional_lib.check_request(names, num_classes, classes, num_samples, fd)
    where = dict(data_dir=data_dir, source_dir=source_dir)
    extractor, modes, clf = networks.resolve_networks(
      extractor,
      names,
      dataset=dataset,
      classifier_path=classifier_path,
      inception_weights=inception_weights,
      split=reference_split,
      classifier_cache_dir=classifier_cache_dir,
      **where,
    )
    # Reference vectors kept: as many as the samples of one evaluation, and at least one subset.
    common = dict(keep=max(num_samples, kid_subset_size), batch_size=batch_size)
    common["classes"] = classes if "intra" in names else None
    ref = None
    if dataset is None and not set(names) <= {"modes", "class_acc"}:
      ref = reference_lib.from_images(
        extractor, reference_images, name=reference_split, labels=reference_labels, **common
      )
    elif not set(names) <= {"modes", "class_acc"}:
      ref = reference_lib.from_dataset(
        extractor, dataset, reference_split, num_reference=num_reference, pad_to=pad_to,
        cache_dir=cache_dir, read=read, **where, **common
      )  # fmt: skip
    cm = None
    if classes is not None:
      cm = conditional_lib.ConditionalMetrics(
        names, num_classes=num_classes, num_samples=num_samples, classes=classes, classifier=clf,
        extractor=extractor, reference_stats=getattr(ref, "class_stats", None)
      )  # fmt: skip
    return cls(
      extractor,
      ref,
      metrics=metrics,
      modes=modes,
      num_samples=num_samples,
      batch_size=batch_size,
      kid_subset_size=kid_subset_size,
      conditional=cm,
      reference_split=reference_split,
      **settings,
    )

  @classmethod
  def from_config(
    cls,
    config,
    *,
    cache_dir: str | None = None,
    extractor: FeatureExtractor | None = None,
    **settings,
  ) -> Evaluator:
    """The Evaluator a run config asks for.

    Reads `config.eval` (metrics, extractor, classifier_path, inception_weights,
    reference_split, num_samples, cache_dir, classes), `config.data` (name, pad_to),
    `config.model.num_classes` and `config.run` (data_dir, source_dir).

    Args:
      config: a run config (`jaxgan.config.default_config()` and overrides).
      cache_dir: folder for cached reference statistics; None: `config.eval.cache_dir` (and no
        cache when that is unset).
      extractor: a `FeatureExtractor` to use instead of the one `config.eval.extractor` names.
      **settings: keywords of `create` that the run config does not hold (`num_reference`,
        `batch_size`, `kid_subsets`, `kid_subset_size`, `pr_k`, `pr_samples`, `is_splits`).

    Returns:
      The Evaluator.

    Raises:
      ValueError: for a toy data set or empty `config.eval.metrics` (the loop reports mode
        coverage then and builds no Evaluator), and as `create`.
      TypeError: for a keyword the run config holds (set it in the config instead).
    """
    return cls.create(
      **networks.create_kwargs(config, cache_dir=cache_dir, extractor=extractor, **settings)
    )

  def evaluate(
    self, sample_fn: Callable[[Any, int], Any], n: int | None = None, *, key=None
  ) -> dict[str, float]:
    """Draws samples from `sample_fn` and returns every metric against the reference.

    Args:
      sample_fn: `sample_fn(key, batch) -> images`, float32 `(batch, h, w, c)` in [-1, 1] (JAX
        or NumPy). Called with keys `jax.random.fold_in(key, i)`, i = 0, 1, ..., and batches of
        at most `batch_size`; extra rows are dropped. For `class_acc` and `intra_*` also as
        `sample_fn(key, batch, labels)`, labels int32 `(batch,)`, with keys
        `fold_in(fold_in(key, 2**31 - 1), i)`.
      n: the number of samples; None: `num_samples`. Another count is another protocol: the keys
        then carry it.
      key: a JAX PRNG key; None: `jax.random.PRNGKey(0)`.

    Returns:
      `{'<prefix>/<metric>': value}`: Python floats, `fcd`/`fid` and `kid` in squared feature
      units, `precision`/`recall` fractions in [0, 1], `is` between 1 and the number of classes,
      `modes` of 1000 and `kl` in nats (see `stacked_mnist.ModesMetric.result`), `class_acc` in
      [0, 1] and `intra_*` (see `conditional.ConditionalMetrics.evaluate`).
    """
    import jax  # pylint: disable=g-import-not-at-top  (the statistics above need no JAX)

    n = self.num_samples if n is None else int(n)
    key = jax.random.PRNGKey(0) if key is None else key
    want_logits = "is" in self.metrics
    start = time.perf_counter()
    unconditional = self._feature_metrics or self.modes is not None

    def measure(images, _):
      f = lg = None
      if self._feature_metrics:
        f, lg = extract(self.extractor, images, logits=want_logits)
      return f, lg, None if self.modes is None else self.modes.read(images)

    batches = draw(sample_fn, key, n if unconditional else 0, self.batch_size)
    measured = spread(batches, measure)  # each host extracts its share on several hosts
    feats, logits, reads = ([m[i] for m in measured if m[i] is not None] for i in range(3))
    prefix, ref = self._prefix(n), self.reference
    out: dict[str, float] = {}
    if self.modes is not None:
      out.update(self.modes.result(reads, prefix))
    feats = np.concatenate(feats) if feats else None
    if "frechet" in self.metrics:
      stats = FeatureStats().update(feats)
      out[f"{prefix}/{self._fd_name}"] = stats_distance(stats, ref.stats)
    if "kid" in self.metrics:
      out[f"{prefix}/kid"], out[f"{prefix}/kid_std"] = kernel_inception_distance(
        feats, ref.feats, num_subsets=self.kid_subsets, subset_size=self.kid_subset_size
      )
    if "precision_recall" in self.metrics:
      m = self.pr_samples
      pr = precision_recall(ref.feats[:m], feats[:m], k=self.pr_k)
      out[f"{prefix}/precision"], out[f"{prefix}/recall"] = pr["precision"], pr["recall"]
    if "is" in self.metrics:
      out[f"{prefix}/is"], out[f"{prefix}/is_std"] = inception_score(
        np.concatenate(logits), self.is_splits, from_logits=True
      )
    if self.conditional is not None:  # its own samples, of requested classes
      ckey = jax.random.fold_in(key, _CONDITIONAL_STREAM)
      out.update(self.conditional.evaluate(sample_fn, ckey, n, prefix, self.batch_size))
    log.info("Evaluated %d samples in %.1f s [%s]", n, time.perf_counter() - start, self.protocol)
    return out
