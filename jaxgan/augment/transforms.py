"""Batched transform matrices and their application: ADA's geometric warp and colour transform.

Geometry (Karras et al. 2020, StyleGAN2-ADA) uses 3x3 homogeneous matrices in pixel units with
the origin at the image centre, x along the width and y along the height (down). A warp takes
the INVERSE transform `g_inv`, which maps each output pixel's coordinates to the input point it
samples: `warp` samples the image directly (exact for flips, quarter turns and whole-pixel
shifts), `filtered_warp` as StyleGAN2-ADA does (2x sym6 upsampling around the sampling).
Colour uses 4x4 homogeneous matrices acting on (r, g, b, 1). Every builder takes per-example
arrays `[n]` (or scalars) and returns float32 `[n, 3, 3]` or `[n, 4, 4]`.

Example:
  >>> import jax.numpy as jnp
  >>> x = jnp.arange(6.0).reshape(1, 2, 3, 1)
  >>> warp(x, scale2d(jnp.array([-1.0]), 1.0))[0, :, :, 0]  # g_inv of an x-flip is an x-flip
  Array([[2., 1., 0.],
         [5., 4., 3.]], dtype=float32)
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from jaxgan.augment._common import bilinear, check_images, reflect_index
from jaxgan.augment.filtered_warp import SYM6 as SYM6  # ADA's filtered warp, in its own module
from jaxgan.augment.filtered_warp import filtered_warp as filtered_warp

# The luma axis of ADA's colour transforms: grey lies along (1, 1, 1).
_LUMA = np.array([1.0, 1.0, 1.0, 0.0], np.float32) / np.sqrt(3.0)
_LUMA_OUTER = np.outer(_LUMA, _LUMA)


def matrix(*rows) -> jax.Array:
  """Stacks rows of per-example values into matrices.

  Args:
    *rows: equal-length rows whose entries are scalars or arrays `[n]`, at least one an array.

  Returns:
    float32 `[n, len(rows), len(rows[0])]`.
  """
  n = max(jnp.size(e) for row in rows for e in row)
  entries = [
    [jnp.broadcast_to(jnp.asarray(e, jnp.float32).reshape(-1), (n,)) for e in row] for row in rows
  ]
  return jnp.stack([jnp.stack(row, axis=-1) for row in entries], axis=-2)


def translate2d(tx, ty) -> jax.Array:
  """Translation by (tx, ty) pixels: float32 `[n, 3, 3]`."""
  return matrix([1, 0, tx], [0, 1, ty], [0, 0, 1])


def scale2d(sx, sy) -> jax.Array:
  """Scaling by sx along x and sy along y: float32 `[n, 3, 3]`."""
  return matrix([sx, 0, 0], [0, sy, 0], [0, 0, 1])


def rotate2d(theta) -> jax.Array:
  """Rotation by `theta` radians (from +x towards +y): float32 `[n, 3, 3]`."""
  c, s = jnp.cos(theta), jnp.sin(theta)
  return matrix([c, -s, 0], [s, c, 0], [0, 0, 1])


def rotate90_2d(k) -> jax.Array:
  """Rotation by k quarter turns, built from exact 0/+-1 entries: float32 `[n, 3, 3]`.

  `rotate2d(k * pi / 2)` would put cos(pi / 2) ~ -4e-8 in float32 into the matrix and turn an
  exact pixel permutation into a slightly blurred one.

  Args:
    k: int `[n]`, quarter turns (any integer; taken mod 4).
  """
  k = jnp.mod(jnp.asarray(k, jnp.int32), 4)
  c = jnp.array([1.0, 0.0, -1.0, 0.0])[k]
  s = jnp.array([0.0, 1.0, 0.0, -1.0])[k]
  return matrix([c, -s, 0], [s, c, 0], [0, 0, 1])


def translate3d(tx, ty, tz) -> jax.Array:
  """Colour translation (adds tx, ty, tz to r, g, b): float32 `[n, 4, 4]`."""
  return matrix([1, 0, 0, tx], [0, 1, 0, ty], [0, 0, 1, tz], [0, 0, 0, 1])


def scale3d(sx, sy, sz) -> jax.Array:
  """Colour scaling of r, g, b by sx, sy, sz: float32 `[n, 4, 4]`."""
  return matrix([sx, 0, 0, 0], [0, sy, 0, 0], [0, 0, sz, 0], [0, 0, 0, 1])


def luma_flip3d(i) -> jax.Array:
  """Householder reflection of colour along the luma axis where `i` is 1, identity where 0.

  Args:
    i: float `[n]` in {0, 1}.

  Returns:
    float32 `[n, 4, 4]`: I - 2 v v^T i with v = (1, 1, 1, 0) / sqrt(3).
  """
  i = jnp.asarray(i, jnp.float32).reshape(-1, 1, 1)
  return jnp.eye(4, dtype=jnp.float32) - 2.0 * jnp.asarray(_LUMA_OUTER) * i


def hue_rotate3d(theta) -> jax.Array:
  """Rotation of colour by `theta` radians about the luma axis (Rodrigues): float32 `[n, 4, 4]`."""
  vx = vy = vz = float(_LUMA[0])
  s, c = jnp.sin(theta), jnp.cos(theta)
  cc = 1.0 - c
  return matrix(
    [vx * vx * cc + c, vx * vy * cc - vz * s, vx * vz * cc + vy * s, 0],
    [vy * vx * cc + vz * s, vy * vy * cc + c, vy * vz * cc - vx * s, 0],
    [vz * vx * cc - vy * s, vz * vy * cc + vx * s, vz * vz * cc + c, 0],
    [0, 0, 0, 1],
  )


def saturate3d(s) -> jax.Array:
  """Scales colour's distance from the luma axis by `s`: float32 `[n, 4, 4]`."""
  s = jnp.asarray(s, jnp.float32).reshape(-1, 1, 1)
  outer = jnp.asarray(_LUMA_OUTER)
  return outer + (jnp.eye(4, dtype=jnp.float32) - outer) * s


def warp(images: jax.Array, g_inv: jax.Array) -> jax.Array:
  """Resamples each example at `g_inv @ (output pixel)`, bilinearly, with reflect padding.

  One sampling pass (bilinear, reflect padding extended periodically to any distance), without
  the 2x sym6 up- and downsampling of ADA's execution (`filtered_warp`), so strong downscaling
  aliases more. Integer-valued matrices (flips, quarter turns, whole pixel shifts, the identity)
  give exact pixel permutations: `ada` uses it for policies of blit transforms alone.

  Args:
    images: `[n, H, W, C]` float images.
    g_inv: float32 `[n, 3, 3]`, output pixel -> input point, in pixels about the image centre.

  Returns:
    `[n, H, W, C]`, the dtype of `images`.

  Raises:
    ValueError: when `images` is not `[n, H, W, C]` with C in (1, 3) or `g_inv` not `[n, 3, 3]`.
  """
  check_images(images, "warp")
  n, h, w, _ = images.shape
  if tuple(jnp.shape(g_inv)) != (n, 3, 3):
    raise ValueError(f"warp needs g_inv of shape ({n}, 3, 3); got {jnp.shape(g_inv)}.")
  cx, cy = (w - 1) / 2, (h - 1) / 2
  ys, xs = jnp.meshgrid(
    jnp.arange(h, dtype=jnp.float32), jnp.arange(w, dtype=jnp.float32), indexing="ij"
  )
  u, v = xs - cx, ys - cy
  g = g_inv.astype(jnp.float32)[:, :, :, None, None]  # [n, 3, 3, 1, 1]
  # Elementwise rather than a matmul: TF32 matmuls on accelerators would blur exact coordinates.
  sx = g[:, 0, 0] * u + g[:, 0, 1] * v + g[:, 0, 2] + cx  # [n, H, W]
  sy = g[:, 1, 0] * u + g[:, 1, 1] * v + g[:, 1, 2] + cy
  x = images.astype(jnp.float32)

  def tap(rows, cols):  # whole pixels, reflected back into the image
    return jax.vmap(lambda image, r, c: image[r, c])(
      x, reflect_index(rows, h), reflect_index(cols, w)
    )

  return bilinear(sx, sy, tap).astype(images.dtype)


def apply_colour(images: jax.Array, c: jax.Array) -> jax.Array:
  """Applies a 4x4 homogeneous colour matrix per example.

  RGB: out = C[:3, :3] @ rgb + C[:3, 3]. One channel, ADA's rule: the three rows are averaged
  into one, m = mean_k C[k, :], and out = x * (m0 + m1 + m2) + m3 (grey treated as r = g = b).

  Args:
    images: `[n, H, W, C]` float images, C = 1 or 3.
    c: float32 `[n, 4, 4]`.

  Returns:
    `[n, H, W, C]`, the dtype of `images`.

  Raises:
    ValueError: when `images` is not `[n, H, W, C]` with C in (1, 3) or `c` not `[n, 4, 4]`.

  Example:
    >>> x = jnp.array([0.5, -0.5, 0.0]).reshape(1, 1, 1, 3)
    >>> apply_colour(x, luma_flip3d(jnp.ones(1)))[0, 0, 0]  # x - 2 mean(x)
    Array([ 0.5, -0.5,  0. ], dtype=float32)
  """
  check_images(images, "apply_colour")
  n, _, _, ch = images.shape
  if tuple(jnp.shape(c)) != (n, 4, 4):
    raise ValueError(f"apply_colour needs c of shape ({n}, 4, 4); got {jnp.shape(c)}.")
  x = images.astype(jnp.float32)
  c = c.astype(jnp.float32)[:, None, None]  # [n, 1, 1, 4, 4]
  if ch == 3:
    # Elementwise products summed (not a matmul), so the identity matrix returns x exactly.
    out = jnp.sum(x[..., None, :] * c[..., :3, :3], axis=-1) + c[..., :3, 3]
  else:
    m = jnp.mean(c[..., :3, :], axis=-2)  # [n, 1, 1, 4]
    out = x * jnp.sum(m[..., :3], axis=-1, keepdims=True) + m[..., 3:]
  return out.astype(images.dtype)


def box_cutout(images: jax.Array, centres: jax.Array, sizes: jax.Array) -> jax.Array:
  """ADA's cutout: zeroes a rectangle given in fractions of the image size, per example.

  Pixel (y, x) is zeroed where |(x + 0.5) / W - cx| < size / 2 and |(y + 0.5) / H - cy| < size / 2.

  Args:
    images: `[n, H, W, C]` float images.
    centres: float `[n, 2]`, (cy, cx) as fractions of the height and width.
    sizes: float `[n]`, the side as a fraction of the size (0: nothing is cut).

  Returns:
    `[n, H, W, C]`, the dtype of `images`.
  """
  _, h, w, _ = images.shape
  half = jnp.asarray(sizes, jnp.float32)[:, None] / 2
  ys = (jnp.arange(h, dtype=jnp.float32)[None] + 0.5) / h
  xs = (jnp.arange(w, dtype=jnp.float32)[None] + 0.5) / w
  in_rows = jnp.abs(ys - centres[:, :1]) < half  # [n, H]
  in_cols = jnp.abs(xs - centres[:, 1:]) < half  # [n, W]
  cut = (in_rows[:, :, None] & in_cols[:, None, :])[..., None]
  return jnp.where(cut, jnp.zeros((), images.dtype), images)
