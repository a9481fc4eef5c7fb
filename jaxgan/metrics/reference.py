"""Reference statistics: the real images' features under one extractor, cached on disk.

A `Reference` holds the float64 mean and covariance of every reference image's features (for
the Frechet distance) and a uniform random subset of the feature vectors themselves (for KID and
precision/recall, which need vectors, not moments). Computing them means a pass of the feature
network over a whole split, so `from_dataset` caches them in an .npz whose name hashes everything
they depend on: data set, split, image count, padding, the extractor's weights and the number of
vectors kept. An extractor without an `id` (its weights unknown) is never cached.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import time
from typing import Any

import numpy as np

from jaxgan.metrics.batching import extract
from jaxgan.metrics.fid import FeatureStats

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class Reference:
  """The real side of every metric.

  Attributes:
    stats: mean and covariance (float64) of all reference features.
    feats: float32 `(m, d)`: a uniform random subset of the reference features, for KID and
      precision/recall.
    name: the reference set's token in metric keys, e.g. `'train'`.
    description: where it came from, for the protocol string, e.g. `"mnist 'train' (60000
      images, cached)"`.
  """

  stats: FeatureStats
  feats: np.ndarray
  name: str
  description: str


def load_arrays(
  dataset: str, split: str, *, data_dir=None, source_dir=None, limit: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
  """Images and labels of a data set's split, through `jaxgan.data.load_source`.

  Args:
    dataset: a name in `jaxgan.data.BUILDERS`, e.g. `'mnist'`.
    split: `'train'` or `'test'`.
    data_dir: where prepared data sets live (TFDS `data_dir`); None: the default.
    source_dir: a folder with the original files, to prepare without downloading.
    limit: at most this many images (the first ones); None: the whole split.

  Returns:
    `(images float32 (n, h, w, c) in [-1, 1], labels int32 (n,))`.
  """
  from jaxgan import data  # pylint: disable=g-import-not-at-top  (TFDS is a heavy import)

  src = data.load_source(dataset, split=split, data_dir=data_dir, source_dir=source_dir)
  n = len(src) if limit is None else min(limit, len(src))
  batch = src.get_batch(np.arange(n))
  images = np.asarray(batch["image"])
  if images.ndim == 3:
    images = images[..., None]
  return images.astype(np.float32) * np.float32(2 / 255) - 1, np.asarray(batch["label"], np.int32)


def from_images(
  extractor: Any,
  images,
  *,
  keep: int,
  batch_size: int = 500,
  name: str = "reference",
  description: str | None = None,
) -> Reference:
  """Reference statistics of in-memory images.

  Args:
    extractor: a `FeatureExtractor` (see `jaxgan.metrics.evaluator`).
    images: float32 `(n, h, w, c)` in [-1, 1], the real images.
    keep: how many feature vectors to keep for KID and precision/recall (a uniform random
      subset, drawn with a fixed seed).
    batch_size: images per call of the extractor.
    name: the reference set's token in metric keys.
    description: for the protocol string; None: `name`.

  Returns:
    A `Reference` over all `n` images, with `min(keep, n)` kept vectors.
  """
  start = time.perf_counter()
  stats, kept, count = FeatureStats(), [], 0
  # Shuffled so that the first `keep` vectors are a uniform sample; sorted within a batch so
  # that a memory-mapped array is read in order.
  order = np.random.default_rng(0).permutation(len(images))
  for s in range(0, len(order), batch_size):
    f, _ = extract(extractor, np.asarray(images[np.sort(order[s : s + batch_size])]))
    stats.update(f)
    if count < keep:
      kept.append(f[: keep - count])
      count += len(kept[-1])
  log.info("Reference features of %d images in %.1f s", stats.n, time.perf_counter() - start)
  return Reference(stats, np.concatenate(kept), name, f"{description or name} ({stats.n} images)")


def _cache_path(cache_dir, extractor, key: list) -> str | None:
  ident = getattr(extractor, "id", None)
  if not cache_dir or ident is None:
    return None
  digest = hashlib.sha256(json.dumps([*key, str(ident)]).encode()).hexdigest()[:16]
  dataset, split = key[0], key[1].replace("/", "_")
  return os.path.join(
    os.path.expanduser(cache_dir),
    f"ref_{dataset}_{split}_{getattr(extractor, 'name', 'features')}_{digest}.npz",
  )


def from_dataset(
  extractor: Any,
  dataset: str,
  split: str = "train",
  *,
  keep: int,
  batch_size: int = 500,
  num_reference: int | None = None,
  pad_to: int | None = None,
  data_dir=None,
  source_dir=None,
  cache_dir: str | None = None,
) -> Reference:
  """Reference statistics of a data set's split, read from or written to the cache.

  Args:
    extractor: a `FeatureExtractor`; cached only when it has an `id` naming its weights.
    dataset: a name in `jaxgan.data.BUILDERS`.
    split: the split whose images are the reference, e.g. `'train'`.
    keep: feature vectors kept for KID and precision/recall.
    batch_size: images per call of the extractor.
    num_reference: use the first this many images; None: the whole split.
    pad_to: pad images to `pad_to x pad_to` with -1, centred, as the training loader does, so
      that real and generated images have one size.
    data_dir: prepared data sets (TFDS `data_dir`).
    source_dir: original files, to prepare without downloading.
    cache_dir: folder of cached statistics; None: no cache.

  Returns:
    A `Reference` named `split`.

  Raises:
    ValueError: when `pad_to` is smaller than the images.
  """
  path = _cache_path(cache_dir, extractor, [dataset, split, num_reference, pad_to, keep])
  described = f"{dataset} '{split}'"
  if path and os.path.exists(path):
    try:
      with np.load(path, allow_pickle=False) as f:
        stats = FeatureStats.from_mean_cov(f["mu"], f["sigma"], int(f["n"]))
        feats = f["feats"]
      log.info("Reference statistics loaded from %s", path)
      return Reference(stats, feats, split, f"{described} ({stats.n} images, cached)")
    except (OSError, ValueError, KeyError) as e:
      log.warning("Ignoring unreadable reference cache %s: %s", path, e)
  images, _ = load_arrays(
    dataset, split, data_dir=data_dir, source_dir=source_dir, limit=num_reference
  )
  if pad_to:
    from jaxgan.data.batches import centred_padding  # pylint: disable=g-import-not-at-top

    # The loader's own padding, so that the reference images match the training images exactly.
    pad = centred_padding(images.shape[1:3], pad_to)
    images = np.pad(images, ((0, 0), *pad, (0, 0)), constant_values=-1.0)
  ref = from_images(
    extractor, images, keep=keep, batch_size=batch_size, name=split, description=described
  )
  if path:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = path + ".tmp.npz"  # written whole, then renamed: a crash never leaves half a file
    np.savez(tmp, mu=ref.stats.mean, sigma=ref.stats.cov, n=np.int64(ref.stats.n), feats=ref.feats)
    os.replace(tmp, path)
    log.info("Reference statistics cached in %s", path)
  return ref
