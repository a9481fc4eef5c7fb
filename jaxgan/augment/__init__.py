"""Differentiable, per-example image augmentations for the discriminator's inputs.

Every augmentation is an `AugmentFn`, `f(images, key, p) -> images`: pure and jittable, on
float NHWC batches `[n, H, W, C]` in [-1, 1] with C = 1 or 3, one random draw per example, the
same shape and dtype out, and differentiable with respect to the images, so that D's gradient
reaches G through the augmented fakes. `p` is a float32 scalar in [0, 1] and may be traced (ADA
adapts it inside the compiled step); p = 0 returns the images exactly.

- `diffaugment`: DiffAugment (Zhao et al. 2020): colour, translation, cutout; each example is
  augmented with probability p (p = 1 is the paper).
- `ada`: ADA's pipeline (Karras et al. 2020): blit, geometric, colour and cutout transforms, each
  with probability p * multiplier; `R3GAN_POLICY` (preset 'r3gan') is R3GAN's (Huang et al. 2024).
- `flip_translate`: bCR's transform (Zhao et al. 2021): horizontal flip and translation.

Fed the same random draws, `diffaugment` and `ada` reproduce the official code's outputs
(DiffAugment_pytorch.py, StyleGAN2-ADA's AugmentPipe; tests/test_augment_official.py), except
where ada_lib's docstring says otherwise (ADA's blits alone are exact here).

`get(name, policy)` returns the `AugmentFn` with its policy bound and checked before compiling.

Example:
  >>> import jax, jax.numpy as jnp
  >>> from jaxgan import augment
  >>> aug = augment.get("diffaugment")  # the paper's 'color,translation,cutout'
  >>> x = jnp.full((2, 8, 8, 3), 0.5)
  >>> step = jax.jit(jax.grad(lambda x, key, p: jnp.sum(aug(x, key, p))))  # p traced
  >>> bool(jnp.all(step(x, jax.random.key(0), 0.0) == 1.0))  # p = 0: the identity
  True
"""

from __future__ import annotations

import functools

import jax

from jaxgan.augment import transforms
from jaxgan.augment._common import AugmentFn, check_images, check_probability, where_examples
from jaxgan.augment.ada_lib import R3GAN_POLICY, ada
from jaxgan.augment.ada_lib import parse_policy as parse_ada_policy
from jaxgan.augment.diffaugment_lib import diffaugment, draw, translate
from jaxgan.augment.diffaugment_lib import parse_policy as parse_diffaugment_policy

__all__ = [
  "AUGMENTATIONS",
  "DEFAULT_POLICIES",
  "AugmentFn",
  "R3GAN_POLICY",
  "ada",
  "check_images",
  "diffaugment",
  "flip",
  "flip_translate",
  "get",
  "transforms",
]


def flip(x: jax.Array, mask: jax.Array) -> jax.Array:
  """Mirrors example i horizontally (along W) where `mask[i]`.

  Args:
    x: images `[n, H, W, C]`.
    mask: bool `[n]`.

  Returns:
    `[n, H, W, C]`, the dtype of `x`.
  """
  return where_examples(mask, x[:, :, ::-1], x)


def flip_translate(images: jax.Array, key: jax.Array, p=1.0) -> jax.Array:
  """bCR's transform (Zhao et al. 2021): a random horizontal flip, then a random translation.

  As the official DiffAugment code's CR option ('flip,translation'): a flip with probability 1/2,
  then DiffAugment's translation (whole pixels, up to 1/8 of the size per axis, zero fill).

  Args:
    images: `[n, H, W, C]` float images in [-1, 1], C = 1 or 3.
    key: a JAX PRNG key; every example gets its own draw.
    p: probability, float scalar in [0, 1] (may be traced), that an example is transformed at
      all; p = 0 is exactly the identity.

  Returns:
    `[n, H, W, C]`, the dtype of `images`.

  Raises:
    ValueError: for images that are not `[n, H, W, C]` with C in (1, 3), or a concrete p outside
      [0, 1].

  Example:
    >>> import jax.numpy as jnp
    >>> x = jnp.zeros((2, 8, 8, 1))
    >>> jax.jit(flip_translate)(x, jax.random.key(0)).shape
    (2, 8, 8, 1)
  """
  check_images(images, "flip_translate")
  p = check_probability(p)
  n, h, w, _ = images.shape
  k_shift, k_rest = jax.random.split(key)
  u = jax.random.uniform(k_rest, (n, 2))
  out = flip(images, u[:, 0] < 0.5)
  out = translate(out, draw("translation", k_shift, n, h, w))
  return where_examples(u[:, 1] < p, out, images)


def _parse_none(policy: str) -> None:
  raise ValueError(f"flip_translate takes no policy; got {policy!r}. Pass policy=None.")


AUGMENTATIONS = {"diffaugment": diffaugment, "ada": ada, "flip_translate": flip_translate}
# The policy each method uses when `get` is given none (None: the method takes no policy).
DEFAULT_POLICIES = {"diffaugment": "color,translation,cutout", "ada": "bgc", "flip_translate": None}
_PARSERS = {
  "diffaugment": parse_diffaugment_policy,
  "ada": parse_ada_policy,
  "flip_translate": _parse_none,
}


def get(name: str, policy: str | None = None) -> AugmentFn:
  """Returns the augmentation `name` as an `AugmentFn` with its policy bound.

  Args:
    name: a key of `AUGMENTATIONS`: 'diffaugment', 'ada' or 'flip_translate'.
    policy: the policy string (see `diffaugment` and `ada`); None gives the method's default
      ('color,translation,cutout' for DiffAugment, 'bgc' for ADA). flip_translate takes none.

  Returns:
    `f(images, key, p) -> images`.

  Raises:
    ValueError: for an unknown name or an invalid policy (checked here, before compiling), each
      listing the valid choices.

  Example:
    >>> aug = get("ada", "r3gan")  # the policy is checked here, before anything compiles
    >>> get("ada", "xflip,blur")  # doctest: +IGNORE_EXCEPTION_DETAIL
    Traceback (most recent call last):
    ValueError: Unknown ADA transform 'blur' in policy 'xflip,blur'; valid: presets [...] or ...
  """
  if name not in AUGMENTATIONS:
    raise ValueError(f"Unknown augmentation {name!r}; valid: {sorted(AUGMENTATIONS)}.")
  fn, default = AUGMENTATIONS[name], DEFAULT_POLICIES[name]
  if policy is None:
    return fn if default is None else functools.partial(fn, policy=default)
  _PARSERS[name](policy)
  return functools.partial(fn, policy=policy)
