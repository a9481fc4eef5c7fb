"""Frozen feature networks for the feature-network critic (`jaxgan.models.feature_critic`), by name.

A backbone is an architecture and the facts a critic needs to feed it and read it: its named
feature layers (in order) and the default ones, the channels and value range of its input, and
the input size it was trained at. Weights are not here: the models know nothing of data sets or
weight files; `jaxgan.run.backbones.load_backbone_weights` loads them (a classifier jaxgan trains
on the data set, or the published FID Inception weights).

- 'classifier': `ResidualClassifier`, a small residual convnet with strided convolutions and
  GroupNorm (three stages 'stage1', 'stage2', 'stage3', each halving the size), deliberately of
  another architecture than the FCD classifier (`jaxgan.metrics.classifier.ConvClassifier`,
  conv-relu-maxpool): a generator trained against one network's features is then not scored by
  the same network. 1 channel (MNIST; Stacked MNIST runs it per channel), any size.
- 'inception': the FID InceptionV3 (`jaxgan.models.inception_net`), its Mixed blocks as layers.
  Its inputs are 3-channel images in [-1, 1] of at least 75 px; the default input size is 299
  (the size it was trained at), about 5.7 G multiply-adds per image forward and twice that
  backward, for every real and fake image of every critic step: hours per thousand steps on a
  CPU. `resize_to=75` (about 16x cheaper) or 128 trades fidelity of the features for speed.

Every backbone module is called as `module.apply(variables, x, outputs=names)` and returns
`{name: features (n, h, w, c)}`, computing nothing past the last named layer.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from flax import traverse_util

from jaxgan.models import inception_net

# The residual classifier's architecture when it is a backbone (and the cached one's,
# `jaxgan.metrics.classifier_cache.BACKBONE_SETTINGS`).
CLASSIFIER_WIDTHS = (32, 64, 128)
CLASSIFIER_FEATURE_DIM = 128


class ResidualClassifier(nn.Module):
  """A small residual convnet: stem, one strided residual block per stage, pooled head.

  stem: conv3x3(widths[0]) - GroupNorm - ReLU. Stage i ('stage{i+1}'): h = conv3x3 stride 2
  (widths[i]) - GroupNorm - ReLU - conv3x3 - GroupNorm; shortcut = conv1x1 stride 2; output
  ReLU(h + shortcut). Head: global average pool - Dense(feature_dim) - ReLU (the features) -
  Dense(num_classes) (the logits). GroupNorm normalises each example alone, so the network
  mixes no examples: a critic built on it may take gradient penalties.

  Attributes:
    num_classes: outputs of the classification head.
    widths: channels of each stage (each halves the image size); stage names 'stage1', ...
    feature_dim: the dimension of the features before the head.
    groups: GroupNorm groups (at most the channel count).
  """

  num_classes: int = 10
  widths: Sequence[int] = CLASSIFIER_WIDTHS
  feature_dim: int = CLASSIFIER_FEATURE_DIM
  groups: int = 8

  @nn.compact
  def __call__(self, x, outputs: tuple[str, ...] | None = None):
    """Features and logits, or the named stages' outputs.

    Args:
      x: float32 `(n, h, w, c)` images in [-1, 1].
      outputs: None, or stage names ('stage1', ...): the network stops after the last of them.

    Returns:
      `(features float32 (n, feature_dim), logits float32 (n, num_classes))`; with `outputs`,
      `{name: float32 (n, h, w, width)}`.
    """
    names = stage_names(len(self.widths))
    wanted = None if outputs is None else set(outputs)
    if wanted is not None and not wanted <= set(names):
      raise ValueError(
        f"ResidualClassifier outputs must be among {', '.join(names)}; got {sorted(wanted)}"
      )
    norm = lambda w, name: nn.GroupNorm(num_groups=min(self.groups, w), name=name)
    x = nn.relu(norm(self.widths[0], "stem_norm")(nn.Conv(self.widths[0], (3, 3), name="stem")(x)))
    taken = {}
    for name, w in zip(names, self.widths, strict=True):
      h = nn.Conv(w, (3, 3), strides=2, name=f"{name}_conv1")(x)
      h = nn.relu(norm(w, f"{name}_norm1")(h))
      h = norm(w, f"{name}_norm2")(nn.Conv(w, (3, 3), name=f"{name}_conv2")(h))
      x = nn.relu(h + nn.Conv(w, (1, 1), strides=2, name=f"{name}_skip")(x))
      if wanted is not None and name in wanted:
        taken[name] = x
        if len(taken) == len(wanted):
          return taken
    feats = nn.relu(nn.Dense(self.feature_dim, name="features")(x.mean(axis=(1, 2))))
    return feats, nn.Dense(self.num_classes, name="logits")(feats)


def stage_names(num_stages: int) -> tuple[str, ...]:
  """'stage1', ..., 'stage{num_stages}': the residual classifier's feature layers."""
  return tuple(f"stage{i + 1}" for i in range(num_stages))


@dataclasses.dataclass(frozen=True)
class Backbone:
  """A backbone's architecture and the facts of its input and its feature layers.

  Attributes:
    name: the name `FeatureCritic(backbone=...)` takes.
    layers: its feature layers' names, input to output.
    default_layers: the layers read when none are chosen.
    channels: the channels of its input images.
    input_range: the value range of its input (images in [-1, 1] are mapped onto it).
    min_size: the smallest input side it takes.
    default_size: the side images are resized to by default; None: their own size.
    make: `make() -> module`, the unbound Flax module.
  """

  name: str
  layers: tuple[str, ...]
  default_layers: tuple[str, ...]
  channels: int
  input_range: tuple[float, float]
  min_size: int
  default_size: int | None
  make: Callable[[], nn.Module]

  def check_layers(self, layers: Sequence[str] | None) -> tuple[str, ...]:
    """The chosen layers (the defaults for None), checked.

    Raises:
      ValueError: an empty choice or an unknown name (the message lists the valid ones).

    Args:
      layers: names, a comma-separated string of them, or None.
    """
    if isinstance(layers, str):  # 'Mixed_5d,Mixed_6e', as a command line gives them
      layers = tuple(name.strip() for name in layers.split(','))
    layers = self.default_layers if layers is None else tuple(layers)
    unknown = [n for n in layers if n not in self.layers]
    if unknown or not layers or len(set(layers)) != len(layers):
      raise ValueError(
        f"backbone {self.name!r} has no feature layers {unknown or list(layers)}; valid layer "
        f"names: {', '.join(self.layers)} (each at most once)"
      )
    return layers

  def init_shapes(self, layers: Sequence[str], size: int) -> Any:
    """The shapes of the variables that reading `layers` of `size`-px inputs needs."""
    module, x = self.make(), jnp.zeros((1, size, size, self.channels))
    return jax.eval_shape(lambda: module.init(jax.random.key(0), x, outputs=tuple(layers)))


BACKBONES: dict[str, Backbone] = {
  "classifier": Backbone(
    "classifier",
    stage_names(len(CLASSIFIER_WIDTHS)),
    stage_names(len(CLASSIFIER_WIDTHS)),
    1,
    (-1.0, 1.0),
    8,
    None,
    lambda: ResidualClassifier(),
  ),
  "inception": Backbone(
    "inception",
    inception_net.MIXED_BLOCKS,
    ("Mixed_5d", "Mixed_6e"),
    3,
    (-1.0, 1.0),
    75,
    299,
    lambda: inception_net.InceptionV3(num_classes=None),
  ),
}


def get(name: str) -> Backbone:
  """The backbone named `name`.

  Raises:
    ValueError: an unknown name (the message lists them).
  """
  if name not in BACKBONES:
    raise ValueError(f"unknown backbone {name!r}; valid backbones: {', '.join(BACKBONES)}")
  return BACKBONES[name]


def select_weights(weights: Any, shapes: Any, what: str = "backbone") -> dict:
  """The entries of `weights` that `shapes` (a backbone's variables, e.g. `init_shapes`) holds.

  Pretrained weights are usually the whole network's (a classifier's head, Inception's later
  blocks); a critic reading earlier layers keeps only the variables those need.

  Args:
    weights: nested mappings of arrays (e.g. `{'params': ..., 'batch_stats': ...}`).
    shapes: nested mappings of arrays or shape structs.
    what: the weights' name, for the messages.

  Returns:
    Nested dicts of NumPy arrays of `shapes`' structure, the values `weights`' own (bitwise).

  Raises:
    ValueError: a variable missing from `weights` or of another shape (naming them).
  """
  have = traverse_util.flatten_dict(_plain(weights), sep="/")
  want = traverse_util.flatten_dict(_plain(shapes), sep="/")
  missing = sorted(k for k in want if k not in have)
  wrong = sorted(
    f"{k}: {tuple(np.shape(have[k]))} (needs {tuple(want[k].shape)})"
    for k in want
    if k in have and tuple(np.shape(have[k])) != tuple(want[k].shape)
  )
  if missing or wrong:
    raise ValueError(
      f"the {what} weights do not fit the backbone: "
      + "; ".join(
        ([f"missing {missing[:5]}{' ...' if len(missing) > 5 else ''}"] if missing else [])
        + ([f"wrong shapes {wrong[:5]}"] if wrong else [])
      )
      + " (weights of another network, or of a classifier trained with other widths?)"
    )
  return traverse_util.unflatten_dict({k: np.asarray(have[k]) for k in want}, sep="/")


def _plain(tree: Any) -> Any:
  # FrozenDicts and other mappings as plain nested dicts.
  if hasattr(tree, "items"):
    return {k: _plain(v) for k, v in tree.items()}
  return tree
