"""ADA's random draws, their parameters and matrices (Karras et al. 2020; `ada_lib`'s first steps).

`draw` makes the random numbers StyleGAN2-ADA's `AugmentPipe` makes, in its layout, from a JAX
key; `params_from_draws` turns them into per-example parameters with ADA's distributions and
gates (probability p * multiplier); `geometry_matrix` and `colour_matrix` compose those into one
3x3 and one 4x4 matrix per example. `jaxgan.augment.ada_lib` applies them (`apply`, `ada`).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxgan.augment import transforms as T

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


def _geometry_draws(key, n: int, mults) -> dict[str, jax.Array]:
  d, r = _Draws(key, n, uniforms=16, normals=4), {}
  for name in ("xflip", "rotate90"):
    if name in mults:
      r[name], r[name + "_gate"] = d.uniform(), d.uniform()
  if "xint" in mults:
    r["xint"] = jnp.stack([d.uniform(), d.uniform()], axis=1)
    r["xint_gate"] = d.uniform()
  if "scale" in mults:
    r["scale"], r["scale_gate"] = d.normal(), d.uniform()
  if "rotate" in mults:
    pre, pre_gate, post, post_gate = (d.uniform() for _ in range(4))
    r["rotate"], r["rotate_gate"] = jnp.stack([pre, post], 1), jnp.stack([pre_gate, post_gate], 1)
  if "aniso" in mults:
    r["aniso"], r["aniso_gate"] = d.normal(), d.uniform()
  if "xfrac" in mults:
    r["xfrac"] = jnp.stack([d.normal(), d.normal()], axis=1)
    r["xfrac_gate"] = d.uniform()
  return r


def _colour_draws(key, n: int, channels: int, mults) -> dict[str, jax.Array]:
  d, r = _Draws(key, n, uniforms=8, normals=3), {}
  for name, normal in [("brightness", True), ("contrast", True), ("lumaflip", False)]:
    if name in mults:
      r[name] = d.normal() if normal else d.uniform()
      r[name + "_gate"] = d.uniform()
  if channels > 1:  # ADA skips hue and saturation on one channel
    if "hue" in mults:
      r["hue"], r["hue_gate"] = d.uniform(), d.uniform()
    if "saturation" in mults:
      r["saturation"], r["saturation_gate"] = d.normal(), d.uniform()
  return r


def draw(key: jax.Array, shape: tuple[int, int, int, int], mults: dict[str, float]):
  """Draws ADA's random numbers for a batch: one entry per draw StyleGAN2-ADA's code makes.

  Each transform `t` of `mults` gets its value draw `t` and its gate draw `t + '_gate'` (U[0, 1);
  the transform is applied where gate < p * multiplier), in the official code's layout:

  - U[0, 1): 'xflip', 'rotate90', 'lumaflip', 'hue' `[n]`; 'xint' `[n, 2]` (x, y); 'rotate'
    `[n, 2]` (before, after the anisotropic scaling, with gates 'rotate_gate' `[n, 2]`);
    'cutout_centre' `[n, 2]` (x, y) as fractions of the size;
  - N(0, 1): 'scale', 'aniso', 'brightness', 'contrast', 'saturation', 'noise' `[n]`; 'xfrac'
    `[n, 2]` (x, y); 'noise_field' `[n, H, W, C]`;
  - 'cutout' has only its gate 'cutout_gate'; hue and saturation are not drawn for C = 1.

  Args:
    key: a JAX PRNG key.
    shape: the batch's shape `(n, H, W, C)`.
    mults: {transform: multiplier} from `parse_policy`; only these are drawn.

  Returns:
    {name: float32 array}; `params_from_draws` maps it to the transforms' parameters.
  """
  n, h, w, ch = shape
  k_geom, k_colour, k_noise, k_cut = jax.random.split(key, 4)
  r = {**_geometry_draws(k_geom, n, mults), **_colour_draws(k_colour, n, ch, mults)}
  d = _Draws(k_cut, n, uniforms=4, normals=1)
  if "noise" in mults:
    r["noise"], r["noise_gate"] = d.normal(), d.uniform()
    r["noise_field"] = jax.random.normal(k_noise, (n, h, w, ch))
  if "cutout" in mults:
    r["cutout_gate"] = d.uniform()
    cy, cx = d.uniform(), d.uniform()
    r["cutout_centre"] = jnp.stack([cx, cy], axis=1)
  return r


def params_from_draws(draws: dict, p, mults: dict[str, float], height: int, width: int) -> dict:
  """Maps `draw`'s numbers to each transform's per-example parameters, as StyleGAN2-ADA.

  Each transform takes its value where its gate draw is below p * multiplier, else its identity
  (gate < 0 never holds, so p = 0 selects nothing); rotation is gated twice with
  p_rot = 1 - sqrt(1 - p * multiplier), so that either rotation happens with that probability.

  Args:
    draws: `draw`'s dict (or the same numbers from elsewhere: the official code's draws).
    p: the overall probability, float32 scalar (may be traced).
    mults: {transform: multiplier}.
    height: image height in pixels.
    width: image width in pixels.

  Returns:
    {name: parameters} for the transforms in `draws`: 'xflip' and 'lumaflip' in {0, 1},
    'rotate90' quarter turns in {0..3}, 'xint' whole and 'xfrac' fractional pixels `[n, 2]`
    (x, y), 'scale', 'aniso', 'contrast', 'saturation' factors, 'rotate' `[n, 2]` and 'hue'
    radians, 'brightness' an offset, 'noise' sigma (with 'noise_field'), 'cutout' the side as a
    fraction of the size (0: none) with 'cutout_centre' (x, y).
  """
  n = len(next(iter(draws.values()))) if draws else 0
  zero, one = jnp.zeros(n), jnp.ones(n)
  size = jnp.array([width, height], jnp.float32)
  out = {}

  def gated(name, value, identity, prob=None):
    prob = mults.get(name, 0.0) * p if prob is None else prob
    on = draws[name + "_gate"] < prob
    on = on.reshape(on.shape + (1,) * (jnp.ndim(value) - on.ndim))
    return jnp.where(on, value, identity)

  if "xflip" in draws:
    out["xflip"] = gated("xflip", jnp.floor(draws["xflip"] * 2), zero)
  if "rotate90" in draws:
    out["rotate90"] = gated("rotate90", jnp.floor(draws["rotate90"] * 4), zero)
  if "xint" in draws:
    t = gated("xint", (draws["xint"] * 2 - 1) * XINT_MAX, 0.0)
    out["xint"] = jnp.round(t * size)
  if "scale" in draws:
    out["scale"] = gated("scale", jnp.exp2(draws["scale"] * SCALE_STD), one)
  if "rotate" in draws:
    p_rot = 1 - jnp.sqrt(jnp.clip(1 - mults.get("rotate", 0.0) * p, 0.0, 1.0))
    theta = (draws["rotate"] * 2 - 1) * jnp.pi * ROTATE_MAX
    out["rotate"] = gated("rotate", theta, 0.0, prob=p_rot)
  if "aniso" in draws:
    out["aniso"] = gated("aniso", jnp.exp2(draws["aniso"] * ANISO_STD), one)
  if "xfrac" in draws:
    out["xfrac"] = gated("xfrac", draws["xfrac"] * XFRAC_STD, 0.0) * size
  if "brightness" in draws:
    out["brightness"] = gated("brightness", draws["brightness"] * BRIGHTNESS_STD, zero)
  if "contrast" in draws:
    out["contrast"] = gated("contrast", jnp.exp2(draws["contrast"] * CONTRAST_STD), one)
  if "lumaflip" in draws:
    out["lumaflip"] = gated("lumaflip", jnp.floor(draws["lumaflip"] * 2), zero)
  if "hue" in draws:
    out["hue"] = gated("hue", (draws["hue"] * 2 - 1) * jnp.pi * HUE_MAX, zero)
  if "saturation" in draws:
    out["saturation"] = gated("saturation", jnp.exp2(draws["saturation"] * SATURATION_STD), one)
  if "noise" in draws:
    out["noise"] = gated("noise", jnp.abs(draws["noise"]) * NOISE_STD, zero)
    out["noise_field"] = draws["noise_field"]
  if "cutout_gate" in draws:
    out["cutout"] = gated("cutout", jnp.full((n,), CUTOUT_SIZE), zero)
    out["cutout_centre"] = draws["cutout_centre"]
  return out


def geometry_matrix(params: dict, n: int) -> jax.Array:
  """Composes the blit and geometric parameters into one inverse matrix per example, as ADA.

  Args:
    params: `params_from_draws`'s dict; absent transforms are skipped.
    n: the batch size.

  Returns:
    float32 `[n, 3, 3]`: output pixel -> input point (see `transforms.warp`).
  """
  g = jnp.broadcast_to(jnp.eye(3, dtype=jnp.float32), (n, 3, 3))
  if "xflip" in params:
    g = g @ T.scale2d(1 - 2 * params["xflip"], 1.0)
  if "rotate90" in params:
    g = g @ T.rotate90_2d(params["rotate90"].astype(jnp.int32))  # ADA's rotate2d(pi/2 k)
  if "xint" in params:
    g = g @ T.translate2d(-params["xint"][:, 0], -params["xint"][:, 1])
  if "scale" in params:
    g = g @ T.scale2d(1 / params["scale"], 1 / params["scale"])
  if "rotate" in params:
    g = g @ T.rotate2d(params["rotate"][:, 0])
  if "aniso" in params:
    g = g @ T.scale2d(1 / params["aniso"], params["aniso"])
  if "rotate" in params:
    g = g @ T.rotate2d(params["rotate"][:, 1])
  if "xfrac" in params:
    g = g @ T.translate2d(-params["xfrac"][:, 0], -params["xfrac"][:, 1])
  return g


def colour_matrix(params: dict, n: int) -> jax.Array:
  """Composes the colour parameters into one 4x4 matrix per example, as ADA.

  Args:
    params: `params_from_draws`'s dict; absent transforms are skipped.
    n: the batch size.

  Returns:
    float32 `[n, 4, 4]` acting on (r, g, b, 1).
  """
  c = jnp.broadcast_to(jnp.eye(4, dtype=jnp.float32), (n, 4, 4))
  if "brightness" in params:
    b = params["brightness"]
    c = T.translate3d(b, b, b) @ c
  if "contrast" in params:
    s = params["contrast"]
    c = T.scale3d(s, s, s) @ c
  if "lumaflip" in params:
    c = T.luma_flip3d(params["lumaflip"]) @ c
  if "hue" in params:
    c = T.hue_rotate3d(params["hue"]) @ c
  if "saturation" in params:
    c = T.saturate3d(params["saturation"]) @ c
  return c


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
  params = params_from_draws(_geometry_draws(key, n, mults), p, mults, height, width)
  return geometry_matrix(params, n)


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
  params = params_from_draws(_colour_draws(key, n, channels, mults), p, mults, 1, 1)
  return colour_matrix(params, n)
