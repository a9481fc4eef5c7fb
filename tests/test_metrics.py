"""FD, KID, precision/recall, IS and streaming statistics against NumPy/SciPy references; the
Evaluator against those functions, from keywords and from a run config, with its cache. The FID
InceptionV3 is tested in test_inception.py."""

import numpy as np
import pytest
from scipy import linalg
from scipy.spatial.distance import cdist

from jaxgan import metrics
from jaxgan.config import default_config, read_options
from jaxgan.metrics import kid as kid_lib


def _random_stats(rng, d, n):
  a, b = rng.normal(size=(n, d)), rng.normal(size=(n, d)) @ rng.normal(size=(d, d)) * 0.3 + 0.5
  return a.mean(0), np.cov(a, rowvar=False), b.mean(0), np.cov(b, rowvar=False)


def _scipy_fd(mu1, s1, mu2, s2):
  """pytorch-fid's calculate_frechet_distance (sqrtm of the non-symmetric product)."""
  covmean = linalg.sqrtm(s1.dot(s2))
  covmean = covmean.real
  diff = mu1 - mu2
  return diff.dot(diff) + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean)


@pytest.mark.parametrize("d", [2, 16, 64])
def test_frechet_distance_matches_scipy_sqrtm(d):
  rng = np.random.default_rng(d)
  mu1, s1, mu2, s2 = _random_stats(rng, d, 4 * d + 50)
  got, want = metrics.frechet_distance(mu1, s1, mu2, s2), _scipy_fd(mu1, s1, mu2, s2)
  assert got == pytest.approx(want, rel=1e-3)
  assert metrics.frechet_distance(mu2, s2, mu1, s1) == pytest.approx(got, rel=1e-6)


def test_frechet_distance_identical_sets_is_zero():
  rng = np.random.default_rng(0)
  feats = rng.normal(size=(300, 32)) @ rng.normal(size=(32, 32))
  stats = metrics.FeatureStats().update(feats)
  fd = metrics.frechet_distance(*stats.mean_cov(), *stats.mean_cov())
  assert abs(fd) < 1e-8 * np.trace(stats.cov)
  # Singular covariance (fewer samples than dimensions) stays finite and ~0.
  few = metrics.FeatureStats().update(feats[:10])
  # (round-off in the square roots of ~0 eigenvalues: ~sqrt(eps) relative)
  assert abs(metrics.frechet_distance(*few.mean_cov(), *few.mean_cov())) < 1e-6 * np.trace(few.cov)


def test_frechet_distance_closed_form():
  rng = np.random.default_rng(1)
  d = 8
  shift = rng.normal(size=d)
  a = rng.uniform(0.5, 2.0, d)
  b = rng.uniform(0.5, 2.0, d)
  # Same covariance: FD is the squared mean shift.
  q, _ = np.linalg.qr(rng.normal(size=(d, d)))
  s = q @ np.diag(a) @ q.T
  assert metrics.frechet_distance(np.zeros(d), s, shift, s) == pytest.approx(
    shift @ shift, rel=1e-9
  )
  # Commuting covariances: |dmu|^2 + sum (sqrt(a) - sqrt(b))^2.
  want = shift @ shift + ((np.sqrt(a) - np.sqrt(b)) ** 2).sum()
  assert metrics.frechet_distance(np.zeros(d), np.diag(a), shift, np.diag(b)) == pytest.approx(
    want, rel=1e-9
  )
  # From samples: a shifted Gaussian set.
  x = rng.normal(size=(20000, d))
  fs1, fs2 = metrics.FeatureStats().update(x), metrics.FeatureStats().update(x[::-1] + shift)
  assert metrics.frechet_distance(*fs1.mean_cov(), *fs2.mean_cov()) == pytest.approx(
    shift @ shift, rel=1e-6
  )


def test_streaming_stats_match_two_pass():
  rng = np.random.default_rng(2)
  feats = rng.normal(size=(1000, 24)) * rng.uniform(0.1, 3, 24) + 1e4  # large common offset
  stats = metrics.FeatureStats()
  for chunk in np.array_split(feats, [1, 7, 300, 301, 640]):
    stats.update(chunk)  # includes batches of one and an empty tail
  mean = feats.mean(0)
  cov = ((feats - mean).T @ (feats - mean)) / (len(feats) - 1)  # two-pass
  assert stats.n == 1000
  np.testing.assert_allclose(stats.mean, mean, rtol=1e-14)
  np.testing.assert_allclose(stats.cov, cov, rtol=1e-9, atol=1e-9 * np.abs(cov).max())
  np.testing.assert_allclose(stats.cov, np.cov(feats, rowvar=False), rtol=1e-9, atol=1e-12)
  # float32 input batches, merge of two accumulators, save/load.
  a = metrics.FeatureStats().update(feats[:400].astype(np.float32))
  b = metrics.FeatureStats().update(feats[400:].astype(np.float32))
  f32 = feats.astype(np.float32).astype(np.float64)
  np.testing.assert_allclose(a.merge(b).cov, np.cov(f32, rowvar=False), rtol=1e-9, atol=1e-12)


def test_stats_save_load(tmp_path):
  stats = metrics.FeatureStats().update(np.random.default_rng(3).normal(size=(50, 4)))
  stats.save(tmp_path / "s.npz")
  back = metrics.FeatureStats.load(tmp_path / "s.npz")
  assert back.n == 50
  np.testing.assert_array_equal(back.mean, stats.mean)
  np.testing.assert_allclose(back.cov, stats.cov, rtol=1e-15)


def _naive_mmd2(x, y):
  d = x.shape[1]
  k = lambda a, b: (a @ b.T / d + 1) ** 3  # noqa: E731
  m, n = len(x), len(y)
  kxx, kyy = k(x, x), k(y, y)
  sxx = sum(kxx[i, j] for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
  syy = sum(kyy[i, j] for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
  return sxx + syy - 2 * k(x, y).mean()


def test_kid_matches_naive_reference():
  rng = np.random.default_rng(4)
  x, y = rng.normal(size=(60, 10)), rng.normal(size=(50, 10)) + 0.3
  assert kid_lib.mmd2_unbiased(x, y) == pytest.approx(_naive_mmd2(x, y), rel=1e-5)
  mean, std = metrics.kernel_inception_distance(x, y, num_subsets=5, subset_size=30, seed=7)
  ref = [_naive_mmd2(x[i], y[j]) for i, j in kid_lib.subset_indices(60, 50, 5, 30, 7)]
  assert mean == pytest.approx(np.mean(ref), rel=1e-5)
  assert std == pytest.approx(np.std(ref), rel=1e-4)
  assert len({tuple(i) for i, _ in kid_lib.subset_indices(60, 50, 5, 30, 7)}) == 5


def test_kid_same_vs_shifted_distribution():
  rng = np.random.default_rng(5)
  a, b = rng.normal(size=(600, 16)), rng.normal(size=(600, 16))
  same, _ = metrics.kernel_inception_distance(a, b, num_subsets=20, subset_size=200)
  shifted, _ = metrics.kernel_inception_distance(a, b + 0.5, num_subsets=20, subset_size=200)
  assert abs(same) < 0.01 and shifted > 0.05


def _naive_pr(real, fake, k):
  drr, dff, dfr = cdist(real, real), cdist(fake, fake), cdist(fake, real)
  rr = np.sort(drr, axis=1)[:, k]
  rf = np.sort(dff, axis=1)[:, k]
  precision = np.mean([(dfr[i] <= rr).any() for i in range(len(fake))])
  recall = np.mean([(dfr[:, j] <= rf).any() for j in range(len(real))])
  return precision, recall


@pytest.mark.parametrize("k", [1, 3])
def test_precision_recall_matches_cdist_reference(k):
  rng = np.random.default_rng(6)
  real = rng.normal(size=(300, 5))
  fake = rng.normal(size=(250, 5)) * 1.6 + 0.7  # wider and shifted: neither is 0 or 1
  got = metrics.precision_recall(real, fake, k=k, block=64)
  p, r = _naive_pr(real, fake, k)
  assert got["precision"] == pytest.approx(p, abs=1e-9)
  assert got["recall"] == pytest.approx(r, abs=1e-9)
  assert 0.05 < p < 0.95 and r < 0.999


def test_precision_recall_mode_dropping():
  rng = np.random.default_rng(7)
  centres = rng.normal(size=(4, 8)) * 10
  real = centres[rng.integers(0, 4, 800)] + rng.normal(size=(800, 8))
  fake = centres[rng.integers(0, 2, 800)] + rng.normal(size=(800, 8))  # two of four modes
  got = metrics.precision_recall(real, fake)
  assert got["precision"] > 0.75 and 0.35 < got["recall"] < 0.65


def test_inception_score():
  n, c = 1000, 10
  # Confident and uniform over classes: IS = number of classes.
  one_hot = np.eye(c)[np.arange(n) % c]
  mean, std = metrics.inception_score(one_hot, splits=10)
  assert mean == pytest.approx(c, rel=1e-6) and std < 1e-6
  # Constant predictions: IS = 1. Logits and probabilities agree.
  assert metrics.inception_score(np.zeros((n, c)), splits=5)[0] == pytest.approx(1.0)
  logits = np.random.default_rng(8).normal(size=(n, c)) * 3
  probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
  assert metrics.inception_score(logits)[0] == pytest.approx(
    metrics.inception_score(probs)[0], rel=1e-9
  )
  # Reference: exp(mean KL) per split.
  ref = []
  for part in np.array_split(probs, 10):
    py = part.mean(0)
    ref.append(np.exp((part * (np.log(part) - np.log(py))).sum(1).mean()))
  assert metrics.inception_score(probs)[0] == pytest.approx(np.mean(ref), rel=1e-9)


def test_apply_in_batches_pads_the_last_batch_and_drops_the_padding():
  from jaxgan.metrics.batching import apply_in_batches

  shapes = []

  def apply(w, x):
    shapes.append(x.shape)
    return x @ w, (x @ w).sum(-1, keepdims=True)

  rng = np.random.default_rng(0)
  w, x = rng.normal(size=(4, 3)), rng.normal(size=(7, 4))
  feats, logits = apply_in_batches(apply, w, x, batch_size=3)
  assert shapes == [(3, 4)] * 3  # 3 + 3 + (1 padded to 3): one shape
  np.testing.assert_allclose(feats, x @ w)
  np.testing.assert_allclose(logits, (x @ w).sum(-1, keepdims=True))
  shapes.clear()
  apply_in_batches(apply, w, x[:2], batch_size=3)
  assert shapes == [(2, 4)]  # smaller than one batch: its own size


# ------------------------------------------------------------------------------------------------
# Evaluator: the same numbers as the metric functions on the same features, its keys, its
# protocol, its construction from a run config and its reference-statistics cache.


class _Linear:
  """A feature network with a known map: features = flatten(images) @ w, logits = features @ v."""

  name = "linear"

  def __init__(self, d_in, d=6, classes=5, seed=0, id="linear-1"):  # noqa: A002
    rng = np.random.default_rng(seed)
    self.w = rng.normal(size=(d_in, d)).astype(np.float32)
    self.v = rng.normal(size=(d, classes)).astype(np.float32)
    self.id = id

  def features(self, images):
    return np.asarray(images, np.float32).reshape(len(images), -1) @ self.w

  def logits(self, images):
    return self.features(images) @ self.v


def test_evaluator_matches_the_metric_functions():
  import jax

  rng = np.random.default_rng(0)
  real = rng.uniform(-1, 1, (700, 3, 3, 1)).astype(np.float32)
  fake = (rng.uniform(-1, 1, (400, 3, 3, 1)) * 0.5 + 0.2).astype(np.float32)
  ext = _Linear(9)
  ev = metrics.Evaluator.create(
    metrics=["fcd", "kid", "precision_recall", "is"],
    extractor=ext,
    reference_images=real,
    num_samples=300,
    batch_size=128,
    kid_subsets=4,
    kid_subset_size=100,
    pr_k=2,
    pr_samples=250,
    is_splits=3,
  )
  calls = []

  def sample_fn(key, n):
    start = 128 * len(calls)
    calls.append((jax.random.key_data(key), n))
    return fake[start : start + 128]  # always a full batch: the evaluator drops the extra rows

  key = jax.random.PRNGKey(3)
  out = ev.evaluate(sample_fn, key=key)
  assert [n for _, n in calls] == [128, 128, 44]
  for i, (k, _) in enumerate(calls):
    np.testing.assert_array_equal(k, jax.random.key_data(jax.random.fold_in(key, i)))

  f_fake, f_real = ext.features(fake[:300]).astype(np.float64), ext.features(real)
  ref = ev.reference
  assert ref.stats.n == 700 and ref.feats.shape == (300, 6)
  np.testing.assert_allclose(ref.stats.cov, np.cov(f_real, rowvar=False), rtol=1e-5, atol=1e-6)
  # The kept reference vectors are distinct rows of the real features (a subset, not a copy).
  dist = np.abs(ref.feats[:, None, :] - f_real[None, :, :]).max(-1)
  assert (dist.min(1) < 1e-5).all() and len(set(dist.argmin(1))) == 300
  p = "linear-300-train"
  fd = metrics.frechet_distance(f_fake.mean(0), np.cov(f_fake, rowvar=False), *ref.stats.mean_cov())
  kid = metrics.kernel_inception_distance(f_fake, ref.feats, num_subsets=4, subset_size=100)
  pr = metrics.precision_recall(ref.feats[:250], f_fake[:250], k=2)
  score = metrics.inception_score(f_fake @ ext.v, 3, from_logits=True)
  want = {
    f"{p}/fcd": fd,
    f"{p}/kid": kid[0],
    f"{p}/kid_std": kid[1],
    f"{p}/precision": pr["precision"],
    f"{p}/recall": pr["recall"],
    f"{p}/is": score[0],
    f"{p}/is_std": score[1],
  }
  assert out == pytest.approx(want, rel=1e-4, abs=1e-7)
  assert fd > 0.1 and 0 < pr["precision"] < 1 and 1 < score[0] < 5  # nothing degenerate
  assert ev.primary == f"{p}/fcd" and ev.primary_mode == "min"
  for part in (
    "features: linear",
    "300 generated samples vs train (700 images)",
    "KID: 4 subsets of 100",
    "P&R: k=2, <= 250 per side",
    "IS: 3 splits",
  ):
    assert part in ev.protocol
  # Another sample count is another protocol: the keys carry it.
  assert set(ev.evaluate(lambda k, n: fake[:n], 200)) == {k.replace("-300-", "-200-") for k in want}


def test_evaluator_names_and_primary():
  real = np.random.default_rng(1).uniform(-1, 1, (50, 2, 2, 1))

  class Inception(_Linear):
    name = "inception_fid"

  fid = metrics.Evaluator.create(
    metrics="fid",
    extractor=Inception(4),
    reference_images=real,
    num_samples=2000,
    reference_split="val",
  )
  assert fid.primary == "inception_fid-2k-val/fid"
  kid = metrics.Evaluator.create(
    metrics="precision_recall,kid", extractor=_Linear(4), reference_images=real, num_samples=40
  )
  assert kid.primary == "linear-40-train/kid" and kid.metrics == ("precision_recall", "kid")
  pr = metrics.Evaluator.create(
    metrics=("precision_recall",), extractor=_Linear(4), reference_images=real, num_samples=40
  )
  assert pr.primary is None


class _FeaturesOnly:
  name = "flat"

  def features(self, images):
    return np.asarray(images).reshape(len(images), -1)


@pytest.mark.parametrize(
  "kwargs, error, message",
  [
    (dict(metrics="fcd,fld"), ValueError, r"Unknown metrics \['fld'\]"),
    (dict(metrics=""), ValueError, "Unknown metrics"),
    (dict(metrics="is"), ValueError, "needs an extractor with logits"),
    (dict(dataset="mnist"), ValueError, "exactly one of dataset"),
    (dict(reference_images=None), ValueError, "exactly one of dataset"),
    (dict(extractor="resnet"), ValueError, "Unknown extractor 'resnet'"),
    (dict(extractor="classifier"), ValueError, "needs classifier_path"),
    (dict(num_samples=0), ValueError, "num_samples must be"),
  ],
)
def test_evaluator_create_refuses(kwargs, error, message):
  args = dict(
    metrics="fcd",
    extractor=_FeaturesOnly(),
    num_samples=10,
    reference_images=np.zeros((20, 2, 2, 1), np.float32),
  )
  with pytest.raises(error, match=message):
    metrics.Evaluator.create(**(args | kwargs))


@pytest.fixture
def fake_dataset(monkeypatch):
  """Replaces the data set loading of the reference statistics with in-memory images."""
  from jaxgan.metrics import reference

  images = np.random.default_rng(2).uniform(-1, 1, (400, 2, 2, 1)).astype(np.float32)
  loads = []

  def load_arrays(dataset, split, *, data_dir=None, source_dir=None, limit=None, read=None):
    loads.append((dataset, split, data_dir, source_dir, limit, read))
    return images[:limit], np.zeros(len(images[:limit]), np.int32)

  monkeypatch.setattr(reference, "load_arrays", load_arrays)
  return images, loads


def _run_config(**eval_fields):

  config = default_config()
  config.data.name, config.data.pad_to = "fashion_mnist", 4
  config.run.data_dir, config.run.source_dir = "/prepared", "/originals"
  config.eval.update(dict(metrics="fcd,kid", num_samples=100, reference_split="test") | eval_fields)
  return config


def test_evaluator_from_config_reads_the_run_config_and_caches(tmp_path, fake_dataset):
  images, loads = fake_dataset
  ext = _Linear(16)
  config = _run_config()
  ev = metrics.Evaluator.from_config(
    config,
    read=read_options(config),
    cache_dir=str(tmp_path),
    extractor=ext,
    num_reference=300,
    kid_subset_size=50,
  )
  read = dict(resolution=None, crop="resize_crop", image_key="image", label_key=None)
  assert loads == [("fashion_mnist", "test", "/prepared", "/originals", 300, read)]
  assert ev.prefix == "linear-100-test" and ev.metrics == ("frechet", "kid")
  assert ev.num_samples == 100 and ev.settings["kid_subset_size"] == 50
  assert "100 generated samples vs fashion_mnist 'test' (300 images)" in ev.protocol
  # data.pad_to: the reference images are padded to 4x4 with -1, centred, as the loader does.
  padded = np.pad(images[:300], ((0, 0), (1, 1), (1, 1), (0, 0)), constant_values=-1.0)
  np.testing.assert_allclose(ev.reference.stats.mean, ext.features(padded).mean(0), rtol=1e-5)
  (cached,) = tmp_path.glob("ref_fashion_mnist_test_linear_*.npz")
  # A second evaluator with the same protocol reads the cache instead of the data.
  again = metrics.Evaluator.from_config(
    config,
    read=read_options(config),
    cache_dir=str(tmp_path),
    extractor=ext,
    num_reference=300,
    kid_subset_size=50,
  )
  assert len(loads) == 1 and "(300 images, cached)" in again.protocol
  np.testing.assert_array_equal(again.reference.feats, ev.reference.feats)
  np.testing.assert_allclose(again.reference.stats.cov, ev.reference.stats.cov, rtol=1e-12)
  # Other reference images or other weights are other statistics: cache misses.
  metrics.Evaluator.from_config(
    config,
    read=read_options(config),
    cache_dir=str(tmp_path),
    extractor=ext,
    num_reference=200,
    kid_subset_size=50,
  )
  metrics.Evaluator.from_config(
    config,
    read=read_options(config),
    cache_dir=str(tmp_path),
    extractor=_Linear(16, id="2"),
    num_reference=300,
    kid_subset_size=50,
  )
  assert len(loads) == 3 and len(list(tmp_path.glob("*.npz"))) == 3
  # An unreadable cache file is ignored and rewritten.
  cached.write_bytes(b"not an npz")
  metrics.Evaluator.from_config(
    config,
    read=read_options(config),
    cache_dir=str(tmp_path),
    extractor=ext,
    num_reference=300,
    kid_subset_size=50,
  )
  assert len(loads) == 4 and np.load(cached)["feats"].shape == (100, 6)
  # Images read at another resolution are another reference; the read options reach the data.
  config.data.resolution = 8
  metrics.Evaluator.from_config(
    config,
    read=read_options(config),
    cache_dir=str(tmp_path),
    extractor=ext,
    num_reference=300,
    kid_subset_size=50,
  )
  assert len(loads) == 5 and loads[-1][-1]["resolution"] == 8


def test_evaluator_cache_dir_comes_from_the_config_and_needs_an_extractor_id(
  tmp_path, fake_dataset
):
  config = _run_config(cache_dir=str(tmp_path / "from_config"))
  metrics.Evaluator.from_config(config, read=read_options(config), extractor=_Linear(16))
  assert len(list((tmp_path / "from_config").glob("*.npz"))) == 1
  # An extractor without an id (its weights unknown) is never cached.
  metrics.Evaluator.from_config(
    config,
    read=read_options(config),
    cache_dir=str(tmp_path / "no_id"),
    extractor=_Linear(16, id=None),
  )
  assert not (tmp_path / "no_id").exists()


@pytest.mark.parametrize(
  "change, kwargs, error, message",
  [
    (dict(name="toy_grid"), {}, ValueError, "mode coverage"),
    (dict(metrics=""), {}, ValueError, "config.eval.metrics is empty"),
    ({}, dict(num_samples=10), TypeError, r"\['num_samples'\] from the run config"),
  ],
)
def test_evaluator_from_config_refuses(change, kwargs, error, message, fake_dataset):
  config = _run_config()
  if "name" in change:
    config.data.name = change.pop("name")
  config.eval.update(change)
  with pytest.raises(error, match=message):
    if config.data.name == "toy_grid":  # the run refuses it: a 2-D mixture has no images
      from jaxgan.run import loop

      loop.make_evaluator(config, cache_dir=None, **kwargs)
    else:
      metrics.Evaluator.from_config(config, read=read_options(config), **kwargs)
  assert not fake_dataset[1]  # refused before any image was loaded


def test_a_registered_metric_is_found_computed_and_described_by_the_evaluator():
  """A metric is one definition and its registration: no other place names it."""
  import jax

  from jaxgan.metrics import registry

  @registry.register(
    "feature_norm_test",
    reference=False,
    settings={"norm_ord": 2},
    describe=lambda s: f"feature norm: ord {s['norm_ord']}",
  )
  def feature_norm(ev, samples):
    norms = np.linalg.norm(samples.feats, ord=ev.settings["norm_ord"], axis=1)
    return {"feature_norm": float(norms.mean())}

  try:
    ext = _Linear(4)
    real = np.zeros((10, 2, 2, 1), np.float32)
    ev = metrics.Evaluator.create(
      metrics="feature_norm_test", extractor=ext, reference_images=real, num_samples=20, norm_ord=1
    )
    assert ev.reference is None and "feature norm: ord 1" in ev.protocol and ev.primary is None
    fake = np.random.default_rng(0).uniform(-1, 1, (20, 2, 2, 1)).astype(np.float32)
    out = ev.evaluate(lambda key, n: fake[:n], key=jax.random.PRNGKey(0))
    want = np.abs(ext.features(fake)).sum(1).mean()
    assert out == pytest.approx({"linear-20-train/feature_norm": want}, rel=1e-6)
    with pytest.raises(TypeError, match=r"Unknown settings \['norm'\]"):
      metrics.Evaluator.create(
        metrics="fcd", extractor=ext, reference_images=real, num_samples=20, norm=1
      )
    with pytest.raises(ValueError, match="registered already"):
      registry.register("feature_norm_test")(feature_norm)
  finally:
    del registry.REGISTRY["feature_norm_test"]
  with pytest.raises(ValueError, match="Unknown metrics.*valid: fcd, fid"):
    metrics.Evaluator.create(metrics="feature_norm_test", extractor=ext, reference_images=real)


def test_frechet_distance_of_too_few_samples_warns_and_names_the_counts():
  from jaxgan.metrics import fid

  rng = np.random.default_rng(0)
  many, few = rng.normal(size=(40, 8)), rng.normal(size=(8, 8))
  ref = fid.FeatureStats().update(many)
  with pytest.warns(fid.FewSamplesWarning, match="8 samples in 8 dimensions"):
    value = fid.stats_distance(fid.FeatureStats().update(few), ref)
  want = fid.frechet_distance(*fid.FeatureStats().update(few).mean_cov(), *ref.mean_cov())
  assert value == want  # warned, not changed
  import warnings

  with warnings.catch_warnings():
    warnings.simplefilter("error")
    fid.stats_distance(fid.FeatureStats().update(many[:20]), ref)  # 20 > 8: silent


def test_images_in_another_range_are_refused_or_warned():
  from jaxgan.metrics import batching

  class Flat:
    name = "flat"

    def features(self, images):
      return np.asarray(images).reshape(len(images), -1)

  rng = np.random.default_rng(0)
  u8 = rng.integers(0, 256, (4, 16, 16, 1)).astype(np.float32)
  with pytest.raises(ValueError, match=r"uint8's range.*x / 127.5 - 1"):
    batching.extract(Flat(), u8)
  with pytest.warns(batching.ImageRangeWarning, match=r"\[0, 1\] images\? .* 2 \* x - 1"):
    batching.extract(Flat(), u8 / 255)
  with pytest.warns(batching.ImageRangeWarning, match="outside"):
    batching.extract(Flat(), u8 / 127.5 - 1.2)
  import warnings

  with warnings.catch_warnings():
    warnings.simplefilter("error")
    batching.extract(Flat(), u8 / 127.5 - 1)  # [-1, 1]: silent
