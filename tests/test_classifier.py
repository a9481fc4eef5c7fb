"""jaxgan's own MNIST classifier: test accuracy, save/load with checksum, FCD sanity, and the
Evaluator built on it. Real MNIST from $JAXGAN_SOURCE_DIR or <repo>/../shared/data."""


import numpy as np
import pytest

from jaxgan import metrics
from jaxgan.metrics import classifier as clf_lib

from _helpers import REAL_DATA, require_real_data

# Measured on the loaded 2-core machine (10k training images, Adam 2e-3 with cosine decay):
# 97.8% and 98.0% test accuracy (seeds 0, 1; all 10k test images), 20-25 s of training.
STEPS, BATCH, WIDTHS, MIN_ACCURACY = 600, 64, (16, 32), 0.97


@pytest.fixture(scope="module")
def mnist(tmp_path_factory):
  require_real_data("mnist")
  from jaxgan import data
  data_dir = tmp_path_factory.mktemp("tfds")
  # The first 10k examples of each split: enough for the accuracy target, cheap to prepare.
  data.prepare("mnist", data_dir=data_dir, source_dir=REAL_DATA, max_examples_per_split=10_000)
  train = clf_lib.load_arrays("mnist", "train", data_dir=data_dir)
  test = clf_lib.load_arrays("mnist", "test", data_dir=data_dir)  # all 10k
  return data_dir, train, test


@pytest.fixture(scope="module")
def trained(mnist):
  _, train, test = mnist
  clf, info = clf_lib.train_classifier("mnist", steps=STEPS, batch_size=BATCH, widths=WIDTHS,
                                       train_data=train, test_data=test, log=None)
  return clf, info


def test_classifier_accuracy(trained):
  clf, info = trained
  print(f"MNIST classifier test accuracy: {100 * info['test_accuracy']:.2f}% "
        f"({info['num_test']} test images, {STEPS} steps, {info['seconds']} s)")
  assert info["test_accuracy"] >= MIN_ACCURACY


def test_save_load_roundtrip_and_checksum(trained, mnist, tmp_path):
  clf, _ = trained
  images = mnist[2][0][:64]
  path = tmp_path / "clf.npz"
  sha = clf_lib.save_classifier(path, clf)
  back = clf_lib.load_classifier(path)
  assert back.meta["sha256"] == sha and back.describe() == clf.describe()
  np.testing.assert_array_equal(back.features(images), clf.features(images))
  # MNIST padded to 32x32 (config.pad_to=32) is centre-cropped back to 28x28.
  padded = np.pad(images, ((0, 0), (2, 2), (2, 2), (0, 0)), constant_values=-1)
  np.testing.assert_allclose(back.features(padded), clf.features(images), rtol=1e-6)
  # An altered parameter is refused.
  with np.load(path) as f:
    arrays = {k: f[k] for k in f.files}
  name = next(k for k in arrays if k.startswith("param/"))
  arrays[name] = arrays[name] + 1e-3
  np.savez(tmp_path / "bad.npz", **arrays)
  with pytest.raises(ValueError, match="checksum"):
    clf_lib.load_classifier(tmp_path / "bad.npz")


def _blur(images):
  # 5x5 box blur with edge padding.
  p = np.pad(images, ((0, 0), (2, 2), (2, 2), (0, 0)), mode="edge")
  return np.mean([p[:, i:i + 28, j:j + 28] for i in range(5) for j in range(5)], axis=0)


def test_fcd_orders_test_set_blur_and_noise(trained, mnist):
  clf, _ = trained
  _, (x_train, _), (x_test, _) = mnist
  ref = metrics.FeatureStats().update(clf.features(x_train))

  def fcd(images):
    return metrics.frechet_distance(*metrics.FeatureStats().update(clf.features(images)).mean_cov(),
                                    *ref.mean_cov())

  rng = np.random.default_rng(0)
  test_fcd = fcd(x_test)
  blur_fcd = fcd(_blur(x_test))
  noise_fcd = fcd(rng.uniform(-1, 1, x_test.shape).astype(np.float32))
  print(f"FCD vs train: test {test_fcd:.3f}, blurred test {blur_fcd:.3f}, noise {noise_fcd:.3f}")
  assert test_fcd < 0.1 * blur_fcd and test_fcd < 0.02 * noise_fcd
  # The classifier score of real digits is near the number of classes; of noise, near 1.
  is_test, _ = metrics.inception_score(clf.logits(x_test))
  is_noise, _ = metrics.inception_score(clf.logits(rng.uniform(-1, 1, (500, 28, 28, 1)).astype(np.float32)))
  assert is_test > 8.5 and is_noise < 3


def test_evaluator_with_classifier(trained, mnist, tmp_path):
  clf, _ = trained
  data_dir, (x_train, _), (x_test, _) = mnist
  path = tmp_path / "clf.npz"
  clf_lib.save_classifier(path, clf)
  config = dict(metrics=["fcd", "kid", "precision_recall", "is"], extractor="classifier",
                classifier_path=str(path), dataset="mnist", reference_split="train",
                num_samples=1000, data_dir=str(data_dir), cache_dir=str(tmp_path / "cache"),
                kid_subsets=10, kid_subset_size=500)
  ev = metrics.Evaluator.from_config(config)
  assert "mnist_convnet" in ev.protocol and "1000" in ev.protocol and "train" in ev.protocol

  def sample_fn(key, n):  # "generator" that returns real test digits
    del key
    return x_test[:n]

  out = ev.evaluate(sample_fn, 1000)
  prefix = ev.prefix
  assert set(out) >= {f"{prefix}/fcd", f"{prefix}/kid", f"{prefix}/precision", f"{prefix}/recall",
                      f"{prefix}/is"}
  # 1000 samples: FCD is biased upwards (~6 for real digits vs ~1 at 10k; noise ~750).
  assert out[f"{prefix}/fcd"] < 15 and out[f"{prefix}/precision"] > 0.6 and out[f"{prefix}/is"] > 8
  noisy = ev.evaluate(lambda key, n: np.random.default_rng(1).uniform(-1, 1, (n, 32, 32, 1)), 1000)
  assert noisy[f"{prefix}/fcd"] > 20 * out[f"{prefix}/fcd"]
  # Reference statistics were cached: a second evaluator loads them without touching the data.
  assert list((tmp_path / "cache").glob("*.npz"))
  ev2 = metrics.Evaluator.from_config(dict(config, data_dir=str(tmp_path / "nowhere")))
  assert ", cached" in ev2.protocol
  np.testing.assert_allclose(ev2.reference_stats.mean, ev.reference_stats.mean)
