"""Tests of jaxgan.data: builders from fixture files, verification errors, the real data, the loader."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import tarfile
from pathlib import Path

import numpy as np
import pytest

from jaxgan import data
from jaxgan.data import builders, idx
from jaxgan.data.sources import ArraySource

REPO = Path(__file__).resolve().parents[1]
REAL_DATA = Path(os.environ.get("JAXGAN_SOURCE_DIR") or REPO.parent / "shared" / "data")


@pytest.fixture(autouse=True)
def _no_env(monkeypatch):
    # Tests pass every directory explicitly; the user's environment must not leak in.
    monkeypatch.delenv("JAXGAN_SOURCE_DIR", raising=False)
    monkeypatch.delenv("JAXGAN_DATA_DIR", raising=False)


# ------------------------------------------------------------------------------------------
# Fixture writers
# ------------------------------------------------------------------------------------------


def idx_bytes(arr: np.ndarray) -> bytes:
    arr = np.ascontiguousarray(arr, dtype=np.uint8)
    header = bytes([0, 0, 0x08, arr.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in arr.shape)
    return header + arr.tobytes()


def write_idx_set(folder: Path, *, n_train=20, n_test=8, seed=0) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    out = {}
    for split, n in (("train", n_train), ("test", n_test)):
        images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        labels = (np.arange(n) * 7 + seed) % 10
        img_name, lbl_name = builders.IDX_FILES[split]
        (folder / img_name).write_bytes(gzip.compress(idx_bytes(images)))
        (folder / lbl_name).write_bytes(gzip.compress(idx_bytes(labels.astype(np.uint8))))
        out[split] = (images, labels)
    return out


def jpeg(image: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="JPEG", quality=95)
    return buf.getvalue()


def write_jpeg_npz_set(folder: Path, *, n_train=12, n_test=6) -> dict[str, tuple[list[bytes], np.ndarray]]:
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
        np.savez(folder / builders.CIFAR10_JPEG_FILES[split],
                 jpeg_bytes=np.frombuffer(b"".join(blobs), np.uint8), offsets=offsets, labels=labels)
        out[split] = (images, labels)
    return out


def write_cifar_binary_tar(folder: Path, *, per_batch=3) -> dict[str, tuple[np.ndarray, np.ndarray]]:
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


# ------------------------------------------------------------------------------------------
# Builders from fixtures
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["mnist", "fashion_mnist"])
def test_idx_builder_from_fixture(tmp_path, name):
    root = tmp_path / "src"
    truth = write_idx_set(root / name)  # a data root with a per-dataset sub-folder
    for split, (images, labels) in truth.items():
        src = data.load_source(name, split=split, data_dir=tmp_path / "tfds", source_dir=root,
                               verify=False, in_memory=False)
        assert len(src) == len(images)
        got = by_index(src)
        assert sorted(got) == list(range(len(images)))
        for i, rec in got.items():
            assert rec["image"].shape == (28, 28, 1) and rec["image"].dtype == np.uint8
            np.testing.assert_array_equal(rec["image"][..., 0], images[i])
            assert rec["label"] == labels[i]
        # The fast batched read agrees with TFDS's own decoding.
        batch = src.get_batch([0, len(src) - 1])
        np.testing.assert_array_equal(batch["image"][1], src[len(src) - 1]["image"])
        assert batch["label"].tolist() == [src[0]["label"], src[len(src) - 1]["label"]]
    assert (tmp_path / "tfds" / f"jaxgan_{name}" / "1.0.0" / "dataset_info.json").exists()
    assert list((tmp_path / "tfds" / f"jaxgan_{name}" / "1.0.0").glob("*.array_record-*"))


def test_cifar10_jpeg_builder_from_fixture(tmp_path):
    truth = write_jpeg_npz_set(tmp_path / "cifar")  # the folder itself, no sub-folder
    from PIL import Image

    for split, (images, labels) in truth.items():
        src = data.load_source("cifar10_jpeg", split=split, data_dir=tmp_path / "tfds",
                               source_dir=tmp_path / "cifar", verify=False)
        assert len(src) == len(images)
        for i, rec in by_index(src).items():
            assert rec["image"].shape == (32, 32, 3) and rec["image"].dtype == np.uint8
            expected = np.asarray(Image.open(io.BytesIO(jpeg(images[i]))).convert("RGB"))
            np.testing.assert_array_equal(rec["image"], expected)  # exactly Pillow's decoding
            assert np.abs(rec["image"].astype(int) - images[i]).mean() < 20  # and near the truth (lossy)
            assert rec["label"] == labels[i]


def test_cifar10_binary_builder_from_fixture(tmp_path):
    truth = write_cifar_binary_tar(tmp_path / "src" / "cifar10")
    for split, (images, labels) in truth.items():
        src = data.load_source("cifar10", split=split, data_dir=tmp_path / "tfds",
                               source_dir=tmp_path / "src", verify=False)
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


# ------------------------------------------------------------------------------------------
# Verification and errors
# ------------------------------------------------------------------------------------------


def test_truncated_idx_names_file(tmp_path):
    write_idx_set(tmp_path / "src")
    bad = tmp_path / "src" / "train-images-idx3-ubyte.gz"
    payload = gzip.decompress(bad.read_bytes())
    bad.write_bytes(gzip.compress(payload[:-100]))  # a valid gzip of a truncated IDX
    with pytest.raises(idx.DataIntegrityError, match=r"train-images-idx3-ubyte\.gz.*truncated"):
        data.load_source("mnist", data_dir=tmp_path / "tfds", source_dir=tmp_path / "src", verify=False)
    bad.write_bytes(gzip.compress(payload)[:-50])  # a truncated gzip stream
    with pytest.raises(idx.DataIntegrityError, match=r"train-images-idx3-ubyte\.gz"):
        data.load_source("mnist", data_dir=tmp_path / "tfds", source_dir=tmp_path / "src", verify=False)
    assert not (tmp_path / "tfds" / "jaxgan_mnist" / "1.0.0").exists()


def test_parse_idx_checks_magic_and_dims():
    good = idx_bytes(np.zeros((2, 3, 4), np.uint8))
    assert idx.parse_idx(good, name="x", expected_ndim=3).shape == (2, 3, 4)
    with pytest.raises(idx.DataIntegrityError, match="magic number"):
        idx.parse_idx(b"\x00\x00\x0d\x03" + good[4:], name="x")
    with pytest.raises(idx.DataIntegrityError, match="expected 1"):
        idx.parse_idx(good, name="labels.idx", expected_ndim=1)
    with pytest.raises(idx.DataIntegrityError, match="longer"):
        idx.parse_idx(good + b"\x00", name="x")
    with pytest.raises(idx.DataIntegrityError, match="header"):
        idx.parse_idx(good[:9], name="x")


def test_wrong_checksum_names_file(tmp_path):
    write_idx_set(tmp_path / "src")
    # Fixture payloads are not the canonical MNIST: the pinned checksums reject them.
    with pytest.raises(idx.DataIntegrityError, match=r"Checksum mismatch for .*train-images-idx3-ubyte\.gz"):
        data.load_source("mnist", data_dir=tmp_path / "tfds", source_dir=tmp_path / "src")
    # A SHA256SUMS manifest beside the files is honoured too.
    write_jpeg_npz_set(tmp_path / "root" / "cifar10_jpeg")
    train = tmp_path / "root" / "cifar10_jpeg" / "cifar10_train_jpeg.npz"
    test = tmp_path / "root" / "cifar10_jpeg" / "cifar10_test_jpeg.npz"
    sha = lambda p: hashlib.sha256(p.read_bytes()).hexdigest()  # noqa: E731
    (tmp_path / "root" / "SHA256SUMS").write_text(
        f"{sha(train)}  cifar10_jpeg/cifar10_train_jpeg.npz\n{'0' * 64}  cifar10_jpeg/cifar10_test_jpeg.npz\n")
    with pytest.raises(idx.DataIntegrityError, match=r"cifar10_test_jpeg\.npz.*SHA256SUMS"):
        data.load_source("cifar10_jpeg", data_dir=tmp_path / "tfds", source_dir=tmp_path / "root")
    # With a correct manifest the fixture (not the pinned release) is accepted under verify=True.
    (tmp_path / "root" / "SHA256SUMS").write_text(
        f"{sha(train)}  cifar10_jpeg/cifar10_train_jpeg.npz\n{sha(test)}  cifar10_jpeg/cifar10_test_jpeg.npz\n")
    assert len(data.load_source("cifar10_jpeg", data_dir=tmp_path / "tfds", source_dir=tmp_path / "root")) == 12


def test_corrupt_npz_names_file(tmp_path):
    write_jpeg_npz_set(tmp_path / "c")
    (tmp_path / "c" / "cifar10_train_jpeg.npz").write_bytes(b"not a zip")
    with pytest.raises(idx.DataIntegrityError, match=r"cifar10_train_jpeg\.npz"):
        data.load_source("cifar10_jpeg", data_dir=tmp_path / "tfds", source_dir=tmp_path / "c", verify=False)


def test_missing_data_errors_name_paths(tmp_path):
    missing = tmp_path / "nowhere"
    with pytest.raises(FileNotFoundError, match=str(missing)) as e:
        data.load_source("mnist", data_dir=tmp_path / "tfds", source_dir=missing)
    assert "JAXGAN_SOURCE_DIR" in str(e.value)
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match=r"train-images-idx3-ubyte\.gz.*" + str(tmp_path / "empty")):
        data.load_source("fashion_mnist", data_dir=tmp_path / "tfds", source_dir=tmp_path / "empty")
    with pytest.raises(FileNotFoundError, match=str(tmp_path / "tfds")) as e:
        data.load_source("mnist", data_dir=tmp_path / "tfds", download=False)
    assert "JAXGAN_DATA_DIR" in str(e.value)
    with pytest.raises(FileNotFoundError, match="cannot be downloaded"):
        data.load_source("cifar10_jpeg", data_dir=tmp_path / "tfds")


def test_unknown_name_lists_valid_names():
    with pytest.raises(ValueError, match=r"'imagenet'.*cifar10.*fashion_mnist.*mnist"):
        data.load_source("imagenet")


# ------------------------------------------------------------------------------------------
# The real data (../shared/data or $JAXGAN_SOURCE_DIR)
# ------------------------------------------------------------------------------------------


def _real(sub: str) -> Path:
    path = REAL_DATA / sub
    if not path.is_dir():
        if os.environ.get("CI"):
            pytest.fail(f"Real data {path} missing in CI (set JAXGAN_SOURCE_DIR).")
        pytest.skip(f"real data not found at {path}")
    return path


@pytest.mark.parametrize("name,payloads", [("mnist", builders.MNIST_PAYLOAD_SHA256),
                                           ("fashion_mnist", builders.FASHION_MNIST_PAYLOAD_SHA256)])
def test_real_idx_files(tmp_path, name, payloads):
    folder = _real(name)
    arrays = {}
    for split, (img, lbl) in builders.IDX_FILES.items():
        images, labels = idx.load_idx_pair(str(folder / img), str(folder / lbl), expected_sha256=payloads,
                                           manifest_roots=[str(REAL_DATA)])
        assert images.shape == ((60000 if split == "train" else 10000), 28, 28, 1)
        assert sorted(np.unique(labels)) == list(range(10))
        arrays[split] = images, labels
    # The full pipeline (verify=True) on a subset: preparing all 70k records takes ~6-30 s here.
    builder = data.prepare(name, data_dir=tmp_path / "tfds", source_dir=REAL_DATA, max_examples_per_split=256)
    src = builder.as_data_source(split="train")
    assert len(src) == 256
    for rec in (src[0], src[255]):
        np.testing.assert_array_equal(rec["image"], arrays["train"][0][rec["index"]])
        assert rec["label"] == arrays["train"][1][rec["index"]]


def test_real_cifar10_jpeg(tmp_path):
    folder = _real("cifar10_jpeg")
    for split, fname in builders.CIFAR10_JPEG_FILES.items():
        jpeg_bytes, offsets, labels = idx.load_jpeg_npz(
            str(folder / fname), expected_sha256=builders.CIFAR10_JPEG_SHA256[fname],
            manifest_roots=[str(REAL_DATA)])
        assert len(labels) == (50000 if split == "train" else 10000)
        assert np.bincount(labels, minlength=10).tolist() == [len(labels) // 10] * 10
    builder = data.prepare("cifar10_jpeg", data_dir=tmp_path / "tfds", source_dir=REAL_DATA,
                           max_examples_per_split=64)
    src = data.TfdsImageSource(builder.as_data_source(split="test"))
    batch = src.get_batch(range(len(src)))
    assert batch["image"].shape == (64, 32, 32, 3) and batch["image"].dtype == np.uint8
    assert batch["image"].std() > 20  # real pictures, not blank


def test_real_sha256sums_manifest():
    _real("mnist")
    sums = idx.read_sha256sums(REAL_DATA / "SHA256SUMS")
    for rel, expected in sums.items():
        assert idx.sha256_file(REAL_DATA / rel) == expected, rel


# ------------------------------------------------------------------------------------------
# Loader
# ------------------------------------------------------------------------------------------


def toy_source(n=40, hw=(28, 28)) -> ArraySource:
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (n, *hw, 1), dtype=np.uint8)
    images[:, 0, 0, 0], images[:, 1, 1, 0] = 0, 255
    return ArraySource({"image": images, "label": np.arange(n) % 10, "index": np.arange(n)})


def take(it, k):
    return [next(it) for _ in range(k)]


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
    assert all((x == y).all() for x, y in zip(a, b))
    assert not all((x == y).all() for x, y in zip(a, c))
    epochs = [np.concatenate(a[i:i + 5]) for i in (0, 5, 10)]  # 40 examples = 5 batches per epoch
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
    for x, y in zip(expected, take(resumed, 6)):
        for k in x:
            np.testing.assert_array_equal(x[k], y[k])
    with pytest.raises(ValueError, match="seed"):
        data.make_loader(src, **{**kw, "seed": 4}).set_state(state)


def test_loader_resume_tfds_source(tmp_path):
    write_idx_set(tmp_path / "src", n_train=50)
    src = data.load_source("mnist", data_dir=tmp_path / "tfds", source_dir=tmp_path / "src",
                           verify=False, in_memory=False)
    mem = data.load_source("mnist", data_dir=tmp_path / "tfds", in_memory=True)
    it = data.make_loader(src, batch_size=8, seed=1, read_threads=2)
    take(it, 4)
    state = it.get_state()
    expected = take(it, 8)
    again = data.make_loader(mem, batch_size=8, seed=1)  # memory and disk give the same batches
    again.set_state(state)
    for x, y in zip(expected, take(again, 8)):
        np.testing.assert_array_equal(x["image"], y["image"])


def test_loader_shards_disjoint():
    src = toy_source(n=40)
    seen = []
    for s in range(3):
        it = data.make_loader(src, batch_size=4, seed=0, shard_index=s, shard_count=3, num_epochs=1)
        assert it.num_batches == 3  # 13 per shard (one example left out), 3 full batches
        seen.append(np.concatenate([b["index"] for b in it]))
        assert all(i % 3 == s for i in seen[-1])
    all_idx = np.concatenate(seen)
    assert len(set(all_idx.tolist())) == len(all_idx) == 36
    with pytest.raises(ValueError):
        data.make_loader(src, batch_size=4, seed=0, shard_index=3, shard_count=3)


def test_loader_pad_to():
    src = toy_source()
    plain = next(data.make_loader(src, batch_size=4, seed=0))["image"]
    padded = next(data.make_loader(src, batch_size=4, seed=0, pad_to=32))["image"]
    assert padded.shape == (4, 32, 32, 1)
    np.testing.assert_array_equal(padded[:, 2:30, 2:30], plain)
    border = np.ones((32, 32), bool)
    border[2:30, 2:30] = False
    assert (padded[:, border] == -1).all()
    assert padded.min() >= -1 and padded.max() <= 1
    with pytest.raises(ValueError, match="pad_to"):
        data.make_loader(src, batch_size=4, seed=0, pad_to=16)


def test_loader_worker_processes_match():
    src = toy_source()
    ref = take(data.make_loader(src, batch_size=8, seed=2), 6)
    it = data.make_loader(src, batch_size=8, seed=2, worker_count=1)
    try:
        got = take(it, 3)
        state = it.get_state()
        json.dumps(state)
        got += take(it, 3)
    finally:
        it.close()
    for x, y in zip(ref, got):
        np.testing.assert_array_equal(x["index"], y["index"])
