"""Image files in, uint8 squares out: listing a folder, decoding any mode, and the crop policies.

One set of rules serves every place jaxgan reads image files (a `folder:PATH` data set, the images
that `python -m jaxgan.evaluate` scores, the crop of a `tfds:NAME` data set):

- files: ``.png``, ``.jpg``/``.jpeg``, ``.webp``, ``.bmp`` at any depth, in sorted path order;
  other files are ignored;
- modes: greyscale (``L``, ``LA``, 1-bit, 16- and 32-bit integer ``I;16``/``I``, float ``F``) gives
  one channel, anything else three (RGB); alpha is composited over black, and 16-bit images are
  scaled to 8 bits (``x >> 8``), not clipped;
- crop policies to a square of ``resolution`` pixels (`CROPS`):

  =============  =================================================================================
  resize_crop    scale so the short side is ``resolution`` (Lanczos), crop the centre square
  center_crop    crop the centre ``resolution`` square unscaled (StyleGAN's dataset_tool
                 ``--transform=center-crop`` crops to the short side and then scales: that is
                 ``resize_crop``); an image smaller than ``resolution`` is refused
  pad            scale so the long side is ``resolution`` (Lanczos), pad the short one with black
  =============  =================================================================================

PIL decodes (what TFDS uses without TensorFlow); Lanczos is PIL's antialiased filter that clean-fid
recommends for downsampling.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import numpy as np

EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp", ".bmp")
CROPS = ("resize_crop", "center_crop", "pad")
_GREY_MODES = ("1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "F")


def check_crop(crop: str) -> None:
  """Raises `jaxgan.errors.ConfigError` naming the valid policies unless ``crop`` is in `CROPS`."""
  if crop not in CROPS:
    from jaxgan.errors import ConfigError  # pylint: disable=g-import-not-at-top

    raise ConfigError(f"config.data.crop={crop!r} is not a crop policy; valid: {', '.join(CROPS)}.")


def check_resolution(resolution: int | None) -> None:
  """Raises `jaxgan.errors.ConfigError` unless ``resolution`` is None or a side of >= 4 pixels."""
  if resolution is not None and (not isinstance(resolution, int) or resolution < 4):
    from jaxgan.errors import ConfigError  # pylint: disable=g-import-not-at-top

    raise ConfigError(
      "config.data.resolution must be an image side in pixels (e.g. 64) or None; got "
      f"{resolution!r}."
    )


class ImageReadError(ValueError):
  """A file that cannot be used as an image; the message names the file and why."""


def list_images(folder: str | os.PathLike) -> list[str]:
  """The image files under ``folder``, at any depth, as paths relative to it, sorted.

  Hidden files and folders (a leading ``.``) are skipped; symbolic links to files are followed.

  Args:
    folder: a directory.

  Returns:
    Relative paths with ``/`` separators, sorted, whose extension (any case) is in `EXTENSIONS`.
  """
  folder = os.fspath(folder)
  found = []
  for root, dirs, files in os.walk(folder, followlinks=True):
    dirs[:] = sorted(d for d in dirs if not d.startswith("."))
    rel = os.path.relpath(root, folder)
    for name in files:
      if not name.startswith(".") and name.lower().endswith(EXTENSIONS):
        found.append(name if rel == "." else f"{rel}/{name}".replace(os.sep, "/"))
  return sorted(found)


def _to_8bit(image) -> tuple[object, str | None]:
  """A PIL image in ``L`` or ``RGB``, and what was converted (None: nothing)."""
  from PIL import Image  # pylint: disable=g-import-not-at-top

  mode = image.mode
  if mode in ("L", "RGB"):
    return image, None
  if mode in ("I", "I;16", "I;16B", "I;16L", "F"):
    a = np.asarray(image)
    if mode == "F":
      a = np.clip(a, 0.0, 255.0)
    elif a.max(initial=0) > 255:  # 16-bit content (PIL opens 16-bit PNGs as I or I;16)
      a = a >> 8
    return Image.fromarray(a.astype(np.uint8), "L"), f"{mode} to 8-bit"
  if mode in ("RGBA", "LA", "PA") or (mode == "P" and "transparency" in image.info):
    rgba = image.convert("RGBA")
    black = Image.new("RGBA", rgba.size, (0, 0, 0, 255))
    out = Image.alpha_composite(black, rgba)
    return out.convert("L" if mode == "LA" else "RGB"), f"{mode} alpha over black"
  if mode == "1":
    return image.convert("L"), "1-bit to 8-bit"
  return image.convert("RGB"), f"{mode} to RGB"


def read_image(path: str | os.PathLike) -> tuple[np.ndarray, str | None]:
  """Decodes one image file into uint8 pixels.

  Args:
    path: an image file.

  Returns:
    ``(pixels, conversion)``: uint8 ``(h, w, 1)`` for greyscale modes, ``(h, w, 3)`` otherwise;
    ``conversion`` says what was done to reach 8 bits per channel (None: nothing), for the log.

  Raises:
    ImageReadError: the file is not a readable image (truncated, not an image, unknown format).
  """
  from PIL import Image, UnidentifiedImageError  # pylint: disable=g-import-not-at-top

  try:
    with Image.open(path) as image:
      image.load()
      image, conversion = _to_8bit(image)
  except (OSError, UnidentifiedImageError, ValueError, SyntaxError) as e:
    raise ImageReadError(f"{path}: not a readable image ({type(e).__name__}: {e})") from None
  a = np.asarray(image, dtype=np.uint8)
  return (a[..., None] if a.ndim == 2 else a), conversion


def is_grey(pixels: np.ndarray) -> bool:
  """True for one-channel pixels ``(h, w, 1)``."""
  return pixels.shape[-1] == 1


def to_channels(pixels: np.ndarray, channels: int) -> np.ndarray:
  """uint8 ``(h, w, channels)``: grey repeated to RGB, or RGB to grey (ITU-R 601-2 luma, PIL's)."""
  if pixels.shape[-1] == channels:
    return pixels
  if channels == 3:
    return np.repeat(pixels, 3, axis=-1)
  luma = pixels.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
  return np.round(luma).clip(0, 255).astype(np.uint8)[..., None]


def fit_square(pixels: np.ndarray, resolution: int, crop: str) -> np.ndarray:
  """One image brought to a ``resolution`` square by a crop policy (see the module docstring).

  Args:
    pixels: uint8 ``(h, w, c)``.
    resolution: the side of the square, in pixels.
    crop: one of `CROPS`.

  Returns:
    uint8 ``(resolution, resolution, c)``.

  Raises:
    ValueError: an unknown policy (a `jaxgan.errors.ConfigError`), or ``center_crop`` of an
      image smaller than ``resolution``.
  """
  from PIL import Image  # pylint: disable=g-import-not-at-top

  check_crop(crop)
  h, w, c = pixels.shape
  if crop == "center_crop" and min(h, w) < resolution:
    raise ValueError(
      f"center_crop takes a {resolution}x{resolution} window from an image of {w}x{h}; use "
      "crop 'resize_crop' or 'pad', or a smaller resolution."
    )
  if (h, w) == (resolution, resolution):
    return pixels
  image = Image.fromarray(pixels[..., 0] if c == 1 else pixels)
  if crop != "center_crop":
    scale = resolution / (min(h, w) if crop == "resize_crop" else max(h, w))
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    if crop == "resize_crop":  # the short side exactly `resolution`, whatever the rounding
      size = tuple(max(resolution, s) for s in size)
    image = image.resize(size, Image.Resampling.LANCZOS)
  a = np.asarray(image, np.uint8).reshape(image.size[1], image.size[0], c)
  h, w = a.shape[:2]
  if crop == "pad":
    top, left = (resolution - h) // 2, (resolution - w) // 2
    out = np.zeros((resolution, resolution, c), np.uint8)
    out[top : top + h, left : left + w] = a
    return out
  top, left = (h - resolution) // 2, (w - resolution) // 2
  return a[top : top + resolution, left : left + resolution]


def iter_folder(
  folder: str | os.PathLike, paths: list[str] | None = None
) -> Iterator[tuple[str, np.ndarray | None, str | None]]:
  """Decodes a folder's images one at a time, never raising for a bad file.

  Args:
    folder: a directory.
    paths: relative paths to read (default: `list_images(folder)`).

  Yields:
    ``(relative path, pixels or None, note)``: pixels as `read_image` returns them; for an
    unreadable file pixels is None and the note says why, else the note is the conversion (or
    None).
  """
  folder = os.fspath(folder)
  for rel in list_images(folder) if paths is None else paths:
    try:
      pixels, note = read_image(os.path.join(folder, rel))
    except ImageReadError as e:
      yield rel, None, str(e)
      continue
    yield rel, pixels, note
