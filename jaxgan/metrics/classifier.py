"""A small convnet classifier jaxgan trains itself, for offline "Frechet classifier distance".

The FID Inception network is ImageNet-trained and its weights must be supplied by the user; on
MNIST-like data a classifier trained on the data set itself is both cheaper and more telling
(the "Frechet LeNet distance" of several GAN papers). Its penultimate activations (post-ReLU,
`feature_dim`-d) give FCD, KID and precision/recall; its softmax head gives a classifier-based
Inception Score (at most `num_classes`).

    clf, info = train_classifier("mnist", steps=600, source_dir="../shared/data")
    print(info["test_accuracy"])
    save_classifier("mnist_classifier.npz", clf)
    clf = load_classifier("mnist_classifier.npz")       # verifies the stored SHA-256
    feats = clf.features(images)                        # NHWC float32 in [-1, 1]

Files are plain .npz (no orbax): one array per parameter (`param/<path>`) and a JSON `meta`
record holding the architecture, the training data and settings, the test accuracy and a SHA-256
of the parameters that `load_classifier` checks, so a truncated or altered file, or one written
for another architecture, is refused rather than silently giving other numbers.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from typing import Any, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxgan.metrics.batching import apply_in_batches

FORMAT = "jaxgan.classifier/1"


class ConvClassifier(nn.Module):
  """conv3x3-relu-maxpool2 per width, then Dense(feature_dim)-relu (the features), Dense(classes)."""
  num_classes: int = 10
  widths: Sequence[int] = (32, 64)
  feature_dim: int = 128

  @nn.compact
  def __call__(self, x):
    for w in self.widths:
      x = nn.Conv(w, (3, 3))(x)
      x = nn.relu(x)
      x = nn.max_pool(x, (2, 2), strides=(2, 2))
    x = x.reshape((x.shape[0], -1))
    feats = nn.relu(nn.Dense(self.feature_dim)(x))
    return feats, nn.Dense(self.num_classes)(feats)


def _adapt(images: np.ndarray, image_shape: Sequence[int]) -> np.ndarray:
  """Centre-crops (e.g. MNIST padded to 32 by `pad_to`) or pads with -1 to the trained size."""
  images = np.asarray(images, np.float32)
  if images.ndim == 3:
    images = images[..., None]
  h, w, c = image_shape
  if images.shape[-1] != c:
    raise ValueError(f"classifier expects {c} channels; images have shape {images.shape}")
  for axis, size in ((1, h), (2, w)):
    cur = images.shape[axis]
    if cur > size:
      start = (cur - size) // 2
      images = np.take(images, np.arange(start, start + size), axis=axis)
    elif cur < size:
      pad = [(0, 0)] * 4
      pad[axis] = ((size - cur) // 2, size - cur - (size - cur) // 2)
      images = np.pad(images, pad, constant_values=-1.0)
  return images


class ClassifierExtractor:
  """A trained `ConvClassifier` behind the `FeatureExtractor` protocol."""

  def __init__(self, params, meta: dict[str, Any]):
    self.params = params
    self.meta = dict(meta)
    self.module = ConvClassifier(num_classes=meta["num_classes"], widths=tuple(meta["widths"]),
                                 feature_dim=meta["feature_dim"])
    self.image_shape = tuple(meta["image_shape"])
    self.batch_size = 500
    self._apply = jax.jit(lambda p, x: self.module.apply({"params": p}, x))

  @property
  def name(self) -> str:
    return f"{self.meta['dataset']}_convnet"

  @property
  def dim(self) -> int:
    return int(self.meta["feature_dim"])

  def describe(self) -> str:
    acc = self.meta.get("test_accuracy")
    acc = f", test acc {100 * acc:.2f}%" if acc is not None else ""
    return (f"jaxgan ConvClassifier{tuple(self.meta['widths'])}-{self.meta['feature_dim']} trained "
            f"on {self.meta['dataset']} ({self.meta.get('steps')} steps{acc}, "
            f"sha256 {self.meta.get('sha256', '?')[:12]})")

  def _run(self, images) -> tuple[np.ndarray, np.ndarray]:
    x = _adapt(images, self.image_shape)
    return apply_in_batches(self._apply, self.params, x, self.batch_size)

  def features(self, images) -> np.ndarray:
    return self._run(images)[0]

  def logits(self, images) -> np.ndarray:
    return self._run(images)[1]

  def features_and_logits(self, images) -> tuple[np.ndarray, np.ndarray]:
    return self._run(images)

  def accuracy(self, images, labels) -> float:
    return float((self.logits(images).argmax(-1) == np.asarray(labels)).mean())


def load_arrays(dataset: str, split: str, *, data_dir=None, source_dir=None,
                limit: int | None = None) -> tuple[np.ndarray, np.ndarray]:
  """(images float32 NHWC in [-1, 1], int labels) of a split, via `jaxgan.data.load_source`."""
  from jaxgan import data  # pylint: disable=g-import-not-at-top  (TFDS is a heavy import)

  src = data.load_source(dataset, split=split, data_dir=data_dir, source_dir=source_dir)
  n = len(src) if limit is None else min(limit, len(src))
  batch = src.get_batch(np.arange(n))
  images = np.asarray(batch["image"])
  if images.ndim == 3:
    images = images[..., None]
  return images.astype(np.float32) * np.float32(2 / 255) - 1, np.asarray(batch["label"], np.int32)


def train_classifier(dataset: str = "mnist", *, steps: int = 600, batch_size: int = 128,
                     lr: float = 2e-3, seed: int = 0, widths: Sequence[int] = (32, 64),
                     feature_dim: int = 128, num_train: int | None = None,
                     num_test: int | None = None, data_dir=None, source_dir=None,
                     train_data=None, test_data=None, log=print) -> tuple[ClassifierExtractor, dict]:
  """Trains a `ConvClassifier` with Adam on `dataset`'s train split; evaluates on its test split.

  `train_data`/`test_data` (images in [-1, 1], labels) bypass loading. Returns the extractor and
  an info dict (`test_accuracy`, `seconds`, ...), which is also stored in the extractor's meta.
  """
  if train_data is None:
    train_data = load_arrays(dataset, "train", data_dir=data_dir, source_dir=source_dir, limit=num_train)
  if test_data is None:
    test_data = load_arrays(dataset, "test", data_dir=data_dir, source_dir=source_dir, limit=num_test)
  x_train, y_train = train_data
  x_train = np.asarray(x_train, np.float32)
  if x_train.ndim == 3:
    x_train = x_train[..., None]
  num_classes = int(max(y_train.max(), np.max(test_data[1])) + 1)
  module = ConvClassifier(num_classes=num_classes, widths=tuple(widths), feature_dim=feature_dim)
  key = jax.random.PRNGKey(seed)
  params = module.init(key, jnp.zeros((1, *x_train.shape[1:])))["params"]
  # Adam with a cosine decay to 0: a few hundred steps reach 97-98% on MNIST.
  opt = optax.adam(optax.cosine_decay_schedule(lr, max(steps, 1)))
  opt_state = opt.init(params)

  @jax.jit
  def step(params, opt_state, x, y):
    def loss_fn(p):
      _, logits = module.apply({"params": p}, x)
      return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()
    loss, grads = jax.value_and_grad(loss_fn)(params)
    updates, opt_state = opt.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state, loss

  rng = np.random.default_rng(seed)
  start = time.perf_counter()
  order = np.empty(0, np.int64)
  for i in range(steps):
    if len(order) < batch_size:
      order = np.concatenate([order, rng.permutation(len(x_train))])
    idx, order = order[:batch_size], order[batch_size:]
    params, opt_state, loss = step(params, opt_state, x_train[idx], y_train[idx])
    if log is not None and (i + 1) % max(1, steps // 5) == 0:
      log(f"classifier step {i + 1}/{steps}: loss {float(loss):.4f}")
  params = jax.device_get(params)
  seconds = time.perf_counter() - start
  meta = dict(format=FORMAT, dataset=dataset, num_classes=num_classes, widths=list(widths),
              feature_dim=feature_dim, image_shape=list(x_train.shape[1:]), steps=steps,
              batch_size=batch_size, lr=lr, seed=seed, num_train=len(x_train))
  clf = ClassifierExtractor(params, meta)
  acc = clf.accuracy(*test_data)
  info = dict(test_accuracy=acc, num_test=len(test_data[1]), seconds=round(seconds, 1))
  clf.meta.update(info)
  clf.meta["sha256"] = _params_sha256(params)
  if log is not None:
    log(f"classifier on {dataset}: test accuracy {100 * acc:.2f}% ({len(test_data[1])} images), "
        f"{seconds:.1f} s")
  return clf, info


def _flat(params) -> dict[str, np.ndarray]:
  leaves = jax.tree_util.tree_flatten_with_path(params)[0]
  return {"/".join(str(getattr(k, "key", k)) for k in path): np.asarray(v) for path, v in leaves}


def _params_sha256(params) -> str:
  h = hashlib.sha256()
  for name, arr in sorted(_flat(params).items()):
    arr = np.ascontiguousarray(arr)
    h.update(name.encode())
    h.update(str((arr.dtype.str, arr.shape)).encode())
    h.update(arr.tobytes())
  return h.hexdigest()


def save_classifier(path: str | os.PathLike, clf: ClassifierExtractor) -> str:
  """Writes the classifier to `path` (.npz); returns the parameters' SHA-256."""
  sha = _params_sha256(clf.params)
  meta = dict(clf.meta, sha256=sha)
  arrays = {f"param/{k}": v for k, v in _flat(clf.params).items()}
  tmp = f"{os.fspath(path)}.tmp.npz"
  np.savez(tmp, meta=np.array(json.dumps(meta, sort_keys=True)), **arrays)
  os.replace(tmp, path)
  return sha


def load_classifier(path: str | os.PathLike) -> ClassifierExtractor:
  """Reads a file written by `save_classifier`; raises ValueError if its checksum is wrong."""
  try:
    with np.load(path, allow_pickle=False) as f:
      meta = json.loads(str(f["meta"]))
      flat = {k[len("param/"):]: f[k] for k in f.files if k.startswith("param/")}
  except (OSError, ValueError, KeyError) as e:
    raise ValueError(f"{path} is not a readable jaxgan classifier file: {e}") from e
  if meta.get("format") != FORMAT:
    raise ValueError(f"{path}: unknown format {meta.get('format')!r} (expected {FORMAT!r})")
  params: dict = {}
  for name, arr in flat.items():
    node = params
    *parents, leaf = name.split("/")
    for p in parents:
      node = node.setdefault(p, {})
    node[leaf] = arr
  sha = _params_sha256(params)
  if sha != meta.get("sha256"):
    raise ValueError(f"{path}: parameter checksum mismatch (stored {meta.get('sha256')}, "
                     f"computed {sha}); the file is corrupt or was altered.")
  clf = ClassifierExtractor(params, meta)
  expected = jax.eval_shape(clf.module.init, jax.random.PRNGKey(0),
                            jnp.zeros((1, *clf.image_shape)))["params"]
  if jax.tree.structure(expected) != jax.tree.structure(params) or any(
      a.shape != b.shape for a, b in zip(jax.tree.leaves(expected), jax.tree.leaves(params))):
    raise ValueError(f"{path}: parameters do not match the stored architecture {meta}")
  return clf


def main(argv=None):
  """python -m jaxgan.metrics.classifier --dataset=mnist --steps=600 --out=mnist_classifier.npz"""
  import argparse  # pylint: disable=g-import-not-at-top

  parser = argparse.ArgumentParser(description="Train jaxgan's FCD classifier.")
  parser.add_argument("--dataset", default="mnist")
  parser.add_argument("--steps", type=int, default=600)
  parser.add_argument("--batch_size", type=int, default=128)
  parser.add_argument("--seed", type=int, default=0)
  parser.add_argument("--data_dir", default=None)
  parser.add_argument("--source_dir", default=None)
  parser.add_argument("--out", required=True)
  args = parser.parse_args(argv)
  clf, info = train_classifier(args.dataset, steps=args.steps, batch_size=args.batch_size,
                               seed=args.seed, data_dir=args.data_dir, source_dir=args.source_dir)
  sha = save_classifier(args.out, clf)
  print(json.dumps(dict(info, path=args.out, sha256=sha)))


if __name__ == "__main__":
  main()
