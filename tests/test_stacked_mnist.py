"""Stacked MNIST's metric (modes, reverse KL, real floor), the refusals, and the cached classifier.

The statistics are checked against NumPy on hand-made digits; the real-data parts train the
cached MNIST classifier once (conftest.py's session fixture, with the default settings) on real MNIST from
$JAXGAN_SOURCE_DIR or <repo>/../shared/data.
"""

import math

import numpy as np
import pytest
from _helpers import REAL_DATA

from jaxgan.data import stacked
from jaxgan.metrics import classifier_cache, stacked_mnist
from jaxgan.metrics.evaluator import Evaluator

# ------------------------------------------------------------------------------------------------
# The statistics, against NumPy
# ------------------------------------------------------------------------------------------------


def _kl_reference(labels: np.ndarray) -> float:
  # KL(p || uniform over 1000), written out independently: sum over occupied modes.
  _, counts = np.unique(labels, return_counts=True)
  p = counts / counts.sum()
  return float(np.sum(p * (np.log(p) - np.log(1 / 1000))))


def test_modes_and_kl_against_numpy():
  every = np.stack(np.unravel_index(np.arange(1000), (10, 10, 10)), axis=1)  # each triple once
  s = stacked_mnist.mode_statistics(every)
  assert s == {"modes": 1000.0, "kl": 0.0}
  one = np.tile([[4, 0, 2]], (500, 1))
  s = stacked_mnist.mode_statistics(one)
  assert s["modes"] == 1 and s["kl"] == pytest.approx(math.log(1000), abs=1e-12)
  # A hand-made histogram: 3 of mode 123, 1 of mode 7 -> p = (3/4, 1/4).
  hand = np.array([[1, 2, 3]] * 3 + [[0, 0, 7]])
  want = 0.75 * math.log(750) + 0.25 * math.log(250)
  assert stacked_mnist.mode_statistics(hand)["kl"] == pytest.approx(want, rel=1e-12)
  # Random digits: the same numbers as the independent computation on the labels.
  rng = np.random.default_rng(0)
  digits = rng.integers(0, 10, (5000, 3))
  digits[:2000, 0] = 3  # uneven, so that the KL is far from 0
  labels = 100 * digits[:, 0] + 10 * digits[:, 1] + digits[:, 2]
  s = stacked_mnist.mode_statistics(digits)
  assert s["modes"] == len(np.unique(labels))
  assert s["kl"] == pytest.approx(_kl_reference(labels), rel=1e-12)
  # The direction is KL(generated || uniform): finite with empty modes (the reverse would be inf).
  assert math.isfinite(stacked_mnist.kl_to_uniform(np.bincount([5], minlength=1000)))


def test_summarise_confidence():
  digits = np.zeros((4, 3), int)
  conf = np.array([[0.9, 0.4, 1.0], [0.8, 0.3, 1.0], [0.7, 0.6, 1.0], [0.6, 0.5, 1.0]])
  s = stacked_mnist.summarise(digits, conf)
  assert s["confidence"] == pytest.approx(conf.mean())
  assert [s[f"confidence_{c}"] for c in range(3)] == pytest.approx(conf.mean(0).tolist())
  assert s["low_confidence"] == pytest.approx(2 / 12)


class _ByBrightness:
  """A stand-in MNIST classifier: reads digit k from an image of constant value k / 10."""

  name = "brightness"
  meta = {"dataset": "mnist", "num_classes": 10, "test_accuracy": 0.99}

  def __init__(self):
    self.shapes = []

  def logits(self, images):
    self.shapes.append(images.shape)
    k = np.rint(images.mean(axis=(1, 2, 3)) * 10).astype(int)
    return np.eye(10)[k] * 5.0


def test_classify_channels_reads_each_channel_in_order():
  digits = np.array([[1, 2, 3], [9, 0, 4]])
  images = np.broadcast_to(digits[:, None, None, :] / 10, (2, 32, 32, 3)).astype(np.float32)
  clf = _ByBrightness()
  got, conf = stacked_mnist.classify_channels(clf, images)
  np.testing.assert_array_equal(got, digits)
  want = np.exp(5.0) / (np.exp(5.0) + 9)  # softmax of one logit 5 among nine 0s
  np.testing.assert_allclose(conf, np.full((2, 3), want), rtol=1e-6)
  assert clf.shapes == [(6, 32, 32, 1)]  # one call, one channel per image
  with pytest.raises(ValueError, match=r"\(n, h, w, 3\)"):
    stacked_mnist.classify_channels(clf, images[..., :1])


@pytest.mark.parametrize(
  "meta, match",
  [
    ({"dataset": "mnist", "num_classes": 10, "test_accuracy": 0.952}, r"95\.20%.*97%"),
    ({"dataset": "mnist", "num_classes": 10}, "unknown, under the 97%"),
    ({"dataset": "fashion_mnist", "num_classes": 10, "test_accuracy": 0.99}, "fashion_mnist"),
    ({"dataset": "mnist", "num_classes": 1000, "test_accuracy": 0.99}, "1000 classes"),
  ],
)
def test_weak_or_foreign_classifier_is_refused(meta, match):
  clf = _ByBrightness()
  clf.meta = meta
  with pytest.raises(ValueError, match=match) as e:
    stacked_mnist.check_classifier(clf)
  assert "python -m jaxgan.metrics.classifier" in str(e.value)  # how to get a good one
  with pytest.raises(ValueError, match="ClassifierExtractor"):
    stacked_mnist.check_classifier(object())


def test_modes_only_for_stacked_mnist():
  with pytest.raises(ValueError, match=r"'modes'.*'mnist'.*stacked_mnist"):
    Evaluator.create(metrics="modes", dataset="mnist", extractor=_ByBrightness())
  from jaxgan.config import default_config, read_options

  config = default_config()
  config.data.name = "cifar10"
  config.eval.metrics = "fcd,modes"
  with pytest.raises(ValueError, match=r"'cifar10'.*data\.name='stacked_mnist'"):
    Evaluator.from_config(config, read=read_options(config))
  from jaxgan.config import validate

  with pytest.raises(ValueError, match=r"'cifar10'.*data\.name='stacked_mnist'"):
    validate(config)  # the run refuses it before it writes anything
  with pytest.raises(ValueError, match="No cached classifier for data set 'folder:x'"):
    classifier_cache.classifier_dataset("folder:x")


# ------------------------------------------------------------------------------------------------
# Real data: the cached classifier, the real floor, the Evaluator
# ------------------------------------------------------------------------------------------------


def _no_training(*args, **kwargs):
  raise AssertionError("the cached classifier was trained again")


@pytest.fixture(scope="module")
def real(mnist_dir, mnist_classifier):
  """(data_dir, cache_dir, classifier): MNIST and Stacked MNIST prepared, the classifier cached.

  The classifier is the session's (conftest.py): `cached_classifier('stacked_mnist', ...)`
  trained it there, once, and `lines` are what it logged.
  """
  data_dir = mnist_dir
  clf, cache_dir, lines = mnist_classifier
  print(lines[0])
  assert lines[0].startswith("Trained the mnist classifier")
  from jaxgan import data

  data.prepare("stacked_mnist", data_dir=data_dir, source_dir=REAL_DATA)  # all 100k
  return data_dir, cache_dir, clf


@pytest.mark.full
def test_cached_classifier_accuracy_and_reuse(real, monkeypatch):
  data_dir, cache_dir, clf = real
  # The default settings clear the 98.5% this classifier promises, on all 10k test images.
  assert clf.meta["test_accuracy"] >= 0.985 and clf.meta["num_test"] == 10_000
  assert clf.meta["dataset"] == "mnist" and clf.meta["downsample"] == "stride"
  path = classifier_cache.cached_classifier_path("stacked_mnist", cache_dir)
  assert path == classifier_cache.cached_classifier_path("mnist", cache_dir)  # one for both

  monkeypatch.setattr(classifier_cache.clf_lib, "train_classifier", _no_training)
  lines = []
  again = classifier_cache.cached_classifier("mnist", cache_dir=cache_dir, log_fn=lines.append)
  assert again.id == clf.id and lines[0].startswith(f"Reusing the cached mnist classifier {path}")
  # Other settings are another file: the cache never hands out a stale classifier.
  monkeypatch.setitem(classifier_cache.SETTINGS, "steps", 10)
  assert classifier_cache.cached_classifier_path("mnist", cache_dir) != path


@pytest.mark.full
def test_real_floor(real):
  data_dir, cache_dir, clf = real
  n = stacked_mnist.NUM_SAMPLES
  floor = stacked_mnist.real_floor(clf, n, data_dir=data_dir, cache_dir=cache_dir)
  # The true labels of the very images drawn (the floor's draw is seed 0 with replacement).
  from jaxgan import data

  src = data.load_source("stacked_mnist", data_dir=data_dir, download=False, in_memory=False)
  idx = np.random.default_rng(0).integers(0, len(src), n)
  truth = stacked_mnist.kl_to_uniform(
    np.bincount(src.get_batch(np.sort(idx))["label"], minlength=1000)
  )
  # What theory expects of the true labels: the data set's own KL plus (K - 1) / (2 N).
  labels = src.to_memory().arrays["label"]
  expected = stacked_mnist.kl_to_uniform(np.bincount(labels, minlength=1000)) + 999 / (2 * n)
  print(f"real floor at N={n}: {floor}; true labels' KL {truth:.4f}, expected {expected:.4f}")
  assert floor["modes"] == 1000
  assert abs(truth - expected) < 0.003  # the sampling term, as theory says
  # The classifier's misreads (about 1.3% of digits) barely move it: the floor stays near
  # GUIDE's 0.025 plus this data set's own 0.005 (jaxgan.data.stacked).
  assert abs(floor["kl"] - truth) < 0.005 and 0.02 < floor["kl"] < 0.035
  assert floor["confidence"] > 0.95
  # Cached under the classifier's hash: the second call reads the file, not the data.
  again = stacked_mnist.real_floor(clf, n, data_dir="/nowhere", cache_dir=cache_dir)
  assert again == floor


@pytest.mark.full
def test_evaluator_modes_from_config(real, tmp_path, monkeypatch):
  from jaxgan.config import default_config, read_options
  from jaxgan.data.batches import centred_padding

  data_dir, cache_dir, clf = real
  monkeypatch.setenv("JAXGAN_CACHE_DIR", str(cache_dir))  # where the classifier is cached
  monkeypatch.setattr(classifier_cache.clf_lib, "train_classifier", _no_training)
  config = default_config()
  config.data.name, config.data.pad_to = "stacked_mnist", 32
  config.run.data_dir = str(data_dir)
  config.eval.update(dict(metrics="modes", extractor="classifier", num_samples=2000))
  ev = Evaluator.from_config(config, read=read_options(config), cache_dir=str(tmp_path / "refs"))
  p = "mnist_convnet-2k-train"
  assert (ev.primary, ev.primary_mode, ev.reference) == (f"{p}/kl", "min", None)
  assert "real floor" in ev.protocol and clf.describe() in ev.protocol

  from jaxgan import data

  test = data.load_source("stacked_mnist", split="test", data_dir=data_dir, download=False)
  real_images = test.arrays["image"].astype(np.float32) / 127.5 - 1
  pad = centred_padding((28, 28), 32)
  real_images = np.pad(real_images, ((0, 0), *pad, (0, 0)), constant_values=-1.0)

  def sample_fn(key, n):  # a "generator" of real test triples, each batch the next ones
    del key
    start = sample_fn.pos
    sample_fn.pos += n
    return real_images[start : start + n]

  sample_fn.pos = 0
  out = ev.evaluate(sample_fn)
  keys = ("modes", "kl", "confidence", "low_confidence", "modes_real", "kl_real", "confidence_real")
  assert set(out) == {f"{p}/{k}" for k in keys}
  print({k: round(v, 4) for k, v in out.items()})
  # 2000 samples of 1000 modes: about 86% of modes seen, KL near 999 / 4000.
  assert 800 < out[f"{p}/modes"] < 920 and 800 < out[f"{p}/modes_real"] < 920
  assert abs(out[f"{p}/kl"] - out[f"{p}/kl_real"]) < 0.05
  collapsed = ev.evaluate(lambda key, n: np.repeat(real_images[:1], n, axis=0))
  assert collapsed[f"{p}/modes"] == 1
  assert collapsed[f"{p}/kl"] == pytest.approx(math.log(1000))


@pytest.mark.full
def test_evaluator_refuses_a_weak_classifier_file(real, tmp_path):
  from jaxgan.metrics.classifier import ClassifierExtractor, save_classifier

  data_dir, _, clf = real
  weak = ClassifierExtractor(clf.params, dict(clf.meta, test_accuracy=0.9612))
  path = tmp_path / "weak.npz"
  save_classifier(path, weak)
  with pytest.raises(ValueError, match=r"96\.12%, under the 97%"):
    Evaluator.create(
      metrics="modes", dataset="stacked_mnist", classifier_path=str(path), data_dir=data_dir
    )


@pytest.mark.full
def test_stacked_mnist_fcd_per_channel(real, tmp_path):
  # FCD on Stacked MNIST: the MNIST classifier's features of each channel, concatenated.
  data_dir, cache_dir, clf = real
  ev = Evaluator.create(
    metrics="fcd,modes",
    dataset="stacked_mnist",
    reference_split="test",
    data_dir=data_dir,
    cache_dir=str(tmp_path),
    classifier_cache_dir=str(cache_dir),
    num_samples=500,
  )
  assert isinstance(ev.extractor, stacked_mnist.ChannelwiseExtractor)
  assert ev.reference.feats.shape[1] == 3 * clf.dim and ev.primary.endswith("/fcd")
  images = np.random.default_rng(0).uniform(-1, 1, (3, 28, 28, 3)).astype(np.float32)
  f = ev.extractor.features(images)
  np.testing.assert_allclose(f[:, clf.dim : 2 * clf.dim], clf.features(images[..., 1:2]), rtol=1e-5)
  assert stacked.NUM_CLASSES == 1000
