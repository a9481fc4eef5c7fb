"""Conditional metrics: classifier accuracy per requested class and intra-class FCD.

A tiny synthetic labelled data set (3 classes of 2x2 images around distinct means), a pixel
feature extractor and a nearest-mean classifier stand in for the real networks, so every number
is checked against a NumPy count or a SciPy Frechet distance.
"""

import jax
import numpy as np
import pytest
from scipy import linalg

from jaxgan import metrics
from jaxgan.metrics import conditional
from jaxgan.metrics import eval_networks as networks
from jaxgan.metrics import reference as reference_lib

K, PER = 3, 120  # classes, reference images per class
MEANS = np.array([[1.0, 0.0, 0.0, -1.0], [0.0, 1.0, -1.0, 0.0], [-1.0, -1.0, 1.0, 1.0]]) * 0.5


def _images(labels, rng, noise=0.4):
  x = MEANS[labels] + noise * rng.normal(size=(len(labels), 4))
  return x.reshape(-1, 2, 2, 1).astype(np.float32)


REF_LABELS = np.repeat(np.arange(K), PER).astype(np.int32)
np.random.default_rng(0).shuffle(REF_LABELS)
REF = _images(REF_LABELS, np.random.default_rng(1))


class _Pixels:
  name, id = "pixels", "pixels-1"

  def features(self, images):
    return np.asarray(images, np.float32).reshape(len(images), -1)


class _NearestMean:
  """A 3-class classifier: the class whose mean is nearest (wrong on the noisiest images)."""

  name, meta, image_shape = "fake_convnet", {"num_classes": K}, (2, 2, 1)

  def logits(self, images):
    x = np.asarray(images).reshape(len(images), -1)
    return -((x[:, None, :] - MEANS[None]) ** 2).sum(-1)


def _fd(a, b):
  """The Frechet distance from the definition, with SciPy's sqrtm."""
  m1, m2, s1, s2 = a.mean(0), b.mean(0), np.cov(a, rowvar=False), np.cov(b, rowvar=False)
  return float(((m1 - m2) ** 2).sum() + np.trace(s1 + s2 - 2 * linalg.sqrtm(s1 @ s2).real))


class _Replay:
  """A "generator" that returns the reference images of the class it is asked for, in turn."""

  def __init__(self, swap=()):
    self.calls, self.cursor = [], dict.fromkeys(range(K), 0)
    self.source = {c: c for c in range(K)}
    if swap:
      a, b = swap
      self.source[a], self.source[b] = b, a

  def __call__(self, key, n, labels=None):
    self.calls.append((np.asarray(jax.random.key_data(key)), n, labels))
    if labels is None:  # unconditional: uniformly drawn classes
      seed = int(np.asarray(jax.random.key_data(key)).sum())
      return _images(np.random.default_rng(seed).integers(0, K, n), np.random.default_rng(seed))
    out = []
    for c in labels:
      pool = REF[REF_LABELS == self.source[int(c)]]
      out.append(pool[self.cursor[int(c)] % len(pool)])
      self.cursor[int(c)] += 1
    return np.stack(out)


def _evaluator(metrics_="class_acc,intra_fcd", **kwargs):
  args = dict(
    metrics=metrics_,
    extractor=_Pixels(),
    reference_images=REF,
    reference_labels=REF_LABELS,
    num_samples=K * PER,
    batch_size=50,
    num_classes=K,
  )
  return metrics.Evaluator.create(**(args | kwargs))


@pytest.fixture
def fake_classifier(monkeypatch):
  monkeypatch.setattr(networks, "load_classifier", lambda *a, **k: _NearestMean())


def test_class_accuracy_counts_like_numpy(fake_classifier):
  ev = _evaluator("class_acc")
  seen = []

  def sample_fn(key, n, labels):
    images = _images(labels, np.random.default_rng(len(seen)), noise=0.6)
    seen.append((images, labels))
    return images

  key = jax.random.PRNGKey(7)
  out = ev.evaluate(sample_fn, key=key)
  images = np.concatenate([i for i, _ in seen])
  labels = np.concatenate([lab for _, lab in seen])
  assert labels.dtype == np.int32 and np.bincount(labels).tolist() == [PER] * K
  assert all(len(np.unique(lab)) > 1 for _, lab in seen)  # batches mix classes
  right = _NearestMean().logits(images).argmax(-1) == labels
  p = "pixels-360-train"
  want = {f"{p}/class_acc": right.mean()}
  want |= {f"{p}/class_acc_{c}": right[labels == c].mean() for c in range(K)}
  assert out == pytest.approx(want, abs=1e-12)
  assert 0.5 < want[f"{p}/class_acc"] < 0.99  # the classifier errs: a count, not a constant
  assert "120 samples per class of all 3 classes; class_acc: read by fake_convnet" in ev.protocol
  # class_acc alone needs no reference statistics, and its keys name the reference split.
  assert ev.reference is None and ev.primary is None
  with pytest.raises(ValueError, match="No samples of class 3"):
    conditional.class_accuracy(labels, labels, classes=[0, 3])
  with pytest.raises(ValueError, match="must have one shape"):
    conditional.class_accuracy(labels[:5], labels)


def test_intra_fcd_is_zero_for_the_real_classes_and_large_for_swapped_ones(fake_classifier):
  ev = _evaluator("fcd,class_acc,intra_fcd")
  p = "pixels-360-train"
  assert ev.primary == f"{p}/fcd"
  exact = ev.evaluate(_Replay(), key=jax.random.PRNGKey(0))
  assert exact[f"{p}/class_acc"] == pytest.approx(
    np.mean(_NearestMean().logits(REF).argmax(-1) == REF_LABELS)
  )
  for c in range(K):
    assert abs(exact[f"{p}/intra_fcd_{c}"]) < 1e-6  # the very reference images of the class
  assert abs(exact[f"{p}/intra_fcd"]) < 1e-6

  replay = _Replay(swap=(0, 1))
  swapped = ev.evaluate(replay, key=jax.random.PRNGKey(0))
  f = {c: REF[REF_LABELS == c].reshape(-1, 4).astype(np.float64) for c in range(K)}
  want = {0: _fd(f[1], f[0]), 1: _fd(f[0], f[1]), 2: 0.0}
  for c in range(K):
    assert swapped[f"{p}/intra_fcd_{c}"] == pytest.approx(want[c], rel=1e-6, abs=1e-6)
  assert swapped[f"{p}/intra_fcd"] == pytest.approx(np.mean(list(want.values())), rel=1e-6)
  assert want[0] > 0.4  # the means are 1 apart in squared distance
  # The unconditional fcd drew its samples without labels, the conditional ones with them,
  # from another key stream; the unconditional value did not change by asking for more.
  uncond = [c for c in replay.calls if c[2] is None]
  cond = [c for c in replay.calls if c[2] is not None]
  assert [n for _, n, _ in uncond] == [50] * 7 + [10] and len(cond) == 8
  # Keys of their own: every conditional batch's differs from the others' and from every
  # unconditional batch's, and the same evaluation key gives the same ones.
  cond_keys = [k.tobytes() for k, _, _ in cond]
  assert len(set(cond_keys)) == len(cond) and not set(cond_keys) & {
    k.tobytes() for k, _, _ in uncond
  }
  again = _Replay(swap=(0, 1))
  ev.evaluate(again, key=jax.random.PRNGKey(0))
  assert [k.tobytes() for k, _, y in again.calls if y is not None] == cond_keys
  plain = _evaluator("fcd").evaluate(_Replay(), key=jax.random.PRNGKey(0))
  assert plain == {f"{p}/fcd": swapped[f"{p}/fcd"]}


def test_per_class_reference_statistics_match_numpy():
  ref = reference_lib.from_images(
    _Pixels(), REF, keep=10, batch_size=64, labels=REF_LABELS, classes=[0, 2]
  )
  assert sorted(ref.class_stats) == [0, 2]
  for c in (0, 2):
    x = REF[REF_LABELS == c].reshape(-1, 4).astype(np.float64)
    s = ref.class_stats[c]
    assert s.n == PER
    np.testing.assert_allclose(s.mean, x.mean(0), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(s.cov, np.cov(x, rowvar=False), rtol=1e-6, atol=1e-7)
  assert ref.stats.n == K * PER  # the unconditional statistics still cover every image
  with pytest.raises(ValueError, match="need labels="):
    reference_lib.from_images(_Pixels(), REF, keep=10, classes=[0])


def test_per_class_reference_statistics_are_cached_beside_the_unconditional_ones(
  tmp_path, monkeypatch
):
  loads = []

  def load_arrays(dataset, split, **kwargs):
    loads.append((dataset, split))
    return REF, REF_LABELS

  monkeypatch.setattr(reference_lib, "load_arrays", load_arrays)
  get = lambda classes: reference_lib.from_dataset(  # noqa: E731
    _Pixels(), "mnist", "train", keep=50, cache_dir=str(tmp_path), classes=classes
  )
  first = get([0, 1, 2])
  assert len(loads) == 1 and len(list(tmp_path.glob("ref_mnist_train_pixels_*.npz"))) == 1
  assert len(list(tmp_path.glob("refcls_mnist_train_pixels_*.npz"))) == 1
  again, plain = get([0, 1, 2]), get(None)  # both from the cache
  assert len(loads) == 1 and plain.class_stats is None and "cached" in again.description
  for c in range(K):
    np.testing.assert_allclose(again.class_stats[c].cov, first.class_stats[c].cov, rtol=1e-12)
    assert again.class_stats[c].n == PER
  get([1])  # other classes: other statistics
  assert len(loads) == 2 and len(list(tmp_path.glob("refcls_*.npz"))) == 2


def test_stacked_mnist_classes_are_read_per_channel():
  class Digits:  # a 10-class single-channel reader of an image's brightness
    name, meta, image_shape = "digits", {"num_classes": 10}, (2, 2, 1)

    def logits(self, images):
      v = np.asarray(images).reshape(len(images), -1).mean(1)
      return -np.abs(v[:, None] * 10 - np.arange(10)[None])

  def sample_fn(key, n, labels):
    labels = np.where(labels == 999, 998, labels)  # class 999 drawn wrong: 998
    digits = np.stack([labels // 100, labels // 10 % 10, labels % 10], -1) / 10
    return np.broadcast_to(digits[:, None, None, :], (n, 2, 2, 3)).astype(np.float32)

  assert conditional.check_class_count(Digits(), 1000) is True
  subset = conditional.ConditionalMetrics(
    ["class_acc"], num_classes=1000, num_samples=300, classes="7,123,999", classifier=Digits()
  )
  out = subset.evaluate(sample_fn, jax.random.PRNGKey(0), 300, "p", 64)
  want = {"p/class_acc_7": 1.0, "p/class_acc_123": 1.0, "p/class_acc_999": 0.0}
  assert out == pytest.approx(want | {"p/class_acc": 2 / 3})
  assert "100 samples per class of classes 7,123,999" in subset.description
  # All 1000 classes: accuracy overall only, no per-class keys.
  every = conditional.ConditionalMetrics(
    ["class_acc"], num_classes=1000, num_samples=2000, classifier=Digits()
  )
  out = every.evaluate(sample_fn, jax.random.PRNGKey(0), 2000, "p", 500)
  assert out == pytest.approx({"p/class_acc": 999 / 1000})
  assert "2 samples per class of all 1000 classes" in every.description


def test_the_classifier_is_reused_when_it_is_the_extractor():
  from jaxgan.metrics.classifier import ClassifierExtractor
  from jaxgan.metrics.stacked_mnist import ChannelwiseExtractor

  meta = dict(num_classes=10, widths=[2], feature_dim=4, image_shape=[4, 4, 1], dataset="mnist")
  clf = ClassifierExtractor({}, meta)  # never run: only its identity matters
  assert networks.load_classifier("stacked_mnist", extractor=ChannelwiseExtractor(clf)) is clf
  assert networks.load_classifier("mnist", extractor=clf) is clf


@pytest.mark.parametrize(
  "kwargs, message",
  [
    (dict(num_classes=0), r"need a conditional model \(model.num_classes > 0\)"),
    (dict(num_classes=30), "intra_fcd for 30 classes.*at most 20.*eval.classes"),
    (dict(num_samples=100), "100 samples over 3 classes are 33 per class.*at least 50"),
    (dict(classes="0,5"), r"class indices in \[0, 3\)"),
    (dict(classes="a"), r"class indices in \[0, 3\)"),
    (dict(reference_labels=None), "need labels="),
    (
      dict(reference_labels=np.where(REF_LABELS == 2, 0, REF_LABELS)),
      r"under 50 images.*\{2: 0\}",
    ),  # fmt: skip
    (dict(metrics="class_acc", num_samples=2), "are 0 per class"),
  ],
)
def test_bad_requests_are_refused(kwargs, message, fake_classifier):
  with pytest.raises(ValueError, match=message):
    _evaluator(**kwargs)


def test_a_subset_of_many_classes_and_a_classifier_of_other_classes(monkeypatch):
  monkeypatch.setattr(networks, "load_classifier", lambda *a, **k: _NearestMean())
  with pytest.raises(
    ValueError, match="classifier of the model's 30 classes; 'fake_convnet' has 3"
  ):
    _evaluator("class_acc", num_classes=30)
  # Thirty classes are too many for intra_fcd, a subset the reference covers is not.
  ev = _evaluator("intra_fcd", num_classes=30, classes=[0, 1, 2])
  assert ev.conditional.classes == (0, 1, 2)
  assert "of classes 0,1,2; intra_fcd: vs >= 120 reference images per class" in ev.protocol
  with pytest.raises(ValueError, match="conditional= goes with metrics"):
    metrics.Evaluator(_Pixels(), ev.reference, metrics="fcd,class_acc")


def test_from_config_reads_the_class_count(monkeypatch, tmp_path, fake_classifier):
  from jaxgan.config import default_config, read_options

  loads = []

  def load_arrays(dataset, split, **kwargs):
    loads.append(split)
    return REF, REF_LABELS

  monkeypatch.setattr(reference_lib, "load_arrays", load_arrays)
  config = default_config()
  config.data.name, config.data.pad_to = "mnist", None
  config.eval.update(dict(metrics="fcd,class_acc,intra_fcd", num_samples=300))
  with pytest.raises(ValueError, match="need a conditional model"):
    metrics.Evaluator.from_config(config, read=read_options(config), extractor=_Pixels())
  assert not loads  # refused before any image was loaded
  config.model.num_classes = K
  read = read_options(config)  # labels read: the run is conditional now
  ev = metrics.Evaluator.from_config(
    config, read=read, extractor=_Pixels(), cache_dir=str(tmp_path)
  )
  assert loads == ["train"] and ev.conditional.per_class == 100
  out = ev.evaluate(_Replay(), key=jax.random.PRNGKey(1))
  p = "pixels-300-train"
  assert sorted(out) == sorted(
    [f"{p}/fcd", f"{p}/class_acc", f"{p}/intra_fcd"]
    + [f"{p}/{m}_{c}" for m in ("class_acc", "intra_fcd") for c in range(K)]
  )
