"""A small convnet classifier jaxgan trains itself, for offline "Frechet classifier distance".

The FID Inception network is ImageNet-trained and its weights must be supplied by the user; on
MNIST-like data a classifier trained on the data set itself is both cheaper and more telling
(the "Frechet LeNet distance" of several GAN papers). Its penultimate activations (post-ReLU,
`feature_dim`-d) give FCD, KID and precision/recall; its softmax head gives a classifier-based
Inception Score (at most `num_classes`). Train one from the command line (with the settings of
`jaxgan.metrics.classifier_cache.SETTINGS` unless told otherwise):

    python -m jaxgan.metrics.classifier --dataset=mnist --out=mnist_clf.npz --source_dir=DIR

or from Python with `train_classifier`, then `save_classifier(path, clf)`; `load_classifier`
reads it back and `clf.features(images)` maps float32 `(n, h, w, c)` images in [-1, 1] to
float32 `(n, feature_dim)` features.

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
import zipfile
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxgan.metrics.batching import apply_in_batches

# The networks, in their own module; public here as before.
from jaxgan.metrics.classifier_nets import ARCHS as ARCHS
from jaxgan.metrics.classifier_nets import ConvClassifier as ConvClassifier
from jaxgan.metrics.classifier_nets import check_arch, make_module
from jaxgan.metrics.reference import load_arrays

FORMAT = "jaxgan.classifier/1"


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
  """A trained classifier (`ConvClassifier` or `ResidualClassifier`) behind the
  `FeatureExtractor` protocol.

  Images of another size than the training images are centre-cropped or padded with -1 (e.g.
  MNIST padded to 32x32 by `data.pad_to`), so the features do not depend on that padding.

  Attributes:
    params: the network's parameters.
    meta: architecture, training data and settings, test accuracy and `sha256` of the params.
    image_shape: `(h, w, c)` of the training images.
    batch_size: images per forward pass.
  """

  def __init__(self, params, meta: dict[str, Any]):
    """Wraps trained parameters.

    Args:
      params: the network's parameters.
      meta: needs `num_classes`, `widths`, `feature_dim`, `image_shape`, `dataset`; `arch`
        ('conv' when absent, `make_module`).
    """
    self.params = params
    self.meta = dict(meta)
    self.module = make_module(meta)
    self.image_shape = tuple(meta["image_shape"])
    self.batch_size = 500
    self._apply = jax.jit(lambda p, x: self.module.apply({"params": p}, x))

  @property
  def name(self) -> str:
    """`'<dataset>_convnet'` (`'<dataset>_resnet'` for 'residual'): the first part of every
    metric key."""
    kind = "resnet" if self.meta.get("arch", "conv") == "residual" else "convnet"
    return f"{self.meta['dataset']}_{kind}"

  @property
  def id(self) -> str | None:
    """The SHA-256 of the parameters, keying cached reference statistics; None if unknown."""
    return self.meta.get("sha256")

  @property
  def dim(self) -> int:
    """The feature dimension."""
    return int(self.meta["feature_dim"])

  def describe(self) -> str:
    """The network, its training and its hash, for the protocol string."""
    acc = self.meta.get("test_accuracy")
    acc = f", test acc {100 * acc:.2f}%" if acc is not None else ""
    arch = "ResidualClassifier" if self.meta.get("arch") == "residual" else "ConvClassifier"
    net = f"{arch}{tuple(self.meta['widths'])}-{self.meta['feature_dim']}"
    net += "-stride" if self.meta.get("downsample") == "stride" else ""
    return (
      f"jaxgan {net} trained on {self.meta['dataset']} ({self.meta.get('steps')} steps{acc}, "
      f"sha256 {self.meta.get('sha256', '?')[:12]})"
    )

  def _run(self, images) -> tuple[np.ndarray, np.ndarray]:
    x = _adapt(images, self.image_shape)
    return apply_in_batches(self._apply, self.params, x, self.batch_size)

  def features(self, images) -> np.ndarray:
    """float32 `(n, feature_dim)` penultimate activations of float32 `(n, h, w, c)` images."""
    return self._run(images)[0]

  def logits(self, images) -> np.ndarray:
    """float32 `(n, num_classes)` logits of float32 `(n, h, w, c)` images in [-1, 1]."""
    return self._run(images)[1]

  def features_and_logits(self, images) -> tuple[np.ndarray, np.ndarray]:
    """`(features, logits)` from one forward pass."""
    return self._run(images)

  def accuracy(self, images, labels) -> float:
    """The fraction of `(n, h, w, c)` images whose argmax logit equals `labels` (int, (n,))."""
    return float((self.logits(images).argmax(-1) == np.asarray(labels)).mean())


def train_classifier(
  dataset: str = "mnist",
  *,
  steps: int = 600,
  batch_size: int = 128,
  lr: float = 2e-3,
  seed: int = 0,
  widths: Sequence[int] = (32, 64),
  feature_dim: int = 128,
  downsample: str = "max_pool",
  arch: str = "conv",
  num_train: int | None = None,
  num_test: int | None = None,
  data_dir=None,
  source_dir=None,
  train_data=None,
  test_data=None,
  log=print,
) -> tuple[ClassifierExtractor, dict]:
  """Trains a classifier (`ConvClassifier` by default) with Adam on `dataset`'s train split and
  evaluates it on its test split.

  Args:
    dataset: a name in `jaxgan.data.BUILDERS`; the meta records it, and it names the features.
    steps: Adam steps, with the learning rate decayed to 0 on a cosine.
    batch_size: images per step.
    lr: the peak learning rate.
    seed: of the initialisation and the batch order.
    widths: conv stage widths of the `ConvClassifier`.
    feature_dim: its feature dimension.
    downsample: its `downsample`, `'max_pool'` or `'stride'` ('conv' only).
    arch: `'conv'` (`ConvClassifier`, the FCD classifier) or `'residual'`
      (`jaxgan.models.backbones.ResidualClassifier`, one stage per width, the critic's
      backbone); recorded in the meta (for 'residual' only: 'conv' files are as before).
    num_train: train on the first this many images; None: all.
    num_test: evaluate on the first this many test images; None: all.
    data_dir: prepared data sets (TFDS `data_dir`).
    source_dir: original files, to prepare without downloading.
    train_data: `(images float32 (n, h, w, c) in [-1, 1], labels int (n,))` to use instead of
      loading the train split.
    test_data: the same for the test split.
    log: called with progress lines; None: silent.

  Returns:
    `(extractor, info)`; info (`test_accuracy` in [0, 1], `num_test`, `seconds` of training)
    is also stored in the extractor's meta.
  """
  if train_data is None:
    train_data = load_arrays(
      dataset, "train", data_dir=data_dir, source_dir=source_dir, limit=num_train
    )
  if test_data is None:
    test_data = load_arrays(
      dataset, "test", data_dir=data_dir, source_dir=source_dir, limit=num_test
    )
  x_train, y_train = train_data
  x_train = np.asarray(x_train, np.float32)
  if x_train.ndim == 3:
    x_train = x_train[..., None]
  num_classes = int(max(y_train.max(), np.max(test_data[1])) + 1)
  arch = check_arch(arch)
  net = dict(num_classes=num_classes, widths=list(widths), feature_dim=feature_dim)
  # 'conv' files keep the fields they always had (and no `arch`), so their bytes do not change.
  if arch == "conv":
    net["downsample"] = downsample
  else:
    net["arch"] = arch
  module = make_module(net)
  # The 'rbg' generator, in one jitted init: XLA's CPU compiler is slow on threefry's unrolled
  # rounds, once per initialiser, and a classifier needs no particular random stream.
  key = jax.random.key(seed, impl="rbg")
  params = jax.jit(module.init)(key, jnp.zeros((1, *x_train.shape[1:])))["params"]
  # Decayed to 0 on a cosine: a short, fixed budget of steps ends at a small learning rate.
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
  meta = dict(
    format=FORMAT,
    dataset=dataset,
    **net,
    image_shape=list(x_train.shape[1:]),
    steps=steps,
    batch_size=batch_size,
    lr=lr,
    seed=seed,
    num_train=len(x_train),
  )
  clf = ClassifierExtractor(params, meta)
  acc = clf.accuracy(*test_data)
  info = dict(test_accuracy=acc, num_test=len(test_data[1]), seconds=round(seconds, 1))
  clf.meta.update(info)
  clf.meta["sha256"] = _params_sha256(params)
  if log is not None:
    log(
      f"classifier on {dataset}: test accuracy {100 * acc:.2f}% ({len(test_data[1])} images), "
      f"{seconds:.1f} s"
    )
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
  """Writes the classifier to an .npz: its parameters and a JSON meta record with their hash.

  Args:
    path: the file; written whole, then renamed into place.
    clf: the classifier.

  Returns:
    The parameters' SHA-256, 64 hexadecimal characters.
  """
  sha = _params_sha256(clf.params)
  meta = dict(clf.meta, sha256=sha)
  arrays = {f"param/{k}": v for k, v in _flat(clf.params).items()}
  tmp = f"{os.fspath(path)}.tmp.npz"
  np.savez(tmp, meta=np.array(json.dumps(meta, sort_keys=True)), **arrays)
  os.replace(tmp, path)
  return sha


def load_classifier(path: str | os.PathLike) -> ClassifierExtractor:
  """Reads a file written by `save_classifier`, checking it.

  Args:
    path: the .npz.

  Returns:
    The classifier.

  Raises:
    ValueError: when the file is unreadable, of another format, altered (the SHA-256 of its
      parameters differs from the stored one) or its parameters do not fit its architecture.
  """
  fix = (
    "remove config.eval.classifier_path to use jaxgan's cached classifier, or write the file "
    "again with save_classifier (python -m jaxgan.metrics.classifier)"
  )
  if not os.path.isfile(path):
    raise ValueError(f"Classifier file {path} does not exist; {fix}.")
  # An .npz is a zip archive: anything else (a truncated copy, another file) is refused here,
  # before np.load would try to read it as a pickle.
  if not zipfile.is_zipfile(path):
    raise ValueError(f"{path} is not a jaxgan classifier file (not an .npz archive); {fix}.")
  try:
    with np.load(path, allow_pickle=False) as f:
      meta = json.loads(str(f["meta"]))
      flat = {k[len("param/") :]: f[k] for k in f.files if k.startswith("param/")}
  except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as e:
    raise ValueError(f"{path} is not a readable jaxgan classifier file ({e}); {fix}.") from e
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
    raise ValueError(
      f"{path}: parameter checksum mismatch (stored {meta.get('sha256')}, "
      f"computed {sha}); the file is corrupt or was altered."
    )
  clf = ClassifierExtractor(params, meta)
  expected = jax.eval_shape(
    clf.module.init, jax.random.PRNGKey(0), jnp.zeros((1, *clf.image_shape))
  )["params"]
  if jax.tree.structure(expected) != jax.tree.structure(params) or any(
    a.shape != b.shape
    for a, b in zip(jax.tree.leaves(expected), jax.tree.leaves(params), strict=True)
  ):
    raise ValueError(f"{path}: parameters do not match the stored architecture {meta}")
  return clf


if __name__ == "__main__":
  from jaxgan.metrics.classifier_cache import main  # pylint: disable=g-import-not-at-top

  main()
