"""TFDS builders for jaxgan's image datasets, written as array_record and read without TensorFlow.

Each builder prepares from local source files when they are provided (``source_dir``, the TFDS
``manual_dir``), and otherwise downloads the original release through TFDS's download manager.
Images are stored as ``tfds.features.Tensor`` (uint8, HxWxC) rather than ``tfds.features.Image``:
encoding and decoding Image features needs TensorFlow, a plain tensor feature does not.

Catalog (``load_source`` names -> TFDS builder names):

================  ======================  ========================================================
name              builder                 source
================  ======================  ========================================================
mnist             jaxgan_mnist            IDX .gz files (local, or storage.googleapis.com mirror)
fashion_mnist     jaxgan_fashion_mnist    IDX .gz files (local, or the Zalando S3 release)
cifar10           jaxgan_cifar10          the lossless binary release cifar-10-binary.tar.gz
cifar10_jpeg      jaxgan_cifar10_jpeg     local JPEG-recompressed npz only (lossy; FID on it is not
                                          comparable with published CIFAR-10 numbers)
================  ======================  ========================================================

Downloads go through ``tfds.download.DownloadManager`` over http(s) (``requests``; no TensorFlow),
to the canonical URLs below, checked against pinned sizes and sha256 (``url_infos``, the same
values as TFDS's own url_checksums) and then again by payload checksum. That path has not been
exercised on the offline development machine; the local-file path is the tested one. TFDS's
archive extractor needs TensorFlow, so the CIFAR-10 tarball is read with :mod:`tarfile` instead.

CelebA is not provided: TFDS's own ``celeb_a`` stores ``tfds.features.Image`` (which needs
TensorFlow to encode) and downloads from Google Drive, so it cannot be prepared in a
TensorFlow-free environment.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import numpy as np
import tensorflow_datasets as tfds
from tensorflow_datasets.core import utils as tfds_utils
from tensorflow_datasets.core.download import checksums as tfds_checksums

from jaxgan.data import idx
from jaxgan.data.sources import ArraySource, TfdsImageSource

log = logging.getLogger(__name__)

IDX_FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}

# sha256 of the *decompressed* IDX payloads: independent of gzip headers, so they hold for the
# canonical archives and for re-gzipped copies alike. (md5 of the same payloads, as published by
# LeCun et al.: train images 6bbc9ace898e44ae57da46a324031adb, train labels
# a25bea736e30d166cdddb491f175f624, t10k images 2646ac647ad5339dbf082846283269ea, t10k labels
# 27ae3e4e09519cfbb04c329615203637. Fashion-MNIST .gz md5: 8d4fb7e6c68d591d4c3dfef9ec88bf0d,
# 25c81989df183df01b3e8a0aad5dffbe, bef4ecab320f06d8554ea6380940ec79,
# bb300cfdad3c16e7a12a480ee83cd310.)
MNIST_PAYLOAD_SHA256 = {
    "train-images-idx3-ubyte.gz": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    "train-labels-idx1-ubyte.gz": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    "t10k-images-idx3-ubyte.gz": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    "t10k-labels-idx1-ubyte.gz": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
}
FASHION_MNIST_PAYLOAD_SHA256 = {
    "train-images-idx3-ubyte.gz": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
    "train-labels-idx1-ubyte.gz": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
    "t10k-images-idx3-ubyte.gz": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
    "t10k-labels-idx1-ubyte.gz": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
}
CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz"
# sha256 of the archive, as recorded in TFDS's url_checksums for its own cifar10 builder.
CIFAR10_TAR_SHA256 = "c4a38c50a1bc5f3a1c5537f2155ab9d68f9f25eb1ed8d9ddda3db29a59bca1dd"
# Canonical download URLs -> (size, sha256, file name), as in TFDS's own url_checksums. TFDS's
# download manager checks downloads against these before we parse them.
URL_CHECKSUMS = {
    "https://storage.googleapis.com/cvdf-datasets/mnist/train-images-idx3-ubyte.gz":
        (9912422, "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609"),
    "https://storage.googleapis.com/cvdf-datasets/mnist/train-labels-idx1-ubyte.gz":
        (28881, "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c"),
    "https://storage.googleapis.com/cvdf-datasets/mnist/t10k-images-idx3-ubyte.gz":
        (1648877, "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6"),
    "https://storage.googleapis.com/cvdf-datasets/mnist/t10k-labels-idx1-ubyte.gz":
        (4542, "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6"),
    "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/train-images-idx3-ubyte.gz":
        (26421880, "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84"),
    "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/train-labels-idx1-ubyte.gz":
        (29515, "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845"),
    "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/t10k-images-idx3-ubyte.gz":
        (4422102, "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073"),
    "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/t10k-labels-idx1-ubyte.gz":
        (5148, "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5"),
    CIFAR10_URL: (170052171, CIFAR10_TAR_SHA256),
}
CIFAR10_JPEG_FILES = {"train": "cifar10_train_jpeg.npz", "test": "cifar10_test_jpeg.npz"}
# sha256 of the offline JPEG npz files shipped beside this project (../shared/data/cifar10_jpeg).
CIFAR10_JPEG_SHA256 = {
    "cifar10_train_jpeg.npz": "0fb74553439b7b67ed11559e5dfe45041826febb7a6e06996575f485c06cf8c2",
    "cifar10_test_jpeg.npz": "967b1693ef98301d02968cb9126aef7c672291b08a159d7fb88bf2ad97348c4c",
}
CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer",
                   "dog", "frog", "horse", "ship", "truck")
FASHION_MNIST_CLASSES = ("t-shirt/top", "trouser", "pullover", "dress", "coat",
                         "sandal", "shirt", "sneaker", "bag", "ankle boot")


def _features(shape: tuple[int, int, int]) -> tfds.features.FeaturesDict:
    # encoding="bytes": the image is stored as one raw bytes value; the default stores a uint8
    # tensor as an int64_list (8x larger on disk and ~10x slower to parse).
    return tfds.features.FeaturesDict({
        "image": tfds.features.Tensor(shape=shape, dtype=np.uint8, encoding="bytes"),
        "label": tfds.features.Tensor(shape=(), dtype=np.int64),
        # Position in the original release: provenance, and a stable id for tests/debugging
        # (TFDS shuffles records by key when it writes them).
        "index": tfds.features.Tensor(shape=(), dtype=np.int64),
    })


class JaxganBuilder(tfds.core.GeneratorBasedBuilder, skip_registration=True):
    """Common machinery: where the sources are, verification, features."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES: ClassVar[dict[str, str]] = {"1.0.0": "Initial release (array_record, Tensor image)."}

    SHAPE: ClassVar[tuple[int, int, int]]
    NUM_CLASSES: ClassVar[int] = 10
    # Sub-folder of a data root (e.g. ../shared/data/mnist) that holds this dataset's files.
    SOURCE_SUBDIR: ClassVar[str]
    HOMEPAGE: ClassVar[str] = ""
    CITATION: ClassVar[str] = ""
    DESCRIPTION: ClassVar[str] = ""
    CAN_DOWNLOAD: ClassVar[bool] = True

    # TFDS looks for a checksums.tsv beside the builder's code through `code_path` (which needs
    # the importlib_resources backport for builders outside TFDS); we pin checksums in code.
    @tfds_utils.classproperty
    @classmethod
    def code_path(cls):  # pylint: disable=invalid-overridden-method
        return None

    @tfds_utils.classproperty
    @classmethod
    def url_infos(cls):  # pylint: disable=invalid-overridden-method
        return {url: tfds_checksums.UrlInfo(size=size, checksum=sha, filename=url.rsplit("/", 1)[-1])
                for url, (size, sha) in URL_CHECKSUMS.items()}

    def __init__(self, *, verify: bool = True, **kwargs: Any):
        """Args: verify: check checksums of the source files; other args go to TFDS."""
        kwargs.setdefault("file_format", "array_record")
        self.verify = verify
        super().__init__(**kwargs)

    @classmethod
    def source_files(cls) -> dict[str, tuple[str, ...]]:
        """split -> the file names that must be present locally."""
        raise NotImplementedError

    @classmethod
    def all_source_files(cls) -> list[str]:
        return [f for files in cls.source_files().values() for f in files]

    @classmethod
    def locate_source(cls, source_dir: str | os.PathLike) -> str | None:
        """The folder (``source_dir/<SOURCE_SUBDIR>`` or ``source_dir``) holding all files."""
        source_dir = os.fspath(source_dir)
        for cand in (os.path.join(source_dir, cls.SOURCE_SUBDIR), source_dir):
            if all(os.path.isfile(os.path.join(cand, f)) for f in cls.all_source_files()):
                return cand
        return None

    @classmethod
    def source_candidates(cls, source_dir: str | os.PathLike) -> list[str]:
        source_dir = os.fspath(source_dir)
        return [os.path.join(source_dir, cls.SOURCE_SUBDIR), source_dir]

    def _info(self) -> tfds.core.DatasetInfo:
        return tfds.core.DatasetInfo(
            builder=self,
            description=self.DESCRIPTION,
            features=_features(self.SHAPE),
            supervised_keys=("image", "label"),
            homepage=self.HOMEPAGE,
            citation=self.CITATION,
        )

    def _local_dir(self, dl_manager: tfds.download.DownloadManager) -> str | None:
        """The manual dir if it holds this dataset's files, else None (download instead)."""
        try:
            manual = dl_manager.manual_dir
        except (AssertionError, ValueError):  # not set, missing or empty
            return None
        found = self.locate_source(manual)
        if found is None:
            missing = [f for f in self.all_source_files()
                       if not any(os.path.isfile(os.path.join(c, f)) for c in self.source_candidates(manual))]
            raise FileNotFoundError(
                f"{self.name}: the source folder {manual} does not hold {missing} (also looked in "
                f"{os.path.join(os.fspath(manual), self.SOURCE_SUBDIR)}). "
                + self.MANUAL_DOWNLOAD_INSTRUCTIONS
            )
        return found

    def _manifest_roots(self, folder: str) -> list[str]:
        return [folder, os.path.dirname(os.path.abspath(folder))]


class _IdxBuilder(JaxganBuilder, skip_registration=True):
    SHAPE = (28, 28, 1)
    URL: ClassVar[str]
    PAYLOAD_SHA256: ClassVar[Mapping[str, str]]

    @classmethod
    def source_files(cls):
        return IDX_FILES

    def _split_generators(self, dl_manager):
        folder = self._local_dir(dl_manager)
        if folder is not None:
            paths = {s: tuple(os.path.join(folder, f) for f in files) for s, files in IDX_FILES.items()}
            roots = self._manifest_roots(folder)
        else:
            urls = {f"{s}_{i}": self.URL + f for s, files in IDX_FILES.items() for i, f in enumerate(files)}
            got = dl_manager.download(urls)
            paths = {s: tuple(os.fspath(got[f"{s}_{i}"]) for i in range(2)) for s in IDX_FILES}
            # Downloaded files carry hashed names; verify their payloads by the canonical names.
            roots = []
        data = {}
        for split, (img_path, lbl_path) in paths.items():
            if folder is None:
                names = IDX_FILES[split]
                expected = {os.path.basename(img_path): self.PAYLOAD_SHA256[names[0]],
                            os.path.basename(lbl_path): self.PAYLOAD_SHA256[names[1]]}
            else:
                expected = self.PAYLOAD_SHA256
            data[split] = idx.load_idx_pair(img_path, lbl_path, expected_sha256=expected,
                                            manifest_roots=roots, verify=self.verify)
            images, labels = data[split]
            if images.shape[1:] != self.SHAPE:
                raise idx.DataIntegrityError(f"{img_path}: images are {images.shape[1:]}, expected {self.SHAPE}.")
            if labels.size and labels.max() >= self.NUM_CLASSES:
                raise idx.DataIntegrityError(f"{lbl_path}: labels outside 0..{self.NUM_CLASSES - 1}.")
        return {split: self._generate_examples(*arrays) for split, arrays in data.items()}

    def _generate_examples(self, images, labels):
        for i, (image, label) in enumerate(zip(images, labels)):
            yield i, {"image": image, "label": int(label), "index": i}


_IDX_INSTRUCTIONS = (
    "Provide the four IDX files (train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, "
    "t10k-images-idx3-ubyte.gz, t10k-labels-idx1-ubyte.gz) in a folder and pass it as "
    "source_dir= (or set JAXGAN_SOURCE_DIR, or TFDS manual_dir); a data root holding a '{sub}/' "
    "sub-folder works too."
)


class JaxganMnist(_IdxBuilder):
    """MNIST (LeCun, Cortes, Burges), 28x28x1 uint8, labels 0-9. License CC BY-SA 3.0."""

    SOURCE_SUBDIR = "mnist"
    URL = "https://storage.googleapis.com/cvdf-datasets/mnist/"  # TFDS's canonical mirror
    PAYLOAD_SHA256 = MNIST_PAYLOAD_SHA256
    HOMEPAGE = "http://yann.lecun.com/exdb/mnist/"
    DESCRIPTION = "MNIST handwritten digits: 60,000 train and 10,000 test images, 28x28 grey."
    CITATION = "@article{lecun2010mnist, title={MNIST handwritten digit database}, author={LeCun, Yann and Cortes, Corinna and Burges, CJ}, year={2010}}"
    MANUAL_DOWNLOAD_INSTRUCTIONS = _IDX_INSTRUCTIONS.format(sub="mnist")


class JaxganFashionMnist(_IdxBuilder):
    """Fashion-MNIST (Zalando Research), 28x28x1 uint8, labels 0-9. License MIT."""

    SOURCE_SUBDIR = "fashion_mnist"
    URL = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"  # the official release
    PAYLOAD_SHA256 = FASHION_MNIST_PAYLOAD_SHA256
    HOMEPAGE = "https://github.com/zalandoresearch/fashion-mnist"
    DESCRIPTION = "Fashion-MNIST: 60,000 train and 10,000 test images of clothing, 28x28 grey."
    CITATION = "@article{xiao2017fashion, title={Fashion-MNIST: a Novel Image Dataset for Benchmarking Machine Learning Algorithms}, author={Xiao, Han and Rasul, Kashif and Vollgraf, Roland}, journal={arXiv:1708.07747}, year={2017}}"
    MANUAL_DOWNLOAD_INSTRUCTIONS = _IDX_INSTRUCTIONS.format(sub="fashion_mnist")


_CIFAR_CITATION = "@techreport{krizhevsky2009learning, title={Learning multiple layers of features from tiny images}, author={Krizhevsky, Alex}, year={2009}}"


class JaxganCifar10(JaxganBuilder):
    """CIFAR-10 from the lossless binary release, 32x32x3 uint8, labels 0-9."""

    SHAPE = (32, 32, 3)
    SOURCE_SUBDIR = "cifar10"
    HOMEPAGE = "https://www.cs.toronto.edu/~kriz/cifar.html"
    DESCRIPTION = "CIFAR-10 (original binary release): 50,000 train and 10,000 test 32x32 RGB images."
    CITATION = _CIFAR_CITATION
    MANUAL_DOWNLOAD_INSTRUCTIONS = (
        f"Download {CIFAR10_URL} and pass the folder holding cifar-10-binary.tar.gz as source_dir= "
        "(or set JAXGAN_SOURCE_DIR, or TFDS manual_dir). For the offline JPEG-recompressed copy "
        "(cifar10_{train,test}_jpeg.npz) use the dataset name 'cifar10_jpeg' instead."
    )
    TRAIN_FILES = tuple(f"data_batch_{i}.bin" for i in range(1, 6))

    @classmethod
    def source_files(cls):
        return {"all": ("cifar-10-binary.tar.gz",)}

    def _split_generators(self, dl_manager):
        folder = self._local_dir(dl_manager)
        if folder is not None:
            tar = os.path.join(folder, "cifar-10-binary.tar.gz")
            roots = self._manifest_roots(folder)
        else:
            tar = os.fspath(dl_manager.download(CIFAR10_URL))
            roots = []
        if self.verify:
            actual = idx.sha256_file(tar)
            entry = idx.find_manifest_entry(tar, roots)
            if entry is not None:
                idx.check_sha256(tar, actual, entry[1], f"file (per {entry[0]})")
            idx.check_sha256(tar, actual, CIFAR10_TAR_SHA256, "file")
        prefix = "cifar-10-batches-bin/"
        members = idx.read_tar_members(tar, [prefix + f for f in (*self.TRAIN_FILES, "test_batch.bin")])
        return {
            "train": self._generate_examples(tar, [(prefix + f, members[prefix + f]) for f in self.TRAIN_FILES]),
            "test": self._generate_examples(tar, [(prefix + "test_batch.bin", members[prefix + "test_batch.bin"])]),
        }

    def _generate_examples(self, tar: str, batches: Sequence[tuple[str, bytes]]):
        i = 0
        for member, payload in batches:
            images, labels = idx.parse_cifar10_binary(payload, name=f"{tar}:{member}")
            for image, label in zip(images, labels):
                yield i, {"image": np.ascontiguousarray(image), "label": int(label), "index": i}
                i += 1


class JaxganCifar10Jpeg(JaxganBuilder):
    """CIFAR-10 recompressed as JPEG (~30 dB PSNR), from local npz files only.

    Good for the 32x32 colour code path and relative comparisons; a FID computed on it is NOT
    comparable with published CIFAR-10 numbers.
    """

    SHAPE = (32, 32, 3)
    SOURCE_SUBDIR = "cifar10_jpeg"
    CAN_DOWNLOAD = False
    HOMEPAGE = "https://www.cs.toronto.edu/~kriz/cifar.html"
    DESCRIPTION = "CIFAR-10, JPEG-recompressed (lossy): 50,000 train and 10,000 test 32x32 RGB."
    CITATION = _CIFAR_CITATION
    MANUAL_DOWNLOAD_INSTRUCTIONS = (
        "Pass the folder holding cifar10_train_jpeg.npz and cifar10_test_jpeg.npz (arrays "
        "jpeg_bytes, offsets, labels) as source_dir= (or set JAXGAN_SOURCE_DIR, or TFDS "
        "manual_dir). There is no download for this variant; use 'cifar10' for the original release."
    )

    @classmethod
    def source_files(cls):
        return {s: (f,) for s, f in CIFAR10_JPEG_FILES.items()}

    def _split_generators(self, dl_manager):
        folder = self._local_dir(dl_manager)
        if folder is None:
            raise FileNotFoundError(f"{self.name} has no download source. " + self.MANUAL_DOWNLOAD_INSTRUCTIONS)
        out = {}
        for split, fname in CIFAR10_JPEG_FILES.items():
            path = os.path.join(folder, fname)
            arrays = idx.load_jpeg_npz(path, expected_sha256=None, manifest_roots=self._manifest_roots(folder),
                                       verify=self.verify)
            if self.verify:
                # The project's offline copies are pinned; other npz files are checked only against
                # a SHA256SUMS manifest beside them (above).
                pinned = CIFAR10_JPEG_SHA256[fname]
                if idx.find_manifest_entry(path, self._manifest_roots(folder)) is None:
                    idx.check_sha256(path, idx.sha256_file(path), pinned, "file")
            out[split] = self._generate_examples(path, *arrays)
        return out

    def _generate_examples(self, path, jpeg, offsets, labels):
        for i in range(len(labels)):
            image = idx.decode_jpeg(jpeg[offsets[i]:offsets[i + 1]].tobytes(), name=f"{path}[{i}]")
            yield i, {"image": image, "label": int(labels[i]), "index": i}


BUILDERS: dict[str, type[JaxganBuilder]] = {
    "mnist": JaxganMnist,
    "fashion_mnist": JaxganFashionMnist,
    "cifar10": JaxganCifar10,
    "cifar10_jpeg": JaxganCifar10Jpeg,
}


def _resolve_dir(value: str | os.PathLike | None, env: str) -> str | None:
    if value is not None:
        return os.fspath(value)
    value = os.environ.get(env)
    return value or None


def get_builder(name: str, *, data_dir: str | os.PathLike | None = None, verify: bool = True) -> JaxganBuilder:
    """The TFDS builder behind ``name`` (see :data:`BUILDERS`), with ``data_dir`` resolved."""
    if name not in BUILDERS:
        raise ValueError(f"Unknown dataset {name!r}; valid names: {sorted(BUILDERS)}.")
    data_dir = _resolve_dir(data_dir, "JAXGAN_DATA_DIR")
    return BUILDERS[name](data_dir=data_dir, verify=verify)


def prepare(
    name: str,
    *,
    data_dir: str | os.PathLike | None = None,
    source_dir: str | os.PathLike | None = None,
    download: bool = True,
    verify: bool = True,
    max_examples_per_split: int | None = None,
) -> JaxganBuilder:
    """Prepares ``name`` into ``data_dir`` unless it already is; returns the builder.

    Args:
      name: one of :data:`BUILDERS`.
      data_dir: the TFDS data dir holding prepared datasets. Defaults to ``$JAXGAN_DATA_DIR``,
        then TFDS's default (``$TFDS_DATA_DIR`` or ``~/tensorflow_datasets``).
      source_dir: a folder holding the original files (or a data root with a sub-folder per
        dataset, like ``../shared/data``). Defaults to ``$JAXGAN_SOURCE_DIR``. When unset, the
        originals are downloaded (when ``download``).
      download: allow downloading when there is no local source.
      verify: check source checksums (structural checks always run).
      max_examples_per_split: prepare only the first examples of each split (for tests; do not
        use it with a shared data_dir, the partial dataset would be cached as if complete).
    """
    builder = get_builder(name, data_dir=data_dir, verify=verify)
    if builder.is_prepared():
        return builder
    source_dir = _resolve_dir(source_dir, "JAXGAN_SOURCE_DIR")
    cls = type(builder)
    if source_dir is not None:
        if not os.path.isdir(source_dir):
            raise FileNotFoundError(
                f"Source directory {source_dir} for {name!r} does not exist. "
                + cls.MANUAL_DOWNLOAD_INSTRUCTIONS)
        if cls.locate_source(source_dir) is None:
            missing = [f for f in cls.all_source_files()
                       if not any(os.path.isfile(os.path.join(c, f)) for c in cls.source_candidates(source_dir))]
            raise FileNotFoundError(
                f"Source files {missing} for {name!r} not found in {' or '.join(cls.source_candidates(source_dir))}. "
                + cls.MANUAL_DOWNLOAD_INSTRUCTIONS)
    elif not download or not cls.CAN_DOWNLOAD:
        raise FileNotFoundError(
            f"Dataset {name!r} is not prepared in {builder.data_dir} and no source files were given"
            + ("" if cls.CAN_DOWNLOAD else f" ({name!r} cannot be downloaded)")
            + ". Set data_dir=/JAXGAN_DATA_DIR to a TFDS data dir where it is prepared, or pass "
            "source_dir=/set JAXGAN_SOURCE_DIR. " + cls.MANUAL_DOWNLOAD_INSTRUCTIONS)
    config = tfds.download.DownloadConfig(
        manual_dir=os.path.abspath(source_dir) if source_dir is not None else None,
        max_examples_per_split=max_examples_per_split,
    )
    # A DownloadConfig with manual_dir=None makes TFDS look in <data_dir>/downloads/manual.
    log.info("Preparing %s into %s (source: %s)", name, builder.data_dir, source_dir or "download")
    try:
        builder.download_and_prepare(download_config=config)
    except (idx.DataIntegrityError, FileNotFoundError):
        raise
    except Exception as e:
        if source_dir is None:
            raise RuntimeError(
                f"Could not prepare {name!r} into {builder.data_dir}: no local source was given and "
                f"downloading failed ({type(e).__name__}: {e}). On an offline machine pass "
                "source_dir=/set JAXGAN_SOURCE_DIR. " + cls.MANUAL_DOWNLOAD_INSTRUCTIONS) from e
        raise
    return builder


def load_source(
    name: str,
    *,
    split: str = "train",
    data_dir: str | os.PathLike | None = None,
    source_dir: str | os.PathLike | None = None,
    download: bool = True,
    verify: bool = True,
    in_memory: bool = True,
) -> TfdsImageSource | ArraySource:
    """A random-access source of ``{'image': uint8 [H, W, C], 'label': int, 'index': int}``.

    Prepares the dataset on first use (see :func:`prepare`) and reuses the prepared array_record
    files afterwards. Reading goes through TFDS's ``ArrayRecordDataSource`` (what
    ``tfds.data_source`` returns; no TensorFlow needed), wrapped to add a fast batched read
    ``get_batch(indices)``. ``len(src)``, ``src[i]`` and ``src.__getitems__(indices)`` work as
    on any TFDS data source. Feed it to :func:`jaxgan.data.make_loader`.

    Args:
      name: ``'mnist'``, ``'fashion_mnist'``, ``'cifar10'`` or ``'cifar10_jpeg'``.
      split: a TFDS split spec (``'train'``, ``'test'``, ``'train[:90%]'``...).
      data_dir, source_dir, download, verify: see :func:`prepare`.
      in_memory: read the whole split into NumPy arrays once (MNIST: 47 MB, ~1-2 s; CIFAR-10:
        150 MB) and serve batches from memory (~2,400 MNIST batches/s of 64 on one core, vs
        ~200-350 from disk). Pass False for a :class:`TfdsImageSource` that reads from disk.
    """
    builder = prepare(name, data_dir=data_dir, source_dir=source_dir, download=download, verify=verify)
    source = TfdsImageSource(builder.as_data_source(split=split))
    return source.to_memory() if in_memory else source
