"""Image sets for `python -m jaxgan.evaluate --images ... --reference ...`, checked and read.

A set is named by one string (a *spec*), resolved in this order:

- an existing **folder**: its image files (`jaxgan.data.images`: .png, .jpg, .jpeg, .webp, .bmp at
  any depth, sorted by path), all of one size and channel count;
- an existing **.npz** of images: uint8 `(N, H, W, C)`, C in {1, 3}, under the key `images` (what
  `python -m jaxgan.generate --out x.npz` writes) or as the file's only array (`np.savez`'s
  `arr_0`); integer arrays with every value in [0, 255] are taken as uint8;
- an existing **.npz** of statistics: `mu` `(2048,)` and `sigma` `(2048, 2048)` of Inception pool
  features, the format of pytorch-fid and clean-fid (and of `--save_stats`, which adds the count
  `n` and the feature network's `extractor_id`): a reference for FID only;
- otherwise a jaxgan **data set** name, anything `jaxgan.data.load_source` accepts (`mnist`,
  `cifar10`, ...), with a split.

`resolve` reads a set into memory (uint8, `N * H * W * C` bytes) and refuses a bad one with an
`ImageSetError` naming the file, what it holds and the fix, before any feature is computed.
`features` runs a feature network over the uint8 images; `save_stats` writes statistics
atomically.
"""

from __future__ import annotations

import dataclasses
import os
import zipfile

import numpy as np

from jaxgan.errors import UserError
from jaxgan.metrics.fid import FeatureStats

__all__ = [
  "INCEPTION_DIM",
  "ImageSet",
  "ImageSetError",
  "check_images",
  "check_output",
  "features",
  "inception_extractor",
  "resolve",
]

# The dimension of the FID Inception network's pool features, the only statistics accepted.
INCEPTION_DIM = 2048


class ImageSetError(UserError, ValueError):
  """An image set that cannot be used; the message names it, what it holds and the fix."""


@dataclasses.dataclass(frozen=True)
class ImageSet:
  """One side of a comparison: images, or (a reference only) their feature statistics.

  Attributes:
    spec: the string it was named by.
    kind: `'folder'`, `'npz'`, `'stats'` or `'dataset'`.
    description: what it is, for the protocol text, e.g. `"folder out/ (500 images 28x28x1)"`.
    images: uint8 `(n, h, w, c)`, c in {1, 3}; None for statistics.
    stats: for `'stats'`: the `FeatureStats` of the file (float64 mean `(2048,)` and covariance
      `(2048, 2048)`; its `n` is `count`, or 2049 when the file records none); else None.
    count: the number of images (for statistics, the file's `n`, or None when it has none).
    extractor_id: for statistics written by `save_stats`: the feature network's `id`; else None.
  """

  spec: str
  kind: str
  description: str
  images: np.ndarray | None = None
  stats: FeatureStats | None = None
  count: int | None = None
  extractor_id: str | None = None

  def record(self) -> dict:
    """`{'spec', 'description', 'count'}`, for a JSON record."""
    return {"spec": self.spec, "description": self.description, "count": self.count}


def _looks_like_dataset(spec: str) -> bool:
  """A name (or `scheme:rest`, e.g. `tfds:NAME`, `folder:PATH`) rather than a missing path."""
  head = spec.split(":", 1)[0]
  if ":" in spec and head.isidentifier():
    return True
  return os.sep not in spec and "/" not in spec and not spec.lower().endswith(".npz")


def _describe_values(a: np.ndarray) -> str:
  if a.size == 0:
    return "no values"
  lo, hi = a.min(), a.max()
  return f"values in [{lo:.4g}, {hi:.4g}]"


def check_images(array, where: str) -> np.ndarray:
  """Checks an array of images and returns it as uint8.

  Args:
    array: `(N, H, W, C)`, C in {1, 3}, uint8 or another integer dtype with values in [0, 255].
    where: what holds it, for the messages (e.g. `"samples.npz['images']"`).

  Returns:
    uint8 `(N, H, W, C)` (the array itself when it is uint8).

  Raises:
    ImageSetError: another rank, channel count or dtype, values outside [0, 255], or no images;
      the message says what the array holds and how to convert it.
  """
  a = np.asarray(array)
  held = f"{where} holds {a.dtype} {a.shape}"
  want = "expected uint8 images (N, H, W, C) with C = 1 or 3"
  if a.ndim != 4:
    fix = " (grey images: add the channel axis, x[..., None])" if a.ndim == 3 else ""
    raise ImageSetError(f"{held}: {want}{fix}.")
  if a.shape[-1] not in (1, 3):
    if a.shape[1] in (1, 3):
      fix = "channels first? Transpose with x.transpose(0, 2, 3, 1)"
    elif a.shape[-1] in (2, 4):
      fix = "drop the alpha channel, x[..., :-1]"
    else:
      fix = "give grey (C = 1) or RGB (C = 3) images"
    raise ImageSetError(f"{held}: {want}; {fix}.")
  if not len(a) or 0 in a.shape:
    raise ImageSetError(f"{held}: no images; {want} and N >= 2.")
  if a.dtype == np.uint8:
    return a
  values = _describe_values(a) if np.issubdtype(a.dtype, np.number) else "no numbers"
  if np.issubdtype(a.dtype, np.integer):
    if a.min() >= 0 and a.max() <= 255:
      return a.astype(np.uint8)
    raise ImageSetError(f"{held}, {values}: {want}, values in [0, 255]; rescale them to it.")
  if np.issubdtype(a.dtype, np.floating):
    lo = float(np.nanmin(a)) if a.size else 0.0
    fix = (
      "from [-1, 1]: np.round((x + 1) * 127.5).clip(0, 255).astype(np.uint8)"
      if lo < 0
      else "from [0, 1]: np.round(x * 255).clip(0, 255).astype(np.uint8); from [0, 255]: "
      "np.round(x).clip(0, 255).astype(np.uint8)"
    )
    raise ImageSetError(f"{held}, {values}: {want}, values in [0, 255]. Convert them {fix}.")
  raise ImageSetError(f"{held}: {want}.")


def _read_folder(folder: str, num: int | None) -> ImageSet:
  from jaxgan.data import images as images_lib  # pylint: disable=g-import-not-at-top

  paths = images_lib.list_images(folder)
  if not paths:
    raise ImageSetError(
      f"folder {folder} holds no image files ({', '.join(images_lib.EXTENSIONS)}, at any depth)."
    )
  paths = paths[:num] if num is not None else paths
  out, first, notes = None, None, []
  for i, (rel, pixels, note) in enumerate(images_lib.iter_folder(folder, paths)):
    if pixels is None:
      raise ImageSetError(f"{note}. Remove or replace {os.path.join(folder, rel)}.")
    if out is None:
      out, first = np.empty((len(paths), *pixels.shape), np.uint8), rel
    elif pixels.shape != out.shape[1:]:
      h, w, c = pixels.shape
      h0, w0, c0 = out.shape[1:]
      raise ImageSetError(
        f"{os.path.join(folder, rel)} is {w}x{h} with {c} channel(s), but {first} (the first "
        f"file) is {w0}x{h0} with {c0}: the images of a folder must share one size and "
        "channel count. Resize (and convert) them to one, or use the folder as the data set "
        "`folder:PATH` with `data.resolution` set, which brings every image to one square."
      )
    out[i] = pixels
    if note:
      notes.append(note)
  n, h, w, c = out.shape
  converted = f"; {len(notes)} converted, e.g. {notes[0]}" if notes else ""
  return ImageSet(
    folder, "folder", f"folder {folder} ({n} images {h}x{w}x{c}{converted})", images=out, count=n
  )


def _read_stats(path: str, f) -> ImageSet:
  mu, sigma = np.asarray(f["mu"]), np.asarray(f["sigma"])
  d = INCEPTION_DIM
  if mu.shape != (d,) or sigma.shape != (d, d) or not np.issubdtype(mu.dtype, np.floating):
    raise ImageSetError(
      f"{path} holds statistics mu {mu.dtype} {mu.shape} and sigma {sigma.dtype} {sigma.shape}; "
      f"expected float mu ({d},) and sigma ({d}, {d}) of Inception pool features (pytorch-fid "
      "and clean-fid write these; so does --save_stats)."
    )
  if not (np.isfinite(mu).all() and np.isfinite(sigma).all()):
    raise ImageSetError(f"{path}: mu or sigma holds NaN or infinite values; recompute the file.")
  n = int(f["n"]) if "n" in f.files else None
  ext = str(f["extractor_id"]) if "extractor_id" in f.files else None
  # An unrecorded count (pytorch-fid, clean-fid) counts as d + 1: enough that `stats_distance`
  # warns only about the other side's count.
  stats = FeatureStats.from_mean_cov(mu, sigma, n if n is not None else d + 1)
  of = f"{n} images" if n is not None else "an unrecorded number of images"
  return ImageSet(
    path, "stats", f"statistics {path} (mu, sigma of {of})", stats=stats, count=n, extractor_id=ext
  )


def _read_npz(path: str, num: int | None) -> ImageSet:
  try:
    f = np.load(path, allow_pickle=False)
  except (OSError, ValueError, zipfile.BadZipFile, EOFError) as e:
    raise ImageSetError(
      f"{path} is not a readable .npz ({type(e).__name__}: {e}); write one with "
      "np.savez(path, images=uint8 array (N, H, W, C))."
    ) from None
  with f:
    keys = list(f.files)
    if "mu" in keys and "sigma" in keys:
      return _read_stats(path, f)
    if "images" in keys or len(keys) == 1:
      key = "images" if "images" in keys else keys[0]
      try:
        array = f[key]
      except ValueError as e:  # an object array needs pickle: never loaded
        raise ImageSetError(f"{path}['{key}'] cannot be read without pickle ({e}).") from None
      array = array[:num] if num is not None else array
      images = check_images(array, f"{path}['{key}']")
    else:
      raise ImageSetError(
        f"{path} holds the arrays {keys}: expected images under the key 'images' (uint8 "
        "(N, H, W, C)), or a single array, or the statistics 'mu' and 'sigma'."
      )
  n, h, w, c = images.shape
  return ImageSet(path, "npz", f"{path}['{key}'] ({n} images {h}x{w}x{c})", images=images, count=n)


def _read_dataset(spec: str, role: str, split: str, num, data_dir, source_dir) -> ImageSet:
  from jaxgan import data  # pylint: disable=g-import-not-at-top  (TFDS: only when needed)

  try:
    src = data.load_source(
      spec, split=split, data_dir=data_dir, source_dir=source_dir, label_key=None
    )
  except (UserError, ValueError) as e:  # an unknown name, missing files, a split TFDS lacks
    raise ImageSetError(
      f"{role} {spec}: no such file or folder, so read as a data set (split {split!r}): {e}"
    ) from None
  n = len(src) if num is None else min(num, len(src))
  images = np.asarray(src.get_batch(np.arange(n))["image"])
  images = check_images(images[..., None] if images.ndim == 3 else images, f"{spec} {split!r}")
  _, h, w, c = images.shape
  desc = f"{spec} {split!r} ({n} images {h}x{w}x{c}{'' if n < len(src) else ', all'})"
  return ImageSet(spec, "dataset", desc, images=images, count=n)


def resolve(
  spec: str | os.PathLike | np.ndarray,
  *,
  role: str = "--images",
  split: str = "train",
  num: int | None = None,
  data_dir: str | None = None,
  source_dir: str | None = None,
  images_only: bool = False,
) -> ImageSet:
  """Reads an image set (see the module docstring for what a spec may be) and checks it.

  Args:
    spec: a folder, an .npz file, a data set name, or an array (uint8 `(N, H, W, C)`).
    role: the set's option, for the messages (`'--images'` or `'--reference'`).
    split: a data set's split (TFDS spec, e.g. `'test'` or `'train[:10%]'`).
    num: keep the first this many images; None: all (statistics are used as they are).
    data_dir: prepared data sets; None: `$JAXGAN_DATA_DIR`, then TFDS's default.
    source_dir: the data sets' original files; None: `$JAXGAN_SOURCE_DIR`.
    images_only: refuse a file of statistics (for the set that is scored).

  Returns:
    The `ImageSet`, its images uint8 `(n, h, w, c)`, n = min(num, size).

  Raises:
    ImageSetError: a missing path, an unreadable or mixed folder, an .npz holding anything but
      uint8 images or Inception statistics (or statistics, with `images_only`), a data set that
      cannot be loaded, `num` < 1.
  """
  if num is not None and num < 1:
    raise ImageSetError(f"--num {num}: give a positive number of images (or leave it out: all).")
  if isinstance(spec, np.ndarray):
    images = check_images(spec[:num] if num is not None else spec, f"the {role} array")
    n, h, w, c = images.shape
    return ImageSet("<array>", "npz", f"an array ({n} images {h}x{w}x{c})", images, count=n)
  spec = os.fspath(spec)
  path = os.path.expanduser(spec)
  if os.path.isdir(path):
    return _read_folder(path, num)
  if os.path.isfile(path):
    if not path.lower().endswith(".npz"):
      raise ImageSetError(
        f"{role} {spec} is a file but not an .npz: give a folder of images, an .npz of uint8 "
        "images (N, H, W, C) or of statistics (mu, sigma), or a data set name."
      )
    found = _read_npz(path, num)
    if images_only and found.kind == "stats":
      raise ImageSetError(
        f"{role} {spec} holds statistics (mu, sigma), not images: statistics can only be the "
        "--reference (for fid). Give the images themselves."
      )
    return found
  if not _looks_like_dataset(spec):
    raise ImageSetError(
      f"{role} {spec}: no such file or folder. Check the path (a folder of images, an .npz of "
      "images or of statistics), or give a data set name such as mnist."
    )
  return _read_dataset(spec, role, split, num, data_dir, source_dir)


def inception_extractor(weights: str | None = None, *, batch_size: int = 100):
  """The FID Inception extractor (`jaxgan.metrics.inception.load_inception`), errors as UserErrors.

  Args:
    weights: the weights file; None: the installed or fetched StyleGAN3 / clean-fid file.
    batch_size: images per forward pass.

  Returns:
    An `InceptionExtractor`.

  Raises:
    jaxgan.metrics.inception_weights.MissingWeightsError: none given and none found (the
      message names the fetch command).
    ImageSetError: a missing file, or one that is not the FID network's weights.
  """
  from jaxgan.metrics import inception_weights  # pylint: disable=g-import-not-at-top

  path = os.path.expanduser(weights) if weights else inception_weights.find_weights()
  if not os.path.isfile(path):
    raise ImageSetError(f"--inception_weights {path}: no such file.")
  from jaxgan.metrics.inception import load_inception  # pylint: disable=g-import-not-at-top

  try:
    return load_inception(path, batch_size=batch_size)
  except (ValueError, ImportError) as e:  # a wrong hash, not the network's weights
    if isinstance(e, UserError):
      raise
    raise ImageSetError(f"--inception_weights {path}: {e}") from None


def features(extractor, images: np.ndarray, *, batch_size: int = 100) -> np.ndarray:
  """A feature network's features of uint8 images, fed in float batches of one shape.

  Args:
    extractor: a `FeatureExtractor` (e.g. `jaxgan.metrics.inception.InceptionExtractor`).
    images: uint8 `(n, h, w, c)`.
    batch_size: images converted to float32 `x / 127.5 - 1` (in [-1, 1]; the FID Inception
      network's quantisation gives back the same uint8) and passed per call; a short last batch
      of a larger set is padded, so a jitted network compiles once per image size.

  Returns:
    float32 `(n, d)`.
  """
  from jaxgan.metrics.batching import extract  # pylint: disable=g-import-not-at-top

  out, n = [], len(images)
  for s in range(0, n, batch_size):
    chunk = images[s : s + batch_size]
    m = len(chunk)
    if m < batch_size < n:  # the tail of a larger set: the same shape as the other batches
      chunk = np.concatenate([chunk, np.zeros((batch_size - m, *chunk.shape[1:]), np.uint8)])
    x = chunk.astype(np.float32) * np.float32(1 / 127.5) - np.float32(1)
    out.append(extract(extractor, x)[0][:m])
  return np.concatenate(out)


def check_output(path: str | os.PathLike, option: str, *, overwrite: bool, suffix: str) -> str:
  """Refuses an output path before any work: wrong suffix, a folder, or a file not to overwrite.

  Args:
    path: the file to write.
    option: its option, for the messages (e.g. `'--save_stats'`).
    overwrite: whether an existing file may be replaced.
    suffix: the extension it must have (e.g. `'.npz'`).

  Returns:
    The path, user-expanded.

  Raises:
    ImageSetError: the path does not end with `suffix`, is a folder, or exists without
      `overwrite`.
  """
  path = os.path.expanduser(os.fspath(path))
  if not path.lower().endswith(suffix):
    raise ImageSetError(f"{option} {path}: name a {suffix} file.")
  if os.path.isdir(path):
    raise ImageSetError(f"{option} {path} is a folder: name a {suffix} file.")
  if os.path.exists(path) and not overwrite:
    raise ImageSetError(
      f"{option} {path} exists: refusing to overwrite it. Pass --overwrite (overwrite=True) to "
      "replace it, or name another file."
    )
  return path
