"""Feature statistics, the Frechet distance (FID/FCD) and the Inception Score, and their
registrations as `Evaluator` metrics ('fcd'/'fid', 'is').

Everything here runs on the host in float64 NumPy: the statistics of a few 10k feature vectors
are cheap next to the feature network, and float32 covariance accumulation or a float32 matrix
square root are the classic sources of FID noise (Heusel et al. 2017; pytorch-fid issue #40).
"""

from __future__ import annotations

import os
import uuid
import warnings

import numpy as np

from jaxgan.metrics.registry import register


class FewSamplesWarning(UserWarning):
  """A Frechet distance of statistics with no more vectors than feature dimensions."""


class FeatureStats:
  """Streaming mean and covariance of feature vectors, numerically stable, in float64.

  Each `update(feats)` computes the batch mean and *centred* scatter matrix in float64 and merges
  them into the running ones with the pairwise formula of Chan, Golub & LeVeque (1979):

      M2 = M2_a + M2_b + (mu_b - mu_a)(mu_b - mu_a)^T * n_a n_b / (n_a + n_b)

  so no large sums of squares are ever subtracted (the naive E[xx^T] - mu mu^T loses every digit
  when features have a large common offset). `cov` is unbiased (ddof=1), like `np.cov`.

  >>> x = np.random.default_rng(0).normal(size=(100, 3)) + 1e6
  >>> s = FeatureStats().update(x[:30]).update(x[30:])
  >>> s.n, bool(np.allclose(s.cov, np.cov(x, rowvar=False)))
  (100, True)

  Attributes:
    n: the number of vectors seen.
    dim: their dimension (None until the first update).
  """

  def __init__(self, dim: int | None = None):
    """An empty accumulator.

    Args:
      dim: the feature dimension d; None: taken from the first `update`.
    """
    self.n = 0
    self.dim = dim
    self._mean = None if dim is None else np.zeros(dim, np.float64)
    self._m2 = None if dim is None else np.zeros((dim, dim), np.float64)

  def update(self, feats) -> FeatureStats:
    """Adds a batch of feature vectors.

    Args:
      feats: `(b, d)` array, any float dtype (accumulated in float64); b may be 0.

    Returns:
      self, so that calls chain.

    Raises:
      ValueError: when `feats` is not 2-D or its d differs from earlier batches.
    """
    x = np.asarray(feats, np.float64)
    if x.ndim != 2:
      raise ValueError(f"features must have shape (n, d); got {x.shape}.")
    if self._mean is None:
      self.dim = x.shape[1]
      self._mean = np.zeros(self.dim, np.float64)
      self._m2 = np.zeros((self.dim, self.dim), np.float64)
    if x.shape[1] != self.dim:
      raise ValueError(f"features have dimension {x.shape[1]}, expected {self.dim}.")
    nb = x.shape[0]
    if nb == 0:
      return self
    mean_b = x.mean(axis=0)
    xc = x - mean_b
    m2_b = xc.T @ xc
    na, n = self.n, self.n + nb
    delta = mean_b - self._mean
    self._mean = self._mean + delta * (nb / n)
    self._m2 = self._m2 + m2_b + np.outer(delta, delta) * (na * nb / n)
    self.n = n
    return self

  def merge(self, other: FeatureStats) -> FeatureStats:
    """Adds another accumulator's data (e.g. from another host) into this one.

    Args:
      other: a `FeatureStats` of the same dimension.

    Returns:
      self, now over the vectors of both.
    """
    if other.n == 0:
      return self
    if self.n == 0:
      self.n, self.dim = other.n, other.dim
      self._mean, self._m2 = other._mean.copy(), other._m2.copy()
      return self
    na, nb = self.n, other.n
    n = na + nb
    delta = other._mean - self._mean
    self._mean = self._mean + delta * (nb / n)
    self._m2 = self._m2 + other._m2 + np.outer(delta, delta) * (na * nb / n)
    self.n = n
    return self

  @property
  def mean(self) -> np.ndarray:
    """float64 `(d,)`; raises ValueError before the first vector."""
    if self.n == 0:
      raise ValueError("no features accumulated")
    return self._mean.copy()

  @property
  def cov(self) -> np.ndarray:
    """float64 `(d, d)`, unbiased (divides by n - 1); raises ValueError with fewer than 2."""
    if self.n < 2:
      raise ValueError("the covariance needs at least 2 feature vectors")
    return self._m2 / (self.n - 1)

  def mean_cov(self) -> tuple[np.ndarray, np.ndarray]:
    """`(mean (d,), cov (d, d))`, float64: the arguments of `frechet_distance`."""
    return self.mean, self.cov

  def save(self, path, *, overwrite: bool = True, **extra) -> str:
    """Writes `mu`, `sigma` and `n` to an .npz (the layout pytorch-fid's --save-stats uses).

    `mu` is float64 `(d,)`, `sigma` float64 `(d, d)` (unbiased), `n` int64; pytorch-fid and
    clean-fid read the first two. The file is written beside its destination and then renamed
    (or, without `overwrite`, hard-linked, which fails if the name exists), so no reader sees
    half a file and no existing file is replaced by a race.

    Args:
      path: the file to write; `.npz` is appended to another name, as `np.savez` does. Its
        folder is created.
      overwrite: replace an existing file; False: raise FileExistsError instead.
      **extra: more arrays to store, e.g. `extractor_id=np.str_(...)`.

    Returns:
      The path written.

    Raises:
      FileExistsError: the file exists and `overwrite` is False.
    """
    path = os.fspath(path)
    path = path if path.endswith(".npz") else path + ".npz"
    exists = f"{path} exists: not overwritten (overwrite=True replaces it)."
    if not overwrite and os.path.exists(path):
      raise FileExistsError(exists)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    # A fresh name beside it ('x': never an existing file), with the umask's permissions.
    tmp = os.path.join(folder, f".{os.path.basename(path)}.{os.getpid()}-{uuid.uuid4().hex}.tmp")
    try:
      with open(tmp, "xb") as f:
        np.savez(f, mu=self.mean, sigma=self.cov, n=np.int64(self.n), **extra)
      if overwrite:
        os.replace(tmp, path)
      else:
        try:
          os.link(tmp, path)
        except FileExistsError:
          raise FileExistsError(exists) from None
        except OSError:  # no hard links here: check, then rename
          if os.path.exists(path):
            raise FileExistsError(exists) from None
          os.replace(tmp, path)
    finally:
      if os.path.exists(tmp):
        os.remove(tmp)
    return path

  @classmethod
  def from_mean_cov(cls, mu, sigma, n: int) -> FeatureStats:
    """An accumulator holding given statistics, e.g. read from a file.

    Args:
      mu: `(d,)` mean.
      sigma: `(d, d)` unbiased covariance.
      n: the number of vectors they came from.

    Returns:
      A `FeatureStats` that further updates and merges extend correctly.
    """
    s = cls()
    s.n, s.dim = int(n), int(np.shape(mu)[0])
    s._mean = np.asarray(mu, np.float64).copy()
    s._m2 = np.asarray(sigma, np.float64) * (int(n) - 1)
    return s

  @classmethod
  def load(cls, path) -> FeatureStats:
    """Reads an .npz written by `save` (or pytorch-fid; without `n` it counts as 2).

    Args:
      path: the file.

    Returns:
      The statistics.
    """
    with np.load(path) as f:
      return cls.from_mean_cov(f["mu"], f["sigma"], int(f["n"]) if "n" in f else 2)


def _psd_sqrt(s: np.ndarray) -> np.ndarray:
  w, v = np.linalg.eigh(s)
  return (v * np.sqrt(np.clip(w, 0.0, None))) @ v.T


def frechet_distance(mu1, sigma1, mu2, sigma2) -> float:
  """Frechet (2-Wasserstein) distance between N(mu1, sigma1) and N(mu2, sigma2).

      d^2 = |mu1 - mu2|^2 + tr(S1) + tr(S2) - 2 tr((S1 S2)^{1/2})

  On Inception pool features this is the FID of Heusel et al. 2017; on a classifier's features,
  a "Frechet classifier distance". The trace term is computed in float64 from the eigenvalues of
  the symmetric PSD matrix S1^{1/2} S2 S1^{1/2}, which are those of S1 S2: two symmetric
  eigendecompositions, no non-symmetric `sqrtm` (whose complex parts and singular-matrix retries
  pytorch-fid has to patch). Tiny negative eigenvalues from round-off are clipped to zero, so
  singular statistics (fewer samples than dimensions) stay finite.

  Args:
    mu1: mean of the first set, `(d,)`.
    sigma1: covariance of the first set, `(d, d)`, symmetric PSD.
    mu2: mean of the second set, `(d,)`.
    sigma2: covariance of the second set, `(d, d)`.

  Returns:
    The squared distance d^2 (as FID is reported), in squared feature units, a Python float.

  Raises:
    ValueError: when the shapes disagree.

  >>> round(frechet_distance(np.zeros(2), np.eye(2), np.ones(2), 4 * np.eye(2)), 6)
  4.0
  """
  mu1, mu2 = np.atleast_1d(np.asarray(mu1, np.float64)), np.atleast_1d(np.asarray(mu2, np.float64))
  s1, s2 = (
    np.atleast_2d(np.asarray(sigma1, np.float64)),
    np.atleast_2d(np.asarray(sigma2, np.float64)),
  )
  if mu1.shape != mu2.shape or s1.shape != s2.shape or s1.shape != (mu1.size, mu1.size):
    raise ValueError(f"shape mismatch: mu {mu1.shape} {mu2.shape}, sigma {s1.shape} {s2.shape}")
  s1, s2 = (s1 + s1.T) / 2, (s2 + s2.T) / 2
  r1 = _psd_sqrt(s1)
  m = r1 @ s2 @ r1
  eig = np.linalg.eigvalsh((m + m.T) / 2)
  tr_covmean = np.sqrt(np.clip(eig, 0.0, None)).sum()
  diff = mu1 - mu2
  return float(diff @ diff + np.trace(s1) + np.trace(s2) - 2.0 * tr_covmean)


def stats_distance(stats: FeatureStats, reference: FeatureStats) -> float:
  """`frechet_distance` of two `FeatureStats`, warning when either is too small to mean much.

  With n vectors of dimension d the covariance has rank at most n - 1: at n <= d it is singular
  and the distance is dominated by the missing directions (and biased upward, Chong & Forsyth
  2020, far more than at n >> d). The number is still returned, with a `FewSamplesWarning`
  naming both counts and the fix.

  Args:
    stats: the generated samples' statistics.
    reference: the reference set's.

  Returns:
    The squared Frechet distance, a Python float.

  Warns:
    FewSamplesWarning: either set holds no more vectors than dimensions.
  """
  small = {name: s.n for name, s in (("samples", stats), ("reference", reference)) if s.n <= s.dim}
  if small:
    counts = ", ".join(f"{n:,} {name}" for name, n in small.items())
    warnings.warn(
      f"Frechet distance of {counts} in {stats.dim} dimensions: with no more vectors than "
      "dimensions the covariance is singular and the number is not comparable to published "
      f"ones. Use more than {stats.dim} (10,000 or 50,000 for FID).",
      FewSamplesWarning,
      stacklevel=2,
    )
  return frechet_distance(*stats.mean_cov(), *reference.mean_cov())


def inception_score(
  logits_or_probs, splits: int = 10, *, from_logits: bool | None = None
) -> tuple[float, float]:
  """Inception Score exp(E_x KL(p(y|x) || p(y))), mean and std over equal splits.

  Salimans et al. 2016. With the FID Inception network's 1008-way head this is the usual IS;
  with jaxgan's own classifier it is a "classifier score" (at most the number of classes, 10
  for MNIST), comparable only within that protocol.

  Args:
    logits_or_probs: `(n, classes)`, class probabilities or logits (told apart by whether rows
      are probability vectors, unless `from_logits` says).
    splits: p(y) is estimated per split of the n rows; the score is averaged over splits.
    from_logits: force the interpretation of `logits_or_probs`.

  Returns:
    `(mean, std)` over the splits, Python floats between 1 and the number of classes.

  Raises:
    ValueError: when `logits_or_probs` is not 2-D.

  >>> inception_score(np.eye(4)[np.arange(8) % 4], splits=2)
  (4.0, 0.0)
  """
  x = np.asarray(logits_or_probs, np.float64)
  if x.ndim != 2:
    raise ValueError(f"expected (n, classes); got {x.shape}")
  if from_logits is None:
    from_logits = not (np.all(x >= 0) and np.allclose(x.sum(axis=1), 1.0, atol=1e-3))
  if from_logits:
    x = x - x.max(axis=1, keepdims=True)
    logp = x - np.log(np.exp(x).sum(axis=1, keepdims=True))
  else:
    logp = np.log(np.clip(x / x.sum(axis=1, keepdims=True), 1e-30, None))
  p = np.exp(logp)
  scores = []
  for part_p, part_logp in zip(
    np.array_split(p, splits), np.array_split(logp, splits), strict=True
  ):
    py = part_p.mean(axis=0)
    kl = (part_p * (part_logp - np.log(np.clip(py, 1e-30, None)))).sum(axis=1).mean()
    scores.append(np.exp(kl))
  return float(np.mean(scores)), float(np.std(scores))


def frechet_name(extractor) -> str:
  """The Frechet distance's name in metric keys: `'fid'` with the Inception network, else `'fcd'`.

  Args:
    extractor: a `FeatureExtractor`, or its name as `Evaluator.create` takes it.

  Returns:
    `'fid'` or `'fcd'`.

  >>> frechet_name("inception"), frechet_name("classifier")
  ('fid', 'fcd')
  """
  if isinstance(extractor, str):
    return "fid" if extractor == "inception" else "fcd"
  return "fid" if getattr(extractor, "name", None) == "inception_fid" else "fcd"


@register("frechet", aliases=("fcd", "fid"), primary="{fd}", rank=0)
def _frechet(ev, samples) -> dict[str, float]:
  """The Frechet distance of the samples' features to the reference's (key 'fid' or 'fcd')."""
  return {ev.fd_name: stats_distance(FeatureStats().update(samples.feats), ev.reference.stats)}


# Its keys and protocol name the reference (`reference=True`), as every feature metric's do.
@register(
  "is",
  reads=("logits",),
  settings={"is_splits": 10},
  describe=lambda s: f"IS: {s['is_splits']} splits",
)
def _inception_score(ev, samples) -> dict[str, float]:
  """The Inception Score of the feature network's classifier head, and its std over splits."""
  mean, std = inception_score(samples.logits, ev.settings["is_splits"], from_logits=True)
  return {"is": mean, "is_std": std}
