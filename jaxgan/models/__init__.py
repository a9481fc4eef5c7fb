"""Generators and discriminators (Flax linen) and a factory over them.

Every module is called as `module.apply(variables, x, train=train, mutable=['batch_stats'])` (the
`mutable` argument only when `train`). Generators map latents `[n, latent_dim]` to samples;
discriminators map samples to raw scores (logits) `[n]`. All non-parameter state (BatchNorm
statistics, spectral-norm vectors) lives in the `batch_stats` collection. Class-conditional
modules (`num_classes > 0`, `jaxgan.models.conditioning`) also take `labels=` (integer class
indices `[n]`); a discriminator with `d_conditioning='acgan'` returns `(scores [n], class_logits
[n, num_classes])`. Each model family is one builder registered, with the facts checked here
(image sizes, conditionings, default norm), in its own module (`jaxgan.models.registry`); every
module of this package is imported with it. The convolutional models
take `conv` (`CONV_IMPLEMENTATIONS`): by default oneDNN's convolutions on the CPU where the
optional `cpu` extra is installed (`pip install 'jaxgan[cpu]'`), XLA's otherwise.

  >>> import jax, jax.numpy as jnp
  >>> g, d = make_models('dcgan', image_shape=(32, 32, 3), width=8)
  >>> z = jnp.zeros((4, 100))
  >>> def sample_and_score(key, z):
  ...   images = g.apply(g.init(key, z, train=False), z, train=False)
  ...   return images, d.apply(d.init(key, images, train=False), images, train=False)
  >>> images, scores = jax.eval_shape(sample_and_score, jax.random.key(0), z)
  >>> images.shape, scores.shape, scores.dtype
  ((4, 32, 32, 3), (4,), dtype('float32'))
  >>> g, d = make_models('mlp', image_shape=(2,), d_norm='spectral', output_activation='none')
  >>> jax.eval_shape(lambda: g.init(jax.random.key(0), z, train=False))['params']['Dense_0'][
  ...     'kernel'].shape
  (100, 256)
  >>> g, d = make_models('dcgan', image_shape=(28, 28, 1), width=8, num_classes=10,
  ...                    d_conditioning='acgan')
  >>> labels = jnp.arange(4) % 10
  >>> def conditional(key, z, labels):
  ...   images = g.apply(g.init(key, z, train=False, labels=labels), z, train=False, labels=labels)
  ...   return d.apply(d.init(key, images, train=False, labels=labels), images, train=False,
  ...                  labels=labels)
  >>> scores, logits = jax.eval_shape(conditional, jax.random.key(0), z, labels)
  >>> scores.shape, logits.shape
  ((4,), (4, 10))
"""

from __future__ import annotations

import importlib
import pkgutil
from typing import Any

import flax.linen as nn
import jax.numpy as jnp

from jaxgan.models import conditioning as _cond
from jaxgan.models import conv_impl as _conv_impl
from jaxgan.models import layers as _layers
from jaxgan.models import registry as _registry
from jaxgan.models.conditioning import D_CONDITIONINGS, G_CONDITIONINGS
from jaxgan.models.dcgan import DCGANDiscriminator, DCGANGenerator
from jaxgan.models.layers import NORMS
from jaxgan.models.mlp import MLPDiscriminator, MLPGenerator
from jaxgan.models.r3gan import R3GANDiscriminator, R3GANGenerator
from jaxgan.models.resnet import ResNetDiscriminator, ResNetGenerator

# Every module of the package, so that each family's registration (`registry.register`, in the
# family's own module) has run: a new family is one new file.
for _module in pkgutil.iter_modules(__path__):
  importlib.import_module(f'{__name__}.{_module.name}')

MODELS = _registry.names()
CONV_IMPLEMENTATIONS = _conv_impl.IMPLEMENTATIONS
# Default discriminator normalisation of each model (its registration's).
DEFAULT_D_NORM = _registry.Facts('d_norm')

__all__ = [
  'MODELS',
  'check_name',
  'NORMS',
  'DEFAULT_D_NORM',
  'CONV_IMPLEMENTATIONS',
  'G_CONDITIONINGS',
  'D_CONDITIONINGS',
  'make_models',
  'MLPGenerator',
  'MLPDiscriminator',
  'DCGANGenerator',
  'DCGANDiscriminator',
  'ResNetGenerator',
  'ResNetDiscriminator',
  'R3GANGenerator',
  'R3GANDiscriminator',
]

_COMPUTE_DTYPES = {'float32': jnp.float32, 'bfloat16': jnp.bfloat16, 'float16': jnp.float16}


def _compute_dtype(dtype: Any) -> Any:
  try:
    name = 'float32' if dtype is None else jnp.dtype(dtype).name
  except TypeError:
    name = str(dtype)
  if name not in _COMPUTE_DTYPES:
    raise ValueError(f"compute dtype must be one of {', '.join(_COMPUTE_DTYPES)}; got {dtype!r}")
  return _COMPUTE_DTYPES[name]


def _conditioning(
  family: _registry.Family, num_classes: Any, g_cond: Any, d_cond: Any, shared: Any
) -> tuple[dict[str, Any], dict[str, Any]]:
  # The conditional fields of G and D; empty (no module changes at all) when unconditional.
  num_classes = _cond.check_classes(num_classes, g_cond, d_cond, shared)
  if not num_classes:
    return {}, {}
  g_cond = family.g_conditionings[0] if g_cond is None else g_cond
  d_cond = family.d_conditionings[0] if d_cond is None else d_cond
  _cond.check_conditioning(family.name, 'g', g_cond, num_classes)
  _cond.check_conditioning(family.name, 'd', d_cond, num_classes)
  g_fields = dict(num_classes=num_classes, conditioning=g_cond)
  if shared:
    if g_cond != 'cbn':
      raise ValueError(
        f"shared_embedding is for conditional BatchNorm (g_conditioning='cbn'); "
        f"{family.name}'s generator conditioning is {g_cond!r}: set shared_embedding to 0"
      )
    g_fields['shared_embedding'] = shared
  return g_fields, dict(num_classes=num_classes, conditioning=d_cond)


def check_name(name: str, size: int | None = None) -> None:
  """Checks a model name and, when given, the image size it must build.

  Args:
    name: the model's name.
    size: the side of the square images (None: not checked); 'mlp' takes any.

  Raises:
    ValueError: `name` is not in `MODELS` (listing them), or the model does not build `size`
      (listing the sizes it builds and the fix).
  """
  family = _registry.get(name)
  if size is not None and family.sizes is not None:
    _layers.check_image_size(name, size, family.sizes)


def make_models(
  name: str,
  *,
  image_shape: tuple[int, ...],
  latent_dim: int = 100,
  width: int | None = None,
  d_norm: str | None = None,
  dtype: Any = None,
  num_classes: int = 0,
  g_conditioning: str | None = None,
  d_conditioning: str | None = None,
  shared_embedding: int = 0,
  **kwargs: Any,
) -> tuple[nn.Module, nn.Module]:
  """Builds a (generator, discriminator) pair.

  Args:
    name: one of `MODELS`, a family registered by its own module (`registry.register`), whose
      registration gives the image sizes it builds, its conditionings and default norm, and whose
      builder (`registry.get(name).build`, e.g. `jaxgan.models.dcgan.make`) documents its
      keywords and their defaults.
    image_shape: shape of one sample without the batch axis: (size, size, C) for the
      convolutional models, size one of the family's `sizes` ('dcgan' 28, 32, 64, 128; 'resnet'
      and 'r3gan' 32, 64, 128, 256); for 'mlp' any shape, e.g. (784,), (2,) or (28, 28, 1).
    latent_dim: size of z. The generators infer it from their input; it is checked here and
      belongs to the caller's latent shape (`GAN.latent_shape`).
    width: base width, the family's builder's (None: its default). 'mlp': hidden layers G
      (w, 2w) and D (2w, w), default 256; 'dcgan': G's last and D's first feature count,
      default 64; 'resnet': SNGAN's block width at 32 px (G 256, D 128), BigGAN's base ch above
      (64); 'r3gan': the widest stage. `g_width` and `d_width` override it for one side
      ('mlp', 'dcgan', 'resnet').
    d_norm: discriminator normalisation, one of `NORMS` ('batch', 'layer', 'spectral', 'none');
      default `DEFAULT_D_NORM[name]`.
    dtype: compute dtype of both modules (None or float32, or bfloat16/'bfloat16' for mixed
      precision). Parameters, BatchNorm statistics and spectral-norm vectors stay float32, and the
      outputs (samples and scores) are cast to float32, so losses, penalties, gradients and
      optimizer states are float32 whatever the compute dtype.
    num_classes: 0 (unconditional, the modules take no labels) or the class count: both modules
      then take `labels=` (integer class indices `[n]`).
    g_conditioning: the generator's, one of `G_CONDITIONINGS[name]` ('cbn': conditional
      BatchNorm, for 'dcgan' and 'resnet'; 'concat': for 'mlp' and 'r3gan'); None: the first
      (the model's default). Only with `num_classes > 0`.
    d_conditioning: the discriminator's, one of `D_CONDITIONINGS[name]` ('projection', the
      default; 'acgan': D returns `(scores, class_logits)`; 'concat': 'mlp' only); None: the
      default. Only with `num_classes > 0`.
    shared_embedding: with 'cbn', the size of one class embedding shared by every conditional
      BatchNorm (BigGAN, Brock et al. 2019); 0: per-layer gains and biases.
    **kwargs: the family's own keywords (`registry.get(name).kwargs`): every family takes
      `minibatch_std` (D's minibatch standard-deviation group size, 0 for none); 'mlp', 'dcgan'
      and 'resnet' `g_width`, `d_width` and `sn_steps` (spectral-norm power iterations per call,
      1); 'mlp' also `g_hidden`, `d_hidden`, `activation` and `output_activation`; the
      convolutional models `conv`, one of `CONV_IMPLEMENTATIONS`: how convolutions and their
      derivatives are computed, the same function either way ('auto', the default: oneDNN's on
      the CPU where the `cpu` extra is installed, else XLA's; see `jaxgan.models.conv_impl`);
      'r3gan' its stages' (`jaxgan.models.r3gan.make`).

  Returns:
    `(generator, discriminator)`: unbound Flax modules. The generator maps `[n, latent_dim]` to
    float32 samples `[n, *image_shape]`, the discriminator maps those to float32 scores `[n]`
    (and class logits `[n, num_classes]` with 'acgan'). Unconditional modules are exactly those
    of a call without the conditioning arguments (same parameters for the same key).

  Raises:
    ValueError: unknown model name, unsupported image shape (the message lists the model's sizes
      and names config.data.resolution and config.data.pad_to), unknown norm, dtype or `conv`; a
      `num_classes` that is not an integer >= 0, a conditioning name the model lacks (the
      message lists the valid ones), conditioning arguments without `num_classes`, or
      `shared_embedding` without 'cbn'.
    TypeError: a keyword argument the model does not take.
    ImportError: `conv='onednn'` without the `cpu` extra (the message names
      `pip install 'jaxgan[cpu]'`).
  """
  family = _registry.get(name)
  family.check_kwargs(kwargs)
  image_shape = family.check_image_shape(image_shape)
  if latent_dim < 1:
    raise ValueError(f'latent_dim must be positive; got {latent_dim}')
  d_norm = family.d_norm if d_norm is None else d_norm
  _layers.check_norm(d_norm, name)
  _layers.check_minibatch_std(kwargs.get('minibatch_std', 0))
  dtype = _compute_dtype(dtype)
  g_fields, d_fields = _conditioning(
    family, num_classes, g_conditioning, d_conditioning, shared_embedding
  )
  g, d = family.build(image_shape, width=width, d_norm=d_norm, dtype=dtype, **kwargs)
  if g_fields:
    g, d = g.clone(**g_fields), d.clone(**d_fields)
  return g, d
