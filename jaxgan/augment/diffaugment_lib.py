"""DiffAugment (Zhao et al. 2020, "Differentiable Augmentation for Data-Efficient GAN Training").

Every op is split into a deterministic function of explicit per-example parameters
(`brightness(x, b)`, `translate(x, shifts)`, ..., or `apply(name, x, params)`) and `draw(name,
...)` / `params_from_uniform`, which map uniform draws to those parameters in the paper's
ranges, one draw per example; for a whole policy, `sample_policy` draws and `apply_policy`
applies. Images are NHWC `[n, H, W, C]`, values in [-1, 1]; every op is differentiable with
respect to the images, so D's gradient reaches G through it. The maths is the official
`DiffAugment_pytorch.py`'s (mit-han-lab/data-efficient-gans), which, fed the same draws, it
reproduces to float32 rounding (tests/test_augment_official.py):

- brightness: x + b, b ~ U[-0.5, 0.5];
- saturation: (x - mean_C(x)) * s + mean_C(x), s ~ U[0, 2] (a no-op on one channel);
- contrast: (x - mean_HWC(x)) * c + mean_HWC(x), c ~ U[0.5, 1.5];
- translation: an integer shift in [-r, r] per axis, r = int(size / 8 + 0.5), zero fill (the
  official op's draw t reads in[y + t]: a shift of -t here, the same distribution);
- cutout: a zeroed square of int(size / 2 + 0.5) pixels per side at a random centre, clipped at
  the borders (the official offsets are the centres).

Every op runs on every example, as in the official code and the paper; `diffaugment`'s p, an
addition, leaves an example untouched with probability 1 - p (p = 1: never).

Example:
  >>> import jax, jax.numpy as jnp
  >>> x = jnp.zeros((2, 8, 8, 3))
  >>> y = diffaugment(x, jax.random.key(0), 1.0, policy="translation,cutout")
  >>> y.shape, bool(jnp.all(y == 0))  # zero fill and zeroed squares keep a black image black
  ((2, 8, 8, 3), True)
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxgan.augment._common import check_images, check_probability, where_examples
from jaxgan.augment._registry import register

TRANSLATION_RATIO = 0.125
CUTOUT_RATIO = 0.5
# The policy's entries and the ops each runs, in order (as the official AUGMENT_FNS).
POLICY_OPS = {
  "color": ("brightness", "saturation", "contrast"),
  "translation": ("translation",),
  "cutout": ("cutout",),
}
DEFAULT_POLICY = "color,translation,cutout"


def _per_example(v: jax.Array, x: jax.Array) -> jax.Array:
  return jnp.asarray(v, x.dtype).reshape((-1, 1, 1, 1))


def brightness(x: jax.Array, b: jax.Array) -> jax.Array:
  """Adds `b[i]` to every pixel of example i.

  Args:
    x: images `[n, H, W, C]`, float.
    b: offsets `[n]`, in image units (the paper draws U[-0.5, 0.5]).

  Returns:
    `[n, H, W, C]`, the dtype of `x`.

  Example:
    >>> brightness(jnp.zeros((1, 1, 1, 1)), jnp.array([0.25]))[0, 0, 0]
    Array([0.25], dtype=float32)
  """
  return x + _per_example(b, x)


def saturation(x: jax.Array, s: jax.Array) -> jax.Array:
  """Scales each pixel's deviation from its mean over channels by `s[i]`.

  Args:
    x: images `[n, H, W, C]`, float.
    s: factors `[n]` (the paper draws U[0, 2]; 0 gives grey, 1 the identity).

  Returns:
    `[n, H, W, C]`, the dtype of `x`.
  """
  mean = jnp.mean(x, axis=3, keepdims=True)
  return (x - mean) * _per_example(s, x) + mean


def contrast(x: jax.Array, c: jax.Array) -> jax.Array:
  """Scales each example's deviation from its mean over all pixels and channels by `c[i]`.

  Args:
    x: images `[n, H, W, C]`, float.
    c: factors `[n]` (the paper draws U[0.5, 1.5]).

  Returns:
    `[n, H, W, C]`, the dtype of `x`.
  """
  mean = jnp.mean(x, axis=(1, 2, 3), keepdims=True)
  return (x - mean) * _per_example(c, x) + mean


def translate(x: jax.Array, shifts: jax.Array) -> jax.Array:
  """Shifts each example by whole pixels, filling the uncovered border with zeros.

  `out[i, y, x] = in[i, y - dy_i, x - dx_i]` where that lies inside the image, else 0: a
  positive shift moves the content down / right.

  Args:
    x: images `[n, H, W, C]`, float.
    shifts: int `[n, 2]`, (dy, dx) in pixels per example.

  Returns:
    `[n, H, W, C]`, the dtype of `x`.

  Example:
    >>> x = jnp.arange(4.0).reshape(1, 1, 4, 1)
    >>> translate(x, jnp.array([[0, 1]]))[0, 0, :, 0]
    Array([0., 0., 1., 2.], dtype=float32)
  """
  _, h, w, _ = x.shape
  shifts = jnp.asarray(shifts, jnp.int32)
  rows = jnp.arange(h)[None, :] - shifts[:, :1]  # [n, H]: the source row of each output row
  cols = jnp.arange(w)[None, :] - shifts[:, 1:]  # [n, W]
  inside = ((rows >= 0) & (rows < h))[:, :, None] & ((cols >= 0) & (cols < w))[:, None, :]

  def one(image, r, c):
    # Clipped indices stay in range; the mask zeroes what they fetched from outside.
    return image[jnp.clip(r, 0, h - 1)][:, jnp.clip(c, 0, w - 1)]

  moved = jax.vmap(one)(x, rows, cols)
  return jnp.where(inside[..., None], moved, jnp.zeros((), x.dtype))


def cutout(x: jax.Array, centres: jax.Array, size: tuple[int, int]) -> jax.Array:
  """Zeroes a `size` rectangle of each example, placed by its centre and clipped at the borders.

  Rows `cy - size[0] // 2 <= y < cy - size[0] // 2 + size[0]` (and likewise columns) are zeroed,
  the official code's placement.

  Args:
    x: images `[n, H, W, C]`, float.
    centres: int `[n, 2]`, (cy, cx) in pixels; may lie on or beyond the border (clipped).
    size: static (height, width) of the rectangle in pixels.

  Returns:
    `[n, H, W, C]`, the dtype of `x`.

  Example:
    >>> cutout(jnp.ones((1, 1, 4, 1)), jnp.array([[0, 1]]), (1, 2))[0, 0, :, 0]
    Array([0., 0., 1., 1.], dtype=float32)
  """
  _, h, w, _ = x.shape
  centres = jnp.asarray(centres, jnp.int32)
  top = centres[:, :1] - size[0] // 2
  left = centres[:, 1:] - size[1] // 2
  ys, xs = jnp.arange(h)[None, :], jnp.arange(w)[None, :]
  in_rows = (ys >= top) & (ys < top + size[0])  # [n, H]
  in_cols = (xs >= left) & (xs < left + size[1])  # [n, W]
  cut = in_rows[:, :, None] & in_cols[:, None, :]
  return jnp.where(cut[..., None], jnp.zeros((), x.dtype), x)


def max_shift(height: int, width: int, ratio: float = TRANSLATION_RATIO) -> tuple[int, int]:
  """The largest translation in pixels per axis, `int(size * ratio + 0.5)` as the official code."""
  return int(height * ratio + 0.5), int(width * ratio + 0.5)


def cutout_size(height: int, width: int, ratio: float = CUTOUT_RATIO) -> tuple[int, int]:
  """The cutout rectangle in pixels, `int(size * ratio + 0.5)` per axis as the official code."""
  return int(height * ratio + 0.5), int(width * ratio + 0.5)


def _integers(u: jax.Array, lo: int, hi: int) -> jax.Array:
  # Uniform integers in [lo, hi) from uniforms in [0, 1).
  return jnp.clip(jnp.floor(u * (hi - lo)).astype(jnp.int32) + lo, lo, hi - 1)


def params_from_uniform(name: str, u: jax.Array, height: int, width: int) -> jax.Array:
  """Maps uniform draws to one op's parameters in the paper's ranges.

  The ranges: brightness U[-0.5, 0.5]; saturation U[0, 2]; contrast U[0.5, 1.5]; translation
  integers (dy, dx) uniform in [-r, r], r from `max_shift`; cutout centres (cy, cx) uniform
  integers in [0, size + 1 - s % 2) for a side s from `cutout_size` (so an even square overhangs
  either border equally often), as the official code.

  Args:
    name: 'brightness', 'saturation', 'contrast', 'translation' or 'cutout'.
    u: float32 `[n, 2]`, independent U[0, 1) draws (the colour ops use column 0).
    height: image height in pixels.
    width: image width in pixels.

  Returns:
    float32 `[n]` for the colour ops, int32 `[n, 2]` for translation and cutout.

  Raises:
    ValueError: for an unknown op name.
  """
  if name == "brightness":
    return u[:, 0] - 0.5
  if name == "saturation":
    return u[:, 0] * 2.0
  if name == "contrast":
    return u[:, 0] + 0.5
  if name == "translation":
    ry, rx = max_shift(height, width)
    return jnp.stack([_integers(u[:, 0], -ry, ry + 1), _integers(u[:, 1], -rx, rx + 1)], axis=1)
  if name == "cutout":
    sh, sw = cutout_size(height, width)
    cy = _integers(u[:, 0], 0, height + 1 - sh % 2)
    return jnp.stack([cy, _integers(u[:, 1], 0, width + 1 - sw % 2)], axis=1)
  ops = sorted({op for group in POLICY_OPS.values() for op in group})
  raise ValueError(f"Unknown DiffAugment op {name!r}; valid ops: {ops}.")


def draw(name: str, key: jax.Array, n: int, height: int, width: int) -> jax.Array:
  """Draws one op's parameters for `n` examples; see `params_from_uniform` for the ranges.

  Args:
    name: 'brightness', 'saturation', 'contrast', 'translation' or 'cutout'.
    key: a JAX PRNG key.
    n: the batch size.
    height: image height in pixels.
    width: image width in pixels.

  Returns:
    float32 `[n]` for the colour ops, int32 `[n, 2]` for translation and cutout.

  Raises:
    ValueError: for an unknown op name.
  """
  return params_from_uniform(name, jax.random.uniform(key, (n, 2)), height, width)


def apply(name: str, x: jax.Array, params: jax.Array) -> jax.Array:
  """Applies one DiffAugment op with explicit per-example parameters (as `draw` returns).

  Args:
    name: 'brightness', 'saturation', 'contrast', 'translation' or 'cutout'.
    x: images `[n, H, W, C]`, float.
    params: float `[n]` for the colour ops, int `[n, 2]` for translation and cutout.

  Returns:
    `[n, H, W, C]`, the dtype of `x`.

  Raises:
    ValueError: for an unknown op name.
  """
  fns = {"brightness": brightness, "saturation": saturation, "contrast": contrast}
  if name in fns:
    return fns[name](x, params)
  if name == "translation":
    return translate(x, params)
  if name == "cutout":
    return cutout(x, params, cutout_size(x.shape[1], x.shape[2]))
  ops = sorted({op for group in POLICY_OPS.values() for op in group})
  raise ValueError(f"Unknown DiffAugment op {name!r}; valid ops: {ops}.")


def parse_policy(policy: str) -> tuple[str, ...]:
  """Parses a DiffAugment policy string into the ops it runs, in order.

  Args:
    policy: a comma list of 'color', 'translation', 'cutout' (the empty string runs nothing).

  Returns:
    The op names, e.g. ('brightness', 'saturation', 'contrast', 'translation') for
    'color,translation'.

  Raises:
    ValueError: for an entry that is not a policy name, listing the valid ones.

  Example:
    >>> parse_policy("color,cutout")
    ('brightness', 'saturation', 'contrast', 'cutout')
  """
  ops = []
  for entry in (e.strip() for e in policy.split(",")):
    if not entry:
      continue
    if entry not in POLICY_OPS:
      raise ValueError(
        f"Unknown DiffAugment policy entry {entry!r} in {policy!r}; valid entries: "
        f"{sorted(POLICY_OPS)} (comma-separated, e.g. {DEFAULT_POLICY!r})."
      )
    ops.extend(POLICY_OPS[entry])
  return tuple(ops)


def sample_policy(
  key: jax.Array, n: int, height: int, width: int, policy: str = DEFAULT_POLICY
) -> tuple[tuple[jax.Array, ...], jax.Array]:
  """Draws every op's parameters for a policy, and the per-example gate draws.

  Args:
    key: a JAX PRNG key.
    n: the batch size.
    height: image height in pixels.
    width: image width in pixels.
    policy: a comma list of 'color', 'translation', 'cutout' (static).

  Returns:
    (params, gate): params, one entry per op of `parse_policy(policy)` in order, as `draw`
    returns them; gate, float32 `[n]` U[0, 1) draws (an example is augmented where gate < p).

  Raises:
    ValueError: for an unknown policy entry.
  """
  ops = parse_policy(policy)
  # One draw for the whole pipeline: every separate PRNG call adds its own compile time.
  u = jax.random.uniform(key, (n, 2 * len(ops) + 1))
  params = tuple(
    params_from_uniform(op, u[:, 2 * i : 2 * i + 2], height, width) for i, op in enumerate(ops)
  )
  return params, u[:, -1]


def apply_policy(images: jax.Array, params, policy: str = DEFAULT_POLICY) -> jax.Array:
  """Applies a policy's ops in order with explicit parameters, to every example (the paper's p = 1).

  Args:
    images: `[n, H, W, C]` float images.
    params: one entry per op of `parse_policy(policy)`, as `apply` takes them.
    policy: a comma list of 'color', 'translation', 'cutout' (static).

  Returns:
    `[n, H, W, C]` float32.

  Raises:
    ValueError: for an unknown policy entry, or a number of parameters that is not the number of
      ops.
  """
  ops = parse_policy(policy)
  if len(params) != len(ops):
    raise ValueError(f"Policy {policy!r} runs {len(ops)} ops {ops}; got {len(params)} parameters.")
  out = jnp.asarray(images, jnp.float32)
  for op, v in zip(ops, params, strict=True):
    out = apply(op, out, v)
  return out


@register("diffaugment", default_policy=DEFAULT_POLICY, parse_policy=parse_policy)
def diffaugment(
  images: jax.Array, key: jax.Array, p=1.0, policy: str = DEFAULT_POLICY
) -> jax.Array:
  """DiffAugment (Zhao et al. 2020): random colour, translation and cutout, per example.

  `apply_policy` with `sample_policy`'s parameters, where an example's gate draw is below p.

  Args:
    images: `[n, H, W, C]` float images in [-1, 1], C = 1 or 3.
    key: a JAX PRNG key; every example gets its own draw of every op.
    p: probability, float scalar in [0, 1] (may be traced), that an example is augmented at all;
      otherwise it is returned unchanged. p = 1 is the paper; p = 0 is exactly the identity.
    policy: a comma list of 'color', 'translation', 'cutout' (static).

  Returns:
    `[n, H, W, C]`, the dtype of `images`.

  Raises:
    ValueError: for images that are not `[n, H, W, C]` with C in (1, 3), an unknown policy entry,
      or a concrete p outside [0, 1].

  Example:
    >>> x = jnp.full((3, 8, 8, 1), 0.5)
    >>> bool(jnp.all(jax.jit(diffaugment)(x, jax.random.key(1), 0.0) == x))
    True
  """
  check_images(images, "diffaugment")
  parse_policy(policy)
  p = check_probability(p)
  x = images.astype(jnp.float32)
  n, h, w, _ = x.shape
  params, gate = sample_policy(key, n, h, w, policy)
  out = apply_policy(x, params, policy)
  # uniform lies in [0, 1), so `< 0` is never true: p = 0 leaves every example untouched.
  out = where_examples(gate < p, out, x)
  return out.astype(images.dtype)
