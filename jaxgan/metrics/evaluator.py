"""`Evaluator`: sample-based GAN metrics under one pinned, printed protocol.

FID-like numbers are only comparable under one protocol: the feature network and its weights,
the preprocessing, the reference split and the sample counts (GUIDE section 6). An `Evaluator`
fixes all of them at construction, caches the reference statistics, names every metric with its
protocol and exposes a human-readable `protocol` string to print beside every number::

    ev = Evaluator.from_config(dict(metrics=["fcd", "kid", "precision_recall", "is"],
                                    extractor="classifier", classifier_path="mnist_clf.npz",
                                    dataset="mnist", reference_split="train",
                                    num_samples=10_000, cache_dir="~/.cache/jaxgan"))
    print(ev.protocol)
    results = ev.evaluate(lambda key, n: gan.sample(state, key, n), key=jax.random.PRNGKey(0))
    # {'mnist_convnet-10k-train/fcd': 1.23, '.../kid': ..., '.../kid_std': ..., '.../precision':
    #  ..., '.../recall': ..., '.../is': ..., '.../is_std': ...}
    ev.primary   # 'mnist_convnet-10k-train/fcd': lower is better (ev.primary_mode == 'min')

Metric names: `fcd` and `fid` both mean the Frechet distance of the extractor's features (the key
is `fid` with the Inception extractor, `fcd` otherwise); `kid` (mean, and `kid_std`, unbiased
MMD^2, x1 not x1e3); `precision_recall` (`precision`, `recall`, k=`pr_k`, on at most
`pr_samples` vectors per side); `is` (`is`, `is_std`: Inception Score from the extractor's head).

Feature extractors follow the `FeatureExtractor` protocol; the built-in ones are
`extractor="classifier"` (`jaxgan.metrics.classifier`, needs `classifier_path`) and
`extractor="inception"` (`jaxgan.metrics.inception`, needs `inception_weights`, the pytorch-fid
.pth or its .npz conversion). Any object with `name` and `features(images)` works too.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import time
from typing import Any, Callable, Mapping, Protocol, runtime_checkable

import numpy as np

from jaxgan.metrics.fid import FeatureStats, frechet_distance, inception_score
from jaxgan.metrics.kid import kernel_inception_distance
from jaxgan.metrics.precision_recall import precision_recall

log = logging.getLogger(__name__)

METRICS = ("fcd", "fid", "kid", "precision_recall", "is")


@runtime_checkable
class FeatureExtractor(Protocol):
  """What an Evaluator needs from a feature network.

  `features(images) -> (n, d)` float array for NHWC float32 images in [-1, 1]. Optional:
  `logits(images) -> (n, classes)` (for the Inception Score), `features_and_logits(images)`
  (both in one pass), `describe() -> str` (for the protocol string) and `id` (a short string
  identifying the weights, used in the reference-statistics cache key).
  """
  name: str

  def features(self, images) -> np.ndarray:
    ...


@dataclasses.dataclass(frozen=True)
class EvalConfig:
  metrics: tuple[str, ...] = ("fcd",)
  extractor: Any = "classifier"          # 'classifier', 'inception' or a FeatureExtractor
  classifier_path: str | None = None
  inception_weights: str | None = None
  dataset: str = "mnist"
  reference_split: str = "train"
  num_reference: int | None = None       # None: the whole split
  num_samples: int = 10_000
  pad_to: int | None = None              # pad reference images like the loader (-1 border)
  data_dir: str | None = None
  source_dir: str | None = None
  cache_dir: str | None = None           # reference statistics cache; None: no cache
  batch_size: int = 500                  # images per sample_fn call / feature batch
  kid_subsets: int = 100
  kid_subset_size: int = 1000
  pr_k: int = 3
  pr_samples: int = 10_000
  is_splits: int = 10

  @classmethod
  def from_mapping(cls, config: Mapping[str, Any] | "EvalConfig") -> "EvalConfig":
    if isinstance(config, EvalConfig):
      return config
    if hasattr(config, "to_dict"):
      config = config.to_dict()
    config = dict(config)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(config) - names)
    if unknown:
      raise ValueError(f"Unknown evaluator config keys {unknown}; valid: {sorted(names)}.")
    if isinstance(config.get("metrics"), str):
      config["metrics"] = tuple(m.strip() for m in config["metrics"].split(",") if m.strip())
    out = cls(**config)
    bad = [m for m in out.metrics if m not in METRICS]
    if bad or not out.metrics:
      raise ValueError(f"Unknown metrics {bad or out.metrics}; valid: {METRICS}.")
    return out


def _count(n: int) -> str:
  return f"{n // 1000}k" if n >= 1000 and n % 1000 == 0 else str(n)


def _extract(extractor, images, want_logits):
  if want_logits and hasattr(extractor, "features_and_logits"):
    f, l = extractor.features_and_logits(images)
  else:
    f = extractor.features(images)
    l = extractor.logits(images) if want_logits else None
  return np.asarray(f, np.float32), (None if l is None else np.asarray(l, np.float32))


def make_extractor(config: EvalConfig):
  ext = config.extractor
  if not isinstance(ext, str):
    return ext
  if ext == "classifier":
    from jaxgan.metrics.classifier import load_classifier  # pylint: disable=g-import-not-at-top
    if not config.classifier_path:
      raise ValueError("extractor='classifier' needs classifier_path (train one with "
                       "`python -m jaxgan.metrics.classifier --dataset=... --out=...`).")
    return load_classifier(os.path.expanduser(config.classifier_path))
  if ext == "inception":
    from jaxgan.metrics.inception import load_inception  # pylint: disable=g-import-not-at-top
    if not config.inception_weights:
      raise ValueError("extractor='inception' needs inception_weights: the pytorch-fid file "
                       "pt_inception-2015-12-05-6726825d.pth (see jaxgan.metrics.inception).")
    return load_inception(os.path.expanduser(config.inception_weights))
  raise ValueError(f"Unknown extractor {ext!r}; use 'classifier', 'inception' or an object.")


class Evaluator:
  """Reference statistics + metrics of generated samples, under one protocol (see module doc)."""

  def __init__(self, extractor, reference_stats: FeatureStats, reference_feats: np.ndarray,
               config: EvalConfig, reference_note: str = ""):
    self.extractor = extractor
    self.config = config
    self.reference_stats = reference_stats
    self.reference_feats = reference_feats
    self.metrics = tuple(dict.fromkeys("frechet" if m in ("fcd", "fid") else m
                                       for m in config.metrics))
    self.fd_name = "fid" if getattr(extractor, "name", "") == "inception_fid" else "fcd"
    name = getattr(extractor, "name", type(extractor).__name__)
    self.prefix = f"{name}-{_count(config.num_samples)}-{config.reference_split}"
    self.primary = (f"{self.prefix}/{self.fd_name}" if "frechet" in self.metrics else
                    f"{self.prefix}/kid" if "kid" in self.metrics else None)
    self.primary_mode = "min"
    describe = getattr(extractor, "describe", None)
    feature_net = f"{name} = {describe()}" if describe else name
    parts = [f"features: {feature_net}",
             f"{config.num_samples} generated samples vs {config.dataset} "
             f"'{config.reference_split}' ({reference_stats.n} images{reference_note})"]
    if "kid" in self.metrics:
      parts.append(f"KID: {config.kid_subsets} subsets of {config.kid_subset_size}")
    if "precision_recall" in self.metrics:
      parts.append(f"P&R: k={config.pr_k}, <= {config.pr_samples} per side")
    if "is" in self.metrics:
      parts.append(f"IS: {config.is_splits} splits")
    self.protocol = "; ".join(parts)

  # -- construction -------------------------------------------------------------------------

  @classmethod
  def from_config(cls, config: Mapping[str, Any] | EvalConfig, extractor=None) -> "Evaluator":
    """Loads the extractor and the reference statistics (from the cache when present)."""
    config = EvalConfig.from_mapping(config)
    extractor = extractor if extractor is not None else make_extractor(config)
    cache = cls._cache_path(config, extractor)
    if cache and os.path.exists(cache):
      try:
        with np.load(cache, allow_pickle=False) as f:
          stats = FeatureStats.from_mean_cov(f["mu"], f["sigma"], int(f["n"]))
          feats = f["feats"]
        log.info("Reference statistics loaded from %s", cache)
        return cls(extractor, stats, feats, config, reference_note=", cached")
      except (OSError, ValueError, KeyError) as e:
        log.warning("Ignoring unreadable reference cache %s: %s", cache, e)
    from jaxgan.metrics.classifier import load_arrays  # pylint: disable=g-import-not-at-top
    images, _ = load_arrays(config.dataset, config.reference_split, data_dir=config.data_dir,
                            source_dir=config.source_dir, limit=config.num_reference)
    if config.pad_to:
      from jaxgan.data.loader import centred_padding  # pylint: disable=g-import-not-at-top
      images = np.pad(images, ((0, 0), *centred_padding(images.shape[1:3], config.pad_to), (0, 0)),
                      constant_values=-1.0)
    ev = cls.from_arrays(extractor, images, config)
    if cache:
      os.makedirs(os.path.dirname(cache), exist_ok=True)
      tmp = cache + ".tmp.npz"
      np.savez(tmp, mu=ev.reference_stats.mean, sigma=ev.reference_stats.cov,
               n=np.int64(ev.reference_stats.n), feats=ev.reference_feats)
      os.replace(tmp, cache)
      log.info("Reference statistics cached in %s", cache)
    return ev

  @classmethod
  def from_arrays(cls, extractor, reference_images, config: Mapping[str, Any] | EvalConfig
                  ) -> "Evaluator":
    """An Evaluator whose reference set is `reference_images` (NHWC in [-1, 1])."""
    config = EvalConfig.from_mapping(config)
    start = time.perf_counter()
    stats = FeatureStats()
    # Reference features kept for KID and P&R (which use at most num_samples per side); the
    # Inception Score needs no reference.
    keep = max(config.num_samples, config.kid_subset_size)
    rng = np.random.default_rng(0)
    order = rng.permutation(len(reference_images))  # the kept subset is a uniform sample
    feats_kept, kept = [], 0
    for s in range(0, len(order), config.batch_size):
      idx = np.sort(order[s:s + config.batch_size])
      f, _ = _extract(extractor, np.asarray(reference_images[idx]), want_logits=False)
      stats.update(f)
      if kept < keep:
        feats_kept.append(f[:keep - kept])
        kept += len(feats_kept[-1])
    log.info("Reference features of %d images in %.1f s", stats.n, time.perf_counter() - start)
    return cls(extractor, stats, np.concatenate(feats_kept), config)

  @staticmethod
  def _cache_path(config: EvalConfig, extractor) -> str | None:
    if not config.cache_dir:
      return None
    ident = getattr(extractor, "id", None) or getattr(extractor, "meta", {}).get("sha256")
    if ident is None:
      return None  # an arbitrary extractor: no safe cache key
    key = json.dumps([config.dataset, config.reference_split, config.num_reference,
                      config.pad_to, str(ident), config.num_samples, config.kid_subset_size],
                     sort_keys=True)
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    name = getattr(extractor, "name", "features")
    return os.path.join(os.path.expanduser(config.cache_dir),
                        f"ref_{config.dataset}_{config.reference_split.replace('/', '_')}_{name}_{digest}.npz")

  # -- evaluation ---------------------------------------------------------------------------

  def evaluate(self, sample_fn: Callable[[Any, int], Any], n: int | None = None, *,
               key=None) -> dict[str, float]:
    """Draws `n` (default `config.num_samples`) samples and returns the metrics.

    `sample_fn(key, batch) -> images` (NHWC in [-1, 1], jax or NumPy) is called with keys
    `jax.random.fold_in(key, i)` for i = 0, 1, ... and batches of `config.batch_size`. A
    different `n` than the configured one changes the protocol: the keys then say so.
    """
    import jax  # pylint: disable=g-import-not-at-top

    n = self.config.num_samples if n is None else int(n)
    key = jax.random.PRNGKey(0) if key is None else key
    want_logits = "is" in self.metrics and hasattr(self.extractor, "logits")
    start = time.perf_counter()
    stats, feats, logits, done, i = FeatureStats(), [], [], 0, 0
    while done < n:
      b = min(self.config.batch_size, n - done)
      images = np.asarray(jax.device_get(sample_fn(jax.random.fold_in(key, i), b)), np.float32)[:b]
      f, l = _extract(self.extractor, images, want_logits)
      stats.update(f)
      feats.append(f)
      if l is not None:
        logits.append(l)
      done, i = done + len(f), i + 1
    feats = np.concatenate(feats)
    prefix = self.prefix if n == self.config.num_samples else (
        f"{self.prefix.rsplit('-', 2)[0]}-{_count(n)}-{self.config.reference_split}")
    out: dict[str, float] = {}
    if "frechet" in self.metrics:
      out[f"{prefix}/{self.fd_name}"] = frechet_distance(*stats.mean_cov(),
                                                         *self.reference_stats.mean_cov())
    if "kid" in self.metrics:
      mean, std = kernel_inception_distance(feats, self.reference_feats,
                                            num_subsets=self.config.kid_subsets,
                                            subset_size=self.config.kid_subset_size)
      out[f"{prefix}/kid"], out[f"{prefix}/kid_std"] = mean, std
    if "precision_recall" in self.metrics:
      m = self.config.pr_samples
      pr = precision_recall(self.reference_feats[:m], feats[:m], k=self.config.pr_k)
      out[f"{prefix}/precision"], out[f"{prefix}/recall"] = pr["precision"], pr["recall"]
    if "is" in self.metrics and logits:
      mean, std = inception_score(np.concatenate(logits), self.config.is_splits, from_logits=True)
      out[f"{prefix}/is"], out[f"{prefix}/is_std"] = mean, std
    log.info("Evaluated %d samples in %.1f s [%s]", n, time.perf_counter() - start, self.protocol)
    return out
