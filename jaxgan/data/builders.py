"""TFDS builders of jaxgan's image data sets, written as array_record and read without TensorFlow.

Each builder prepares from local source files when they are given (``source_dir``, TFDS's
``manual_dir``) and otherwise downloads the original release through TFDS's download manager
(http(s) with ``requests``; no TensorFlow), checked against pinned sizes and digests
(:mod:`jaxgan.data.releases`) and then again by payload digest. TFDS's archive extractor needs
TensorFlow, so the CIFAR-10 tarball is read with :mod:`tarfile` instead.

Each record is ``{'image': uint8 (h, w, c), 'label': int64, 'index': int64}``; each builder's
name, shape, class count and source are its row in :mod:`jaxgan.data.registry`, which names the
class here as its ``definition`` (see :mod:`jaxgan.data.base_builder`).

CelebA is not provided: TFDS's own ``celeb_a`` stores ``tfds.features.Image`` (which needs
TensorFlow to encode) and downloads from Google Drive, so it cannot be prepared without TensorFlow.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import ClassVar

import numpy as np

from jaxgan.data import cifar, idx, releases, stacked
from jaxgan.data.base_builder import JaxganBuilder
from jaxgan.data.checksums import DataIntegrityError, find_manifest_entry, verify_file

# Every IDX release here (MNIST, Fashion-MNIST) has ten classes of 28x28 grey images.
_IDX_CLASSES, _IDX_SHAPE = 10, (28, 28, 1)

_IDX_INSTRUCTIONS = (
  "Provide the four IDX files (train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, "
  "t10k-images-idx3-ubyte.gz, t10k-labels-idx1-ubyte.gz) in a folder and pass it as "
  "source_dir= (or set JAXGAN_SOURCE_DIR, or TFDS manual_dir); a data root holding a '{sub}/' "
  "sub-folder works too."
)


class _IdxBuilder(JaxganBuilder, skip_registration=True):
  """MNIST-style data sets: gzipped IDX image and label files per split, 28x28x1.

  Subclasses set ``SOURCE_SUBDIR``, ``URL``, ``PAYLOAD_SHA256`` and the descriptive attributes;
  ``MANUAL_DOWNLOAD_INSTRUCTIONS`` follows from ``SOURCE_SUBDIR``.
  """

  URL: ClassVar[str]
  PAYLOAD_SHA256: ClassVar[Mapping[str, str]]

  def __init_subclass__(cls, **kwargs):
    cls.MANUAL_DOWNLOAD_INSTRUCTIONS = _IDX_INSTRUCTIONS.format(sub=cls.SOURCE_SUBDIR)
    super().__init_subclass__(**kwargs)

  @classmethod
  def source_files(cls):
    return releases.IDX_FILES

  def _split_generators(self, dl_manager):
    files = releases.IDX_FILES
    folder = self._local_dir(dl_manager)
    if folder is not None:
      paths = {s: tuple(os.path.join(folder, f) for f in names) for s, names in files.items()}
      roots = self._manifest_roots(folder)
      expected = {s: self.PAYLOAD_SHA256 for s in files}
    else:
      urls = {f"{s}_{i}": self.URL + f for s, names in files.items() for i, f in enumerate(names)}
      got = dl_manager.download(urls)
      paths = {s: tuple(os.fspath(got[f"{s}_{i}"]) for i in range(2)) for s in files}
      roots = []
      # Downloads carry hashed names: map them to the digests of the canonical names.
      expected = {
        s: {
          os.path.basename(p): self.PAYLOAD_SHA256[n]
          for p, n in zip(paths[s], files[s], strict=True)
        }
        for s in files
      }
    generators = {}
    for split, (img_path, lbl_path) in paths.items():
      images, labels = idx.load_idx_pair(
        img_path,
        lbl_path,
        expected_sha256=expected[split],
        manifest_roots=roots,
        verify=self.verify,
      )
      if images.shape[1:] != _IDX_SHAPE:
        raise DataIntegrityError(
          f"{img_path}: images are {images.shape[1:]}, expected {_IDX_SHAPE} for {self.name}."
        )
      if labels.size and labels.max() >= _IDX_CLASSES:
        raise DataIntegrityError(f"{lbl_path}: labels outside 0..{_IDX_CLASSES - 1}.")
      generators[split] = self._split_examples(split, images, labels)
    return generators

  def _split_examples(self, split: str, images: np.ndarray, labels: np.ndarray):
    """The records of ``split`` from its IDX arrays; derived data sets override this."""
    del split
    return self._generate_examples(images, labels)

  def _generate_examples(self, images, labels):
    for i, (image, label) in enumerate(zip(images, labels, strict=True)):
      yield i, {"image": image, "label": int(label), "index": i}


class JaxganMnist(_IdxBuilder):
  """MNIST (LeCun, Cortes, Burges 1998): uint8 (28, 28, 1) digits, labels 0-9. CC BY-SA 3.0."""

  SOURCE_SUBDIR = "mnist"
  URL = releases.MNIST_URL
  PAYLOAD_SHA256 = releases.MNIST_PAYLOAD_SHA256
  HOMEPAGE = "http://yann.lecun.com/exdb/mnist/"
  DESCRIPTION = "MNIST handwritten digits: 60,000 train and 10,000 test images, 28x28 grey."
  CITATION = releases.MNIST_CITATION


class JaxganFashionMnist(_IdxBuilder):
  """Fashion-MNIST (Xiao et al. 2017, Zalando): uint8 (28, 28, 1) clothing, labels 0-9. MIT."""

  SOURCE_SUBDIR = "fashion_mnist"
  URL = releases.FASHION_MNIST_URL
  PAYLOAD_SHA256 = releases.FASHION_MNIST_PAYLOAD_SHA256
  HOMEPAGE = "https://github.com/zalandoresearch/fashion-mnist"
  DESCRIPTION = "Fashion-MNIST: 60,000 train and 10,000 test images of clothing, 28x28 grey."
  CITATION = releases.FASHION_MNIST_CITATION


class JaxganStackedMnist(JaxganMnist):
  """Stacked MNIST (Metz et al. 2017): uint8 (28, 28, 3), three MNIST digits, labels 0-999.

  Made from the MNIST files (the same local files or download as ``mnist``): example ``i`` of a
  split stacks three digits of that MNIST split drawn with a fixed seed, one per channel, labelled
  ``100 * d1 + 10 * d2 + d3``; ``index`` is ``i``. Sizes, seeds and why: :mod:`jaxgan.data.stacked`.
  """

  DESCRIPTION = (
    f"Stacked MNIST: {stacked.SIZES['train']:,} train and {stacked.SIZES['test']:,} test triples "
    "of MNIST digits drawn with a fixed seed, one digit per RGB channel, 1000 classes."
  )
  CITATION = stacked.CITATION
  # Records are made and written in chunks: vectorised stacking, bounded memory.
  _CHUNK = 8192

  def _split_examples(self, split, images, labels):
    n = stacked.SIZES[split]
    idx = stacked.stacked_indices(n, len(images), stacked.SEEDS[split])
    for s in range(0, n, self._CHUNK):
      part = idx[s : s + self._CHUNK]
      ims, labs = stacked.stack_digits(images, part), stacked.stacked_labels(labels[part])
      for j in range(len(part)):
        yield s + j, {"image": ims[j], "label": int(labs[j]), "index": s + j}


class JaxganCifar10(JaxganBuilder):
  """CIFAR-10 (Krizhevsky 2009), the lossless binary release: uint8 (32, 32, 3), labels 0-9."""

  SOURCE_SUBDIR = "cifar10"
  HOMEPAGE = "https://www.cs.toronto.edu/~kriz/cifar.html"
  DESCRIPTION = "CIFAR-10 (original binary release): 50,000 train and 10,000 test 32x32 RGB images."
  CITATION = releases.CIFAR10_CITATION
  MANUAL_DOWNLOAD_INSTRUCTIONS = (
    f"Download {releases.CIFAR10_URL} and pass the folder holding cifar-10-binary.tar.gz as "
    "source_dir= (or set JAXGAN_SOURCE_DIR, or TFDS manual_dir). For the JPEG-recompressed copy "
    "(cifar10_{train,test}_jpeg.npz) use the data set name 'cifar10_jpeg' instead."
  )
  _PREFIX = "cifar-10-batches-bin/"
  _SPLIT_MEMBERS: ClassVar[dict[str, tuple[str, ...]]] = {
    "train": tuple(f"data_batch_{i}.bin" for i in range(1, 6)),
    "test": ("test_batch.bin",),
  }

  @classmethod
  def source_files(cls):
    return {"all": ("cifar-10-binary.tar.gz",)}

  def _split_generators(self, dl_manager):
    folder = self._local_dir(dl_manager)
    if folder is not None:
      tar = os.path.join(folder, "cifar-10-binary.tar.gz")
      roots = self._manifest_roots(folder)
    else:
      tar = os.fspath(dl_manager.download(releases.CIFAR10_URL))
      roots = []
    if self.verify:
      verify_file(tar, manifest_roots=roots, expected=releases.CIFAR10_TAR_SHA256)
    wanted = [self._PREFIX + f for names in self._SPLIT_MEMBERS.values() for f in names]
    members = cifar.read_tar_members(tar, wanted)
    return {
      split: self._generate_examples(
        tar, [(self._PREFIX + f, members[self._PREFIX + f]) for f in names]
      )
      for split, names in self._SPLIT_MEMBERS.items()
    }

  def _generate_examples(self, tar: str, batches: Sequence[tuple[str, bytes]]):
    i = 0
    for member, payload in batches:
      images, labels = cifar.parse_cifar10_binary(payload, name=f"{tar}:{member}")
      for image, label in zip(images, labels, strict=True):
        yield i, {"image": np.ascontiguousarray(image), "label": int(label), "index": i}
        i += 1


class JaxganCifar10Jpeg(JaxganBuilder):
  """CIFAR-10 (Krizhevsky 2009) recompressed as JPEG: uint8 (32, 32, 3), labels 0-9, local only.

  The images carry JPEG artefacts: good for the 32x32 colour code path and relative comparisons,
  but a FID computed on them is NOT comparable with published CIFAR-10 numbers.
  """

  SOURCE_SUBDIR = "cifar10_jpeg"
  CAN_DOWNLOAD = False
  HOMEPAGE = "https://www.cs.toronto.edu/~kriz/cifar.html"
  DESCRIPTION = "CIFAR-10, JPEG-recompressed (lossy): 50,000 train and 10,000 test 32x32 RGB."
  CITATION = releases.CIFAR10_CITATION
  MANUAL_DOWNLOAD_INSTRUCTIONS = (
    "Pass the folder holding cifar10_train_jpeg.npz and cifar10_test_jpeg.npz (arrays "
    "jpeg_bytes, offsets, labels) as source_dir= (or set JAXGAN_SOURCE_DIR, or TFDS "
    "manual_dir). There is no download for this variant; use 'cifar10' for the original release."
  )

  @classmethod
  def source_files(cls):
    return {s: (f,) for s, f in releases.CIFAR10_JPEG_FILES.items()}

  def _split_generators(self, dl_manager):
    folder = self._local_dir(dl_manager)
    if folder is None:
      raise FileNotFoundError(
        f"{self.name} has no download source. " + self.MANUAL_DOWNLOAD_INSTRUCTIONS
      )
    roots = self._manifest_roots(folder)
    out = {}
    for split, fname in releases.CIFAR10_JPEG_FILES.items():
      path = os.path.join(folder, fname)
      # A manifest beside the files vouches for copies of one's own; without one, the file must
      # be the pinned copy.
      pinned = None
      if self.verify and find_manifest_entry(path, roots) is None:
        pinned = releases.CIFAR10_JPEG_SHA256[fname]
      arrays = cifar.load_jpeg_npz(
        path, expected_sha256=pinned, manifest_roots=roots, verify=self.verify
      )
      out[split] = self._generate_examples(path, *arrays)
    return out

  def _generate_examples(self, path, jpeg, offsets, labels):
    for i in range(len(labels)):
      data = jpeg[offsets[i] : offsets[i + 1]].tobytes()
      image = cifar.decode_jpeg(data, name=f"{path}[{i}]")
      yield i, {"image": image, "label": int(labels[i]), "index": i}
