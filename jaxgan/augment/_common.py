"""Checks and helpers shared by every augmentation: image validation and per-example gating."""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

from jaxgan.augment._registry import check_probability_value

# The one signature of every entry of AUGMENTATIONS: f(images, key, p) -> images.
AugmentFn = Callable[[jax.Array, jax.Array, jax.Array], jax.Array]


def check_images(images: jax.Array, what: str = "augmentation") -> None:
  """Checks that `images` is a float batch `[n, H, W, C]` with C = 1 or 3.

  Reads static shapes and dtypes only, so under `jax.jit` it runs once, at trace time.

  Args:
    images: the batch to check.
    what: the caller's name, for the message.

  Raises:
    ValueError: when `images` is not 4-D, has C not in (1, 3), or is not floating point.
  """
  shape = tuple(jnp.shape(images))
  if len(shape) != 4 or shape[-1] not in (1, 3):
    raise ValueError(
      f"{what} needs images [n, H, W, C] (NHWC) with C = 1 or 3; got an array of shape {shape}. "
      "Pass a batch in channels-last layout, e.g. x[None] for one image or "
      "x.transpose(0, 2, 3, 1) for NCHW."
    )
  if not jnp.issubdtype(jnp.result_type(images), jnp.floating):
    raise ValueError(
      f"{what} needs floating-point images in [-1, 1]; got dtype {jnp.result_type(images)}. "
      "Convert first, e.g. x.astype(jnp.float32) / 127.5 - 1."
    )


def check_probability(p) -> jax.Array:
  """Returns `p` as a float32 scalar, refusing a concrete value outside [0, 1].

  A traced `p` (adapted inside a compiled step) cannot be checked and passes through.

  Args:
    p: the augmentation probability: a Python float or a scalar array, possibly traced.

  Returns:
    `p` as a float32 array of shape `()`.

  Raises:
    ValueError: when `p` is not a scalar, or is concrete and outside [0, 1].
  """
  p = jnp.asarray(p, jnp.float32)
  if p.ndim != 0:
    raise ValueError(f"The augmentation probability p must be a scalar; got shape {p.shape}.")
  try:
    value = float(p)
  except (jax.errors.ConcretizationTypeError, TypeError):
    return p
  check_probability_value(value)
  return p


def where_examples(mask: jax.Array, a: jax.Array, b: jax.Array) -> jax.Array:
  """Selects `a[i]` where `mask[i]`, else `b[i]`, for batches `[n, ...]`.

  Args:
    mask: bool `[n]`.
    a: `[n, ...]`.
    b: `[n, ...]`, the shape of `a`.

  Returns:
    `[n, ...]`, the shape of `a`.
  """
  return jnp.where(mask.reshape((-1,) + (1,) * (a.ndim - 1)), a, b)


def reflect_index(i, size: int):
  """Pixel indices mirrored about the first and last pixel centres (torch's 'reflect' padding),
  with period 2 (size - 1), so that any index, however far outside, maps into [0, size).

  Args:
    i: integer indices, a NumPy array (stays NumPy: static) or a JAX array.
    size: the axis's length.

  Returns:
    The mirrored indices, of `i`'s kind.

  >>> reflect_index(np.arange(-2, 5), 3).tolist()
  [2, 1, 0, 1, 2, 1, 0]
  """
  xp = np if isinstance(i, np.ndarray) else jnp
  if size == 1:
    return xp.zeros_like(i)
  return (size - 1) - xp.abs(xp.mod(i, 2 * (size - 1)) - (size - 1))


def bilinear(sx: jax.Array, sy: jax.Array, tap: Callable) -> jax.Array:
  """Bilinear interpolation at float pixel coordinates, from values at integer pixels.

  Args:
    sx, sy: float32 `[n, H, W]` sampling points (column, row), in the source's pixels.
    tap: `tap(rows, cols) -> [n, H, W, C]`, the source's values at int32 `[n, H, W]` pixels
      (each caller's rule outside the image: reflection, zeros).

  Returns:
    float32 `[n, H, W, C]`.
  """
  x0f, y0f = jnp.floor(sx), jnp.floor(sy)
  fx, fy = (sx - x0f)[..., None], (sy - y0f)[..., None]
  x0, y0 = x0f.astype(jnp.int32), y0f.astype(jnp.int32)
  top = (1 - fx) * tap(y0, x0) + fx * tap(y0, x0 + 1)
  bottom = (1 - fx) * tap(y0 + 1, x0) + fx * tap(y0 + 1, x0 + 1)
  return (1 - fy) * top + fy * bottom
