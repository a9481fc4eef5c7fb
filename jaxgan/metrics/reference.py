"""Reference statistics: the real images' features under one extractor, cached on disk.

A `Reference` holds the float64 mean and covariance of every reference image's features (for
the Frechet distance) and a uniform random subset of the feature vectors themselves (for KID and
precision/recall, which need vectors, not moments). Computing them means a pass of the feature
network over a whole split, so `from_dataset` caches them in an .npz whose name hashes everything
they depend on: data set, split, image count, padding, the extractor's weights and the number of
vectors kept. An extractor without an `id` (its weights unknown) is never cached. Asked for
classes (intra-class distances, `jaxgan.metrics.conditional`), it also keeps the mean and
covariance of each class's features, cached in a second file keyed by the classes as well: the
unconditional file stays the one unconditional runs share.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import re
import socket
import time
from collections.abc import Sequence
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
    class_stats: `{class: FeatureStats}` of the features of each requested class, or None.
  """

  stats: FeatureStats
  feats: np.ndarray
  name: str
  description: str
  class_stats: dict[int, FeatureStats] | None = None


def load_arrays(
  dataset: str,
  split: str,
  *,
  data_dir=None,
  source_dir=None,
  limit: int | None = None,
  read: dict | None = None,
) -> tuple[np.ndarray, np.ndarray | None]:
  """Images and labels of a data set's split, through `jaxgan.data.load_source`.

  Args:
    dataset: a name in `jaxgan.data.BUILDERS`, e.g. `'mnist'`.
    split: `'train'` or `'test'`.
    data_dir: where prepared data sets live (TFDS `data_dir`); None: the default.
    source_dir: a folder with the original files, to prepare without downloading.
    limit: at most this many images (the first ones); None: the whole split.
    read: `jaxgan.data.load_source`'s reading options (resolution, crop, image_key, label_key);
      None: its defaults.

  Returns:
    `(images float32 (n, h, w, c) in [-1, 1], labels int32 (n,))`; labels are None when the
    source has none (`read`'s label_key None).
  """
  from jaxgan import data  # pylint: disable=g-import-not-at-top  (TFDS is a heavy import)

  src = data.load_source(
    dataset, split=split, data_dir=data_dir, source_dir=source_dir, **(read or {})
  )
  n = len(src) if limit is None else min(limit, len(src))
  batch = src.get_batch(np.arange(n))
  images = np.asarray(batch["image"])
  if images.ndim == 3:
    images = images[..., None]
  labels = np.asarray(batch["label"], np.int32) if "label" in batch else None
  return images.astype(np.float32) * np.float32(2 / 255) - 1, labels


def from_images(
  extractor: Any,
  images,
  *,
  keep: int,
  batch_size: int = 500,
  name: str = "reference",
  description: str | None = None,
  labels=None,
  classes: Sequence[int] | None = None,
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
    labels: int `(n,)`, the class of each image; needed with `classes`.
    classes: also keep the statistics of the features of each of these classes.

  Returns:
    A `Reference` over all `n` images, with `min(keep, n)` kept vectors (and `class_stats`
    when `classes` is given).

  Raises:
    ValueError: `classes` without `labels` of every image.
  """
  if classes is not None and (labels is None or len(labels) != len(images)):
    raise ValueError(
      "Per-class reference statistics need labels= of every image (int (n,)); got "
      f"{'None' if labels is None else len(labels)} for {len(images)} images."
    )
  start = time.perf_counter()
  stats, kept, count = FeatureStats(), [], 0
  per_class = None if classes is None else {int(c): FeatureStats() for c in classes}
  # Shuffled so that the first `keep` vectors are a uniform sample; sorted within a batch so
  # that a memory-mapped array is read in order.
  order = np.random.default_rng(0).permutation(len(images))
  for s in range(0, len(order), batch_size):
    rows = np.sort(order[s : s + batch_size])
    f, _ = extract(extractor, np.asarray(images[rows]))
    stats.update(f)
    if per_class is not None:
      lab = np.asarray(labels)[rows]
      for c, cs in per_class.items():
        cs.update(f[lab == c])
    if count < keep:
      kept.append(f[: keep - count])
      count += len(kept[-1])
  log.info("Reference features of %d images in %.1f s", stats.n, time.perf_counter() - start)
  described = f"{description or name} ({stats.n} images)"
  return Reference(stats, np.concatenate(kept), name, described, per_class)


def _cache_path(cache_dir, extractor, key: list, kind: str = "ref") -> str | None:
  ident = getattr(extractor, "id", None)
  if not cache_dir or ident is None:
    return None
  digest = hashlib.sha256(json.dumps([*key, str(ident)]).encode()).hexdigest()[:16]
  # 'folder:/a/b' or 'tfds:x/y' as a file name.
  dataset, split = re.sub(r"[^\w.-]+", "_", key[0])[:60], key[1].replace("/", "_")
  return os.path.join(
    os.path.expanduser(cache_dir),
    f"{kind}_{dataset}_{split}_{getattr(extractor, 'name', 'features')}_{digest}.npz",
  )


def _load(path: str | None, split: str, described: str) -> Reference | None:
  if not (path and os.path.exists(path)):
    return None
  try:
    with np.load(path, allow_pickle=False) as f:
      stats = FeatureStats.from_mean_cov(f["mu"], f["sigma"], int(f["n"]))
      feats = f["feats"]
  except (OSError, ValueError, KeyError) as e:
    log.warning("Ignoring unreadable reference cache %s: %s", path, e)
    return None
  log.info("Reference statistics loaded from %s", path)
  return Reference(stats, feats, split, f"{described} ({stats.n} images, cached)")


def _load_classes(path: str | None) -> dict[int, FeatureStats] | None:
  if not (path and os.path.exists(path)):
    return None
  try:
    with np.load(path, allow_pickle=False) as f:
      rows = zip(f["classes"], f["mu"], f["sigma"], f["n"], strict=True)
      return {int(c): FeatureStats.from_mean_cov(m, s, int(n)) for c, m, s, n in rows}
  except (OSError, ValueError, KeyError) as e:
    log.warning("Ignoring unreadable per-class reference cache %s: %s", path, e)
    return None


def _save(path: str, **arrays) -> None:
  os.makedirs(os.path.dirname(path), exist_ok=True)
  # Written whole, then renamed: a crash never leaves half a file. The name is the process's own,
  # as every process of a multi-host run computes and caches the same statistics.
  tmp = f"{path}.{socket.gethostname()}.{os.getpid()}.tmp.npz"
  np.savez(tmp, **arrays)
  os.replace(tmp, path)
  log.info("Reference statistics cached in %s", path)


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
  classes: Sequence[int] | None = None,
  read: dict | None = None,
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
    classes: also the statistics of each of these classes (`Reference.class_stats`), from the
      split's labels; their file holds a float64 `(d, d)` covariance per class.
    read: how the data set is read (`load_arrays`); part of the cache key.

  Returns:
    A `Reference` named `split`.

  Raises:
    ValueError: when `pad_to` is smaller than the images.
  """
  # The reading options enter the key only when set, so that earlier caches stay valid.
  options = {k: v for k, v in (read or {}).items() if k != "label_key"}
  key = [dataset, split, num_reference, pad_to]
  if options != {"resolution": None, "crop": "resize_crop", "image_key": "image"} and options:
    key.append(sorted(options.items()))
  if dataset.startswith("folder:"):  # a changed folder is another reference
    from jaxgan.data import folder  # pylint: disable=g-import-not-at-top

    key.append(folder.digest(dataset))
  path = _cache_path(cache_dir, extractor, [*key, keep])
  class_key = [*key, None if classes is None else [int(c) for c in classes]]
  class_path = None if classes is None else _cache_path(cache_dir, extractor, class_key, "refcls")
  described = f"{dataset} '{split}'"
  ref, class_stats = _load(path, split, described), _load_classes(class_path)
  if ref is not None and (classes is None or class_stats is not None):
    return dataclasses.replace(ref, class_stats=class_stats)
  images, labels = load_arrays(
    dataset, split, data_dir=data_dir, source_dir=source_dir, limit=num_reference, read=read
  )
  if pad_to:
    from jaxgan.data.batches import centred_padding  # pylint: disable=g-import-not-at-top

    # The loader's own padding, so that the reference images match the training images exactly.
    pad = centred_padding(images.shape[1:3], pad_to)
    images = np.pad(images, ((0, 0), *pad, (0, 0)), constant_values=-1.0)
  ref = from_images(
    extractor,
    images,
    keep=keep,
    batch_size=batch_size,
    name=split,
    description=described,
    labels=None if classes is None else labels,
    classes=classes,
  )
  if path:
    s = ref.stats
    _save(path, mu=s.mean, sigma=s.cov, n=np.int64(s.n), feats=ref.feats)
  # A class with under 2 images has no covariance: not cached (and refused by its metric).
  if class_path and min(s.n for s in ref.class_stats.values()) >= 2:
    cs = [ref.class_stats[int(c)] for c in classes]
    _save(
      class_path,
      classes=np.asarray(classes, np.int64),
      mu=np.stack([s.mean for s in cs]),
      sigma=np.stack([s.cov for s in cs]),
      n=np.asarray([s.n for s in cs], np.int64),
    )
  return ref
