"""Stacked MNIST (Metz et al. 2017): three MNIST digits, one per colour channel, 1000 classes.

Example ``i`` of a split stacks the MNIST digits at row ``i`` of
``stacked_indices(SIZES[split], m, SEEDS[split])`` (``m`` MNIST images) of the matching MNIST split (train digits for ``train``, test digits for ``test``) as its
red, green and blue channels; its label is ``100 * d1 + 10 * d2 + d3`` for the channels' digits
``d1, d2, d3``. The three digits are drawn independently and uniformly, with replacement, as in
PacGAN's and VEEGAN's code (Lin et al. 2018; Srivastava et al. 2017).

Size. PacGAN draws fresh triples for every batch; a prepared data set is a finite sample of that
distribution, and its own class histogram deviates from it by about ``999 / (2 M)`` in KL for
``M`` examples. The Stacked MNIST metric (:mod:`jaxgan.metrics.stacked_mnist`) draws its real-data
floor from this data set, so that deviation adds to the floor and to what a perfect generator can
reach: at ``M = 100,000`` it is 0.005, beside the 0.019 that 26,000 samples cost anyway, and every
one of the 1000 classes holds about 100 examples (57 to 147). A larger set buys
little more and costs 235 MB of memory per 100,000 examples in the training loader. The test split
stacks MNIST's 10,000 test digits into 10,000 triples (about 10 per class), cheap to prepare.

The draw uses NumPy's PCG64 bit stream, which NumPy keeps identical across versions (unlike the
derived ``Generator.integers``), so the data set is the same wherever it is prepared. Everything
here is plain NumPy; the TFDS builder is ``jaxgan.data.builders.JaxganStackedMnist``.
"""

from __future__ import annotations

import numpy as np

NUM_CLASSES = 1000
# split -> examples, and split -> the seed of the digit draw.
SIZES = {"train": 100_000, "test": 10_000}
SEEDS = {"train": 2017, "test": 2018}
CITATION = (
  "@inproceedings{metz2017unrolled, title={Unrolled Generative Adversarial Networks}, "
  "author={Metz, Luke and Poole, Ben and Pfau, David and Sohl-Dickstein, Jascha}, "
  "booktitle={ICLR}, year={2017}}"
)


def stacked_indices(n: int, num_source: int, seed: int) -> np.ndarray:
  """The MNIST digits behind ``n`` stacked examples: three independent uniform draws each.

  Args:
    n: the number of stacked examples.
    num_source: the number of MNIST images to draw from (at most ``2**16``).
    seed: the seed of NumPy's PCG64 bit generator.

  Returns:
    int64 ``(n, 3)``: row ``i`` holds the source indices, in ``[0, num_source)``, of example
    ``i``'s red, green and blue channels.

  Raises:
    ValueError: ``n`` is negative or ``num_source`` outside ``[1, 2**16]``.

  >>> idx = stacked_indices(4, 10, seed=0)
  >>> idx.shape, idx.dtype.name, bool(((0 <= idx) & (idx < 10)).all())
  ((4, 3), 'int64', True)
  """
  if n < 0 or not 1 <= num_source <= 2**16:
    raise ValueError(f"Need n >= 0 and 1 <= num_source <= 65536; got n={n}, {num_source=}.")
  # The top 32 bits of each raw draw, scaled to [0, num_source) by a multiply and a shift (no
  # rejection step: the bias, under num_source / 2**32 per index, is far below sampling noise).
  raw = np.random.PCG64(seed).random_raw(3 * n) >> np.uint64(32)
  idx = (raw * np.uint64(num_source)) >> np.uint64(32)
  return idx.astype(np.int64).reshape(n, 3)


def stacked_labels(digits: np.ndarray) -> np.ndarray:
  """The class of each triple of digits: ``100 * d1 + 10 * d2 + d3``.

  Args:
    digits: int ``(n, 3)`` digits in 0..9, one column per channel.

  Returns:
    int64 ``(n,)`` classes in 0..999.

  Raises:
    ValueError: ``digits`` is not ``(n, 3)``.

  >>> stacked_labels(np.array([[1, 2, 3], [0, 0, 9]])).tolist()
  [123, 9]
  """
  digits = np.asarray(digits)
  if digits.ndim != 2 or digits.shape[1] != 3:
    raise ValueError(f"digits must be (n, 3), one column per channel; got {digits.shape}.")
  return digits.astype(np.int64) @ np.array([100, 10, 1], np.int64)


def stack_digits(images: np.ndarray, indices: np.ndarray) -> np.ndarray:
  """Stacked images: the digits at ``indices`` as the red, green and blue channels.

  Args:
    images: uint8 ``(m, 28, 28, 1)`` (or ``(m, 28, 28)``) MNIST images.
    indices: int ``(n, 3)`` indices into ``images``.

  Returns:
    uint8 ``(n, 28, 28, 3)``; channel ``c`` of example ``i`` is ``images[indices[i, c]]``.

  >>> ims = np.arange(3, dtype=np.uint8).reshape(3, 1, 1, 1) * np.ones((1, 2, 2, 1), np.uint8)
  >>> stack_digits(ims, np.array([[2, 0, 1]]))[0, 0, 0].tolist()
  [2, 0, 1]
  """
  images = np.asarray(images)
  if images.ndim == 4:
    images = images[..., 0]
  return np.stack([images[indices[:, c]] for c in range(3)], axis=-1)
