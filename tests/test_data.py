"""Tests of jaxgan.data: builders from fixture files, verification errors, the real data, the loader,
the toy mixtures and the package's light import."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import subprocess
import sys
import tarfile
from pathlib import Path

import jax
import numpy as np
import pytest
from _helpers import require_real_data

from jaxgan import data
from jaxgan.data import builders, checksums, cifar, idx, releases, stacked, toy
from jaxgan.data.batches import BatchReader
from jaxgan.data.sources import ArraySource


@pytest.fixture(autouse=True)
def _no_env(monkeypatch):
  # Tests pass every directory explicitly; the user's environment must not leak in.
  monkeypatch.delenv("JAXGAN_SOURCE_DIR", raising=False)
  monkeypatch.delenv("JAXGAN_DATA_DIR", raising=False)


# ------------------------------------------------------------------------------------------------
# Fixture writers
# ------------------------------------------------------------------------------------------------


def idx_bytes(arr: np.ndarray) -> bytes:
  arr = np.ascontiguousarray(arr, dtype=np.uint8)
  header = bytes([0, 0, 0x08, arr.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in arr.shape)
  return header + arr.tobytes()


def write_idx_set(folder: Path, *, n_train=20, n_test=8, seed=0):
  """The four IDX .gz files of random images; returns split -> (images (n, 28, 28), labels)."""
  folder.mkdir(parents=True, exist_ok=True)
  rng = np.random.default_rng(seed)
  out = {}
  for split, n in (("train", n_train), ("test", n_test)):
    images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
    labels = (np.arange(n) * 7 + seed) % 10
    img_name, lbl_name = releases.IDX_FILES[split]
    (folder / img_name).write_bytes(gzip.compress(idx_bytes(images)))
    (folder / lbl_name).write_bytes(gzip.compress(idx_bytes(labels.astype(np.uint8))))
    out[split] = (images, labels)
  return out


def jpeg(image: np.ndarray) -> bytes:
  from PIL import Image

  buf = io.BytesIO()
  Image.fromarray(image).save(buf, format="JPEG", quality=95)
  return buf.getvalue()


def write_jpeg_npz_set(folder: Path, *, n_train=12, n_test=6):
  """The two JPEG npz files; returns split -> (images (n, 32, 32, 3) before JPEG, labels)."""
  folder.mkdir(parents=True, exist_ok=True)
  rng = np.random.default_rng(1)
  out = {}
  for split, n in (("train", n_train), ("test", n_test)):
    # Smooth images so JPEG stays close to them.
    base = rng.integers(0, 256, (n, 4, 4, 3), dtype=np.uint8)
    images = np.repeat(np.repeat(base, 8, axis=1), 8, axis=2)
    blobs = [jpeg(im) for im in images]
    offsets = np.concatenate([[0], np.cumsum([len(b) for b in blobs])]).astype(np.int64)
    labels = (np.arange(n) % 10).astype(np.uint8)
    np.savez(
      folder / releases.CIFAR10_JPEG_FILES[split],
      jpeg_bytes=np.frombuffer(b"".join(blobs), np.uint8),
      offsets=offsets,
      labels=labels,
    )
    out[split] = (images, labels)
  return out


def write_cifar_binary_tar(folder: Path, *, per_batch=3):
  """A cifar-10-binary.tar.gz; returns split -> (images (n, 32, 32, 3), labels)."""
  folder.mkdir(parents=True, exist_ok=True)
  rng = np.random.default_rng(2)
  files = {f"data_batch_{i}.bin": "train" for i in range(1, 6)} | {"test_batch.bin": "test"}
  out = {"train": ([], []), "test": ([], [])}
  with tarfile.open(folder / "cifar-10-binary.tar.gz", "w:gz") as tar:
    for name, split in files.items():
      chw = rng.integers(0, 256, (per_batch, 3, 32, 32), dtype=np.uint8)
      labels = rng.integers(0, 10, per_batch, dtype=np.uint8)
      payload = np.concatenate([labels[:, None], chw.reshape(per_batch, -1)], axis=1).tobytes()
      info = tarfile.TarInfo(f"cifar-10-batches-bin/{name}")
      info.size = len(payload)
      tar.addfile(info, io.BytesIO(payload))
      out[split][0].append(chw.transpose(0, 2, 3, 1))
      out[split][1].append(labels)
  return {s: (np.concatenate(a), np.concatenate(b)) for s, (a, b) in out.items()}


def by_index(source) -> dict[int, dict]:
  return {int(r["index"]): r for r in (source[i] for i in range(len(source)))}


def sha(path: Path) -> str:
  return hashlib.sha256(path.read_bytes()).hexdigest()


# ------------------------------------------------------------------------------------------------
# Package layout
# ------------------------------------------------------------------------------------------------


@pytest.mark.full
def test_toy_import_loads_no_tfds_or_grain():
  # The loop samples the mixtures inside its compiled step: it must not pay for TFDS or grain.
  code = (
    "import sys\n"
    "import jaxgan.data.toy\n"
    "from jaxgan import data\n"
    "assert data.toy.get('ring').modes.shape == (8, 2)\n"
    "heavy = ('tensorflow_datasets', 'grain', 'array_record', 'tensorflow')\n"
    "print(sorted({m.split('.')[0] for m in sys.modules} & set(heavy)))\n"
  )
  out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
  assert out.stdout.strip() == "[]", out.stdout


def test_public_names_resolve():
  for name in data.__all__:
    assert getattr(data, name) is not None, name
  assert data.DATASETS == ("cifar10", "cifar10_jpeg", "fashion_mnist", "mnist", "stacked_mnist")
  assert data.load_source.__module__ == "jaxgan.data.datasets"
  assert data.toy is toy
  with pytest.raises(AttributeError, match="no_such_name"):
    data.no_such_name  # noqa: B018


# ------------------------------------------------------------------------------------------------
# The registry of data sets
# ------------------------------------------------------------------------------------------------


def test_registry_and_config_load_no_numpy_tfds_or_jax():
  # The run config asks the registry which names exist, which are toys and how many classes each
  # has: that must not load what building the data needs.
  code = (
    "import sys\n"
    "import jaxgan.config\n"
    "from jaxgan.data import registry\n"
    "assert registry.get('mnist').num_classes == 10\n"
    "heavy = ('numpy', 'jax', 'tensorflow_datasets', 'grain', 'tensorflow')\n"
    "print(sorted({m.split('.')[0] for m in sys.modules} & set(heavy)))\n"
  )
  out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
  assert out.stdout.strip() == "[]", out.stdout


def test_registry_facts_are_those_of_the_definitions(tmp_path):
  from jaxgan.data import registry

  assert data.DATASETS == registry.names("image")
  for name in registry.names("image"):
    row = registry.get(name)
    builder = data.get_builder(name, data_dir=tmp_path)
    assert type(builder) is data.BUILDERS[name] is row.load()
    assert type(builder).data_set() is row
    assert builder.info.features["image"].shape == row.shape
  assert registry.get("stacked_mnist").num_classes == stacked.NUM_CLASSES
  for name in registry.names("toy"):
    row = registry.get(name)
    assert isinstance(row.make(), toy.Mixture) and row.make().modes.shape[1:] == row.shape
    assert row.num_classes == 0
  for name in ("ring", "grid"):  # the protocol's mixtures
    made, protocol = registry.get(f"toy_{name}").make(), toy.get(name)
    np.testing.assert_array_equal(made.modes, protocol.modes)
    assert made.std == protocol.std


def test_registry_checks_names_keys_and_class_counts():
  from jaxgan.data import registry
  from jaxgan.errors import ConfigError

  for name in ("mnist", "toy_ring", "tfds:celeb_a", "folder:/photos"):
    registry.check_name(name)
  with pytest.raises(
    ConfigError, match=r"^Unknown data set 'toy_ring'; valid names: cifar10, (?!.*toy_)"
  ):
    registry.check_name("toy_ring", kinds=("image",))  # what load_source reads
  with pytest.raises(
    ConfigError, match=r"config\.data\.name='tfds: '; .*toy_ring.*, or 'tfds:NAME"
  ):
    registry.check_name("tfds: ", field="config.data.name")
  with pytest.raises(ConfigError, match=r"'folder:/photos'; valid names: (toy_\w+, )+or 'tfds"):
    registry.check_name("folder:/photos", kinds=("toy",))  # a folder holds images
  # A TFDS data set's keys are its features, checked when it is opened; a toy has no records.
  registry.check_keys("tfds:celeb_a", "img", "attributes")
  registry.check_keys("toy_ring", "points", None)
  registry.check_keys("folder:/photos", "image", None)
  with pytest.raises(ConfigError, match="'mnist' has the features 'image' and 'label'; got"):
    registry.check_keys("mnist", "image", "digit")
  with pytest.raises(ConfigError, match=r"A folder's records are 'image' and 'label'.*'img'"):
    registry.check_keys("folder:/photos", "img", None)
  # Class counts: a registered data set's before reading, any data set's labels once read.
  registry.check_num_classes("mnist", 0)  # unconditional
  registry.check_num_classes("toy_ring", 0)
  registry.check_num_classes("mnist", 10, (0, 7), "test[:5]")  # a slice may lack classes
  registry.check_num_classes("folder:/photos", 3, (0, 2), "train")
  for args, match in (
    (("mnist", 7), r"num_classes=7, but 'mnist' has 10 classes; set .*num_classes=10 "),
    (("toy_grid", 3), r"'toy_grid' has no labels \(a 2-D mixture\); set"),
    (("mnist", 10, (0, 12), "train"), r"'mnist' \(train\) run from 0 to 12: set .*classes=13"),
    (("folder:/photos", 3, (0, 1), "train"), r"run from 0 to 1: set --config.model.num_classes=2"),
    (("tfds:x", 2, (0, 2), "train"), r"run from 0 to 2: set --config.model.num_classes=3"),
  ):
    with pytest.raises(ConfigError, match=match):
      registry.check_num_classes(*args)


# ------------------------------------------------------------------------------------------------
# Builders from fixtures
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["mnist", "fashion_mnist"])
def test_idx_builder_from_fixture(tmp_path, name):
  root = tmp_path / "src"
  truth = write_idx_set(root / name)  # a data root with a per-dataset sub-folder
  for split, (images, labels) in truth.items():
    src = data.load_source(
      name, split=split, data_dir=tmp_path / "tfds", source_dir=root, verify=False, in_memory=False
    )
    assert len(src) == len(images)
    got = by_index(src)
    assert sorted(got) == list(range(len(images)))
    for i, rec in got.items():
      assert rec["image"].shape == (28, 28, 1) and rec["image"].dtype == np.uint8
      np.testing.assert_array_equal(rec["image"][..., 0], images[i])
      assert rec["label"] == labels[i]
    # The batched read agrees with TFDS's own decoding, and so does the in-memory copy.
    keys = [len(src) - 1, 0, 3]
    batch = src.get_batch(keys)
    assert batch["image"].dtype == np.uint8 and batch["image"].shape == (3, 28, 28, 1)
    for j, k in enumerate(keys):
      np.testing.assert_array_equal(batch["image"][j], src[k]["image"])
      assert batch["label"][j] == src[k]["label"] and batch["index"][j] == src[k]["index"]
    mem = src.to_memory()
    for name_ in ("image", "label", "index"):
      np.testing.assert_array_equal(mem.get_batch(keys)[name_], batch[name_])
  assert (tmp_path / "tfds" / f"jaxgan_{name}" / "1.0.0" / "dataset_info.json").exists()
  assert list((tmp_path / "tfds" / f"jaxgan_{name}" / "1.0.0").glob("*.array_record-*"))


def test_cifar10_jpeg_builder_from_fixture(tmp_path):
  truth = write_jpeg_npz_set(tmp_path / "cifar")  # the folder itself, no sub-folder
  from PIL import Image

  for split, (images, labels) in truth.items():
    src = data.load_source(
      "cifar10_jpeg",
      split=split,
      data_dir=tmp_path / "tfds",
      source_dir=tmp_path / "cifar",
      verify=False,
    )
    assert len(src) == len(images)
    for i, rec in by_index(src).items():
      assert rec["image"].shape == (32, 32, 3) and rec["image"].dtype == np.uint8
      expected = np.asarray(Image.open(io.BytesIO(jpeg(images[i]))).convert("RGB"))
      np.testing.assert_array_equal(rec["image"], expected)  # exactly Pillow's decoding
      assert np.abs(rec["image"].astype(int) - images[i]).mean() < 20  # near the truth (lossy)
      assert rec["label"] == labels[i]


def test_cifar10_binary_builder_from_fixture(tmp_path):
  truth = write_cifar_binary_tar(tmp_path / "src" / "cifar10")
  for split, (images, labels) in truth.items():
    src = data.load_source(
      "cifar10", split=split, data_dir=tmp_path / "tfds", source_dir=tmp_path / "src", verify=False
    )
    assert len(src) == len(images) == (15 if split == "train" else 3)
    for i, rec in by_index(src).items():
      np.testing.assert_array_equal(rec["image"], images[i])  # CHW -> HWC done right
      assert rec["label"] == labels[i]


def test_prepared_dataset_is_reused(tmp_path, monkeypatch):
  write_idx_set(tmp_path / "src")
  dd = tmp_path / "tfds"
  first = data.load_source("mnist", data_dir=dd, source_dir=tmp_path / "src", verify=False)

  def boom(*a, **k):
    raise AssertionError("re-prepared")

  monkeypatch.setattr(builders.JaxganMnist, "_split_generators", boom)
  # No source at all (and downloads disallowed): served from the cache in data_dir.
  second = data.load_source("mnist", data_dir=dd, download=False)
  np.testing.assert_array_equal(first.arrays["image"], second.arrays["image"])
  # JAXGAN_DATA_DIR is honoured as the default data_dir.
  monkeypatch.setenv("JAXGAN_DATA_DIR", str(dd))
  assert len(data.load_source("mnist", split="test", download=False)) == 8


def test_stacked_mnist_builder_from_fixture(tmp_path):
  truth = write_idx_set(tmp_path / "src" / "mnist", n_train=20, n_test=8)
  n = 300  # a prefix of each split: TFDS stops the generator there
  reads = []
  for run in ("a", "b"):  # two preparations, to check that they agree byte for byte
    builder = data.prepare(
      "stacked_mnist",
      data_dir=tmp_path / run,
      source_dir=tmp_path / "src",
      verify=False,
      max_examples_per_split=n,
    )
    src = data.TfdsImageSource(builder.as_data_source(split="train"))
    reads.append(src.get_batch(range(len(src))))
  batch = reads[0]
  for k in ("image", "label", "index"):
    np.testing.assert_array_equal(batch[k], reads[1][k])
  assert batch["image"].shape == (n, 28, 28, 3) and batch["image"].dtype == np.uint8
  images, labels = truth["train"]
  src_idx = stacked.stacked_indices(stacked.SIZES["train"], 20, stacked.SEEDS["train"])
  src_idx = src_idx[batch["index"]]
  for c in range(3):  # channel c is the digit at src_idx[:, c]
    np.testing.assert_array_equal(batch["image"][..., c], images[src_idx[:, c]])
  d = labels[src_idx]
  np.testing.assert_array_equal(batch["label"], 100 * d[:, 0] + 10 * d[:, 1] + d[:, 2])
  test = data.TfdsImageSource(builder.as_data_source(split="test"))
  assert len(test) == n and test.get_batch([0])["image"].shape == (1, 28, 28, 3)


def test_stacked_indices_stream_is_pinned():
  # NumPy keeps PCG64's raw stream fixed across versions; these values guard the data set.
  idx = stacked.stacked_indices(3, 60000, stacked.SEEDS["train"])
  assert idx.tolist() == [[56515, 32085, 48914], [27240, 2654, 45395], [27753, 19680, 13183]]
  assert stacked.stacked_indices(2, 10000, stacked.SEEDS["test"]).tolist() == [
    [4874, 1792, 9106],
    [9919, 1388, 1830],
  ]
  big = stacked.stacked_indices(stacked.SIZES["train"], 60000, stacked.SEEDS["train"])
  assert int(big.sum()) == 8990222405
  # Uniform and independent across channels: each channel's mean index is (60000 - 1) / 2
  # within 4 standard errors, and the channels are uncorrelated.
  se = 60000 / np.sqrt(12 * len(big))
  assert np.all(np.abs(big.mean(0) - 29999.5) < 4 * se)
  assert np.all(np.abs(np.corrcoef(big.T) - np.eye(3)) < 4 / np.sqrt(len(big)))
  with pytest.raises(ValueError, match="num_source"):
    stacked.stacked_indices(3, 70000, 0)


@pytest.mark.full
def test_real_stacked_mnist_classes():
  # The size claim of jaxgan.data.stacked, from the real MNIST labels: every class present,
  # each 57 to 147 times in the train split.
  root = require_real_data("mnist")
  img, lbl = releases.IDX_FILES["train"]
  _, labels = idx.load_idx_pair(str(root / "mnist" / img), str(root / "mnist" / lbl), verify=False)
  i = stacked.stacked_indices(stacked.SIZES["train"], len(labels), stacked.SEEDS["train"])
  counts = np.bincount(stacked.stacked_labels(labels[i]), minlength=1000)
  assert len(counts) == 1000 and counts.min() == 57 and counts.max() == 147


# ------------------------------------------------------------------------------------------------
# Verification and errors
# ------------------------------------------------------------------------------------------------


def test_truncated_idx_names_file(tmp_path):
  write_idx_set(tmp_path / "src")
  bad = tmp_path / "src" / "train-images-idx3-ubyte.gz"
  payload = gzip.decompress(bad.read_bytes())
  bad.write_bytes(gzip.compress(payload[:-100]))  # a valid gzip of a truncated IDX
  with pytest.raises(data.DataIntegrityError, match=r"train-images-idx3-ubyte\.gz.*truncated"):
    data.load_source("mnist", data_dir=tmp_path / "tfds", source_dir=tmp_path / "src", verify=False)
  bad.write_bytes(gzip.compress(payload)[:-50])  # a truncated gzip stream
  with pytest.raises(data.DataIntegrityError, match=r"train-images-idx3-ubyte\.gz.*provide"):
    data.load_source("mnist", data_dir=tmp_path / "tfds", source_dir=tmp_path / "src", verify=False)
  assert not (tmp_path / "tfds" / "jaxgan_mnist" / "1.0.0").exists()


def test_parse_idx_checks_magic_and_dims():
  good = idx_bytes(np.arange(24, dtype=np.uint8).reshape(2, 3, 4))
  np.testing.assert_array_equal(
    idx.parse_idx(good, name="x", expected_ndim=3), np.arange(24).reshape(2, 3, 4)
  )
  with pytest.raises(data.DataIntegrityError, match="magic number 0x00000d03"):
    idx.parse_idx(b"\x00\x00\x0d\x03" + good[4:], name="x")
  with pytest.raises(data.DataIntegrityError, match="labels.idx has 3 dimensions.*expected 1"):
    idx.parse_idx(good, name="labels.idx", expected_ndim=1)
  with pytest.raises(data.DataIntegrityError, match="longer"):
    idx.parse_idx(good + b"\x00", name="x")
  with pytest.raises(data.DataIntegrityError, match="inside its header"):
    idx.parse_idx(good[:9], name="x")
  with pytest.raises(data.DataIntegrityError, match="no header"):
    idx.parse_idx(b"\x00\x00", name="x")


def test_cifar_files_check_their_structure(tmp_path):
  with pytest.raises(data.DataIntegrityError, match=r"b\.bin is truncated.*3073"):
    cifar.parse_cifar10_binary(bytes(cifar.CIFAR10_RECORD_BYTES + 1), name="b.bin")
  with pytest.raises(data.DataIntegrityError, match="labels outside 0..9"):
    cifar.parse_cifar10_binary(bytes([10]) + bytes(3072), name="b.bin")
  write_cifar_binary_tar(tmp_path)
  tar = str(tmp_path / "cifar-10-binary.tar.gz")
  with pytest.raises(data.DataIntegrityError, match=r"lacks \['cifar-10-batches-bin/x\.bin'\]"):
    cifar.read_tar_members(tar, ["cifar-10-batches-bin/x.bin"])
  (tmp_path / "cut.tar.gz").write_bytes(Path(tar).read_bytes()[:5000])
  with pytest.raises(
    data.DataIntegrityError, match=r"cut\.tar\.gz \(truncated or not a \.tar\.gz\)"
  ):
    cifar.read_tar_members(str(tmp_path / "cut.tar.gz"), ["cifar-10-batches-bin/test_batch.bin"])
  with pytest.raises(data.DataIntegrityError, match=r"Cannot decode JPEG img\[3\]"):
    cifar.decode_jpeg(b"not a jpeg", name="img[3]")


def test_wrong_checksum_names_file(tmp_path):
  write_idx_set(tmp_path / "src")
  # Fixture payloads are not the canonical MNIST: the pinned checksums reject them.
  with pytest.raises(
    data.DataIntegrityError, match=r"Checksum mismatch for .*train-images-idx3-ubyte\.gz"
  ):
    data.load_source("mnist", data_dir=tmp_path / "tfds", source_dir=tmp_path / "src")
  # The same for the CIFAR-10 archive, pinned as a whole file.
  write_cifar_binary_tar(tmp_path / "c10")
  with pytest.raises(data.DataIntegrityError, match=r"cifar-10-binary\.tar\.gz: file sha256"):
    data.load_source("cifar10", data_dir=tmp_path / "tfds", source_dir=tmp_path / "c10")
  # A SHA256SUMS manifest beside the files is honoured too.
  write_jpeg_npz_set(tmp_path / "root" / "cifar10_jpeg")
  train = tmp_path / "root" / "cifar10_jpeg" / "cifar10_train_jpeg.npz"
  test = tmp_path / "root" / "cifar10_jpeg" / "cifar10_test_jpeg.npz"
  (tmp_path / "root" / "SHA256SUMS").write_text(
    f"{sha(train)}  cifar10_jpeg/cifar10_train_jpeg.npz\n"
    f"{'0' * 64}  cifar10_jpeg/cifar10_test_jpeg.npz\n"
  )
  with pytest.raises(data.DataIntegrityError, match=r"cifar10_test_jpeg\.npz.*SHA256SUMS"):
    data.load_source("cifar10_jpeg", data_dir=tmp_path / "tfds", source_dir=tmp_path / "root")
  # With a correct manifest the fixture (not the pinned release) is accepted under verify=True.
  (tmp_path / "root" / "SHA256SUMS").write_text(
    f"{sha(train)}  cifar10_jpeg/cifar10_train_jpeg.npz\n"
    f"{sha(test)}  cifar10_jpeg/cifar10_test_jpeg.npz\n"
  )
  src = data.load_source("cifar10_jpeg", data_dir=tmp_path / "tfds", source_dir=tmp_path / "root")
  assert len(src) == 12


def test_malformed_manifest_names_line(tmp_path):
  (tmp_path / "SHA256SUMS").write_text("# comment\n\nabc  x.gz\n")
  with pytest.raises(data.DataIntegrityError, match=r"SHA256SUMS:3: not a sha256sum line"):
    checksums.read_sha256sums(tmp_path / "SHA256SUMS")


def test_corrupt_npz_names_file(tmp_path):
  write_jpeg_npz_set(tmp_path / "c")
  (tmp_path / "c" / "cifar10_train_jpeg.npz").write_bytes(b"not a zip")
  with pytest.raises(data.DataIntegrityError, match=r"cifar10_train_jpeg\.npz"):
    data.load_source(
      "cifar10_jpeg", data_dir=tmp_path / "tfds", source_dir=tmp_path / "c", verify=False
    )
  np.savez(tmp_path / "bad.npz", jpeg_bytes=np.zeros(4, np.uint8), offsets=[0, 2, 3], labels=[0, 1])
  with pytest.raises(data.DataIntegrityError, match="inconsistent layout: 2 labels, 3 offsets"):
    cifar.load_jpeg_npz(str(tmp_path / "bad.npz"))


def test_missing_data_errors_name_paths(tmp_path):
  missing = tmp_path / "nowhere"
  with pytest.raises(FileNotFoundError, match=str(missing)) as e:
    data.load_source("mnist", data_dir=tmp_path / "tfds", source_dir=missing)
  assert "JAXGAN_SOURCE_DIR" in str(e.value)
  (tmp_path / "empty").mkdir()
  with pytest.raises(
    FileNotFoundError, match=r"train-images-idx3-ubyte\.gz.*" + str(tmp_path / "empty")
  ):
    data.load_source("fashion_mnist", data_dir=tmp_path / "tfds", source_dir=tmp_path / "empty")
  with pytest.raises(FileNotFoundError, match=str(tmp_path / "tfds")) as e:
    data.load_source("mnist", data_dir=tmp_path / "tfds", download=False)
  assert "JAXGAN_DATA_DIR" in str(e.value)
  with pytest.raises(FileNotFoundError, match="cannot be downloaded"):
    data.load_source("cifar10_jpeg", data_dir=tmp_path / "tfds")


def test_unknown_name_lists_valid_names():
  with pytest.raises(ValueError, match=r"'imagenet'.*cifar10.*fashion_mnist.*mnist"):
    data.load_source("imagenet")


# ------------------------------------------------------------------------------------------------
# The real data (../shared/data or $JAXGAN_SOURCE_DIR)
# ------------------------------------------------------------------------------------------------


@pytest.mark.full
@pytest.mark.parametrize(
  "name,n_train", [("mnist", 60000), ("fashion_mnist", 60000), ("cifar10_jpeg", 50000)]
)
def test_real_data_prepares_verified(tmp_path, name, n_train):
  root = require_real_data(name)
  # verify=True: the payloads against the pinned digests and the files against the SHA256SUMS
  # beside them. The whole files are read and checked; only a subset is written out.
  builder = data.prepare(
    name, data_dir=tmp_path / "tfds", source_dir=root, max_examples_per_split=64
  )
  src = data.TfdsImageSource(builder.as_data_source(split="train"))
  batch = src.get_batch(range(len(src)))
  shape = (28, 28, 1) if "mnist" in name else (32, 32, 3)
  assert batch["image"].shape == (64, *shape) and batch["image"].dtype == np.uint8
  assert batch["image"].std() > 20  # real pictures, not blank
  # Records match the original files, by their index in the release.
  if name == "cifar10_jpeg":
    jpeg_bytes, offsets, labels = cifar.load_jpeg_npz(
      str(root / name / "cifar10_train_jpeg.npz"), verify=False
    )
    assert len(labels) == n_train
    assert np.bincount(labels, minlength=10).tolist() == [n_train // 10] * 10
    for j in (0, 63):
      i = batch["index"][j]
      image = cifar.decode_jpeg(jpeg_bytes[offsets[i] : offsets[i + 1]].tobytes(), name="x")
      np.testing.assert_array_equal(batch["image"][j], image)
      assert batch["label"][j] == labels[i]
  else:
    img, lbl = releases.IDX_FILES["train"]
    images, labels = idx.load_idx_pair(str(root / name / img), str(root / name / lbl), verify=False)
    assert images.shape == (n_train, 28, 28, 1)
    assert sorted(np.unique(labels)) == list(range(10))
    np.testing.assert_array_equal(batch["image"], images[batch["index"]])
    np.testing.assert_array_equal(batch["label"], labels[batch["index"]])


@pytest.mark.full
def test_real_sha256sums_manifest():
  root = require_real_data("mnist")
  sums = checksums.read_sha256sums(root / "SHA256SUMS")
  assert {rel.split("/")[0] for rel in sums} >= {"mnist", "fashion_mnist", "cifar10_jpeg"}
  for rel, expected in sums.items():
    assert checksums.sha256_file(root / rel) == expected, rel


# ------------------------------------------------------------------------------------------------
# Loader
# ------------------------------------------------------------------------------------------------


def toy_source(n=40, hw=(28, 28)) -> ArraySource:
  rng = np.random.default_rng(0)
  images = rng.integers(0, 256, (n, *hw, 1), dtype=np.uint8)
  images[:, 0, 0, 0], images[:, 1, 1, 0] = 0, 255
  return ArraySource({"image": images, "label": np.arange(n) % 10, "index": np.arange(n)})


def take(it, k):
  return [next(it) for _ in range(k)]


def assert_batches_equal(xs, ys):
  assert len(xs) == len(ys)
  for x, y in zip(xs, ys, strict=True):
    assert x.keys() == y.keys()
    for k in x:
      np.testing.assert_array_equal(x[k], y[k])


def test_loader_batches_and_range():
  src = toy_source()
  b = next(data.make_loader(src, batch_size=8, seed=0))
  assert b["image"].shape == (8, 28, 28, 1) and b["image"].dtype == np.float32
  assert b["label"].dtype == np.int32 and b["label"].shape == (8,)
  assert b["image"].min() == -1.0 and b["image"].max() == 1.0  # 0 -> -1 and 255 -> 1 exactly
  raw = src.get_batch(b["index"])["image"].astype(np.float32)
  np.testing.assert_allclose(b["image"], raw / 127.5 - 1, atol=1e-6)
  np.testing.assert_array_equal(b["label"], b["index"] % 10)


def test_loader_deterministic_epochs_and_seeds():
  src = toy_source()
  a = [x["index"] for x in take(data.make_loader(src, batch_size=8, seed=5), 15)]
  b = [x["index"] for x in take(data.make_loader(src, batch_size=8, seed=5), 15)]
  c = [x["index"] for x in take(data.make_loader(src, batch_size=8, seed=6), 15)]
  assert all((x == y).all() for x, y in zip(a, b, strict=True))
  assert not all((x == y).all() for x, y in zip(a, c, strict=True))
  epochs = [np.concatenate(a[i : i + 5]) for i in (0, 5, 10)]  # 40 examples: 5 batches per epoch
  for e in epochs:
    assert sorted(e.tolist()) == list(range(40))  # every example once per epoch
  assert not (epochs[0] == epochs[1]).all()  # reshuffled each epoch
  assert not (epochs[0] == np.arange(40)).all()


def test_loader_finite_epochs_drop_remainder():
  it = data.make_loader(toy_source(), batch_size=16, seed=0, num_epochs=2)
  assert it.num_batches == 5  # 80 // 16
  assert len(list(it)) == 5
  assert len(list(data.make_loader(toy_source(), batch_size=12, seed=0, num_epochs=1))) == 3


@pytest.mark.parametrize("read_threads", [0, 2])
def test_loader_resume_exact(read_threads):
  src = toy_source()
  kw = dict(batch_size=8, seed=3, pad_to=32, read_threads=read_threads)
  it = data.make_loader(src, **kw)
  take(it, 7)
  state = json.loads(json.dumps(it.get_state()))  # what a checkpoint stores
  expected = take(it, 6)  # crosses an epoch boundary
  resumed = data.make_loader(src, **kw)
  resumed.set_state(state)
  assert_batches_equal(take(resumed, 6), expected)
  # The same iterator moved back to the saved position replays the same batches.
  it.set_state(state)
  assert_batches_equal(take(it, 6), expected)
  with pytest.raises(ValueError, match=r"'seed': \(3, 4\)"):
    data.make_loader(src, **{**kw, "seed": 4}).set_state(state)
  with pytest.raises(ValueError, match="Unsupported loader state version 1"):
    resumed.set_state({**state, "version": 1})


def test_loader_resume_finite_stream_to_its_end():
  it = data.make_loader(toy_source(), batch_size=8, seed=0, num_epochs=1)
  take(it, 3)
  resumed = data.make_loader(toy_source(), batch_size=8, seed=0, num_epochs=1)
  resumed.set_state(it.get_state())
  rest = list(it)
  assert len(rest) == 2  # 5 batches in all
  assert_batches_equal(list(resumed), rest)


def test_loader_resume_tfds_source(tmp_path):
  write_idx_set(tmp_path / "src", n_train=50)
  src = data.load_source(
    "mnist", data_dir=tmp_path / "tfds", source_dir=tmp_path / "src", verify=False, in_memory=False
  )
  mem = data.load_source("mnist", data_dir=tmp_path / "tfds", in_memory=True)
  it = data.make_loader(src, batch_size=8, seed=1, read_threads=2)
  take(it, 4)
  state = it.get_state()
  expected = take(it, 8)
  again = data.make_loader(mem, batch_size=8, seed=1)  # memory and disk give the same batches
  again.set_state(state)
  assert_batches_equal(take(again, 8), expected)


def test_loader_shards_are_blocks_of_one_global_stream():
  # Process s of 3 reads the s-th block of every global batch of 12: together they read exactly
  # the batches one process reads with the global batch, so a run's data do not depend on how
  # many hosts share it, and a state saved on 3 hosts resumes on 1.
  src = toy_source(n=40)
  whole = data.make_loader(src, batch_size=12, seed=0, num_epochs=2)
  assert whole.num_batches == 6  # 80 stream positions, 6 full global batches
  shards = [
    data.make_loader(src, batch_size=4, seed=0, shard_index=s, shard_count=3, num_epochs=2)
    for s in range(3)
  ]
  for k, expected in enumerate(whole):
    blocks = [next(it)["index"] for it in shards]
    np.testing.assert_array_equal(np.concatenate(blocks), expected["index"], err_msg=f"batch {k}")
  first_epoch = np.concatenate(
    [b["index"] for b in take(data.make_loader(src, batch_size=12, seed=0), 3)]
  )
  assert len(set(first_epoch.tolist())) == 36  # no example twice within an epoch
  state = shards[1].get_state()
  assert state == whole.get_state()  # the position is global: same on every process
  one = data.make_loader(src, batch_size=12, seed=0, num_epochs=2)
  one.set_state(state)
  assert one.get_state()["next_batch"] == 6
  with pytest.raises(ValueError, match="shard_index"):
    data.make_loader(src, batch_size=4, seed=0, shard_index=3, shard_count=3)
  with pytest.raises(ValueError, match="cannot fill a batch of 48"):
    data.make_loader(src, batch_size=16, seed=0, shard_index=0, shard_count=3)


def test_loader_accepts_one_process_states_of_the_previous_format():
  # A version-2 state of one process describes the same stream; it resumes, others are refused.
  src = toy_source()
  it = data.make_loader(src, batch_size=8, seed=3)
  take(it, 2)
  state = it.get_state()
  config = {k: v for k, v in state["config"].items() if k != "global_batch_size"}
  old = {**state, "version": 2, "config": {**config, "batch_size": 8}}
  resumed = data.make_loader(src, batch_size=8, seed=3)
  resumed.set_state({**old, "config": {**old["config"], "shard_index": 0, "shard_count": 1}})
  assert_batches_equal(take(resumed, 2), take(it, 2))
  two = {**old, "config": {**old["config"], "shard_index": 0, "shard_count": 2}}
  with pytest.raises(ValueError, match="Unsupported loader state version 2"):
    resumed.set_state(two)


def test_loader_pad_to():
  src = toy_source()
  plain = next(data.make_loader(src, batch_size=4, seed=0))["image"]
  padded = next(data.make_loader(src, batch_size=4, seed=0, pad_to=32))["image"]
  assert padded.shape == (4, 32, 32, 1)
  np.testing.assert_array_equal(padded[:, 2:30, 2:30], plain)
  border = np.ones((32, 32), bool)
  border[2:30, 2:30] = False
  assert (padded[:, border] == -1).all()
  with pytest.raises(ValueError, match="pad_to"):
    data.make_loader(src, batch_size=4, seed=0, pad_to=16)


@pytest.mark.parametrize(
  "kwargs,match",
  [
    (dict(seed=-1), "seed"),
    (dict(batch_size=0), "batch_size"),
    (dict(batch_size=41), "cannot fill a batch of 41"),
    (dict(num_epochs=0), "num_epochs"),
  ],
)
def test_loader_rejects_bad_arguments(kwargs, match):
  with pytest.raises(ValueError, match=match):
    data.make_loader(toy_source(), **{"batch_size": 8, "seed": 0, **kwargs})


def test_loader_reads_plain_sequences_and_refuses_float_images():
  # Anything with len and [] works; records without get_batch are stacked one by one.
  src = toy_source()
  records = [src[i] for i in range(len(src))]
  assert_batches_equal(
    take(data.make_loader(records, batch_size=8, seed=4), 2),
    take(data.make_loader(src, batch_size=8, seed=4), 2),
  )
  floats = ArraySource({"image": np.zeros((8, 4, 4, 1), np.float32)})
  read = BatchReader(
    floats, batch_size=8, seed=0, shard_index=0, shard_count=1, num_examples=8, pad=None
  )
  with pytest.raises(TypeError, match="uint8, got float32"):
    read(0)


@pytest.mark.full
def test_loader_worker_processes_match_and_resume_without_workers():
  src = toy_source()
  ref = take(data.make_loader(src, batch_size=8, seed=2), 6)
  it = data.make_loader(src, batch_size=8, seed=2, worker_count=1)
  try:
    got = take(it, 3)
    state = it.get_state()
    got += take(it, 3)
  finally:
    it.close()
  assert_batches_equal(got, ref)
  # The position does not depend on how batches are read: a run may resume with other workers.
  resumed = data.make_loader(src, batch_size=8, seed=2)
  resumed.set_state(state)
  assert_batches_equal(take(resumed, 3), ref[3:])


# ------------------------------------------------------------------------------------------------
# Toy mixtures
# ------------------------------------------------------------------------------------------------


def test_toy_mixtures_follow_the_protocol():
  ring, grid = toy.get("ring"), toy.get("grid")
  assert ring.modes.dtype == grid.modes.dtype == np.float32
  np.testing.assert_allclose(np.linalg.norm(ring.modes, axis=1), 1.0, rtol=1e-6)
  angles = np.sort(np.mod(np.arctan2(ring.modes[:, 1], ring.modes[:, 0]), 2 * np.pi))
  np.testing.assert_allclose(angles, 2 * np.pi * np.arange(8) / 8, atol=1e-6)
  expected = {(x, y) for x in (-4, -2, 0, 2, 4) for y in (-4, -2, 0, 2, 4)}
  assert {tuple(m) for m in grid.modes.tolist()} == expected
  assert (ring.std, grid.std) == (0.01, 0.05)
  with pytest.raises(ValueError, match="'spiral'.*ring, grid"):
    toy.get("spiral")


def test_toy_sample_statistics():
  grid = toy.get("grid")
  sample = jax.jit(grid.sample, static_argnums=1)
  x = np.asarray(sample(jax.random.key(0), 10_000))
  assert x.shape == (10_000, 2) and x.dtype == np.float32
  np.testing.assert_array_equal(x, np.asarray(sample(jax.random.key(0), 10_000)))
  assert not np.array_equal(x, np.asarray(sample(jax.random.key(1), 10_000)))
  # Each point is its mode plus N(0, std^2 I): nearest-mode residuals have the right spread,
  # and the modes are drawn uniformly.
  d = x[:, None, :] - grid.modes[None]
  nearest = np.argmin((d**2).sum(-1), axis=1)
  residual = x - grid.modes[nearest]
  np.testing.assert_allclose(residual.std(axis=0), grid.std, rtol=0.05)
  np.testing.assert_allclose(residual.mean(axis=0), 0.0, atol=0.005)
  counts = np.bincount(nearest, minlength=25)
  assert (
    counts.min() > 300 and counts.max() < 500
  )  # 400 expected, 5 standard deviations either side


@pytest.mark.full
@pytest.mark.parametrize("split", ["train[:10%", "valid"])
def test_a_split_tfds_cannot_read_is_an_input_error_naming_the_splits(mnist_dir, split):
  from jaxgan.errors import ConfigError

  with pytest.raises(ConfigError, match=r"(?s)config\.data\.split.*Its splits: test, train"):
    data.load_source("mnist", split=split, data_dir=mnist_dir)
