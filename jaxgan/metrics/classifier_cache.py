"""jaxgan's own classifiers, trained once per data set with fixed settings and then reused.

`eval.extractor='classifier'` with no `eval.classifier_path` asks for one of these: the first
run trains it (`SETTINGS`: a small network and few Adam steps, cheap on a CPU, and well above
the accuracy that Stacked MNIST's metric demands) and writes it to `<cache>/classifiers/`, the
later ones load it. `<cache>` is `$JAXGAN_CACHE_DIR`, else `~/.cache/jaxgan`, rather than a
run's folder: the classifier depends on the data set and the settings only, so every run, seed
and study shares one, and their numbers stay comparable. The file name hashes the data set, the settings and the file
format, so a change of any of them trains a new one instead of reusing a stale one.

Stacked MNIST's channels are MNIST digits, so `stacked_mnist` gets the MNIST classifier.

A second entry, `BACKBONE_SETTINGS`, trains the feature-network critic's backbone
(`cached_backbone`, `<cache>/backbones/`): another architecture (`ResidualClassifier`) and another
seed than the FCD classifier's, so that a GAN trained against the backbone's features is not
scored by the same network.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from collections.abc import Callable

from jaxgan.metrics import classifier as clf_lib

# The one jaxgan cache folder, shared with the fetched Inception weights.
from jaxgan.metrics.inception_weights import cache_dir as default_cache_dir
from jaxgan.models.backbones import CLASSIFIER_FEATURE_DIM, CLASSIFIER_WIDTHS

log = logging.getLogger(__name__)

# The training settings of every cached classifier: strided convolutions (no max-pool gradient,
# slow on XLA's CPU backend) and small batches, the quickest of the settings measured to clear
# `stacked_mnist.MIN_ACCURACY` on MNIST's test set with margin over seeds.
SETTINGS = dict(
  steps=1500, batch_size=64, lr=3e-3, seed=0, widths=(32, 64), feature_dim=128, downsample="stride"
)
# The feature-network critic's backbone (`jaxgan.models.backbones`, 'classifier'): the residual
# network with the backbone's widths, and another seed than `SETTINGS`'.
BACKBONE_SETTINGS = dict(
  arch="residual",
  steps=1500,
  batch_size=64,
  lr=3e-3,
  seed=1,
  widths=CLASSIFIER_WIDTHS,
  feature_dim=CLASSIFIER_FEATURE_DIM,
)
# Data set of the run -> the data set its classifier learns.
TRAINED_ON = {
  "mnist": "mnist",
  "fashion_mnist": "fashion_mnist",
  "stacked_mnist": "mnist",
  # A scorer for runs that Inception FID cannot judge (a critic on Inception's features): weak as
  # a classifier at these settings, but a network of its own (eval_networks.check_critic_network).
  "cifar10": "cifar10",
  "cifar10_jpeg": "cifar10_jpeg",
}


def classifier_dataset(dataset: str) -> str:
  """The data set a run's cached classifier is trained on.

  Args:
    dataset: the run's data set, e.g. `'stacked_mnist'`.

  Returns:
    A name in `jaxgan.data.BUILDERS`, e.g. `'mnist'`.

  Raises:
    ValueError: there is no cached classifier for `dataset`; the message names the ways out.

  >>> classifier_dataset("stacked_mnist")
  'mnist'
  """
  if dataset not in TRAINED_ON:
    raise ValueError(
      f"No cached classifier for data set {dataset!r} (only for {sorted(TRAINED_ON)}). Set "
      "eval.classifier_path to one you trained (`python -m jaxgan.metrics.classifier "
      f"--dataset={dataset} --out=...`), or use eval.extractor='inception'."
    )
  return TRAINED_ON[dataset]


def cached_classifier_path(dataset: str, cache_dir: str | os.PathLike | None = None) -> str:
  """Where the cached classifier of a run on `dataset` lives (whether or not it exists yet).

  Args:
    dataset: the run's data set.
    cache_dir: the jaxgan cache; None: `default_cache_dir()`.

  Returns:
    `<cache_dir>/classifiers/<trained-on>_convnet_<16 hex digits>.npz`.

  Raises:
    ValueError: as `classifier_dataset`.
  """
  return _path(dataset, cache_dir, SETTINGS, "classifiers", "convnet")


# The data sets with a classifier backbone: the 'classifier' backbone reads 1-channel images
# (`jaxgan.models.backbones`), Stacked MNIST's channel by channel.
BACKBONE_DATASETS = ("mnist", "fashion_mnist", "stacked_mnist")


def check_backbone_dataset(dataset: str) -> None:
  """Refuses the classifier backbone on a data set it cannot be trained for.

  Raises:
    ValueError: a data set other than `BACKBONE_DATASETS`, naming the Inception backbone.
  """
  if dataset not in BACKBONE_DATASETS:
    raise ValueError(
      f"the 'classifier' backbone is a 1-channel network jaxgan trains on {', '.join(BACKBONE_DATASETS)}"
      f"; {dataset!r} has none. Use model.kwargs.backbone='inception' (the FID network, scored "
      "then by eval.extractor='classifier')."
    )


def cached_backbone_path(dataset: str, cache_dir: str | os.PathLike | None = None) -> str:
  """Where the cached backbone classifier of a run on `dataset` lives (`BACKBONE_SETTINGS`).

  Returns:
    `<cache_dir>/backbones/<trained-on>_resnet_<16 hex digits>.npz`.

  Raises:
    ValueError: as `classifier_dataset`.
  """
  return _path(dataset, cache_dir, BACKBONE_SETTINGS, "backbones", "resnet")


def _path(dataset, cache_dir, settings: dict, folder: str, kind: str) -> str:
  trained_on = classifier_dataset(dataset)
  key = json.dumps([clf_lib.FORMAT, trained_on, settings], sort_keys=True)
  digest = hashlib.sha256(key.encode()).hexdigest()[:16]
  root = os.path.expanduser(os.fspath(cache_dir)) if cache_dir else default_cache_dir()
  return os.path.join(root, folder, f"{trained_on}_{kind}_{digest}.npz")


def cached_classifier(
  dataset: str,
  *,
  cache_dir: str | os.PathLike | None = None,
  data_dir=None,
  source_dir=None,
  log_fn: Callable[[str], None] | None = None,
) -> clf_lib.ClassifierExtractor:
  """The cached classifier for a run on `dataset`, trained with `SETTINGS` on first use.

  Training reads the data set's train split and scores the test split (`train_classifier`);
  the file is written whole to a temporary name and renamed, so concurrent runs and crashes
  never leave half a file. One line is logged: trained or reused, with the test accuracy.

  Args:
    dataset: the run's data set (`'mnist'`, `'fashion_mnist'` or `'stacked_mnist'`).
    cache_dir: the jaxgan cache; None: `default_cache_dir()`.
    data_dir: prepared data sets (TFDS `data_dir`), for training.
    source_dir: the original files, to prepare without downloading.
    log_fn: receives the line; None: `logging.info`.

  Returns:
    The `ClassifierExtractor`.

  Raises:
    ValueError: as `classifier_dataset`.
  """
  path = cached_classifier_path(dataset, cache_dir)
  return _cached(dataset, path, SETTINGS, "classifier", data_dir, source_dir, log_fn)


def cached_backbone(
  dataset: str,
  *,
  cache_dir: str | os.PathLike | None = None,
  data_dir=None,
  source_dir=None,
  log_fn: Callable[[str], None] | None = None,
) -> clf_lib.ClassifierExtractor:
  """The cached backbone classifier for a run on `dataset`, trained with `BACKBONE_SETTINGS`
  on first use (as `cached_classifier`); its `params` are the critic's backbone weights.

  Args: as `cached_classifier`'s.

  Returns:
    The `ClassifierExtractor` of the `ResidualClassifier`.

  Raises:
    ValueError: as `classifier_dataset`.
  """
  check_backbone_dataset(dataset)
  path = cached_backbone_path(dataset, cache_dir)
  return _cached(dataset, path, BACKBONE_SETTINGS, "backbone", data_dir, source_dir, log_fn)


def _cached(dataset, path, settings, what, data_dir, source_dir, log_fn):
  say = log_fn or log.info
  if os.path.exists(path):
    try:
      clf = clf_lib.load_classifier(path)
    except ValueError as e:  # altered or truncated: train it again
      log.warning("Retraining the cached %s: %s", what, e)
    else:
      acc = 100 * clf.meta["test_accuracy"]
      say(f"Reusing the cached {clf.meta['dataset']} {what} {path} (test accuracy {acc:.2f}%)")
      return clf
  trained_on = classifier_dataset(dataset)
  # Announced on the module's logger (the run's log), minutes before `say`'s one line.
  log.info(
    "Training the %s %s (first use: minutes on a CPU; cached for later runs)", trained_on, what
  )
  clf, info = clf_lib.train_classifier(
    trained_on, **settings, data_dir=data_dir, source_dir=source_dir, log=None
  )
  os.makedirs(os.path.dirname(path), exist_ok=True)
  fd, tmp = tempfile.mkstemp(suffix=".npz", dir=os.path.dirname(path))
  os.close(fd)
  try:
    clf_lib.save_classifier(tmp, clf)  # itself writes tmp + ".tmp.npz", then renames to tmp
    os.replace(tmp, path)
  finally:
    if os.path.exists(tmp):
      os.remove(tmp)
  say(
    f"Trained the {trained_on} {what} in {info['seconds']} s (test accuracy "
    f"{100 * info['test_accuracy']:.2f}%) and cached it in {path}"
  )
  return clf


def main(argv=None):
  """Command line: trains a classifier (`SETTINGS` by default), saves it, prints its info as JSON.

  `python -m jaxgan.metrics.classifier --dataset=mnist --out=mnist_classifier.npz`

  Args:
    argv: the arguments; None: `sys.argv[1:]`.
  """
  import argparse  # pylint: disable=g-import-not-at-top

  parser = argparse.ArgumentParser(description="Train jaxgan's FCD / Stacked MNIST classifier.")
  parser.add_argument("--dataset", default="mnist")
  for name in ("steps", "batch_size", "seed"):
    parser.add_argument(f"--{name}", type=int, default=SETTINGS[name])
  parser.add_argument("--lr", type=float, default=SETTINGS["lr"])
  parser.add_argument("--data_dir", default=None)
  parser.add_argument("--source_dir", default=None)
  parser.add_argument("--out", required=True)
  args = parser.parse_args(argv)
  settings = dict(
    SETTINGS, steps=args.steps, batch_size=args.batch_size, seed=args.seed, lr=args.lr
  )
  clf, info = clf_lib.train_classifier(
    args.dataset, **settings, data_dir=args.data_dir, source_dir=args.source_dir
  )
  sha = clf_lib.save_classifier(args.out, clf)
  print(json.dumps(dict(info, path=args.out, sha256=sha)))
