"""ADA's filtered execution of a geometric warp (StyleGAN2-ADA's `AugmentPipe`): reflect padding
by the batch's margin, 2x sym6 upsampling, bilinear sampling, 2x sym6 downsampling.

`jaxgan.augment.transforms` re-exports `filtered_warp` and `SYM6`; the matrix conventions are
that module's (3x3 homogeneous, pixels about the image centre, `g_inv` maps output to input).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from jaxgan.augment._common import bilinear, check_images, reflect_index

__all__ = ["SYM6", "filtered_warp"]


# The Symlet-6 wavelet's low-pass filter (12 taps, a standard table; in the order of
# StyleGAN2-ADA's `wavelets['sym6']`): ADA's anti-aliasing filter around the warp ('Hz_geom').
SYM6 = (
  0.015404109327027373,
  0.0034907120842174702,
  -0.11799011114819057,
  -0.048311742585633,
  0.4910559419267466,
  0.787641141030194,
  0.3379294217276218,
  -0.07263752278646252,
  -0.021060292512300564,
  0.04472490177066578,
  0.0017677118642428036,
  -0.007800708325034148,
)


def _geom_filter() -> np.ndarray:
  # Normalised to unit DC gain in float32, as StyleGAN2-ADA's upfirdn2d.setup_filter.
  f = np.asarray(SYM6, np.float32)
  return f / f.sum(dtype=np.float32)


def _upsample_matrix(length: int, f: np.ndarray) -> np.ndarray:
  # 2x upsampling with the FIR filter f (len 12, gain 2) as a (2 length, length) matrix: zero
  # insertion, then correlation with 2 * f[::-1] at the offsets of upfirdn2d's upsample2d
  # (padding [6, 5]), zero outside the input:
  #   out[2m] = sum_s 2 f[11 - 2s] x[m + s - 3],  out[2m + 1] = sum_s 2 f[10 - 2s] x[m + s - 2].
  taps, half = len(f), len(f) // 2
  u = np.zeros((2 * length, length), np.float32)
  for m in range(length):
    for s in range(half):
      for row, tap, col in (
        (2 * m, taps - 1 - 2 * s, m + s - 3),
        (2 * m + 1, taps - 2 - 2 * s, m + s - 2),
      ):
        if 0 <= col < length:
          u[row, col] += 2 * f[tap]
  return u


def _downsample_matrix(length_in: int, length: int, f: np.ndarray) -> np.ndarray:
  # 2x downsampling to `length` samples as a (length, length_in) matrix: upfirdn2d's
  # downsample2d with padding -2 * (taps // 4) and flip_filter=True, out[m] = sum_t f[t] x[1 + 2m + t].
  d = np.zeros((length, length_in), np.float32)
  for m in range(length):
    for t in range(len(f)):
      d[m, 1 + 2 * m + t] += f[t]
  return d


def _reflect_pad_matrix(size: int, pad: int) -> np.ndarray:
  # Reflect padding by `pad` on both sides (numpy's 'reflect': about the edge pixels' centres)
  # as a (size + 2 pad, size) 0/1 matrix.
  return np.eye(size, dtype=np.float32)[reflect_index(np.arange(size + 2 * pad) - pad, size)]


def _resample_matrices(size: int, pad: int, lo, hi, f: np.ndarray):
  """One axis of `filtered_warp`'s upsampling, as a matrix: the static reflect padding by `pad`,
  the zeroing beyond ADA's margins `lo`, `hi` (traced int32 scalars, at most `pad`) before and
  after upsampling, and the 2x upsampling, composed into one `(2 (size + 2 pad), size)` matrix."""
  padded = size + 2 * pad
  keep = (jnp.arange(padded) >= pad - lo) & (jnp.arange(padded) < pad + size + hi)
  rows = jnp.arange(2 * padded)
  inside = (rows >= 2 * (pad - lo)) & (rows < 2 * (pad + size + hi))
  up = jnp.asarray(_upsample_matrix(padded, f)) * keep[None, :].astype(jnp.float32)
  # HIGHEST: exact 0/1 entries and filter taps, also where matmuls default to TF32.
  a = jnp.matmul(up, _reflect_pad_matrix(size, pad), precision=jax.lax.Precision.HIGHEST)
  return a * inside[:, None].astype(jnp.float32)


def _bucket_pads(h: int, w: int) -> list[int]:
  # The static paddings `filtered_warp` compiles (the largest margin ADA takes is size - 1).
  s = max(h, w) - 1
  return sorted({0, -(-s // 8), -(-s // 4), -(-s // 2), s})


def _filtered_warp_padded(x, g, margins, *, pad: int, f: np.ndarray, hz_pad: int):
  """`filtered_warp`'s resampling with the images reflect-padded by `pad` (>= the margins)."""
  n, h, w, ch = x.shape
  mx0, my0, mx1, my1 = margins
  # Padding, zeroing beyond the batch's margins and upsampling are linear and separable: one
  # matrix per axis, applied as matmuls (whose transposes, in the gradient, are matmuls too).
  sx, sy = min(pad, w - 1), min(pad, h - 1)
  hs, ws = h + 2 * sy, w + 2 * sx
  hi = jax.lax.Precision.HIGHEST  # TF32 on accelerators would round the pixel values
  a_h = _resample_matrices(h, sy, my0, my1, f)  # [2 hs, h]
  a_w = _resample_matrices(w, sx, mx0, mx1, f)  # [2 ws, w]
  x = jnp.einsum("pw,nhwc->nhpc", a_w, x, precision=hi)
  x = jnp.einsum("oh,nhpc->nopc", a_h, x, precision=hi)  # [n, 2 hs, 2 ws, C]

  # Sample the upsampled image at T(-1/2) S(2) g_inv S(1/2) T(1/2) of the output grid, which
  # covers the output image and hz_pad pixels around it at twice the resolution; zero outside it.
  ho, wo = 2 * (h + 2 * hz_pad), 2 * (w + 2 * hz_pad)
  a = (jnp.arange(wo, dtype=jnp.float32) - (wo - 1) / 2 + 0.5) / 2  # [wo]
  b = (jnp.arange(ho, dtype=jnp.float32) - (ho - 1) / 2 + 0.5) / 2  # [ho]
  gg = g[:, :, :, None, None]
  a, b = a[None, None, :], b[None, :, None]
  ix = 2 * (gg[:, 0, 0] * a + gg[:, 0, 1] * b + gg[:, 0, 2]) - 0.5 + (2 * ws - 1) / 2
  iy = 2 * (gg[:, 1, 0] * a + gg[:, 1, 1] * b + gg[:, 1, 2]) - 0.5 + (2 * hs - 1) / 2
  flat = x.reshape(n * 4 * hs * ws, ch)
  first = (jnp.arange(n) * (4 * hs * ws))[:, None, None]  # each example's first pixel in flat

  def tap(yi, xi):
    inside = (yi >= 0) & (yi < 2 * hs) & (xi >= 0) & (xi < 2 * ws)
    index = first + jnp.clip(yi, 0, 2 * hs - 1) * (2 * ws) + jnp.clip(xi, 0, 2 * ws - 1)
    # Whole pixels (all channels) per index, from the batch flattened: one plain gather, whose
    # transpose in the gradient is a plain scatter-add (a batched one is slower on CPU).
    got = jnp.take(flat, index.reshape(-1), axis=0, mode="clip")
    return jnp.where(inside[..., None], got.reshape(n, ho, wo, ch), 0.0)

  out = bilinear(ix, iy, tap)
  d_h, d_w = _downsample_matrix(ho, h, f), _downsample_matrix(wo, w, f)
  out = jnp.einsum("qp,nopc->noqc", d_w, out, precision=hi)
  out = jnp.einsum("ro,noqc->nrqc", d_h, out, precision=hi)
  return out


def filtered_warp(images: jax.Array, g_inv: jax.Array) -> jax.Array:
  """ADA's execution of a geometric transform: 2x sym6 upsampling, a bilinear warp, downsampling.

  StyleGAN2-ADA's `AugmentPipe` (training/augment.py) executes its composed blit and geometric
  matrix this way, to keep the transform from aliasing: pad the batch by reflection, upsample 2x
  with the Symlet-6 filter `SYM6`, sample bilinearly (zero outside the padded image), downsample
  2x with the same filter and crop. The padding is ADA's: the margin the batch's transformed
  corners need plus 2 * 3 pixels, clipped to [0, size - 1] per side and shared by the whole batch,
  with the upsampled image zero beyond it. Its size depends on `g_inv`'s values, so here the
  batch is padded statically by the smallest of five sizes (0, about size / 8, size / 4, size / 2,
  size - 1) that holds the margin, chosen by `lax.switch`, and the pixels beyond ADA's margin are
  zeroed, before and after upsampling: the same arithmetic, with static shapes, so the warp jits
  and is differentiable with respect to the images. Padding, zeroing and upsampling are linear
  and separable, so they run as one matrix product per axis, and so do their transposes in the
  gradient (sums of shifted slices, the direct form, made the gradient 4x slower on CPU).

  Unlike `warp`, neither the identity nor flips and quarter turns are exact: the identity comes
  back to float32 rounding (the filter is orthogonal), but sym6 is not symmetric, so a flipped
  axis is filtered by a kernel with centre tap 0.965 (as in ADA).

  Args:
    images: `[n, H, W, C]` float images.
    g_inv: float32 `[n, 3, 3]`, output pixel -> input point, in pixels about the image centre.

  Returns:
    `[n, H, W, C]`, the dtype of `images`.

  Raises:
    ValueError: when `images` is not `[n, H, W, C]` with C in (1, 3) or `g_inv` not `[n, 3, 3]`.

  Example:
    >>> x = jnp.arange(64.0).reshape(1, 8, 8, 1)
    >>> y = jax.jit(filtered_warp)(x, jnp.eye(3)[None])  # the identity, to rounding
    >>> bool(jnp.max(jnp.abs(y - x)) < 1e-4)
    True
  """
  check_images(images, "filtered_warp")
  n, h, w, ch = images.shape
  if tuple(jnp.shape(g_inv)) != (n, 3, 3):
    raise ValueError(f"filtered_warp needs g_inv of shape ({n}, 3, 3); got {jnp.shape(g_inv)}.")
  f = _geom_filter()
  hz_pad = len(f) // 4  # the output is computed 3 pixels beyond each border, then cropped
  cx, cy = (w - 1) / 2, (h - 1) / 2
  g = g_inv.astype(jnp.float32)

  # ADA's margin: where the batch's output corners land in the input, plus 2 * hz_pad pixels.
  corners_x = np.array([-cx, cx, cx, -cx], np.float32)
  corners_y = np.array([-cy, -cy, cy, cy], np.float32)
  px = g[:, 0, :1] * corners_x + g[:, 0, 1:2] * corners_y + g[:, 0, 2:]  # [n, 4]
  py = g[:, 1, :1] * corners_x + g[:, 1, 1:2] * corners_y + g[:, 1, 2:]
  margin = jnp.stack([jnp.max(-px), jnp.max(-py), jnp.max(px), jnp.max(py)])
  margin = margin + np.array([2 * hz_pad - cx, 2 * hz_pad - cy] * 2, np.float32)
  margin = jnp.clip(margin, 0.0, np.array([w - 1, h - 1] * 2, np.float32))
  mx0, my0, mx1, my1 = jnp.ceil(margin).astype(jnp.int32)

  # The static padding: the smallest of `_bucket_pads` that holds the batch's margin (a switch
  # among compiled branches), so a batch of mild transforms does not pay for the largest.
  need = jnp.max(jnp.stack([mx0, my0, mx1, my1]))
  pads = _bucket_pads(h, w)
  branches = [functools.partial(_filtered_warp_padded, pad=p, f=f, hz_pad=hz_pad) for p in pads]
  index = jnp.searchsorted(jnp.asarray(pads), need)
  out = jax.lax.switch(index, branches, images.astype(jnp.float32), g, (mx0, my0, mx1, my1))
  return out.astype(images.dtype)
