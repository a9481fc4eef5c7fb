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
colour transforms compose into one 4x4 matrix per example. Each step is its own function (the first
two, and the matrices, in `ada_params`, importable from here too):
`draw` (a key -> the random numbers, one per draw the official code makes, in its layout),
`params_from_draws` (numbers -> per-example parameters, with the gates at p * multiplier),
`apply` (parameters -> images, pure); `ada` chains them.

Against the official `AugmentPipe` (tests/test_augment_official.py feeds both the same draws):
the parameters and gates are the same; colour, noise and cutout agree to float32 rounding (max
abs difference 5e-7); with any geometric transform in the policy the warp is ADA's own
execution, `transforms.filtered_warp` (reflect padding by ADA's batch margin, 2x upsampling with
the sym6 wavelet, bilinear sampling, 2x downsampling), which agrees to 1e-5 (max 7e-6: its
sampling coordinates round differently). Two deliberate differences:

- an example whose matrix is exactly the identity (nothing selected; every example at p = 0) is
  returned unchanged, where ADA filters it too (the identity to 2e-6);
- a policy of blit transforms alone (xflip, rotate90, xint; preset 'blit') runs them as exact
  pixel permutations (`transforms.warp`), where ADA still runs its filtered warp. For xint that
  is the same (to 3e-6); but sym6 is not symmetric, so ADA's flips and quarter turns filter the
  mirrored axis (a kernel with centre tap 0.965): up to 0.05 from the exact flip on smooth
  images, 0.41 on uniform noise. Mixed with geometric transforms, blits are filtered as in ADA.

ADA's image-space filtering ('imgfilter', presets 'bgcf...') is not implemented.

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
from jaxgan.augment._common import check_images, check_probability, where_examples
from jaxgan.augment._registry import register

# The draws, parameters and matrices live in ada_params; ada_lib.<name> stays their public path.
from jaxgan.augment.ada_params import (  # noqa: F401
  BLIT,
  COLOUR,
  CORRUPTION,
  GEOMETRIC,
  TRANSFORMS,
  colour_matrix,
  draw,
  geometry_matrix,
  params_from_draws,
  sample_colour,
  sample_geometry,
)

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


def apply(images: jax.Array, params: dict) -> jax.Array:
  """Applies ADA's transforms with explicit parameters (`params_from_draws`'s dict).

  In ADA's order: the blit and geometric transforms as one warp, the colour transforms as one
  matrix, noise, cutout. With any geometric transform (scale, rotate, aniso, xfrac) among
  `params`, the warp is ADA's `transforms.filtered_warp`, except that an example whose matrix is
  exactly the identity is returned unchanged (ADA filters it too: the same to float32 rounding).
  With blit transforms alone it is `transforms.warp`: exact flips, quarter turns and shifts.

  Args:
    images: `[n, H, W, C]` float images, C = 1 or 3.
    params: {name: per-example parameters}; absent transforms are skipped.

  Returns:
    `[n, H, W, C]`, the dtype of `images`.
  """
  check_images(images, "ada")
  n = images.shape[0]
  x = images.astype(jnp.float32)
  # Composition is with matmuls of exact 0/1 entries; HIGHEST keeps them exact on accelerators.
  with jax.default_matmul_precision("highest"):
    if any(t in params for t in BLIT + GEOMETRIC):
      g = geometry_matrix(params, n)
      if any(t in params for t in GEOMETRIC):
        identity = jnp.all(g == jnp.eye(3, dtype=g.dtype), axis=(1, 2))
        x = where_examples(identity, x, T.filtered_warp(x, g))
      else:
        x = T.warp(x, g)
    if any(t in params for t in COLOUR):
      x = T.apply_colour(x, colour_matrix(params, n))
  if "noise" in params:
    x = x + params["noise_field"] * params["noise"][:, None, None, None]
  if "cutout" in params:
    x = T.box_cutout(x, params["cutout_centre"][:, ::-1], params["cutout"])
  return x.astype(images.dtype)


@register("ada", default_policy=DEFAULT_POLICY, parse_policy=parse_policy)
def ada(images: jax.Array, key: jax.Array, p, policy: str = DEFAULT_POLICY) -> jax.Array:
  """ADA's augmentation pipeline (Karras et al. 2020) at probability `p`, per example.

  `apply(images, params_from_draws(draw(key, images.shape, mults), p, mults, H, W))`.

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
  _, h, w, _ = images.shape
  params = params_from_draws(draw(key, images.shape, mults), p, mults, h, w)
  return apply(images, params)
