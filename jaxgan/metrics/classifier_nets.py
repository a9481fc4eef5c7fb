"""The networks `jaxgan.metrics.classifier` trains, by architecture name (`ARCHS`).

'conv' is `ConvClassifier`, the FCD classifier's network; 'residual' is
`jaxgan.models.backbones.ResidualClassifier`, the feature-network critic's backbone (another
architecture, so that a generator trained against one network's features is scored by another).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import flax.linen as nn

from jaxgan.models.backbones import ResidualClassifier

# The architectures `train_classifier` trains: 'conv' (`ConvClassifier`, the FCD classifier's) and
# 'residual' (`jaxgan.models.backbones.ResidualClassifier`, the feature-network critic's backbone).
ARCHS = ("conv", "residual")


class ConvClassifier(nn.Module):
  """conv3x3-relu-maxpool2 per width, then Dense(feature_dim)-relu (the features), Dense(classes).

  Attributes:
    num_classes: outputs of the classification head.
    widths: channels of each conv stage; each stage halves the image size.
    feature_dim: the dimension of the features.
    downsample: how a stage halves the size: `'max_pool'` (conv3x3-relu-maxpool2) or `'stride'`
      (a stride-2 conv3x3-relu: a quarter of the conv's work, and no max-pool gradient, which
      XLA's CPU backend computes slowly).
  """

  num_classes: int = 10
  widths: Sequence[int] = (32, 64)
  feature_dim: int = 128
  downsample: str = "max_pool"

  @nn.compact
  def __call__(self, x):
    """Features and logits.

    Args:
      x: float32 `(n, h, w, c)` images in [-1, 1].

    Returns:
      `(features float32 (n, feature_dim), logits float32 (n, num_classes))`.
    """
    if self.downsample not in ("max_pool", "stride"):
      raise ValueError(f"downsample must be 'max_pool' or 'stride'; got {self.downsample!r}.")
    stride = 2 if self.downsample == "stride" else 1
    for w in self.widths:
      x = nn.relu(nn.Conv(w, (3, 3), strides=stride)(x))
      if stride == 1:
        x = nn.max_pool(x, (2, 2), strides=(2, 2))
    x = x.reshape((x.shape[0], -1))
    feats = nn.relu(nn.Dense(self.feature_dim)(x))
    return feats, nn.Dense(self.num_classes)(feats)


def check_arch(arch: str) -> str:
  """Checks an architecture name (`ARCHS`).

  Raises:
    ValueError: an unknown name (the message lists them).
  """
  if arch not in ARCHS:
    raise ValueError(f"classifier arch must be one of {', '.join(map(repr, ARCHS))}; got {arch!r}")
  return arch


def make_module(meta: dict[str, Any]) -> nn.Module:
  """The classifier network a meta record describes (`arch`, absent in 'conv' files: 'conv').

  Args:
    meta: needs `num_classes`, `widths`, `feature_dim` (and `downsample` for 'conv', whose files
      without it max-pool).

  Returns:
    The unbound `ConvClassifier` or `ResidualClassifier`.
  """
  arch = check_arch(meta.get("arch", "conv"))
  common = dict(
    num_classes=meta["num_classes"], widths=tuple(meta["widths"]), feature_dim=meta["feature_dim"]
  )
  if arch == "residual":
    return ResidualClassifier(**common)
  return ConvClassifier(**common, downsample=meta.get("downsample", "max_pool"))
