"""R3GAN's stages per image size: the official presets, the width rule and jaxgan's defaults.

Huang, Gokaslan, Kuleshov and Tompkin, "The GAN is dead; long live the GAN! A Modern GAN
Baseline" (NeurIPS 2024). A network for `size` px images has one stage per resolution 4, 8, ...,
size (`RESOLUTIONS[size]`); G visits them upwards, D downwards, and every per-stage argument
(widths, blocks, cardinality) has one value per stage, in G's order. The official presets
(`train.py` of github.com/brownvc/R3GAN, `OFFICIAL_PRESETS`) have 2 blocks a stage and their 3x3
convolutions in groups of 16 channels (32 for ImageNet's doubled widths); FFHQ-64 and FFHQ-256
keep one width up to 32x32 and halve it at each doubling above (`official_widths`), ImageNet-64
keeps its width at 64x64 too. jaxgan's defaults (`DEFAULT_WIDTHS`,
one block a stage, groups of 16) are CPU-size: at 32 px its original network (64 at 4x4 halving
to 8 at 32, kept for existing runs), at 64-256 px the official rule at base width 64 (the FFHQ
networks at 1/12 of their width). `model.width` scales the default so that the widest stage has
`width` channels: at 64-256 px `width=768, blocks=2` is the official FFHQ network of that size.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from jaxgan.models import layers

SIZES = (32, 64, 128, 256)
# The resolutions of the stages of each size's network, G's order.
RESOLUTIONS = {s: tuple(2**k for k in range(2, s.bit_length())) for s in SIZES}

# The official presets (`train.py`, `--preset`): WidthPerStage, BlocksPerStage and
# CardinalityPerStage in G's order (D's are the same reversed), ExpansionFactor 2, noise 64.
OFFICIAL_PRESETS = {
  'CIFAR10': dict(size=32, widths=(768,) * 4, blocks=(2,) * 4, cardinality=(96,) * 4),
  'FFHQ-64': dict(
    size=64, widths=(768,) * 4 + (384,), blocks=(2,) * 5, cardinality=(96,) * 4 + (48,)
  ),
  'FFHQ-256': dict(
    size=256,
    widths=(768,) * 4 + (384, 192, 96),
    blocks=(2,) * 7,
    cardinality=(96,) * 4 + (48, 24, 12),
  ),
  'ImageNet-32': dict(size=32, widths=(1536,) * 4, blocks=(2,) * 4, cardinality=(96,) * 4),
  'ImageNet-64': dict(size=64, widths=(1536,) * 5, blocks=(2,) * 5, cardinality=(96,) * 5),
}
OFFICIAL_EXPANSION = 2
OFFICIAL_LATENT_DIM = 64

# jaxgan's CPU-size defaults; the cardinality defaults to groups of 16 channels, as the paper's.
DEFAULT_BLOCKS = 1
DEFAULT_EXPANSION = 2
GROUP_WIDTH = 16

# The paper's CIFAR-10 network (preset CIFAR10): make_models('r3gan', ..., **CIFAR10_KWARGS)
# with latent_dim=CIFAR10_LATENT_DIM. The official generator has a linear output; jaxgan's
# generators default to tanh.
CIFAR10_KWARGS = dict(
  widths=(768,) * 4, blocks=(2,) * 4, cardinality=(96,) * 4, expansion=2, output_activation='none'
)
CIFAR10_LATENT_DIM = OFFICIAL_LATENT_DIM


def check_size(size: int) -> None:
  """Raises ValueError naming `SIZES` and the fix unless `size` is one of them."""
  layers.check_image_size('r3gan', size, SIZES)


def official_widths(size: int, base: int = 768) -> tuple[int, ...]:
  """The official FFHQ presets' widths rule: `base` up to 32x32, halved at each doubling above.

  Args:
    size: the image side, one of `SIZES`.
    base: the width up to 32x32 (768 in the CIFAR-10 and FFHQ presets, 1536 in ImageNet-32's).

  Returns:
    One width per stage of `RESOLUTIONS[size]`; FFHQ-64's and FFHQ-256's at 64 and 256 (128,
    which has no preset, is FFHQ-256's first six stages).

  >>> official_widths(128)
  (768, 768, 768, 768, 384, 192)
  """
  check_size(size)
  return tuple(base if r <= 32 else base * 32 // r for r in RESOLUTIONS[size])


DEFAULT_WIDTHS = {32: (64, 32, 16, 8), **{s: official_widths(s, 64) for s in SIZES[1:]}}


def default_cardinality(widths: tuple[int, ...], expansion: int) -> tuple[int, ...]:
  """Groups of `GROUP_WIDTH` channels (fewer where a stage is narrower): the official ratio.

  Args:
    widths: one width per stage.
    expansion: inner width of a block over its width.

  Returns:
    One cardinality per stage, each dividing the stage's inner width `width * expansion`.
  """
  return tuple(c // math.gcd(c, GROUP_WIDTH) for c in (w * expansion for w in widths))


def per_stage(value: Any, name: str, minimum: int, size: int) -> tuple[int, ...]:
  """One integer per stage of a `size` px network: `value` if a sequence, else `value` repeated.

  Args:
    value: an integer, or one per stage of `RESOLUTIONS[size]`.
    name: the argument's name, for the message.
    minimum: the least valid value.
    size: the image side, one of `SIZES`.

  Returns:
    A tuple of `len(RESOLUTIONS[size])` Python ints.

  Raises:
    ValueError: a wrong count, a non-integer or a value below `minimum`.
  """
  stages = RESOLUTIONS[size]
  values = (value,) * len(stages) if isinstance(value, int) else tuple(value)
  if len(values) != len(stages) or not all(
    isinstance(v, (int, np.integer)) and v >= minimum for v in values
  ):
    raise ValueError(
      f'r3gan {name} must be an integer >= {minimum} or {len(stages)} of them (stages at '
      f'{stages} pixels); got {value!r}'
    )
  return tuple(int(v) for v in values)
