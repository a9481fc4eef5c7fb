"""A critic on a frozen feature network (Projected GAN, Sauer et al. 2021; StyleGAN-T, 2023).

`FeatureCritic` feeds the images to a pretrained backbone (`jaxgan.models.backbones`: a
classifier jaxgan trains on the data set, or the FID InceptionV3), takes its features at chosen
named layers and scores each feature map with a small trainable head: spectrally normalised
convolutions with LeakyReLU(0.2) and a final 1x1 convolution to one logit per patch. D's output
is a dict `{layer: scores [n, h, w]}`, one patch map per head; a loss sums over the heads.

The backbone's variables live in the 'backbone' collection, not 'params': the optimiser never
sees them (no gradient, no update, no optimiser state), and the backbone runs in inference mode
(BatchNorm's running averages, no dropout); gradients still flow through it to the images, and
so to G. `finetune_backbone=True` puts its parameters under 'params' (key 'backbone') instead.
Pretrained weights come by the attribute `backbone_weights` (None: random initialisation, for
tests); `D.init` copies them bitwise into the collection. The run layer loads them
(`jaxgan.run.backbones`): the models know no data sets or weight files.

Input adaptation, from images in [-1, 1]: mapped to the backbone's value range; resized to
`resize_to` (bilinear; default the backbone's size, e.g. 299 for Inception: see
`jaxgan.models.backbones` for the cost); a 1-channel image into a 3-channel backbone repeated; a
3-channel image into a 1-channel backbone (Stacked MNIST: three digits as channels) run channel by
channel, the channels' features concatenated.
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jaxgan.models import backbones as backbones_lib
from jaxgan.models import conditioning as cond
from jaxgan.models import dcgan, layers, registry

# The collection of the frozen backbone's variables: never seen by an optimiser.
FROZEN_COLLECTION = 'backbone'


class BackboneWeights:
  """Pretrained backbone variables as a module attribute: compared and hashed by identity.

  Flax modules are hashed (a jitted bound method, a GAN dataclass holding D); a dict of arrays
  is not hashable, so `FeatureCritic` wraps the pytree it is given in one of these.

  Attributes:
    tree: nested dicts of NumPy arrays, e.g. `{'params': ..., 'batch_stats': ...}`.
  """

  def __init__(self, tree: Any):
    self.tree = jax.tree.map(np.asarray, backbones_lib._plain(tree))

  def __repr__(self) -> str:
    n = sum(int(np.size(a)) for a in jax.tree.leaves(self.tree))
    return f'BackboneWeights({n:,} values)'


class PatchHead(nn.Module):
  """conv3x3 - LeakyReLU - conv3x3 - LeakyReLU (phi) - conv1x1 to one logit per patch.

  Conditional ('projection', Miyato and Koyama 2018, per patch): the logit map adds
  <embed(y), phi> at every position, with a spectrally normalised `nn.Embed` 'ProjectionEmbed'.
  """

  width: int
  spectral: bool
  sn_steps: int
  num_classes: int
  dtype: Any

  @nn.compact
  def __call__(self, x: jax.Array, train: bool, labels: jax.Array | None) -> jax.Array:
    apply = lambda layer, x: layers.apply_layer(
      layer, x, spectral=self.spectral, train=train, sn_steps=self.sn_steps
    )
    conv = lambda w, k: nn.Conv(w, (k, k), padding='SAME', dtype=self.dtype)
    x = nn.leaky_relu(apply(conv(self.width, 3), x.astype(self.dtype)), 0.2)
    phi = nn.leaky_relu(apply(conv(self.width, 3), x), 0.2)
    scores = apply(conv(1, 1), phi)[..., 0].astype(jnp.float32)
    if labels is None:
      return scores
    init = nn.initializers.glorot_uniform()
    embed = nn.Embed(self.num_classes, self.width, embedding_init=init, name='ProjectionEmbed')
    e = apply(embed, labels).astype(jnp.float32)
    return scores + jnp.einsum('nhwc,nc->nhw', phi.astype(jnp.float32), e)


class FeatureCritic(nn.Module):
  """Patch critic heads on a frozen backbone's named feature layers.

  Attributes:
    backbone: a name in `backbones.BACKBONES` ('classifier' or 'inception').
    layers: the feature layers read (each gets a head); None: the backbone's defaults.
    head_width: channels of each head's convolutions.
    finetune_backbone: the backbone's parameters under 'params' (trained) instead of the
      'backbone' collection (frozen).
    resize_to: the backbone's input side; None: the backbone's default (`default_size`: 299
      for Inception, the images' own size for the classifier); 0: the images' own size.
    backbone_weights: the backbone's pretrained variables (a pytree of arrays, e.g. a trained
      classifier's `{'params': ...}`; only the entries the chosen layers need are kept), or
      None for a random initialisation.
    pretrained: whether the run gives it pretrained weights (`jaxgan.run.backbones`) before
      init; False keeps the random initialisation (tests, ablations). The module itself only
      reads `backbone_weights`.
    norm: the heads' normalisation, 'spectral' or 'none'.
    sn_steps: spectral-norm power iterations per call.
    dtype: the heads' compute dtype; the backbone computes in float32.
    num_classes: 0 (unconditional) or the class count of the labels.
    conditioning: 'projection' (per patch).
  """

  backbone: str = 'classifier'
  layers: tuple[str, ...] | None = None
  head_width: int = 64
  finetune_backbone: bool = False
  resize_to: int | None = None
  backbone_weights: Any = None
  pretrained: bool = True
  norm: str = 'spectral'
  sn_steps: int = 1
  dtype: Any = jnp.float32
  num_classes: int = 0
  conditioning: str = 'projection'

  def __post_init__(self):
    # Hashable attributes (a list from a config, a dict of arrays), and unknown names refused
    # here, when the module is made, rather than when it is first compiled.
    spec = backbones_lib.get(self.backbone)  # an unknown name is refused here
    if self.resize_to and self.resize_to < spec.min_size:
      own = "the images' own size"
      raise ValueError(
        f"resize_to={self.resize_to}: backbone {spec.name!r} needs inputs of at least "
        f"{spec.min_size} px; set resize_to >= {spec.min_size}, 0 ({own}) or None (its default, "
        f"{spec.default_size or own})"
      )
    if self.layers is not None:  # a list, or 'a,b' from a command line: checked, a tuple
      object.__setattr__(self, 'layers', spec.check_layers(self.layers))
    weights = self.backbone_weights
    if weights is not None and not isinstance(weights, BackboneWeights):
      object.__setattr__(self, 'backbone_weights', BackboneWeights(weights))
    if self.norm not in ('spectral', 'none'):
      raise ValueError(f"FeatureCritic norm must be 'spectral' or 'none'; got {self.norm!r}")
    super().__post_init__()

  @property
  def spec(self) -> backbones_lib.Backbone:
    """The backbone's facts (`backbones.Backbone`)."""
    return backbones_lib.get(self.backbone)

  @property
  def layer_names(self) -> tuple[str, ...]:
    """The feature layers read, the defaults resolved."""
    return self.spec.check_layers(self.layers)

  def _adapt(self, x: jax.Array) -> tuple[jax.Array, int]:
    """Images `[n, h, w, c]` in [-1, 1] -> the backbone's input, and the channels run apart."""
    spec = self.spec
    if x.ndim != 4:
      raise ValueError(f'FeatureCritic expects NHWC images; got shape {x.shape}')
    n, h, w, c = x.shape
    lo, hi = spec.input_range
    x = x.astype(jnp.float32)
    if (lo, hi) != (-1.0, 1.0):
      x = lo + (x + 1.0) * ((hi - lo) / 2.0)
    size = spec.default_size if self.resize_to is None else self.resize_to
    if size and (h, w) != (size, size):
      x = jax.image.resize(x, (n, size, size, c), 'bilinear')
    if min(x.shape[1:3]) < spec.min_size:
      raise ValueError(
        f'backbone {spec.name!r} needs inputs of at least {spec.min_size} px; got '
        f'{x.shape[1]}x{x.shape[2]}: set resize_to >= {spec.min_size}'
      )
    if c == spec.channels:
      return x, 1
    if c == 1:
      return jnp.repeat(x, spec.channels, axis=-1), 1
    if spec.channels == 1:  # each channel through the backbone alone
      return x.transpose(0, 3, 1, 2).reshape(n * c, *x.shape[1:3], 1), c
    raise ValueError(
      f'backbone {spec.name!r} takes {spec.channels}-channel images; cannot adapt {c} channels'
    )

  def _backbone_variables(self, size: int) -> dict:
    """The backbone's variables: from the collections, or (under init) made or copied."""
    spec, names = self.spec, self.layer_names
    in_params = self.has_variable('params', 'backbone')
    if in_params and not self.finetune_backbone:
      raise ValueError(
        "the backbone's weights are under 'params' but this FeatureCritic freezes them: build "
        "it with finetune_backbone=True to train the backbone, or pass them in the 'backbone' "
        'collection as D.init makes them'
      )
    if not self.is_initializing():
      if not self.has_variable(FROZEN_COLLECTION, 'weights') or (
        self.finetune_backbone and not in_params
      ):
        where = "'params'/'backbone'" if self.finetune_backbone else "the 'backbone' collection"
        raise ValueError(
          f"FeatureCritic's backbone weights are missing from {where}: apply it with every "
          'collection D.init made (finetune_backbone must be as it was at init)'
        )
      full = None
    elif self.backbone_weights is None:
      x = jnp.zeros((1, size, size, spec.channels))
      full = spec.make().init(self.make_rng('params'), x, outputs=names)
    else:
      shapes = spec.init_shapes(names, size)
      chosen = backbones_lib.select_weights(self.backbone_weights.tree, shapes)
      full = jax.tree.map(jnp.asarray, chosen)
    full = dict(full) if full is not None else None
    if self.finetune_backbone:
      if full is None:  # `param` would evaluate its initialiser for a shape check
        params = self.get_variable('params', 'backbone')
      else:
        params = self.param('backbone', lambda _: full['params'])
      rest = self.variable(
        FROZEN_COLLECTION, 'weights', lambda: {k: v for k, v in full.items() if k != 'params'}
      )
      return {'params': params, **rest.value}
    frozen = self.variable(FROZEN_COLLECTION, 'weights', lambda: full).value
    return jax.tree.map(jax.lax.stop_gradient, dict(frozen))

  @nn.compact
  def __call__(
    self, x: jax.Array, train: bool, labels: jax.Array | None = None
  ) -> dict[str, jax.Array]:
    """Scores each patch of each chosen feature layer.

    Args:
      x: images `[n, h, w, c]` in [-1, 1].
      train: update the heads' spectral-norm vectors (apply with every non-'params'
        collection mutable); the backbone is in inference mode either way.
      labels: integer class indices `[n]` when `num_classes > 0`, else None.

    Returns:
      `{layer: float32 scores [n, h_l, w_l]}` for each chosen layer, in `layer_names` order.

    Raises:
      ValueError: labels given to an unconditional critic or missing; images the backbone
        cannot take; the backbone's weights under 'params' without `finetune_backbone`.
    """
    cond.check_conditioning('projected', 'd', self.conditioning, self.num_classes)
    labels = cond.check_labels(labels, self.num_classes, x.shape[0], 'FeatureCritic')
    n = x.shape[0]
    x, split = self._adapt(x)
    variables = self._backbone_variables(x.shape[1])
    feats = self.spec.make().apply(variables, x, outputs=self.layer_names)
    out = {}
    for name in self.layer_names:
      f = feats[name]
      if split > 1:  # [n*c, h, w, d] -> [n, h, w, c*d], channel by channel
        f = f.reshape(n, split, *f.shape[1:]).transpose(0, 2, 3, 1, 4)
        f = f.reshape(*f.shape[:3], -1)
      head = PatchHead(
        self.head_width,
        self.norm == 'spectral',
        self.sn_steps,
        self.num_classes,
        self.dtype,
        name=f'head_{name}',
      )
      out[name] = head(f, train, labels)
    return out


@registry.register(
  'projected',
  sizes=dcgan.SIZES,
  g_conditionings=('cbn',),
  d_conditionings=('projection',),
  d_norm='spectral',
)
def make(
  image_shape: tuple[int, int, int],
  *,
  width: int | None = None,
  d_norm: str,
  dtype: Any = jnp.float32,
  g_width: int | None = None,
  backbone: str = 'classifier',
  layers: tuple[str, ...] | None = None,  # pylint: disable=redefined-outer-name
  head_width: int = 64,
  finetune_backbone: bool = False,
  resize_to: int | None = None,
  pretrained: bool = True,
  sn_steps: int = 1,
  minibatch_std: int = 0,
  conv: str = 'auto',
) -> tuple[dcgan.DCGANGenerator, FeatureCritic]:
  """Builds the DCGAN generator against a `FeatureCritic`, for `make_models('projected', ...)`.

  The critic's backbone starts randomly initialised: the run gives it its pretrained weights
  (`jaxgan.run.backbones`) by `D.clone(backbone_weights=...)` before `GAN.init`.

  Args:
    image_shape: `(size, size, channels)`, size in `dcgan.SIZES`.
    width: G's last feature count (None: 64), as 'dcgan'; `g_width` overrides it.
    d_norm: the heads' normalisation, 'spectral' (the default) or 'none'.
    dtype: the compute dtype of G and of the critic's heads.
    g_width: G's width (None: `width`).
    backbone: a name in `backbones.BACKBONES`.
    layers: the backbone's feature layers to score (None: its defaults).
    head_width: channels of each head.
    finetune_backbone: train the backbone too (its parameters under 'params').
    resize_to: the backbone's input side (None: its default; 0: the images' own).
    pretrained: the run loads the backbone's pretrained weights (False: random, for tests).
    sn_steps: spectral-norm power iterations per call.
    minibatch_std: must be 0 (a patch critic has no single feature vector to extend).
    conv: G's convolutions, one of `conv_impl.IMPLEMENTATIONS`.

  Returns:
    `(DCGANGenerator, FeatureCritic)`, unbound and unconditional.

  Raises:
    ValueError: `d_norm` 'batch' or 'layer', `minibatch_std` > 0, an unknown backbone or layer.
  """
  if d_norm not in ('spectral', 'none'):
    raise ValueError(f"projected supports d_norm 'spectral' or 'none'; got {d_norm!r}")
  if minibatch_std:
    raise ValueError('projected does not take minibatch_std (its critic scores patches); set 0')
  g, _ = dcgan.make(
    image_shape, width=width, g_width=g_width, d_norm='batch', dtype=dtype, conv=conv
  )
  d = FeatureCritic(
    backbone=backbone,
    layers=layers,
    head_width=head_width,
    finetune_backbone=finetune_backbone,
    resize_to=resize_to,
    pretrained=pretrained,
    norm=d_norm,
    sn_steps=sn_steps,
    dtype=dtype,
  )
  return g, d
