"""Where each data set comes from: file names, download URLs and pinned SHA-256 digests.

- MNIST (LeCun, Cortes, Burges 1998): 60,000 train and 10,000 test handwritten digits, 28x28 grey,
  as gzipped IDX files; TFDS's mirror on storage.googleapis.com. License CC BY-SA 3.0.
- Fashion-MNIST (Xiao, Rasul, Vollgraf 2017, Zalando Research): same layout, pictures of clothing;
  the official release on Zalando's S3 bucket. License MIT.
- CIFAR-10 (Krizhevsky 2009): 50,000 train and 10,000 test 32x32 RGB images in 10 classes; the
  lossless binary release from the University of Toronto.
- CIFAR-10, JPEG-recompressed: the same images re-encoded as JPEG (lossy), as local npz files only.

The download digests are the values TFDS records in its own ``url_checksums``.
"""

from __future__ import annotations

# split -> (images file, labels file), the same names for MNIST and Fashion-MNIST.
IDX_FILES = {
  "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
  "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}

# SHA-256 of the *decompressed* IDX payloads: independent of gzip headers, so they hold for the
# original archives and for re-gzipped copies alike. (The md5 values LeCun et al. publish for the
# same MNIST payloads: train images 6bbc9ace898e44ae57da46a324031adb, train labels
# a25bea736e30d166cdddb491f175f624, t10k images 2646ac647ad5339dbf082846283269ea, t10k labels
# 27ae3e4e09519cfbb04c329615203637.)
MNIST_PAYLOAD_SHA256 = {
  "train-images-idx3-ubyte.gz": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
  "train-labels-idx1-ubyte.gz": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
  "t10k-images-idx3-ubyte.gz": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
  "t10k-labels-idx1-ubyte.gz": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
}
# (Zalando publishes md5 of the .gz files: 8d4fb7e6c68d591d4c3dfef9ec88bf0d,
# 25c81989df183df01b3e8a0aad5dffbe, bef4ecab320f06d8554ea6380940ec79,
# bb300cfdad3c16e7a12a480ee83cd310.)
FASHION_MNIST_PAYLOAD_SHA256 = {
  "train-images-idx3-ubyte.gz": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
  "train-labels-idx1-ubyte.gz": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
  "t10k-images-idx3-ubyte.gz": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
  "t10k-labels-idx1-ubyte.gz": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
}

MNIST_URL = "https://storage.googleapis.com/cvdf-datasets/mnist/"
FASHION_MNIST_URL = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"
CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz"
# SHA-256 of the whole archive.
CIFAR10_TAR_SHA256 = "c4a38c50a1bc5f3a1c5537f2155ab9d68f9f25eb1ed8d9ddda3db29a59bca1dd"

# Download URL -> (size in bytes, SHA-256 of the file). TFDS's download manager checks every
# download against these before the builders parse it.
URL_CHECKSUMS = {
  MNIST_URL + "train-images-idx3-ubyte.gz": (
    9912422,
    "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
  ),
  MNIST_URL + "train-labels-idx1-ubyte.gz": (
    28881,
    "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
  ),
  MNIST_URL + "t10k-images-idx3-ubyte.gz": (
    1648877,
    "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
  ),
  MNIST_URL + "t10k-labels-idx1-ubyte.gz": (
    4542,
    "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
  ),
  FASHION_MNIST_URL + "train-images-idx3-ubyte.gz": (
    26421880,
    "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
  ),
  FASHION_MNIST_URL + "train-labels-idx1-ubyte.gz": (
    29515,
    "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
  ),
  FASHION_MNIST_URL + "t10k-images-idx3-ubyte.gz": (
    4422102,
    "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
  ),
  FASHION_MNIST_URL + "t10k-labels-idx1-ubyte.gz": (
    5148,
    "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5",
  ),
  CIFAR10_URL: (170052171, CIFAR10_TAR_SHA256),
}

CIFAR10_JPEG_FILES = {"train": "cifar10_train_jpeg.npz", "test": "cifar10_test_jpeg.npz"}
# SHA-256 of the JPEG-recompressed copies this project is developed against; other copies are
# accepted when a SHA256SUMS manifest beside them lists them.
CIFAR10_JPEG_SHA256 = {
  "cifar10_train_jpeg.npz": "0fb74553439b7b67ed11559e5dfe45041826febb7a6e06996575f485c06cf8c2",
  "cifar10_test_jpeg.npz": "967b1693ef98301d02968cb9126aef7c672291b08a159d7fb88bf2ad97348c4c",
}

CIFAR10_CLASSES = (
  "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck",
)  # fmt: skip
FASHION_MNIST_CLASSES = (
  "t-shirt/top", "trouser", "pullover", "dress", "coat",
  "sandal", "shirt", "sneaker", "bag", "ankle boot",
)  # fmt: skip

MNIST_CITATION = (
  "@article{lecun2010mnist, title={MNIST handwritten digit database}, "
  "author={LeCun, Yann and Cortes, Corinna and Burges, CJ}, year={2010}}"
)
FASHION_MNIST_CITATION = (
  "@article{xiao2017fashion, title={Fashion-MNIST: a Novel Image Dataset for Benchmarking "
  "Machine Learning Algorithms}, author={Xiao, Han and Rasul, Kashif and Vollgraf, Roland}, "
  "journal={arXiv:1708.07747}, year={2017}}"
)
CIFAR10_CITATION = (
  "@techreport{krizhevsky2009learning, title={Learning multiple layers of features from tiny "
  "images}, author={Krizhevsky, Alex}, year={2009}}"
)
