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
  >>> bool(jnp.all(ada(x, jax.random.key(1), 0.0) == x)), ada(x, jax.random.key(1), 1.0).shape
  (True, (4, 8, 8, 3))
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from jaxgan.augment import transforms as T
from jaxgan.augment._common import check_images, check_probability, gate

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


def parse_policy(policy: str) -> dict[str, float]:
  """Parses an ADA policy: a preset name or a comma list of transforms with multipliers.

  Args:
    policy: one of `PRESETS` ('blit', 'geom', 'color', 'bg', 'bgc', 'bgcc'), or entries
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


def _gated(key, n, prob, value, identity):
  return jnp.where(gate(key, n, prob), value, identity)


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
  keys = iter(jax.random.split(key, 2 * len(TRANSFORMS)))
  g = jnp.broadcast_to(jnp.eye(3, dtype=jnp.float32), (n, 3, 3))
  zero, one = jnp.zeros(n), jnp.ones(n)

  def prob(name):
    return mults.get(name, 0.0) * p

  if "xflip" in mults:
    i = jnp.floor(jax.random.uniform(next(keys), (n,)) * 2)
    i = _gated(next(keys), n, prob("xflip"), i, zero)
    g = g @ T.scale2d(1 - 2 * i, 1.0)
  if "rotate90" in mults:
    k = jax.random.randint(next(keys), (n,), 0, 4)
    k = _gated(next(keys), n, prob("rotate90"), k, jnp.zeros(n, jnp.int32))
    g = g @ T.rotate90_2d(k)  # ADA's rotate2d_inv(-pi/2 k) = rotate2d(pi/2 k)
  if "xint" in mults:
    t = jax.random.uniform(next(keys), (n, 2), minval=-XINT_MAX, maxval=XINT_MAX)
    t = jnp.where(gate(next(keys), n, prob("xint"))[:, None], t, 0.0)
    g = g @ T.translate2d(-jnp.round(t[:, 0] * width), -jnp.round(t[:, 1] * height))
  if "scale" in mults:
    s = jnp.exp2(jax.random.normal(next(keys), (n,)) * SCALE_STD)
    s = _gated(next(keys), n, prob("scale"), s, one)
    g = g @ T.scale2d(1 / s, 1 / s)
  # Rotation before and after the anisotropic scaling, each with p_rot: P(either) = p.
  p_rot = 1 - jnp.sqrt(jnp.clip(1 - prob("rotate"), 0.0, 1.0))
  rotations = []
  if "rotate" in mults:
    for _ in range(2):
      theta = jax.random.uniform(next(keys), (n,), minval=-1.0, maxval=1.0) * jnp.pi * ROTATE_MAX
      rotations.append(_gated(next(keys), n, p_rot, theta, zero))
    g = g @ T.rotate2d(rotations[0])
  if "aniso" in mults:
    s = jnp.exp2(jax.random.normal(next(keys), (n,)) * ANISO_STD)
    s = _gated(next(keys), n, prob("aniso"), s, one)
    g = g @ T.scale2d(1 / s, s)
  if rotations:
    g = g @ T.rotate2d(rotations[1])
  if "xfrac" in mults:
    t = jax.random.normal(next(keys), (n, 2)) * XFRAC_STD
    t = jnp.where(gate(next(keys), n, prob("xfrac"))[:, None], t, 0.0)
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
  keys = iter(jax.random.split(key, 2 * len(COLOUR)))
  c = jnp.broadcast_to(jnp.eye(4, dtype=jnp.float32), (n, 4, 4))
  zero, one = jnp.zeros(n), jnp.ones(n)
  if "brightness" in mults:
    b = jax.random.normal(next(keys), (n,)) * BRIGHTNESS_STD
    b = _gated(next(keys), n, mults["brightness"] * p, b, zero)
    c = T.translate3d(b, b, b) @ c
  if "contrast" in mults:
    s = jnp.exp2(jax.random.normal(next(keys), (n,)) * CONTRAST_STD)
    s = _gated(next(keys), n, mults["contrast"] * p, s, one)
    c = T.scale3d(s, s, s) @ c
  if "lumaflip" in mults:
    i = jnp.floor(jax.random.uniform(next(keys), (n,)) * 2)
    i = _gated(next(keys), n, mults["lumaflip"] * p, i, zero)
    c = T.luma_flip3d(i) @ c
  if "hue" in mults and channels > 1:
    theta = jax.random.uniform(next(keys), (n,), minval=-1.0, maxval=1.0) * jnp.pi * HUE_MAX
    theta = _gated(next(keys), n, mults["hue"] * p, theta, zero)
    c = T.hue_rotate3d(theta) @ c
  if "saturation" in mults and channels > 1:
    s = jnp.exp2(jax.random.normal(next(keys), (n,)) * SATURATION_STD)
    s = _gated(next(keys), n, mults["saturation"] * p, s, one)
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
    policy: a preset ('bg', 'bgc', 'bgcc' = bgc + cutout, 'blit', 'geom', 'color') or a comma
      list such as `R3GAN_POLICY` (static); see `parse_policy`.

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
  if "noise" in mults:
    k1, k2, k3 = jax.random.split(k_noise, 3)
    sigma = jnp.abs(jax.random.normal(k1, (n,))) * NOISE_STD
    sigma = _gated(k2, n, mults["noise"] * p, sigma, jnp.zeros(n))
    x = x + jax.random.normal(k3, x.shape) * sigma[:, None, None, None]
  if "cutout" in mults:
    k1, k2 = jax.random.split(k_cut)
    sizes = _gated(k1, n, mults["cutout"] * p, jnp.full((n,), CUTOUT_SIZE), jnp.zeros(n))
    x = T.box_cutout(x, jax.random.uniform(k2, (n, 2)), sizes)
  return x.astype(images.dtype)
