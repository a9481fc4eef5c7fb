"""jaxgan's own MNIST classifier: test accuracy, save/load with checksum, FCD sanity, and the
Evaluator built on it from a run config. Real MNIST from $JAXGAN_SOURCE_DIR or
<repo>/../shared/data."""

import numpy as np
import pytest
from _helpers import REAL_DATA, require_real_data

from jaxgan import metrics
from jaxgan.metrics import classifier as clf_lib
from jaxgan.metrics import reference

# A narrower net and fewer steps than the command line's defaults: enough to separate real
# digits from blurred ones and from noise, at a fraction of the training time. Seed 0 reaches
# 96.4% on the 10k test images; the margin allows for another CPU's rounding.
STEPS, BATCH, WIDTHS, MIN_ACCURACY = 400, 64, (8, 16), 0.955


@pytest.fixture(scope="module")
def mnist(tmp_path_factory):
  require_real_data("mnist")
  from jaxgan import data

  data_dir = tmp_path_factory.mktemp("tfds")
  # The first 10k examples of each split: enough for the accuracy target, cheap to prepare.
  data.prepare("mnist", data_dir=data_dir, source_dir=REAL_DATA, max_examples_per_split=10_000)
  train = reference.load_arrays("mnist", "train", data_dir=data_dir)
  test = reference.load_arrays("mnist", "test", data_dir=data_dir)  # all 10k
  return data_dir, train, test


@pytest.fixture(scope="module")
def trained(mnist):
  _, train, test = mnist
  clf, info = clf_lib.train_classifier(
    "mnist",
    steps=STEPS,
    batch_size=BATCH,
    widths=WIDTHS,
    train_data=train,
    test_data=test,
    log=None,
  )
  return clf, info


@pytest.mark.full
def test_classifier_accuracy(trained, mnist):
  clf, info = trained
  print(
    f"MNIST classifier test accuracy: {100 * info['test_accuracy']:.2f}% "
    f"({info['num_test']} test images, {STEPS} steps, {info['seconds']} s)"
  )
  assert info["num_test"] == 10_000 and info["test_accuracy"] >= MIN_ACCURACY
  assert clf.meta["test_accuracy"] == info["test_accuracy"]
  images, labels = mnist[2][0][:1000], mnist[2][1][:1000]
  assert clf.accuracy(images, labels) == np.mean(clf.logits(images).argmax(-1) == labels)


@pytest.mark.full
def test_save_load_roundtrip_and_checksum(trained, mnist, tmp_path):
  clf, _ = trained
  images = mnist[2][0][:64]
  path = tmp_path / "clf.npz"
  sha = clf_lib.save_classifier(path, clf)
  back = clf_lib.load_classifier(path)
  assert back.meta["sha256"] == back.id == sha and back.describe() == clf.describe()
  np.testing.assert_array_equal(back.features(images), clf.features(images))
  # MNIST padded to 32x32 (config.data.pad_to=32) is centre-cropped back to 28x28.
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
  return np.mean([p[:, i : i + 28, j : j + 28] for i in range(5) for j in range(5)], axis=0)


@pytest.mark.full
def test_fcd_orders_test_set_blur_and_noise(trained, mnist):
  clf, _ = trained
  _, (x_train, _), (x_test, _) = mnist
  ref = metrics.FeatureStats().update(clf.features(x_train))
  x_test = x_test[:2000]  # more only lowers the real digits' FCD, which is small already

  def fcd(feats):
    return metrics.frechet_distance(
      *metrics.FeatureStats().update(feats).mean_cov(), *ref.mean_cov()
    )

  rng = np.random.default_rng(0)
  test_feats, test_logits = clf.features_and_logits(x_test)
  noise_feats, noise_logits = clf.features_and_logits(
    rng.uniform(-1, 1, x_test.shape).astype(np.float32)
  )
  test_fcd, blur_fcd, noise_fcd = (
    fcd(test_feats),
    fcd(clf.features(_blur(x_test))),
    fcd(noise_feats),
  )
  print(f"FCD vs train: test {test_fcd:.3f}, blurred test {blur_fcd:.3f}, noise {noise_fcd:.3f}")
  assert 0 < test_fcd < 0.02 * blur_fcd and test_fcd < 0.02 * noise_fcd
  # The classifier score of real digits is near the number of classes; of noise, near 1.
  is_test, _ = metrics.inception_score(test_logits)
  is_noise, _ = metrics.inception_score(noise_logits)
  print(f"classifier score: test {is_test:.2f}, noise {is_noise:.2f}")
  assert is_test > 8 and is_noise < 3


@pytest.mark.full
def test_evaluator_from_run_config_with_classifier(trained, mnist, tmp_path):
  from jaxgan.config import default_config, read_options

  clf, _ = trained
  data_dir, _, (x_test, _) = mnist
  path = tmp_path / "clf.npz"
  clf_lib.save_classifier(path, clf)
  config = default_config()
  config.data.name = "mnist"
  config.run.data_dir = str(data_dir)
  config.eval.update(
    dict(
      metrics="fcd,kid,precision_recall,is",
      extractor="classifier",
      classifier_path=str(path),
      num_samples=1000,
      reference_split="train",
    )
  )
  cache = tmp_path / "cache"
  ev = metrics.Evaluator.from_config(
    config,
    read=read_options(config),
    cache_dir=str(cache),
    num_reference=5000,
    kid_subsets=10,
    kid_subset_size=500,
  )
  assert "mnist_convnet" in ev.protocol and "mnist 'train' (5000 images)" in ev.protocol
  assert ev.reference.feats.shape == (1000, clf.dim)

  def sample_fn(key, n):  # "generator" that returns real test digits
    del key
    return x_test[:n]

  out = ev.evaluate(sample_fn)
  p = "mnist_convnet-1k-train"
  assert set(out) == {
    f"{p}/{m}" for m in ("fcd", "kid", "kid_std", "precision", "recall", "is", "is_std")
  }
  noisy = ev.evaluate(lambda key, n: np.random.default_rng(1).uniform(-1, 1, (n, 32, 32, 1)))
  print({k: round(v, 4) for k, v in out.items()}, {k: round(v, 4) for k, v in noisy.items()})
  # 1000 samples bias FCD upwards, but real digits stay far below noise.
  assert 0 < out[f"{p}/fcd"] < 0.05 * noisy[f"{p}/fcd"]
  assert abs(out[f"{p}/kid"]) < 0.05 * noisy[f"{p}/kid"]
  assert out[f"{p}/precision"] > 0.6 > noisy[f"{p}/precision"]
  assert out[f"{p}/recall"] > 0.5 > noisy[f"{p}/recall"]
  assert out[f"{p}/is"] > 8 > 3 > noisy[f"{p}/is"]
  # The reference statistics were cached under the classifier's hash: a second evaluator
  # reads them without the data.
  config.run.data_dir = str(tmp_path / "nowhere")
  again = metrics.Evaluator.from_config(
    config,
    read=read_options(config),
    cache_dir=str(cache),
    num_reference=5000,
    kid_subsets=10,
    kid_subset_size=500,
  )
  assert "(5000 images, cached)" in again.protocol
  np.testing.assert_allclose(again.reference.stats.mean, ev.reference.stats.mean)


@pytest.mark.parametrize("content", [b"junk", b"PK\x03\x04truncated"])
def test_a_corrupt_or_truncated_file_is_refused_with_the_fix(tmp_path, content):
  path = tmp_path / "clf.npz"
  path.write_bytes(content)
  with pytest.raises(ValueError, match="not a jaxgan classifier file.*classifier_path"):
    clf_lib.load_classifier(path)
  with pytest.raises(ValueError, match="does not exist"):
    clf_lib.load_classifier(tmp_path / "missing.npz")
