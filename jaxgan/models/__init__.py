"""Generators and discriminators (Flax linen) and a factory over them.

Every module is called as `module.apply(variables, x, train=train, mutable=['batch_stats'])` (the
`mutable` argument only when `train`). Generators map latents `[n, latent_dim]` to samples;
discriminators map samples to raw scores (logits) `[n]`. All non-parameter state (BatchNorm
statistics, spectral-norm vectors) lives in the `batch_stats` collection. Class-conditional
modules (`num_classes > 0`, `jaxgan.models.conditioning`) also take `labels=` (integer class
indices `[n]`); a discriminator with `d_conditioning='acgan'` returns `(scores [n], class_logits
[n, num_classes])`. The convolutional models
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

import operator
from typing import Any

import flax.linen as nn
import jax.numpy as jnp

from jaxgan.models import conditioning as _cond
from jaxgan.models import conv_impl as _conv_impl
from jaxgan.models import dcgan as _dcgan
from jaxgan.models import layers as _layers
from jaxgan.models import r3gan as _r3gan
from jaxgan.models import resnet as _resnet
from jaxgan.models.conditioning import D_CONDITIONINGS, G_CONDITIONINGS
from jaxgan.models.dcgan import DCGANDiscriminator, DCGANGenerator
from jaxgan.models.layers import NORMS
from jaxgan.models.mlp import MLPDiscriminator, MLPGenerator
from jaxgan.models.r3gan import R3GANDiscriminator, R3GANGenerator
from jaxgan.models.resnet import ResNetDiscriminator, ResNetGenerator

MODELS = ('mlp', 'dcgan', 'resnet', 'r3gan')
CONV_IMPLEMENTATIONS = _conv_impl.IMPLEMENTATIONS

# Default discriminator normalisation of each model.
DEFAULT_D_NORM = {'mlp': 'none', 'dcgan': 'batch', 'resnet': 'spectral', 'r3gan': 'none'}

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

_COMMON_KWARGS = ('g_width', 'd_width', 'sn_steps', 'minibatch_std')
_MODEL_KWARGS = {
  'mlp': _COMMON_KWARGS + ('g_hidden', 'd_hidden', 'activation', 'output_activation'),
  'dcgan': _COMMON_KWARGS + ('conv',),
  'resnet': _COMMON_KWARGS + ('conv',),
  'r3gan': (
    'minibatch_std',
    'conv',
    'widths',
    'blocks',
    'cardinality',
    'expansion',
    'output_activation',
  ),
}


def _image_size(name: str, image_shape: tuple[int, ...], sizes: tuple[int, ...]) -> tuple[int, int]:
  sizes_text = ', '.join(map(str, sizes))
  if len(image_shape) != 3 or image_shape[0] != image_shape[1]:
    raise ValueError(
      f'{name} needs a square image_shape (size, size, channels) with size in '
      f'{sizes_text}; got {image_shape}'
    )
  size, _, channels = image_shape
  _layers.check_image_size(name, size, sizes)
  if channels < 1:
    raise ValueError(f'{name} supports any channel count >= 1; got {channels}')
  return size, channels


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
  name: str, num_classes: Any, g_cond: Any, d_cond: Any, shared: Any
) -> tuple[dict[str, Any], dict[str, Any]]:
  # The conditional fields of G and D; empty (no module changes at all) when unconditional.
  if not isinstance(num_classes, bool) and hasattr(num_classes, '__index__'):
    num_classes = operator.index(num_classes)  # NumPy integers too
  if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 0:
    raise ValueError(
      f'num_classes must be an integer >= 0 (0: unconditional); got {num_classes!r}; set '
      f'config.model.num_classes to the data set\'s class count for a conditional model'
    )
  if isinstance(shared, bool) or not isinstance(shared, int) or shared < 0:
    raise ValueError(f'shared_embedding must be an integer >= 0 (0: per-layer); got {shared!r}')
  if not num_classes:
    given = [
      f'{k}={v!r}'
      for k, v in (
        ('g_conditioning', g_cond),
        ('d_conditioning', d_cond),
        ('shared_embedding', shared),
      )
      if v
    ]
    if given:
      raise ValueError(
        f'{", ".join(given)} given to an unconditional model (num_classes=0); set '
        f'num_classes > 0 (config.model.num_classes) or leave them unset'
      )
    return {}, {}
  g_cond = G_CONDITIONINGS[name][0] if g_cond is None else g_cond
  d_cond = D_CONDITIONINGS[name][0] if d_cond is None else d_cond
  _cond.check_conditioning(name, 'g', g_cond, num_classes)
  _cond.check_conditioning(name, 'd', d_cond, num_classes)
  g_fields = dict(num_classes=num_classes, conditioning=g_cond)
  if shared:
    if g_cond != 'cbn':
      raise ValueError(
        f"shared_embedding is for conditional BatchNorm (g_conditioning='cbn'); {name}'s "
        f'generator conditioning is {g_cond!r}: set shared_embedding to 0'
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
  if name not in MODELS:
    raise ValueError(f"unknown model {name!r}; valid models: {', '.join(map(repr, MODELS))}")
  sizes = {'dcgan': _dcgan.SIZES, 'resnet': _resnet.SIZES, 'r3gan': _r3gan.SIZES}.get(name)
  if size is not None and sizes is not None:
    _layers.check_image_size(name, size, sizes)


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
    name: one of `MODELS`: 'mlp', 'dcgan' (image sizes 28, 32, 64, 128), 'resnet' (32, 64, 128,
      256) or 'r3gan' (32, 64, 128, 256; its keywords in `jaxgan.models.r3gan.make`): each
      module's `SIZES`.
    image_shape: shape of one sample without the batch axis: (H, W, C) for the convolutional
      models; for 'mlp' any shape, e.g. (784,), (2,) or (28, 28, 1) (G reshapes, D flattens).
    latent_dim: size of z. The generators infer it from their input; it is checked here and
      belongs to the caller's latent shape (`GAN.latent_shape`).
    width: base width. 'mlp': hidden layers G (w, 2w) and D (2w, w) (default 256: G 256-512
      and D 512-256, the common MNIST MLP GAN); 'dcgan': G's last and D's first feature count
      (default 64); 'resnet': at 32 px every block of G and D (defaults 256 for G, 128 for D, as
      in SNGAN), at 64-256 px BigGAN's base ch (default 64; `jaxgan.models.resnet`); 'r3gan':
      the widest stage (`jaxgan.models.r3gan.make`). `g_width` and `d_width` override it for one
      side ('mlp', 'dcgan', 'resnet').
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
    **kwargs: `g_width`, `d_width`, `sn_steps` (spectral-norm power iterations per call, 1),
      `minibatch_std` (D's minibatch standard-deviation group size, 0 for none);
      for 'mlp' also `g_hidden`, `d_hidden` (tuples of widths), `activation` ('relu' or
      'leaky_relu', G's hidden activation) and `output_activation` ('tanh' or 'none'); for
      'dcgan' and 'resnet' also `conv`, one of `CONV_IMPLEMENTATIONS`: how convolutions and their
      derivatives are computed, the same function either way ('auto', the default: oneDNN's on
      the CPU where the `cpu` extra is installed, else XLA's; 'onednn', 'xla', 'lax': see
      `jaxgan.models.conv_impl`). Choosing 'auto' or 'onednn' builds nothing here: the oneDNN
      library is built when the modules are first applied.

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
  check_name(name)
  unknown = sorted(set(kwargs) - set(_MODEL_KWARGS[name]))
  if unknown:
    raise TypeError(
      f'make_models({name!r}) got unexpected keyword arguments {unknown}; '
      f'it accepts {list(_MODEL_KWARGS[name])}'
    )
  image_shape = tuple(int(s) for s in image_shape)
  if latent_dim < 1:
    raise ValueError(f'latent_dim must be positive; got {latent_dim}')
  d_norm = DEFAULT_D_NORM[name] if d_norm is None else d_norm
  if d_norm not in NORMS:
    raise ValueError(
      f"unknown discriminator norm {d_norm!r}; valid norms: {', '.join(map(repr, NORMS))}"
    )
  sn_steps = kwargs.get('sn_steps', 1)
  mbstd = kwargs.get('minibatch_std', 0)
  if not isinstance(mbstd, int) or mbstd < 0:
    raise ValueError(f'minibatch_std must be a group size >= 0 (0: none); got {mbstd!r}')
  dtype = _compute_dtype(dtype)
  g_fields, d_fields = _conditioning(
    name, num_classes, g_conditioning, d_conditioning, shared_embedding
  )
  g, d = _make(name, image_shape, width, d_norm, dtype, sn_steps, mbstd, kwargs)
  if g_fields:
    g, d = g.clone(**g_fields), d.clone(**d_fields)
  return g, d


def _make(
  name: str,
  image_shape: tuple[int, ...],
  width: int | None,
  d_norm: str,
  dtype: Any,
  sn_steps: int,
  mbstd: int,
  kwargs: dict[str, Any],
) -> tuple[nn.Module, nn.Module]:
  # The unconditional pair, its arguments checked by make_models.
  conv = kwargs.get('conv', 'auto')
  if name == 'r3gan':
    return _r3gan.make(image_shape, width=width, d_norm=d_norm, dtype=dtype, **kwargs)
  if name != 'mlp':
    _conv_impl.check(conv)  # the name, and the extra for 'onednn', now rather than at first use

  if name == 'mlp':
    if not image_shape or min(image_shape) < 1:
      raise ValueError(f'mlp needs an image_shape of positive sizes; got {image_shape}')
    w = 256 if width is None else width
    g_w, d_w = kwargs.get('g_width', w), kwargs.get('d_width', w)
    g = MLPGenerator(
      out_shape=image_shape,
      hidden=tuple(kwargs.get('g_hidden', (g_w, 2 * g_w))),
      activation=kwargs.get('activation', 'relu'),
      output_activation=kwargs.get('output_activation', 'tanh'),
      dtype=dtype,
    )
    # Validate the activations now rather than at the first call.
    _layers.check_activation(g.activation, ('relu', 'leaky_relu'), 'activation')
    _layers.check_activation(g.output_activation, ('tanh', 'none'), 'output_activation')
    d = MLPDiscriminator(
      hidden=tuple(kwargs.get('d_hidden', (2 * d_w, d_w))),
      norm=d_norm,
      sn_steps=sn_steps,
      minibatch_std=mbstd,
      dtype=dtype,
    )
    return g, d

  if name == 'dcgan':
    size, channels = _image_size(name, image_shape, _dcgan.SIZES)
    w = 64 if width is None else width
    g = DCGANGenerator(
      image_size=size, channels=channels, width=kwargs.get('g_width', w), dtype=dtype, conv=conv
    )
    d = DCGANDiscriminator(
      width=kwargs.get('d_width', w),
      norm=d_norm,
      sn_steps=sn_steps,
      minibatch_std=mbstd,
      dtype=dtype,
      conv=conv,
    )
    return g, d

  size, channels = _image_size(name, image_shape, _resnet.SIZES)
  g_default, d_default = _resnet.DEFAULT_WIDTHS[size]
  g = ResNetGenerator(
    image_size=size,
    channels=channels,
    width=kwargs.get('g_width', g_default if width is None else width),
    dtype=dtype,
    conv=conv,
  )
  d = ResNetDiscriminator(
    width=kwargs.get('d_width', d_default if width is None else width),
    norm=d_norm,
    sn_steps=sn_steps,
    minibatch_std=mbstd,
    dtype=dtype,
    conv=conv,
  )
  return g, d
