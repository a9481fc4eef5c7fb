"""FD, KID, precision/recall, IS and streaming statistics against NumPy/SciPy references;
the FID InceptionV3 (architecture, weight loading, equality with a PyTorch reference)."""

import numpy as np
import pytest
from scipy import linalg
from scipy.spatial.distance import cdist

from jaxgan import metrics
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
  assert metrics.frechet_distance(np.zeros(d), s, shift, s) == pytest.approx(shift @ shift, rel=1e-9)
  # Commuting covariances: |dmu|^2 + sum (sqrt(a) - sqrt(b))^2.
  want = shift @ shift + ((np.sqrt(a) - np.sqrt(b)) ** 2).sum()
  assert metrics.frechet_distance(np.zeros(d), np.diag(a), shift, np.diag(b)) == pytest.approx(want, rel=1e-9)
  # From samples: a shifted Gaussian set.
  x = rng.normal(size=(20000, d))
  fs1, fs2 = metrics.FeatureStats().update(x), metrics.FeatureStats().update(x[::-1] + shift)
  assert metrics.frechet_distance(*fs1.mean_cov(), *fs2.mean_cov()) == pytest.approx(shift @ shift, rel=1e-6)


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
  assert metrics.inception_score(logits)[0] == pytest.approx(metrics.inception_score(probs)[0], rel=1e-9)
  # Reference: exp(mean KL) per split.
  ref = []
  for part in np.array_split(probs, 10):
    py = part.mean(0)
    ref.append(np.exp((part * (np.log(part) - np.log(py))).sum(1).mean()))
  assert metrics.inception_score(probs)[0] == pytest.approx(np.mean(ref), rel=1e-9)
