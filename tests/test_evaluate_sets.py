"""`python -m jaxgan.evaluate --images ... --reference ...`: two image sets scored with jaxgan's
Inception metrics (jaxgan.metrics.image_sets, jaxgan.run.evaluate.evaluate_sets), statistics exported and
imported in pytorch-fid's mu/sigma format, and every bad input refused before any feature.

The sets' arithmetic runs on a stand-in feature network (a random projection, as
test_metrics.py's Evaluator tests use a pixel extractor); one test runs the real Inception network
(skipped without its weights) against the PyTorch network's stored features.
"""

import json
import os
from pathlib import Path

import numpy as np
import pytest
from _helpers import REAL_DATA
from PIL import Image

from jaxgan.metrics import fid as fid_lib
from jaxgan.metrics import image_sets, inception_weights
from jaxgan.run import evaluate

BATCH = 8  # images per feature call
REFERENCE = Path(__file__).parent / "reference"
# Every set here is far smaller than the 2048 feature dimensions.
pytestmark = pytest.mark.filterwarnings("ignore::jaxgan.metrics.fid.FewSamplesWarning")


class Projection:
  """A stand-in feature network: a fixed random projection of the pixels to `dim`, then tanh.

  It has what `evaluate_sets` uses of the Inception extractor (`name`, `id`, `describe`,
  `features`) at a thousandth of its cost; the real network is tested at the end.
  """

  name, id = "projection", "projection-test"

  def __init__(self, dim=64):
    self.dim = dim

  def describe(self):
    return "a random projection of the pixels"

  def features(self, images):
    x = np.asarray(images, np.float32).reshape(len(images), -1)
    w = np.random.default_rng(x.shape[1]).normal(size=(x.shape[1], self.dim)) / np.sqrt(x.shape[1])
    return np.tanh(x @ w.astype(np.float32) + 0.1)


@pytest.fixture(scope="module")
def extractor():
  return Projection()


@pytest.fixture()
def use(monkeypatch, extractor):
  """`main` runs the stand-in instead of loading the real network, and statistics files of its
  64 dimensions are taken (a Frechet distance in Inception's 2048 takes seconds)."""
  monkeypatch.setattr(image_sets, "inception_extractor", lambda *a, **k: extractor)
  monkeypatch.setattr(image_sets, "INCEPTION_DIM", extractor.dim)
  return extractor


@pytest.fixture()
def no_features(monkeypatch):
  """Any feature network use fails the test: refusals must come first."""

  def fail(*args, **kwargs):
    raise AssertionError("a feature network was loaded or run before the refusal")

  monkeypatch.setattr(image_sets, "inception_extractor", fail)
  monkeypatch.setattr(image_sets, "features", fail)


def _images(seed, n=24, size=16, channels=3):
  """Smooth random uint8 images: blurred noise, so that the features vary from set to set."""
  rng = np.random.default_rng(seed)
  x = rng.uniform(0, 255, (n, size, size, channels))
  x = sum(np.roll(x, (dy, dx), (1, 2)) for dy in (-1, 0, 1) for dx in (-1, 0, 1)) / 9
  return np.clip(np.round(x), 0, 255).astype(np.uint8)


def _npz(path, **arrays):
  np.savez(path, **arrays)
  return str(path)


def _pngs(folder, images, names=None):
  folder.mkdir(parents=True, exist_ok=True)
  for i, im in enumerate(images):
    name = names[i] if names else f"{i:03d}.png"
    (folder / name).parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(im[..., 0] if im.shape[-1] == 1 else im).save(folder / name)
  return str(folder)


def _svd_fid(f1, f2):
  """FID (Heusel et al. 2017) in NumPy for n < d: the nonzero eigenvalues of S1 S2 are the squared
  singular values of X1 X2^T / sqrt((n1 - 1)(n2 - 1)), X the centred features."""
  f1, f2 = np.asarray(f1, np.float64), np.asarray(f2, np.float64)
  c1, c2 = f1 - f1.mean(0), f2 - f2.mean(0)
  n1, n2 = len(f1), len(f2)
  tr_sqrt = np.linalg.svd(c1 @ c2.T, compute_uv=False).sum() / np.sqrt((n1 - 1) * (n2 - 1))
  mean_term = ((f1.mean(0) - f2.mean(0)) ** 2).sum()
  return mean_term + (c1**2).sum() / (n1 - 1) + (c2**2).sum() / (n2 - 1) - 2 * tr_sqrt


def test_fid_of_a_set_against_itself_is_zero_and_against_another_is_not(tmp_path, extractor):
  a = _npz(tmp_path / "a.npz", images=_images(0))
  b = _npz(tmp_path / "b.npz", images=_images(1) // 2)  # darker: another distribution
  same = evaluate.evaluate_sets(a, a, metrics="fid,kid,precision_recall", extractor=extractor)
  other = evaluate.evaluate_sets(a, b, metrics="fid,kid", extractor=extractor)["metrics"]
  assert other["fid"] > 1e-3 and other["kid"] > 0
  assert abs(same["metrics"]["fid"]) < 1e-6 * other["fid"]
  assert same["metrics"]["precision"] == same["metrics"]["recall"] == 1.0
  assert same["images"]["count"] == same["reference"]["count"] == 24
  assert "24 images 16x16x3" in same["protocol"] and "KID: 100 subsets of 24" in same["protocol"]


def test_sets_fid_is_the_frechet_distance_of_the_features(tmp_path, extractor):
  x, y = _images(2), _images(3, n=40, channels=1)
  y_npz = _npz(tmp_path / "y.npz", arr_0=y)
  got = evaluate.evaluate_sets(x, y_npz, extractor=extractor, batch_size=BATCH)
  fx, fy = (image_sets.features(extractor, im, batch_size=BATCH) for im in (x, y))
  assert fx.shape == (24, 64) and fy.shape == (40, 64) and fx.dtype == np.float32
  # The images reach the network as floats in [-1, 1], x / 127.5 - 1.
  np.testing.assert_allclose(fx, extractor.features(x / 127.5 - 1), atol=1e-5)
  want = fid_lib.stats_distance(
    fid_lib.FeatureStats().update(fx), fid_lib.FeatureStats().update(fy)
  )
  assert got["metrics"]["fid"] == pytest.approx(want, rel=1e-9)
  assert got["metrics"]["fid"] == pytest.approx(_svd_fid(fx, fy), rel=1e-6)
  assert "y.npz['arr_0'] (40 images 16x16x1)" in got["protocol"]


def test_exported_statistics_give_the_fid_of_their_images(tmp_path, use, capsys):
  a = _npz(tmp_path / "a.npz", images=_images(4))
  ref = _pngs(tmp_path / "ref", _images(5, n=32))
  stats = tmp_path / "out" / "ref_stats.npz"
  evaluate.main(["--images", ref, "--save_stats", str(stats)])
  assert "statistics written to" in capsys.readouterr().out
  with np.load(stats) as f:
    assert f["mu"].dtype == f["sigma"].dtype == np.float64
    assert f["mu"].shape == (64,) and f["sigma"].shape == (64, 64)
    assert int(f["n"]) == 32 and str(f["extractor_id"]) == use.id
    np.testing.assert_array_equal(f["sigma"], f["sigma"].T)
  assert sorted(os.listdir(stats.parent)) == ["ref_stats.npz"]  # no temporary file left
  from_images = evaluate.evaluate_sets(a, ref, extractor=use)["metrics"]["fid"]
  out = tmp_path / "r.json"
  evaluate.main(["--images", a, "--reference", str(stats), "--out", str(out)])
  record = json.loads(out.read_text())
  assert record["metrics"]["fid"] == pytest.approx(from_images, rel=1e-9)
  assert record["reference"]["count"] == 32 and "statistics" in record["reference"]["description"]
  assert f"fid = {record['metrics']['fid']:.6g}" in capsys.readouterr().out
  # pytorch-fid's and clean-fid's files hold mu and sigma only: the same statistics from them.
  with np.load(stats) as f:
    mu, sigma = f["mu"], f["sigma"]
  plain = image_sets.resolve(_npz(tmp_path / "plain.npz", mu=mu, sigma=sigma))
  assert plain.kind == "stats" and plain.count is None and plain.extractor_id is None
  np.testing.assert_array_equal(plain.stats.mean, mu)
  np.testing.assert_allclose(plain.stats.cov, sigma, rtol=1e-15)
  assert "unrecorded number" in plain.description
  # --overwrite replaces the file; statistics of other features are refused as a reference.
  evaluate.main(["--images", a, "--save_stats", str(stats), "--overwrite"])
  with np.load(stats) as f:
    assert int(f["n"]) == 24
  other = _npz(tmp_path / "other.npz", mu=np.zeros(64), sigma=np.eye(64), n=100, extractor_id="x")
  with pytest.raises(SystemExit) as e:
    evaluate.main(["--images", a, "--reference", other])
  assert e.value.code == 2 and "would not be comparable" in capsys.readouterr().err


def test_statistics_files_are_written_whole_and_never_over_another(tmp_path):
  stats = fid_lib.FeatureStats().update(np.random.default_rng(0).normal(size=(5, 3)))
  path = stats.save(tmp_path / "s", overwrite=False)  # .npz appended, as np.savez does
  assert path == str(tmp_path / "s.npz")
  with pytest.raises(FileExistsError, match="not overwritten"):
    stats.save(path, overwrite=False)
  stats.update(np.ones((1, 3))).save(path)  # overwrite=True, the default, replaces it
  assert os.listdir(tmp_path) == ["s.npz"]  # no temporary file left behind
  back = fid_lib.FeatureStats.load(path)
  assert back.n == 6 and np.allclose(back.cov, stats.cov) and np.allclose(back.mean, stats.mean)


def test_a_folder_and_the_npz_of_its_images_are_the_same_set(tmp_path, extractor):
  grey, rgb = _images(6, channels=1), _images(7, channels=3)
  names = [f"sub/{i:03d}.png" if i % 2 else f"{i:03d}.png" for i in range(len(grey))]
  folder = Path(_pngs(tmp_path / "grey", grey, names))
  (folder / "notes.txt").write_text("not an image: ignored")
  order = np.argsort(names)  # files are read in sorted path order
  for images, spec in ((grey[order], str(folder)), (rgb, _pngs(tmp_path / "rgb", rgb))):
    from_folder = image_sets.resolve(spec)
    from_npz = image_sets.resolve(_npz(tmp_path / "x.npz", images=images))
    assert from_folder.kind == "folder" and from_npz.kind == "npz"
    np.testing.assert_array_equal(from_folder.images, from_npz.images)
    np.testing.assert_array_equal(
      image_sets.features(extractor, from_folder.images, batch_size=BATCH),
      image_sets.features(extractor, from_npz.images, batch_size=BATCH),
    )
  assert image_sets.resolve(str(folder), num=5).images.shape == (5, 16, 16, 1)
  # Integer arrays in [0, 255] are uint8 images.
  wide = image_sets.resolve(_npz(tmp_path / "i.npz", images=rgb.astype(np.int64)))
  assert wide.images.dtype == np.uint8 and np.array_equal(wide.images, rgb)


@pytest.mark.full
def test_a_data_set_is_a_set(tmp_path, mnist_dir, extractor):
  got = evaluate.evaluate_sets(
    "mnist", "mnist", images_split="train", reference_split="test", num=24, data_dir=mnist_dir,
    source_dir=str(REAL_DATA), extractor=extractor,
  )  # fmt: skip
  assert got["images"]["description"] == "mnist 'train' (24 images 28x28x1)"
  assert got["reference"]["description"] == "mnist 'test' (24 images 28x28x1)"
  from jaxgan import data

  test = data.load_source("mnist", split="test", data_dir=mnist_dir).get_batch(np.arange(24))
  train = _npz(
    tmp_path / "t.npz", images=image_sets.resolve("mnist", data_dir=mnist_dir, num=24).images
  )
  same = evaluate.evaluate_sets(train, test["image"], extractor=extractor)
  assert same["metrics"]["fid"] == pytest.approx(got["metrics"]["fid"], rel=1e-9)


@pytest.mark.full
def test_the_real_network_matches_the_pytorch_features(tmp_path):
  """The real weights: the FID of the TorchScript network's stored features (test_inception)."""
  try:
    inception_weights.find_weights()
  except inception_weights.MissingWeightsError:
    pytest.skip(f"no Inception weights: `{inception_weights.FETCH_COMMAND}`")
  with np.load(REFERENCE / "inception_reference.npz") as f:
    ref = {k: f[k] for k in f.files}
  grey, mnist = (
    _npz(tmp_path / "g.npz", images=ref["grey"]),
    _npz(tmp_path / "m.npz", x=ref["mnist"]),
  )
  got = evaluate.evaluate_sets(grey, mnist, batch_size=2)
  assert "a16e4d89c0ec" in got["protocol"] and got["extractor_id"].startswith("tf1-sha1-a16e")
  want = _svd_fid(ref["features"][:4], ref["features"][8:10])  # grey, then colour, then mnist
  assert want > 1 and got["metrics"]["fid"] == pytest.approx(want, rel=1e-3)


# ------------------------------------------------------------------------------------------------
# Refusals: status 2, one message, nothing written, no feature computed.


def _bad_inputs(tmp):
  """(name, argv, the message's telling part) for every refusal."""
  good = _npz(tmp / "good.npz", images=_images(8))
  stats = _npz(tmp / "stats.npz", mu=np.zeros(2048), sigma=np.eye(2048))
  mixed = _pngs(tmp / "mixed", [*_images(9, n=2), *_images(9, n=1, size=20)])
  channels = _pngs(tmp / "channels", [*_images(9, n=2), *_images(9, n=1, channels=1)])
  broken = _pngs(tmp / "broken", _images(10, n=3))
  Path(broken, "001.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
  (tmp / "empty").mkdir()
  (tmp / "notes.txt").write_text("x")
  (tmp / "corrupt.npz").write_bytes(b"PK\x03\x04 not a zip")
  (tmp / "exists.npz").write_bytes(b"keep me")
  x = _images(11)
  wide = x.astype(np.int16)
  wide[0, 0, 0, 0], wide[1, 0, 0, 0] = -1, 300
  cases = [
    ("rank", _npz(tmp / "r.npz", images=x[..., 0]), "add the channel axis"),
    ("channels first", _npz(tmp / "cf.npz", images=x.transpose(0, 3, 1, 2)), "Transpose"),
    ("alpha", _npz(tmp / "a.npz", images=np.concatenate([x, x[..., :1]], -1)), "drop the alpha"),
    ("float", _npz(tmp / "f.npz", images=x / 127.5 - 1), "float64 (24, 16, 16, 3), values in [-"),
    ("values", _npz(tmp / "v.npz", images=wide), "int16 (24, 16, 16, 3), values in [-1, 300]"),
    ("keys", _npz(tmp / "k.npz", a=x, b=x), "holds the arrays ['a', 'b']"),
    ("corrupt npz", str(tmp / "corrupt.npz"), "not a readable .npz"),
    ("not npz", str(tmp / "notes.txt"), "not an .npz"),
    ("mixed sizes", mixed, "002.png is 20x20 with 3 channel(s), but 000.png"),
    ("mixed channels", channels, "002.png is 16x16 with 1 channel(s)"),
    ("unreadable", broken, "001.png: not a readable image"),
    ("empty folder", str(tmp / "empty"), "holds no image files"),
    ("missing path", str(tmp / "nothere.npz"), "no such file or folder"),
    ("missing folder", str(tmp / "no" / "dir"), "no such file or folder"),
    ("unknown data set", "nosuchset", "no such file or folder, so read as a data set"),
  ]
  argv = [(name, ["--images", spec, "--reference", good], msg) for name, spec, msg in cases]
  argv += [
    (
      "stats with kid",
      ["--images", good, "--reference", stats, "--metrics", "fid,kid"],
      "which give fid",
    ),
    ("stats as images", ["--images", stats, "--reference", good], "not images"),
    (
      "stats of 3 dims",
      ["--images", good, "--reference", _npz(tmp / "s3.npz", mu=np.zeros(3), sigma=np.eye(3))],
      "expected float mu (2048,)",
    ),  # fmt: skip
    ("workdir and images", ["--workdir", str(tmp), "--images", good], "exactly one of"),
    ("neither", ["--metrics", "fid"], "exactly one of"),
    ("nothing to do", ["--images", good], "does nothing"),
    ("save onto a file", ["--images", good, "--save_stats", str(tmp / "exists.npz")], "exists"),
    ("save as .txt", ["--images", good, "--save_stats", str(tmp / "s.txt")], "name a .npz"),
    ("unknown metric", ["--images", good, "--reference", good, "--metrics", "is"], "between"),
    ("num 0", ["--images", good, "--reference", good, "--num", "0"], "positive"),
    ("batch 0", ["--images", good, "--reference", good, "--batch_size", "0"], "positive"),
    ("run option", ["--images", good, "--reference", good, "--step", "3"], "--step"),
    ("sets option", ["--workdir", str(tmp), "--num", "3"], "--num do(es) not apply"),
    (
      "too few for P&R",
      ["--images", good, "--reference", good, "--num", "3", "--metrics", "precision_recall"],
      "need at least 4",
    ),  # fmt: skip
  ]
  return argv


def test_bad_inputs_are_refused_before_any_feature(tmp_path, capsys, no_features):
  cases = _bad_inputs(tmp_path)
  before = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
  for name, argv, message in cases:
    out = tmp_path / "result.json"
    with pytest.raises(SystemExit) as e:
      evaluate.main([*argv, "--out", str(out)] if "--workdir" not in argv else argv)
    err = capsys.readouterr().err
    assert e.value.code == 2, name
    assert err.startswith("error: ") and message in err, (name, err)
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, (name, err)
    assert not out.exists(), name
  after = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
  assert after == before  # nothing written, nothing changed (the existing file kept)
