"""ADA's augmentation pipeline (Karras et al. 2020, "Training Generative Adversarial Networks with
Limited Data"), as StyleGAN2-ADA's `AugmentPipe` (NVlabs/stylegan2-ada-pytorch,
training/augment.py), per example and differentiable with respect to the images.

Every transform is applied to each example independently with probability p * multiplier, with
ADA's distributions and order:

- blit: xflip (mirror in x), rotate90 (k quarter turns, k ~ U{0..3}), xint (whole-pixel
  translation, U[-0.125, 0.125] of the size per axis, rounded);
- geometric: scale (isotropic, 2^N(0, 0.2)), rotate (U[-pi, pi], applied before and after the
  anisotropic scaling, each with p_rot = 1 - sqrt(1 - p), so that either happens with probability
  p), aniso (2^N(0, 0.2) along x, its inverse along y), xfrac (translation N(0, 0.125) of the size);
- colour: brightness (N(0, 0.2) added), contrast (2^N(0, 0.5)), lumaflip (reflection along the
  luma axis), hue (rotation U[-pi, pi] about the luma axis), saturation (2^N(0, 1)); hue and
  saturation are skipped on one channel, as ADA;
- corruptions: noise (Gaussian with sigma = |N(0, 0.1)|) and cutout (a square of half the size).

Blit and geometric transforms compose into one 3x3 matrix per example and run as one warp;
colour transforms compose into one 4x4 matrix per example. Simplifications against the official
code: the warp samples bilinearly with reflect padding directly, without ADA's 2x sym6 wavelet
upsampling and downsampling (see `transforms.warp`); ADA's image-space filtering ('imgfilter',
presets 'bgcf...') is not implemented.

Example:
  >>> import jax, jax.numpy as jnp
  >>> x = jax.random.uniform(jax.random.key(0), (4, 8, 8, 3), minval=-1, maxval=1)
  >>> flip = jax.jit(ada, static_argnames="policy")
  >>> y = flip(x, jax.random.key(1), 1.0, policy="xflip")  # each example mirrored or not, exactly
  >>> [bool(jnp.all(yi == xi)) or bool(jnp.all(yi == xi[:, ::-1])) for xi, yi in zip(x, y)]
  [True, True, True, True]
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from jaxgan.augment import transforms as T
from jaxgan.augment._common import check_images, check_probability

BLIT = ("xflip", "rotate90", "xint")
GEOMETRIC = ("scale", "rotate", "aniso", "xfrac")
COLOUR = ("brightness", "contrast", "lumaflip", "hue", "saturation")
CORRUPTION = ("noise", "cutout")
TRANSFORMS = BLIT + GEOMETRIC + COLOUR + CORRUPTION

# ADA's defaults (AugmentPipe's keyword arguments).
XINT_MAX = 0.125
SCALE_STD = 0.2  # log2
ROTATE_MAX = 1.0  # fraction of a half turn each way: U[-pi, pi]
ANISO_STD = 0.2  # log2
XFRAC_STD = 0.125
BRIGHTNESS_STD = 0.2
CONTRAST_STD = 0.5  # log2
HUE_MAX = 1.0
SATURATION_STD = 1.0  # log2
NOISE_STD = 0.1
CUTOUT_SIZE = 0.5

PRESETS = {
  "blit": dict.fromkeys(BLIT, 1.0),
  "geom": dict.fromkeys(GEOMETRIC, 1.0),
  "color": dict.fromkeys(COLOUR, 1.0),
  "bg": dict.fromkeys(BLIT + GEOMETRIC, 1.0),
  "bgc": dict.fromkeys(BLIT + GEOMETRIC + COLOUR, 1.0),
  "bgcc": dict.fromkeys(BLIT + GEOMETRIC + COLOUR + ("cutout",), 1.0),
}
DEFAULT_POLICY = "bgc"
# R3GAN's pipeline (Huang et al. 2024): every ADA transform, colour at half strength, and cutout.
R3GAN_POLICY = (
  "xflip,rotate90,xint,scale,rotate,aniso,xfrac,"
  "brightness:0.5,contrast:0.5,lumaflip:0.5,hue:0.5,saturation:0.5,cutout"
)
PRESETS["r3gan"] = {**PRESETS["bg"], **dict.fromkeys(COLOUR, 0.5), "cutout": 1.0}


def parse_policy(policy: str) -> dict[str, float]:
  """Parses an ADA policy: a preset name or a comma list of transforms with multipliers.

  Args:
    policy: one of `PRESETS` ('blit', 'geom', 'color', 'bg', 'bgc', 'bgcc', 'r3gan' =
      `R3GAN_POLICY`), or entries
      'name' (multiplier 1) or 'name:multiplier' (a float >= 0) from `TRANSFORMS`.

  Returns:
    {transform: probability multiplier} for the enabled transforms (multiplier > 0).

  Raises:
    ValueError: for an unknown transform or preset, a repeated transform, or a multiplier that is
      not a non-negative number; the message lists the valid names.

  Example:
    >>> parse_policy("xflip,brightness:0.5")
    {'xflip': 1.0, 'brightness': 0.5}
  """
  if policy in PRESETS:
    return dict(PRESETS[policy])
  valid = f"presets {sorted(PRESETS)} or a comma list of {list(TRANSFORMS)} with optional ':mult'"
  out: dict[str, float] = {}
  for entry in (e.strip() for e in policy.split(",")):
    if not entry:
      continue
    name, _, mult = entry.partition(":")
    name = name.strip()
    if name not in TRANSFORMS:
      raise ValueError(f"Unknown ADA transform {name!r} in policy {policy!r}; valid: {valid}.")
    if name in out:
      raise ValueError(f"ADA transform {name!r} appears twice in policy {policy!r}.")
    try:
      value = float(mult) if mult else 1.0
    except ValueError:
      value = -1.0
    if not value >= 0.0 or math.isinf(value):
      raise ValueError(
        f"ADA multiplier {mult!r} of {name!r} in {policy!r} must be a finite number >= 0."
      )
    if value > 0:
      out[name] = value
  return out


class _Draws:
  """Hands out per-example columns of one uniform and one normal block.

  One PRNG call per block rather than one per parameter: each call compiles its own copy of the
  generator, which dominated the pipeline's compile time.
  """

  def __init__(self, key: jax.Array, n: int, uniforms: int, normals: int):
    ku, kz = jax.random.split(key)
    self._u = iter(jnp.moveaxis(jax.random.uniform(ku, (n, uniforms)), 1, 0))
    self._z = iter(jnp.moveaxis(jax.random.normal(kz, (n, normals)), 1, 0))

  def uniform(self) -> jax.Array:
    return next(self._u)

  def normal(self) -> jax.Array:
    return next(self._z)

  def gated(self, prob, value, identity) -> jax.Array:
    """`value` where a fresh U[0, 1) draw is below `prob` (never when prob is 0), else identity."""
    on = self.uniform() < prob
    return jnp.where(on.reshape(on.shape + (1,) * (jnp.ndim(value) - 1)), value, identity)


def sample_geometry(key, n: int, height: int, width: int, p, mults: dict[str, float]) -> jax.Array:
  """Draws and composes the blit and geometric transforms into one inverse matrix per example.

  Args:
    key: a JAX PRNG key.
    n: the batch size.
    height: image height in pixels.
    width: image width in pixels.
    p: the overall probability, float32 scalar (may be traced).
    mults: {transform: multiplier} from `parse_policy`; absent transforms are not drawn.

  Returns:
    float32 `[n, 3, 3]`: output pixel -> input point (see `transforms.warp`); the identity for an
    example where no transform was selected.
  """
  d = _Draws(key, n, uniforms=16, normals=4)
  g = jnp.broadcast_to(jnp.eye(3, dtype=jnp.float32), (n, 3, 3))
  zero, one = jnp.zeros(n), jnp.ones(n)

  def prob(name):
    return mults.get(name, 0.0) * p

  if "xflip" in mults:
    i = d.gated(prob("xflip"), jnp.floor(d.uniform() * 2), zero)
    g = g @ T.scale2d(1 - 2 * i, 1.0)
  if "rotate90" in mults:
    k = d.gated(prob("rotate90"), jnp.floor(d.uniform() * 4), zero)
    g = g @ T.rotate90_2d(k.astype(jnp.int32))  # ADA's rotate2d_inv(-pi/2 k) = rotate2d(pi/2 k)
  if "xint" in mults:
    t = jnp.stack([d.uniform(), d.uniform()], axis=1) * 2 * XINT_MAX - XINT_MAX
    t = d.gated(prob("xint"), t, 0.0)
    g = g @ T.translate2d(-jnp.round(t[:, 0] * width), -jnp.round(t[:, 1] * height))
  if "scale" in mults:
    s = d.gated(prob("scale"), jnp.exp2(d.normal() * SCALE_STD), one)
    g = g @ T.scale2d(1 / s, 1 / s)
  # Rotation before and after the anisotropic scaling, each with p_rot: P(either) = p.
  p_rot = 1 - jnp.sqrt(jnp.clip(1 - prob("rotate"), 0.0, 1.0))
  rotations = []
  if "rotate" in mults:
    for _ in range(2):
      theta = (d.uniform() * 2 - 1) * jnp.pi * ROTATE_MAX
      rotations.append(d.gated(p_rot, theta, zero))
    g = g @ T.rotate2d(rotations[0])
  if "aniso" in mults:
    s = d.gated(prob("aniso"), jnp.exp2(d.normal() * ANISO_STD), one)
    g = g @ T.scale2d(1 / s, s)
  if rotations:
    g = g @ T.rotate2d(rotations[1])
  if "xfrac" in mults:
    t = d.gated(prob("xfrac"), jnp.stack([d.normal(), d.normal()], axis=1) * XFRAC_STD, 0.0)
    g = g @ T.translate2d(-t[:, 0] * width, -t[:, 1] * height)
  return g


def sample_colour(key, n: int, channels: int, p, mults: dict[str, float]) -> jax.Array:
  """Draws and composes the colour transforms into one 4x4 matrix per example.

  Args:
    key: a JAX PRNG key.
    n: the batch size.
    channels: 1 or 3; with 1, hue and saturation are skipped (ADA's rule).
    p: the overall probability, float32 scalar (may be traced).
    mults: {transform: multiplier} from `parse_policy`; absent transforms are not drawn.

  Returns:
    float32 `[n, 4, 4]` acting on (r, g, b, 1); the identity where nothing was selected.
  """
  d = _Draws(key, n, uniforms=8, normals=3)
  c = jnp.broadcast_to(jnp.eye(4, dtype=jnp.float32), (n, 4, 4))
  zero, one = jnp.zeros(n), jnp.ones(n)
  if "brightness" in mults:
    b = d.gated(mults["brightness"] * p, d.normal() * BRIGHTNESS_STD, zero)
    c = T.translate3d(b, b, b) @ c
  if "contrast" in mults:
    s = d.gated(mults["contrast"] * p, jnp.exp2(d.normal() * CONTRAST_STD), one)
    c = T.scale3d(s, s, s) @ c
  if "lumaflip" in mults:
    i = d.gated(mults["lumaflip"] * p, jnp.floor(d.uniform() * 2), zero)
    c = T.luma_flip3d(i) @ c
  if "hue" in mults and channels > 1:
    theta = (d.uniform() * 2 - 1) * jnp.pi * HUE_MAX
    c = T.hue_rotate3d(d.gated(mults["hue"] * p, theta, zero)) @ c
  if "saturation" in mults and channels > 1:
    s = d.gated(mults["saturation"] * p, jnp.exp2(d.normal() * SATURATION_STD), one)
    c = T.saturate3d(s) @ c
  return c


def ada(images: jax.Array, key: jax.Array, p, policy: str = DEFAULT_POLICY) -> jax.Array:
  """ADA's augmentation pipeline (Karras et al. 2020) at probability `p`, per example.

  Args:
    images: `[n, H, W, C]` float images in [-1, 1], C = 1 or 3.
    key: a JAX PRNG key; every example gets its own draws.
    p: the augmentation probability, float scalar in [0, 1] (may be traced: ADA adapts it inside
      the step); each transform is applied with probability p * its multiplier. p = 0 returns
      the images exactly.
    policy: a preset ('bg', 'bgc', 'bgcc' = bgc + cutout, 'blit', 'geom', 'color', 'r3gan') or
      a comma list such as `R3GAN_POLICY` (static); see `parse_policy`.

  Returns:
    `[n, H, W, C]`, the dtype of `images`.

  Raises:
    ValueError: for images that are not `[n, H, W, C]` with C in (1, 3), an unknown policy entry,
      or a concrete p outside [0, 1].
  """
  check_images(images, "ada")
  mults = parse_policy(policy)
  p = check_probability(p)
  n, h, w, ch = images.shape
  x = images.astype(jnp.float32)
  k_geom, k_colour, k_noise, k_cut = jax.random.split(key, 4)
  # Composition is with matmuls of exact 0/1 entries; HIGHEST keeps them exact on accelerators.
  with jax.default_matmul_precision("highest"):
    if any(t in mults for t in BLIT + GEOMETRIC):
      x = T.warp(x, sample_geometry(k_geom, n, h, w, p, mults))
    if any(t in mults for t in COLOUR):
      x = T.apply_colour(x, sample_colour(k_colour, n, ch, p, mults))
  d = _Draws(k_cut, n, uniforms=4, normals=1)
  if "noise" in mults:
    sigma = d.gated(mults["noise"] * p, jnp.abs(d.normal()) * NOISE_STD, jnp.zeros(n))
    x = x + jax.random.normal(k_noise, x.shape) * sigma[:, None, None, None]
  if "cutout" in mults:
    sizes = d.gated(mults["cutout"] * p, jnp.full((n,), CUTOUT_SIZE), jnp.zeros(n))
    x = T.box_cutout(x, jnp.stack([d.uniform(), d.uniform()], axis=1), sizes)
  return x.astype(images.dtype)
